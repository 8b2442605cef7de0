#!/usr/bin/env bash
# --sign-delay-ms: the card answers each RSA private-key operation late, as a real TCOS card does
# (200-500 ms for RSA-2048), so that benchmarks can show what the gateway's card costs it
# (issue 19). The signatures are still right, every private-key operation is delayed (the trace
# says so once per signature) and nothing else is.
. "$(dirname "$0")/lib.sh"
fixture_start --sign-delay-ms 300

printf 'slow card\n' >"$TEST_DIR/data"
openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -pubkey -noout >"$TEST_DIR/pub.pem"
for i in 1 2; do
  pkcs11-tool --token-label "NetKey V3 Card (NetKey PIN2)" --login --pin 123456 --sign --id 47 \
    -m SHA256-RSA-PKCS -i "$TEST_DIR/data" -o "$TEST_DIR/sig" >/dev/null 2>&1 || fail "pkcs11-tool sign $i"
  openssl dgst -sha256 -verify "$TEST_DIR/pub.pem" -signature "$TEST_DIR/sig" "$TEST_DIR/data" | grep -q "Verified OK" ||
    fail "signature $i does not verify"
done
n=$(grep -c "^# private-key operation answered after 300 ms" "$TEST_DIR/apdu.log" || true)
[ "$n" = 2 ] || fail "expected 2 delayed private-key operations in the trace, found $n"
# Each delay line comes right before a PSO (2A) command in the trace, never before another one.
others=$(grep -A1 "^# private-key operation answered" "$TEST_DIR/apdu.log" | grep "^> " | grep -vc "^> 00 2A" || true)
[ "$others" = 0 ] || fail "a delay was put on an APDU other than PSO"
pass "--sign-delay-ms 300: two signatures verify, both PSOs delayed, no other APDU"

out=$("$DEMAIL_BUILD_DIR/sim/demail-sim" card --sign-delay-ms -5 2>&1 || true)
expect_contains "$out" "--sign-delay-ms takes 0-60000" "a negative delay"
pass "a negative --sign-delay-ms is refused"
