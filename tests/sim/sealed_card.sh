#!/usr/bin/env bash
# A card delivered sealed (NullPIN): VERIFY answers 6985 until the PIN is set with
# CHANGE REFERENCE DATA 6x00 || new PIN, which works exactly once.
. "$(dirname "$0")/lib.sh"
fixture_start --sealed

out=$(apdus 00:A4:08:0C:04:DF:01:50:49 00:20:00:83)
expect_contains "$out" "SW1=0x69, SW2=0x85" "empty VERIFY on a sealed PIN"
out=$(pkcs15-tool --verify-pin --auth-id 03 --pin 123456 2>&1 || true)
expect_contains "$out" "Not allowed" "VERIFY on a sealed card"
pass "sealed PIN answers 6985; OpenSC reports 'Not allowed'"

init="00:24:00:83:0C:00:00:00:00:00:00:31:32:33:34:35:36"
out=$(apdus 00:A4:08:0C:04:DF:01:50:49 "$init")
[ "$(grep -c 'SW1=0x90, SW2=0x00' <<<"$out")" = 2 ] || fail "NullPIN initialisation: $out"
pkcs15-tool --verify-pin --auth-id 03 --pin 123456 >/dev/null 2>&1 || fail "PIN after initialisation"
out=$(apdus 00:A4:08:0C:04:DF:01:50:49 "$init")
expect_not_contains "$(tail -1 <<<"$out")" "SW1=0x90" "second initialisation"
pass "initialised once with 6x00||PIN; a second initialisation is refused"
