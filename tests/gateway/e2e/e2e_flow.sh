#!/usr/bin/env bash
# demail-gatewayd end to end: internal mail in by SMTP (STARTTLS), out to the provider over the
# card-signed TLS profile, confirmations back to the sender; inbound De-Mail to the internal
# server; provider outage with retry; a non-De-Mail recipient refused; expiry bounce with a DSN.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
SUB_PORT=$(free_port)
echo "relay:$(/usr/bin/python3 -c 'import hashlib,base64,os; s=os.urandom(16); print("$pbkdf2-sha256$10000$%s$%s" % (base64.b64encode(s).decode(), base64.b64encode(hashlib.pbkdf2_hmac("sha256", b"geheim123", s, 10000)).decode()))')" >"$STACK/users"
stack_start "[queue]" "max_age = 12s" "delay_warning = 4s" "[smtp]" "submission_listen = 127.0.0.1:$SUB_PORT" "users_file = $STACK/users"
state() { provider_state | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d['$1'])"; }
state_is() { [ "$(state "$1")" = "$2" ]; }
confirmations_at_sender() { [ "$(grep -l 'X-Sink-Rcpt-To: <sachbearbeiter@firma.de>' "$STACK"/mailbox/*.eml 2>/dev/null | wc -l)" -ge "$1" ]; }
unacked_at_most() {  # unacknowledged messages in our own account's inbox
  [ "$(provider_state | /usr/bin/python3 -c 'import json,sys; print(sum(1 for m in json.load(sys.stdin)["messages"] if m["account"] == "poststelle@firma.de-mail.de" and not m["acked"]))')" -le "$1" ]
}

# Forged provider headers from the internal side: stripped before submission, never relayed.
send_mail "[versandbestaetigung] [eingangsbestaetigung] Antrag" \
  --add-header "X-de-mail-auth-level: high-forged" --add-header "X-de-mail-message-id: <forged@evil.test>" \
  --add-header "X-de-mail-sender: chef-forged@firma.de-mail.de" --add-header "X-De-Mail-Account-Holder: forged" \
  >"$STACK/swaks1.log" 2>&1 || fail "swaks: $(tail -3 "$STACK/swaks1.log")"
grep -q "X-de-mail-auth-level: high-forged" "$STACK/swaks1.log" || fail "swaks did not send the forged headers"
wait_for 20 state_is submissions 1 || fail "not submitted"
sub=$(provider_state)
grep -q '"privateId":"2026' <<<"$sub" || fail "private-id is not the queue id"
id=$(provider_state | /usr/bin/python3 -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["messages"] if m["messageType"]=="normal"][0])')
stored=$(curl -s "$PROVIDER_CONTROL/control/message/$id")
for h in "X-de-mail-sender: poststelle@firma.de-mail.de" "X-de-mail-chosen-recipient: to=amt@behoerde.de-mail.de" \
         "X-de-mail-confirmation-of-dispatch: yes" "X-de-mail-confirmation-of-receipt: yes" "X-de-mail-private: no" \
         "Subject: Antrag"; do
  grep -qi -- "^$h" <<<"$stored" || fail "the provider's copy lacks '$h'"
done
if grep -qi "^X-De-Mail-Options\|^Subject: \[" <<<"$stored"; then fail "internal markers reached the provider"; fi
if grep -qi "forged" <<<"$stored"; then fail "a forged provider header reached the provider: $(grep -i forged <<<"$stored")"; fi
wait_for 20 confirmations_at_sender 2 ||
  fail "confirmations did not reach the sender: $(ls "$STACK/mailbox")"
grep -l "confirmation of dispatch" "$STACK"/mailbox/*.eml >/dev/null || fail "no Versandbestätigung"
grep -l "confirmation of receipt" "$STACK"/mailbox/*.eml >/dev/null || fail "no Eingangsbestätigung"
pass "submitted with the queue id as private-id; Versand- and Eingangsbestätigung delivered to the sender"
# The submitted message left queue/; its file waits emptied in free/ for the next message.
[ -z "$(ls -A "$STACK/spool/queue")" ] || fail "queue/ not empty after the submission: $(ls "$STACK/spool/queue")"
free_files=$(find "$STACK/spool/free" -type f | wc -l)
[ "$free_files" -ge 1 ] || fail "the submitted message's file was not kept in free/"
[ -z "$(find "$STACK/spool/free" -type f -size +0c)" ] || fail "a file in free/ still holds bytes"
pass "the submitted message's spool file is kept emptied for reuse ($free_files in free/)"

if swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" --from sachbearbeiter@firma.de \
  --to someone@gmail.com >"$STACK/swaks2.log" 2>&1; then fail "ordinary mail recipient accepted"; fi
grep -q "550 5.7.1 <someone@gmail.com>: not a De-Mail address" "$STACK/swaks2.log" || fail "refusal text"
pass "a non-De-Mail recipient is refused at RCPT (550 5.7.1), never relayed as ordinary mail"

sub() { swaks --server "127.0.0.1:$SUB_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" --from sachbearbeiter@firma.de --to amt@behoerde.de-mail.de "$@"; }
if sub >"$STACK/sub1.log" 2>&1; then fail "the submission port relayed without AUTH"; fi
grep -q "554 5.7.1" "$STACK/sub1.log" || fail "submission without AUTH: $(grep '<~' "$STACK/sub1.log" | tail -2)"
sub --auth PLAIN --auth-user relay --auth-password geheim123 >"$STACK/sub2.log" 2>&1 || fail "submission with AUTH: $(tail -3 "$STACK/sub2.log")"
pass "submission port: relay only after AUTH over TLS"

printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: Bescheid\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\nIhr Bescheid.\r\n' |
  curl -s -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" >/dev/null
wait_for 20 bash -c "grep -q 'Subject: Bescheid' $STACK/mailbox/*.eml 2>/dev/null" || fail "inbound not delivered"
f=$(grep -l "Subject: Bescheid" "$STACK"/mailbox/*.eml)
grep -q "X-Sink-Rcpt-To: <poststelle@firma.de>" "$f" || fail "inbound went to the wrong mailbox"
grep -q "X-Sink-TLS: yes" "$f" || fail "inbound delivered without TLS"
wait_for 10 unacked_at_most 0 || fail "inbound not acknowledged"
pass "inbound De-Mail delivered to the mapped internal mailbox over TLS, then acknowledged"

curl -s -X POST -d '{"mode":"http_status","status":503,"count":0}' "$PROVIDER_CONTROL/control/fault" >/dev/null
send_mail "during the outage" >/dev/null 2>&1 || fail "intake refused during provider outage"
wait_for 15 grep -q "event=deferred" "$STACK/gatewayd.log" || fail "no deferral"
"$DEMAILCTL" --config "$STACK/gateway.ini" queue list | grep -q "1 message" || fail "the message is not in the queue"
curl -s -X POST -d '{"mode":"none"}' "$PROVIDER_CONTROL/control/fault" >/dev/null
wait_for 30 state_is submissions 3 || fail "not submitted after the outage"
pass "provider answering 503: accepted, queued, retried with backoff, submitted once it recovered"

curl -s -X POST -d '{"mode":"refuse","count":0}' "$PROVIDER_CONTROL/control/fault" >/dev/null
send_mail "never arrives" >/dev/null 2>&1
wait_for 40 bash -c "grep -lq 'Undelivered Mail Returned to Sender' $STACK/mailbox/*.eml 2>/dev/null" || fail "no bounce after max_age"
dsn=$(grep -l "Undelivered Mail Returned to Sender" "$STACK"/mailbox/*.eml)
grep -q "X-Sink-Mail-From: <>" "$dsn" || fail "DSN not from <>"
grep -q "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "$dsn" || fail "DSN to the wrong address"
grep -q "Action: failed" "$dsn" || fail "DSN action"
grep -l "Delayed Mail (still being retried)" "$STACK"/mailbox/*.eml >/dev/null || fail "no delay warning before the bounce"
curl -s -X POST -d '{"mode":"none"}' "$PROVIDER_CONTROL/control/fault" >/dev/null
"$DEMAILCTL" --config "$STACK/gateway.ini" queue list | grep -q "0 messages" || fail "bounced message still queued"
pass "provider unreachable past max_age: delay warning, then a DSN (multipart/report) to the sender, queue empty"

health=$("$DEMAILCTL" --config "$STACK/gateway.ini" health || true)
grep -Eq "ok +certificate: valid for [0-9]+ days" <<<"$health" || fail "certificate expiry not reported: $health"
metrics=$(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics")
sigs=$(awk '/^demail_card_signatures_total/ {print $2}' <<<"$metrics")
[ "${sigs:-99}" -le 3 ] || fail "card signatures: $sigs (expected a handful, one per TLS session)"
grep -q "demail_messages_submitted_total 3" <<<"$metrics" || fail "metrics: $metrics"
pass "metrics: 3 submitted, $sigs card signatures for the whole run"

kill -TERM "$GATEWAYD_PID"
wait "$GATEWAYD_PID"; rc=$?
[ "$rc" = 0 ] || fail "SIGTERM exit $rc"
grep -q "event=stopped" "$STACK/gatewayd.log" || fail "no orderly stop"
pass "SIGTERM: orderly stop, exit 0"
