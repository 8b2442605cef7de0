#!/usr/bin/env bash
# OpenSC picks its TCOS driver for the simulated card and reads the NetKey layout.
. "$(dirname "$0")/lib.sh"
fixture_start

out=$(opensc-tool -n -a 2>&1)
expect_contains "$out" "TCOS" "opensc-tool -n"
expect_contains "$out" "3b:bf:96:00:81:31:fe:5d:00:64:04:11:03:01:31:c0:73:f7:01:d0:00:90:00:7d" "ATR"
pass "driver TCOS, ATR from OpenSC's TCOS 3 table"

dump=$(pkcs15-tool -D 2>&1)
expect_contains "$dump" "PKCS#15 Card [NetKey V3 Card]" "layout"
expect_contains "$dump" "Serial number  : 8949017000000001234" "serial from EF.GDO"
for label in "PIN [PIN]" "PIN [PUK]" "PIN [NetKey PIN2]" "PIN [NetKey PIN1]" \
  "Private RSA Key [Authentifizierungs Schluessel]" "Private RSA Key [Signatur Schluessel]" \
  "Private RSA Key [Verschluesselungs Schluessel]"; do
  expect_contains "$dump" "$label" "pkcs15-tool -D"
done
[ "$(tries_left 'NetKey PIN2')" = 3 ] || fail "PIN2 tries"
[ "$(tries_left 'PUK')" = 10 ] || fail "PUK tries"
pass "pkcs15-tool -D shows 4 PINs (3/10 tries) and 3 keys"

# Status words for what the card does not have or do.
out=$(apdus 00:A4:08:04:02:2F:00:00 00:A4:08:0C:02:50:15 00:A4:08:04:02:50:31:00 00:CA:00:00:00 0C:A4:00:0C \
  00:A4:08:0C:02:2F:02 00:B0:00:40:10 00:A4:08:0C:04:DF:01:C5:00 00:2A:80:86:02:00:00 00:A4:07:00)
[ "$(grep -c 'SW1=0x6A, SW2=0x82' <<<"$out")" = 3 ] || fail "2F00/5015/5031 must answer 6A82: $out"
expect_contains "$out" "SW1=0x6D, SW2=0x00" "unknown INS"
expect_contains "$out" "SW1=0x6E, SW2=0x00" "unknown CLA"
expect_contains "$out" "SW1=0x6B, SW2=0x00" "offset beyond EF.GDO"
expect_contains "$out" "SW1=0x69, SW2=0x85" "PSO without MSE"
expect_contains "$out" "SW1=0x6A, SW2=0x86" "bad P1"
pass "status words 6A82 6D00 6E00 6B00 6985 6A86"
