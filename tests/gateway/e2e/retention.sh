#!/usr/bin/env bash
# The gateway's working state is pruned while the daemon runs (issue 17.2): the sent journal
# (queue id -> sender) and the inbound ledger (provider ids delivered) keep one file per message;
# with retentions of 3 s both fill and then empty again, the daemon still running and serving.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
stack_start "[queue]" "sent_retention = 3s" "inbound_retention = 3s"
count() { ls "$STACK/spool/$1" 2>/dev/null | wc -l; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
empty() { [ "$(count "$1")" = 0 ]; }

for i in 1 2 3 4 5; do send_mail "retention $i" >/dev/null 2>&1 || fail "swaks $i"; done
for i in 1 2 3; do
  printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: inbound %d\r\nX-de-mail-message-type: normal\r\n\r\nhello\r\n' "$i" |
    curl -sf -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" >/dev/null
done
# Whichever is first: the entries appear (they may also be pruned again soon after).
wait_for 30 at_least sent 1 || fail "no sent-journal entry appeared"
wait_for 30 at_least inbound-delivered 1 || fail "no inbound-ledger entry appeared"
wait_for 30 empty sent || fail "sent/ not pruned while running: $(count sent) left"
wait_for 30 empty inbound-delivered || fail "inbound-delivered/ not pruned while running: $(count inbound-delivered) left"
kill -0 "$GATEWAYD_PID" || fail "the daemon is gone"
grep -q "event=state_pruned" "$STACK/gatewayd.log" || fail "no event=state_pruned line"
send_mail "after pruning" >/dev/null 2>&1 || fail "the intake no longer answers after pruning"
pass "sent/ and inbound-delivered/ filled and were pruned while the daemon ran ($(grep -c 'event=state_pruned' "$STACK/gatewayd.log") passes logged)"
