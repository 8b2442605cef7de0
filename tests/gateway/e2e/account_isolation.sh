#!/usr/bin/env bash
# One account's trouble stays that account's (issue 20, ACM_FU §3.6): two De-Mail accounts on
# one card, the second blocked at the provider. The first keeps sending, the second's mail stays
# queued (not bounced), both keep receiving, the card is not logged in again (no loop), the
# gateway stays ready and /status and /metrics show the second account paused; unblocked, its
# queued mail goes out.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
fail() { echo "FAIL: $*" >&2; echo "--- gatewayd.log"; tail -40 "$STACK/gatewayd.log" >&2; exit 1; }
ONE=poststelle@firma.de-mail.de
TWO=zweite@firma.de-mail.de
export STACK_SECOND_ACCOUNT=zweite
stack_start

mail_from() {  # internal sender, subject
  swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" \
    --from "$1" --to amt@behoerde.de-mail.de --header "Subject: $2" --body "Text $2." >"$STACK/swaks-$2.log" 2>&1 ||
    fail "swaks $2: $(tail -3 "$STACK/swaks-$2.log")"
}
at_provider() {  # subject: a submission with it reached the recipient's account
  provider_state | /usr/bin/python3 -c "import json,sys; sys.exit(0 if any(m['subject'] == '$1' and m['account'] == 'amt@behoerde.de-mail.de' for m in json.load(sys.stdin)['messages']) else 1)"
}
status() { curl -s "http://127.0.0.1:$HEALTH_PORT/status"; }
account_state() {  # account -> ok / paused / listing_failed / missing
  status | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin).get('accounts', {}).get('$1', {}).get('state', 'missing'))"
}
account_is() { [ "$(account_state "$1")" = "$2" ]; }
delivered_to() {  # internal mailbox, subject
  grep -l "Subject: $2" "$STACK"/mailbox/*.eml 2>/dev/null | xargs -r grep -l "X-Sink-Rcpt-To: <$1>" | grep -q .
}
inject() {  # account, subject
  printf 'From: amt@behoerde.de-mail.de\r\nTo: %s\r\nSubject: %s\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\nIhr Bescheid.\r\n' "$1" "$2" |
    curl -sf -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=$1" >/dev/null || fail "inject for $1"
}
logins() { grep -c "event=card_ready" "$STACK/gatewayd.log" || true; }
verifies() { grep -c '^> 00 20 ' "$STACK/pcsc/apdu.log" || true; }  # PIN VERIFY APDUs at the card

wait_for 30 account_is "$ONE" ok || fail "account one not listed: $(status)"
wait_for 30 account_is "$TWO" ok || fail "account two not listed: $(status)"
pass "both accounts listed in /status"

curl -sf -X POST -d "" "$PROVIDER_CONTROL/control/block?account=$TWO&blocked=true" >/dev/null || fail "block"
logins_before=$(logins) verifies_before=$(verifies)
mail_from zweite@firma.de zwei-1
mail_from sachbearbeiter@firma.de eins-1
wait_for 30 at_provider eins-1 || fail "the first account's mail did not reach the provider"
wait_for 30 account_is "$TWO" paused || fail "the second account is not shown paused: $(status)"
pass "account two blocked: account one's mail submitted, account two shown paused"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/readyz")
[ "$code" = 200 ] || fail "/readyz $code while only an account is paused: $(curl -s "http://127.0.0.1:$HEALTH_PORT/readyz")"
metrics=$(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics")
grep -q "^demail_account_paused{account=\"$TWO\"} 1$" <<<"$metrics" || fail "no demail_account_paused 1 for $TWO"
grep -q "^demail_account_paused{account=\"$ONE\"} 0$" <<<"$metrics" || fail "no demail_account_paused 0 for $ONE"
health=$("$DEMAILCTL" --config "$STACK/gateway.ini" health) || fail "demailctl health says not ready: $health"
grep -q "PAUSED  $TWO: sending paused: .*account_blocked\|PAUSED  $TWO: sending paused: blocked at the provider" <<<"$health" ||
  fail "demailctl health does not show account two paused: $health"
pass "/readyz stays 200; demail_account_paused is 1 for account two only; demailctl health names it"

# Both accounts keep receiving (ACM_FU §3.6.2/§3.6.3: a blocked account still receives).
inject "$ONE" Bescheid-eins
inject "$TWO" Bescheid-zwei
wait_for 40 delivered_to poststelle@firma.de Bescheid-eins || fail "account one's inbound not delivered"
wait_for 40 delivered_to zweite@firma.de Bescheid-zwei || fail "the blocked account's inbound not delivered"
pass "inbound for both accounts delivered while account two is blocked"

# Longer than the probe interval (retry_max 10 s) and several polls: account one still sends,
# account two's mail waits in the queue, nothing bounces, the card is not logged in again.
mail_from sachbearbeiter@firma.de eins-2
wait_for 30 at_provider eins-2 || fail "account one stopped sending while account two is blocked"
sleep 14
at_provider zwei-1 && fail "the blocked account's mail reached the provider"
"$DEMAILCTL" --config "$STACK/gateway.ini" queue list | grep -q "1 message" ||
  fail "account two's mail is not queued: $("$DEMAILCTL" --config "$STACK/gateway.ini" queue list)"
grep -l "Undelivered Mail Returned" "$STACK"/mailbox/*.eml >/dev/null 2>&1 && fail "a bounce was sent"
logins_after=$(logins)
[ "$logins_after" = "$logins_before" ] || fail "the card was logged in again $((logins_after - logins_before)) times"
grep -q "event=dispatch_paused" "$STACK/gatewayd.log" && fail "the whole dispatcher was paused"
refusals=$(grep -c "status=403 account=$TWO" "$STACK/provider.log" || true)
echo "while blocked: $refusals submission(s) of account two refused with 403 (the first try and one probe per retry_max = 10 s)"
verifies_after=$(verifies)
[ "$verifies_after" = "$verifies_before" ] || fail "the PIN was presented to the card again: $verifies_before -> $verifies_after VERIFYs"
account_is "$ONE" ok || fail "account one is not ok: $(status)"
pass "after the probe interval: account two's mail queued, not bounced; card logins constant ($logins_after), PIN VERIFYs at the card constant ($verifies_after); no global pause"

curl -sf -X POST -d "" "$PROVIDER_CONTROL/control/block?account=$TWO&blocked=false" >/dev/null || fail "unblock"
wait_for 30 at_provider zwei-1 || fail "account two's queued mail did not go out after the unblock"
wait_for 10 account_is "$TWO" ok || fail "account two still shown paused: $(status)"
grep -q "event=account_resumed account=$TWO" "$STACK/gatewayd.log" || fail "no account_resumed in the log"
pass "unblocked: account two resumed and its queued mail submitted"

# The other side: a refusal of our certificate (a 403 without an account code) concerns every
# account and pauses all sending, once: the card is not logged in again and again (it works; a
# login cannot change the provider's mind). A reload (or a new card) ends the pause.
curl -sf -X POST -d '{"mode":"http_status","status":403,"count":0}' "$PROVIDER_CONTROL/control/fault" >/dev/null || fail "fault"
logins_before=$(logins) verifies_before=$(verifies)
mail_from sachbearbeiter@firma.de eins-3
wait_for 30 grep -q "event=dispatch_paused" "$STACK/gatewayd.log" || fail "a refused certificate did not pause sending"
readyz=$(curl -s "http://127.0.0.1:$HEALTH_PORT/readyz")
grep -q "provider: .*provider answered 403" <<<"$readyz" || fail "/readyz does not name the provider: $readyz"
grep -q "card:" <<<"$readyz" && fail "/readyz blames the card for a provider refusal: $readyz"
sleep 8  # four turns of the card supervisor's 2 s loop
[ "$(logins)" = "$logins_before" ] || fail "the card was logged in again $(( $(logins) - logins_before )) times for a provider refusal"
[ "$(verifies)" = "$verifies_before" ] || fail "the PIN was presented again for a provider refusal"
[ "$(grep -c "event=dispatch_paused" "$STACK/gatewayd.log")" = 1 ] || fail "sending paused and resumed in a loop"
curl -sf -X POST -d '{"mode":"none"}' "$PROVIDER_CONTROL/control/fault" >/dev/null || fail "fault off"
kill -HUP "$GATEWAYD_PID"
wait_for 30 at_provider eins-3 || fail "not sent after the reload"
pass "a refused certificate: one pause (readiness names the provider, not the card), no re-login over 8 s; a reload resumes sending"
