#!/usr/bin/env bash
# Wrong PINs count down by one and block after three; the PUK unblocks with a new PIN; the state
# survives a restart of the card.
. "$(dirname "$0")/lib.sh"
fixture_start

for expected in 2 1; do
  pkcs15-tool --verify-pin --auth-id 03 --pin 000000 >/dev/null 2>&1 || true
  [ "$(tries_left 'NetKey PIN2')" = "$expected" ] || fail "after a wrong PIN expected $expected tries, got $(tries_left 'NetKey PIN2')"
done
pass "wrong PINs: 3 -> 2 -> 1"
pkcs15-tool --verify-pin --auth-id 03 --pin 000000 >/dev/null 2>&1 || true
out=$(apdus 00:A4:08:0C:04:DF:01:50:49 00:20:00:83)
expect_contains "$out" "SW1=0x69, SW2=0x83" "blocked PIN status"
if pkcs15-tool --verify-pin --auth-id 03 --pin 123456 >/dev/null 2>&1; then
  fail "the right PIN must not work on a blocked PIN"
fi
pass "third wrong PIN blocks (6983); the right PIN no longer works"

pkcs15-tool --unblock-pin --auth-id 03 --puk 00000000 --new-pin 654321 >/dev/null 2>&1 || true
[ "$(tries_left 'PUK')" = 9 ] || fail "wrong PUK must cost one PUK try"
pkcs15-tool --unblock-pin --auth-id 03 --puk 12345678 --new-pin 654321 >/dev/null 2>&1 || fail "unblock with PUK"
[ "$(tries_left 'NetKey PIN2')" = 3 ] || fail "unblocked PIN must have 3 tries"
[ "$(tries_left 'PUK')" = 10 ] || fail "right PUK resets the PUK counter"
pkcs15-tool --verify-pin --auth-id 03 --pin 654321 >/dev/null 2>&1 || fail "new PIN after unblock"
pass "PUK unblocks with a new PIN; a wrong PUK costs one PUK try"

pkcs15-tool --change-pin --auth-id 03 --pin 654321 --new-pin 24682468 >/dev/null 2>&1 || fail "change PIN"
pkcs15-tool --verify-pin --auth-id 04 --pin 000000 >/dev/null 2>&1 || true
"$FIXTURE" sim-restart "$TEST_DIR"
pkcs15-tool --verify-pin --auth-id 03 --pin 24682468 >/dev/null 2>&1 || fail "changed PIN after restart"
[ "$(tries_left 'NetKey PIN1')" = 2 ] || fail "PIN1 counter must persist across a restart"
pass "PIN change and retry counters persist across a simulator restart"
