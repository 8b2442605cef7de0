#!/usr/bin/env bash
# Card supervision: pulled card -> not ready, mail queued, card back -> resumes by itself; a
# rejected PIN costs exactly one try, is never tried again, and SIGHUP after the fix recovers.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
stack_start
submissions() { provider_state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['submissions'])"; }
submissions_are() { [ "$(submissions)" = "$1" ]; }
tries() { PCSCLITE_CSOCK_NAME="$STACK/pcsc/run/pcscd.comm" pkcs15-tool -D 2>/dev/null | awk '/PIN \[NetKey PIN2\]/ {f=1} f && /Tries left/ {print $NF; exit}'; }

# The provider confirms the recipient while the card is in ([provider] address_check); without it
# a recipient the provider never confirmed is answered 451 while the card is out (recipients.sh).
warm_recipient || fail "the recipient was not confirmed with the card in"
"$FIXTURE" card-pull "$STACK/pcsc"
wait_for 15 bash -c "! curl -sf http://127.0.0.1:$HEALTH_PORT/readyz >/dev/null" || fail "still ready without a card"
ready=$(curl -s "http://127.0.0.1:$HEALTH_PORT/readyz")
grep -q "card: no card" <<<"$ready" || fail "readiness reason: $ready"
wait_for 15 bash -c "curl -s http://127.0.0.1:$HEALTH_PORT/metrics | grep -qx 'demail_card_absent 1'" || fail "/metrics: demail_card_absent is not 1"
send_mail "while the card is out" >/dev/null 2>&1 || fail "intake refused while the card is out"
sleep 3
[ "$(submissions)" = 0 ] || fail "submitted without a card"
pass "card pulled: not ready ('$ready'), mail accepted and queued"
"$FIXTURE" card-insert "$STACK/pcsc"
wait_for 30 submissions_are 1 || fail "did not resume after the card came back"
curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" >/dev/null || fail "not ready after the card came back"
pass "card back: logged in again and the queued message was submitted"

"$FIXTURE" pcscd-restart "$STACK/pcsc"
send_mail "after the pcscd restart" >"$STACK/swaks-pcscd.log" 2>&1 || fail "intake refused after the pcscd restart: $(tail -5 "$STACK/swaks-pcscd.log")"
wait_for 40 submissions_are 2 || fail "no recovery after pcscd restarted: $(curl -s http://127.0.0.1:$HEALTH_PORT/readyz)"
wait_for 15 curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" -o /dev/null || fail "not ready after the pcscd restart"
pass "pcscd restarted under the running gateway: it logged in again and submitted"

kill -TERM "$GATEWAYD_PID"; wait "$GATEWAYD_PID" || true
echo 000000 >"$STACK/card.pin"
before=$(tries)
"$GATEWAYD" --config "$STACK/gateway.ini" >>"$STACK/gatewayd.log" 2>&1 &
GATEWAYD_PID=$!; STACK_PIDS+=($GATEWAYD_PID)
wait_for 15 curl -s "http://127.0.0.1:$HEALTH_PORT/readyz" -o "$STACK/ready.txt" || fail "no health endpoint"
wait_for 15 grep -q "rejected the PIN" "$STACK/ready.txt" || wait_for 10 bash -c "curl -s http://127.0.0.1:$HEALTH_PORT/readyz | grep -q 'rejected the PIN'" ||
  fail "readiness does not report the PIN: $(curl -s http://127.0.0.1:$HEALTH_PORT/readyz)"
ready=$(curl -s "http://127.0.0.1:$HEALTH_PORT/readyz")
grep -q "2 tries left" <<<"$ready" || fail "tries left not reported: $ready"
metrics=$(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics")
grep -qx "demail_card_pin_rejected 1" <<<"$metrics" || fail "/metrics: demail_card_pin_rejected is not 1"
grep -qx "demail_card_absent 0" <<<"$metrics" || fail "/metrics: a rejected PIN is not an absent card"
"$FIXTURE" card-pull "$STACK/pcsc"; "$FIXTURE" card-insert "$STACK/pcsc"
sleep 5
after=$(tries)
[ "$after" = $((before - 1)) ] || fail "a rejected PIN must cost exactly one try ($before -> $after)"
if grep -qw 000000 "$STACK/gatewayd.log"; then fail "the PIN is in the log"; fi
pass "wrong PIN: one try spent ($before -> $after), never retried (not even after re-insertion), reported as '$ready'"

echo 123456 >"$STACK/card.pin"
kill -HUP "$GATEWAYD_PID"
wait_for 15 curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" -o /dev/null || fail "not ready after SIGHUP with the right PIN"
curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | grep -qx "demail_card_pin_rejected 0" || fail "/metrics: PIN still rejected after the fix"
pass "SIGHUP after the PIN file was fixed: logged in, ready"
