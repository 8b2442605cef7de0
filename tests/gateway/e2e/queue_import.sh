#!/usr/bin/env bash
# Recovery of the spool of a gateway that stays down (docs/operations.md, "Redundancy"), through
# two real gateways (each with its own simulated card and pcscd, tests/gateway/e2e/ha_stack.sh),
# one simulated provider and `demailctl queue import` into the running peer:
#  - gateway A accepts four messages while its path to the provider is cut; two of them it gets
#    out before it dies (the copy of its disk still holds them: one as if it died between the
#    provider's 201 and its own record, one with the record written), two are still queued;
#  - A is killed; its spool copy is imported into B while B runs;
#  - every message is at the provider exactly once (the one A had handed over is recognised by its
#    queue id, the idempotency key), the one with a sent record is not even tried, a torn file is
#    refused with exit 1, and a second import changes nothing.
set -euo pipefail
. "$(dirname "$0")/ha_stack.sh"
trap ha_stop EXIT
fail() {
  echo "FAIL: $*" >&2
  for i in 1 2; do echo "--- gateway $i" >&2; tail -20 "$HA/gw$i/gatewayd.log" >&2 || true; done
  exit 1
}
pass() { echo "ok: $*"; }
ha_start 2
ha_start_gateway 1
ha_start_gateway 2

send_to() {  # gateway subject
  swaks --server "127.0.0.1:${HA_SMTP_PORT[$1]}" --tls --tls-ca-path "$HA_CA" \
    --from sachbearbeiter@firma.de --to amt@behoerde.de-mail.de \
    --header "Subject: $2" --body "Sehr geehrte Damen und Herren, $2." >"$HA/swaks-$2.log" 2>&1 ||
    fail "gateway $1 did not accept $2: $(tail -3 "$HA/swaks-$2.log")"
}
count_of() { ha_provider_subjects | awk -v s="$1" '$1 == s {print $2}'; }
at_provider() { [ "$(count_of "$1")" = "${2:-1}" ]; }
id_of() { grep -l "^Subject: $2" "$1"/queue/* | xargs -n1 basename; }  # spool subject

send_to 1 warm-a
wait_for_sub() { ha_wait_for 30 at_provider "$1" || fail "$1 not at the provider"; }
wait_for_sub warm-a

ha_cut 1
send_to 1 import-1
send_to 1 import-2
SNAP=$HA/snapshot; mkdir -p "$SNAP"
cp -a "$HA/gw1/spool/queue" "$HA/gw1/spool/dispatch" "$SNAP/"
ID1=$(id_of "$SNAP" import-1) ID2=$(id_of "$SNAP" import-2)
ha_restore 1
wait_for_sub import-1
wait_for_sub import-2
ha_cut 1
send_to 1 import-3
send_to 1 import-4
sleep 1
ha_kill_gateway 1
pass "gateway A: import-1/2 submitted, import-3/4 queued with its provider path cut, then killed"

# The copy of A's spool an operator would take from its disk: as it is, plus import-1 and
# import-2 as they were before A submitted them; import-2's sent record kept, import-1's gone
# (A died after the provider stored it and before it recorded that).
REC=$HA/recovered; cp -a "$HA/gw1/spool" "$REC"
cp -a "$SNAP/queue/$ID1" "$SNAP/queue/$ID2" "$REC/queue/"
rm -f "$REC/sent/$ID1"
[ -f "$REC/sent/$ID2" ] || fail "A wrote no sent record for import-2"
[ "$(ls "$REC/queue" | wc -l)" = 4 ] || fail "the recovered queue does not hold 4 messages: $(ls "$REC/queue")"
# ... and one file torn by the crash (no end marker).
TORN=20261129000000TORNTORN
head -c 100 "$REC/queue/$ID1" >"$REC/queue/$TORN"

before=$(count_of import-1)
set +e
"$DEMAILCTL" --config "$HA/gw2/gateway.ini" queue import "$REC" >"$HA/import.out" 2>"$HA/import.err"
rc=$?
set -e
cat "$HA/import.out" "$HA/import.err"
[ "$rc" = 1 ] || fail "import exit $rc with a torn file (want 1)"
grep -q "^$TORN: unreadable" "$HA/import.err" || fail "the torn file was not refused"
grep -q "^$ID2: already submitted" "$HA/import.out" || fail "import-2 (sent record) was imported"
grep -q -- "-- 3 imported, 0 already here, 1 already submitted, 1 failed" "$HA/import.out" || fail "import summary"
pass "import into the running gateway B: 3 imported, 1 skipped by its sent record, the torn file refused (exit 1)"

for s in import-1 import-2 import-3 import-4; do wait_for_sub "$s"; done
ha_wait_for 30 bash -c "[ -z \"\$(ls '$HA/gw2/spool/queue')\" ]" || fail "B's queue does not empty: $(ls "$HA/gw2/spool/queue")"
sleep 3  # a second submission would show up now
for s in import-1 import-2 import-3 import-4; do
  at_provider "$s" || fail "$s at the provider $(count_of "$s") times"
done
[ "$before" = 1 ] || fail "import-1 was not at the provider before the import"
grep -q "event=submitted queue_id=$ID1" "$HA/gw2/gatewayd.log" || fail "B did not record import-1 as submitted"
pass "each message at the provider exactly once; import-1, which A had handed over, recognised by its queue id ($(grep "event=submitted queue_id=$ID1" "$HA/gw2/gatewayd.log" | sed 's/.*detail=/detail=/'))"

rm -f "$REC/queue/$TORN"
"$DEMAILCTL" --config "$HA/gw2/gateway.ini" queue import "$REC" >"$HA/import2.out" 2>&1 || fail "second import: $(cat "$HA/import2.out")"
grep -q -- "-- 0 imported, 0 already here, 4 already submitted, 0 failed" "$HA/import2.out" || fail "second import: $(cat "$HA/import2.out")"
pass "a second import of the same copy imports nothing"
