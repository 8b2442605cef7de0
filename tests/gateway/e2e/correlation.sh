#!/usr/bin/env bash
# Correlation for internal applications through the real stack (card on pcscd, the simulated
# provider, the daemon, the SMTP sink): the sender's own X-de-mail-private-id goes out after the
# queue id and comes back on its Versandbestätigung (restored, In-Reply-To/References linking the
# original); the provider's message ids are kept in sent/<id>; a too long private-id is refused
# at the end of DATA; a Meldung about an unknown recipient reaches the original sender as a
# multipart/report; a recipient-side copy naming another original sender is not routed to ours.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
stack_start

# 1. A file number from a case-management system, and the application's own Message-ID.
send_mail "[versandbestaetigung] Antrag AZ-2026/4711" \
  --header "X-de-mail-private-id: AZ-2026/4711" --header "Message-Id: <az4711@fachverfahren.firma.de>" \
  >"$STACK/swaks1.log" 2>&1 || fail "swaks: $(tail -3 "$STACK/swaks1.log")"
grep -q "Message-Id: <az4711@fachverfahren.firma.de>" "$STACK/swaks1.log" || fail "swaks did not send our Message-Id"
wait_for 30 bash -c "curl -s $PROVIDER_CONTROL/control/state | grep -q AZ-2026/4711" || fail "not submitted"
sent=$(sub_json 'print(*[m["id"] for m in d["messages"] if m["messageType"]=="normal"])')
pid=$(curl -s "$PROVIDER_CONTROL/control/message/$sent" | grep -i '^X-de-mail-private-id:' | tr -d '\r' | cut -d' ' -f2-)
[[ "$pid" =~ ^[0-9A-Z]{22}\.AZ-2026/4711$ ]] || fail "private-id at the provider: '$pid' (expected <queue id>.AZ-2026/4711)"
qid=${pid%%.*}
pass "the provider got X-de-mail-private-id: $pid (queue id, then the sender's own value)"

wait_for 30 has_mail "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "confirmation of dispatch" || fail "no Versandbestätigung at the sender"
conf=$(mail_with "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "confirmation of dispatch")
grep -q "^X-de-mail-private-id: AZ-2026/4711"$'\r'"\?$" "$conf" || fail "the confirmation does not carry the sender's own private-id: $(grep -i private-id "$conf")"
grep -q "^In-Reply-To: <az4711@fachverfahren.firma.de>" "$conf" || fail "no In-Reply-To to the original: $(grep -i '^In-Reply-To\|^References' "$conf")"
grep -q "^References: <az4711@fachverfahren.firma.de> <dm-" "$conf" || fail "References lack the original and the provider's id: $(grep -i '^References' "$conf")"
grep -q "^X-Demail-Gateway-Queue-Id: $qid" "$conf" || fail "no X-Demail-Gateway-Queue-Id"
pass "Versandbestätigung at sachbearbeiter@firma.de with X-de-mail-private-id: AZ-2026/4711, In-Reply-To the original, References with the provider's id"

rec="$STACK/spool/sent/$qid"
[ -f "$rec" ] || fail "no sent record $rec"
grep -qx "private-id=AZ-2026/4711" "$rec" || fail "sent record: $(cat "$rec")"
grep -qx "message-id=<az4711@fachverfahren.firma.de>" "$rec" || fail "sent record: $(cat "$rec")"
grep -q "^provider-id=<dm-" "$rec" || fail "the provider's message ids are not kept: $(cat "$rec")"
pass "sent/$qid keeps the sender, account, own private-id, Message-ID and the provider's ids"

# 2. Too long for the TR's 1024 characters once the queue id comes first: refused in the session.
# Folded over several lines (an SMTP line may not pass 998 octets); 1016 characters unfolded.
{ printf 'From: sachbearbeiter@firma.de\r\nTo: amt@behoerde.de-mail.de\r\nSubject: zu lang\r\nX-de-mail-private-id: AZ-4711'
  for _ in $(seq 1 127); do printf '\r\n AZ-4711'; done; printf '\r\n\r\nText\r\n'; } >"$STACK/long.eml"
if swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" --from sachbearbeiter@firma.de \
  --to amt@behoerde.de-mail.de --data @"$STACK/long.eml" >"$STACK/swaks2.log" 2>&1; then fail "a too long private-id was accepted"; fi
grep -q "<[~*]\* *554 5.6.0 .*X-de-mail-private-id longer than 1001 characters" "$STACK/swaks2.log" ||
  fail "expected 554 5.6.0 at the end of DATA: $(grep '<[~*]\*' "$STACK/swaks2.log")"
pass "a private-id that does not fit after the queue id: 554 5.6.0 at the end of DATA"

# 3. A Meldung about an unknown recipient, after the provider accepted the message (its directory
#    still listed the address at RCPT time: the look-up and the delivery disagree, as they can).
curl -sf -X POST -d "" "$PROVIDER_CONTROL/control/address?address=nobody@behoerde.de-mail.de&state=known&authLevel=high" >/dev/null ||
  fail "the simulator does not take /control/address"
curl -sf -X POST -d "" "$PROVIDER_CONTROL/control/meldung?address=nobody@behoerde.de-mail.de&type=unknown-recipient" >/dev/null ||
  fail "the simulator does not take /control/meldung"
swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" \
  --from sachbearbeiter@firma.de --to nobody@behoerde.de-mail.de --header "Subject: Anfrage AZ-2026/4712" \
  --header "X-de-mail-private-id: AZ-2026/4712" --header "Message-Id: <az4712@fachverfahren.firma.de>" \
  --body "Anfrage" >"$STACK/swaks3.log" 2>&1 || fail "swaks: $(tail -3 "$STACK/swaks3.log")"
wait_for 30 has_mail "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "multipart/report" "X-de-mail-private-id: AZ-2026/4712" ||
  fail "no report of the Meldung at the sender: $(ls "$STACK/mailbox"); $(grep 'inbound' "$STACK/gatewayd.log" | tail -5)"
rep=$(mail_with "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "multipart/report" "X-de-mail-private-id: AZ-2026/4712")
grep -q "X-Sink-Mail-From: <>" "$rep" || fail "the report is not from <>"
grep -q "^Final-Recipient: rfc822; nobody@behoerde.de-mail.de" "$rep" || fail "no Final-Recipient"
grep -q "^Status: 5.1.1" "$rep" || fail "status: $(grep '^Status' "$rep")"
grep -q "^In-Reply-To: <az4712@fachverfahren.firma.de>" "$rep" || fail "report not linked to the original"
grep -q "^X-de-mail-notification-type: unknown-recipient" "$rep" || fail "the Meldung is not attached"
grep -q "Der Empfänger nobody@behoerde.de-mail.de ist unbekannt" "$rep" || fail "the Meldung's (base64) text is not in the report"
grep -q "event=meldung_reported .*queue_id=[0-9A-Z]\{22\} kind=notification type=unknown-recipient status=5.1.1" "$STACK/gatewayd.log" ||
  fail "no event=meldung_reported"
if grep -q "event=inbound_prepared provider_id=.*repaired" "$STACK/gatewayd.log"; then
  fail "the simulator's Meldung needed repairs: $(grep event=inbound_prepared "$STACK/gatewayd.log")"; fi
pass "Meldung unknown-recipient: a multipart/report from <> at the original sender (5.1.1, its private-id, In-Reply-To, the Meldung attached)"

# 4. Review row 16: an Eingangsbestätigung copy for mail we RECEIVED carries the foreign sender's
# private-id, which may be one of our (visible) queue ids. It goes to the account's inbox.
before=$(mail_with "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" | wc -w)
printf '%s\r\n' "From: Eingangsbestaetigung@behoerde.de-mail.de" "To: poststelle@firma.de-mail.de" \
  "Subject: *Eingangsbestaetigung* Ihr Schreiben" "X-de-mail-message-type: confirmation of receipt" \
  "X-de-mail-sender: Eingangsbestaetigung@behoerde.de-mail.de" "X-de-mail-private-id: $qid.gesteuert" \
  "MIME-Version: 1.0" "Content-Type: multipart/mixed; boundary=b" "" "--b" "Content-Type: application/xml" "" \
  '<Acknowledge-Message xmlns="urn:de-mail"><Sender>Eingangsbestaetigung@behoerde.de-mail.de</Sender><Metadata><Metadate><Name>X-de-mail-sender</Name><Value>fremd@behoerde.de-mail.de</Value></Metadate></Metadata><Subject>Ihr Schreiben</Subject></Acknowledge-Message>' \
  "--b--" | curl -sf -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" >/dev/null || fail "inject"
wait_for 30 has_mail "X-Sink-Rcpt-To: <poststelle@firma.de>" "Ihr Schreiben" || fail "the copy was not delivered to the account's inbox"
[ "$(mail_with "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" | wc -w)" = "$before" ] || fail "the copy reached the sender of our message"
grep -q "event=correlation_refused .*queue_id=$qid" "$STACK/gatewayd.log" || fail "no event=correlation_refused"
pass "a recipient-side copy naming a foreign original sender: to the account's inbox, not through our journal"
