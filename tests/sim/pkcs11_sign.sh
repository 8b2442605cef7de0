#!/usr/bin/env bash
# A signature made through OpenSC's PKCS#11 module with the authentication key (id 47, PIN 0x83)
# verifies with the certificate's public key; the key refuses to sign before login.
. "$(dirname "$0")/lib.sh"
fixture_start

printf 'De-Mail gateway signing test\n' >"$TEST_DIR/data"
openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -pubkey -noout >"$TEST_DIR/pub.pem"
for mech in SHA256-RSA-PKCS SHA384-RSA-PKCS; do
  pkcs11-tool --token-label "NetKey V3 Card (NetKey PIN2)" --login --pin 123456 --sign --id 47 \
    -m "$mech" -i "$TEST_DIR/data" -o "$TEST_DIR/sig" >/dev/null 2>&1 || fail "pkcs11-tool sign $mech"
  digest=$([ "$mech" = SHA256-RSA-PKCS ] && echo -sha256 || echo -sha384)
  openssl dgst "$digest" -verify "$TEST_DIR/pub.pem" -signature "$TEST_DIR/sig" "$TEST_DIR/data" | grep -q "Verified OK" ||
    fail "signature ($mech) does not verify"
done
pass "SHA256/SHA384 RSA PKCS#1 signatures through OpenSC verify with openssl"

# The card itself refuses: MSE for key 0x82 then PSO without VERIFY of PIN 0x83 -> 6982. The
# login above is still valid (a card keeps its security status until it is reset, as pcscd leaves
# it between connections), so power-cycle it first.
"$FIXTURE" card-pull "$TEST_DIR"
"$FIXTURE" card-insert "$TEST_DIR"
block="00:01:$(printf 'FF:%.0s' $(seq 1 203))00:$(printf '11:%.0s' $(seq 1 50) | sed 's/:$//')"
out=$(apdus 00:A4:04:0C:07:D2:76:00:00:03:01:02 00:22:41:B8:03:84:01:82 "00:2A:80:86:00:01:01:02:${block}:01:00")
expect_contains "$out" "SW1=0x69, SW2=0x82" "PSO before VERIFY"
pass "PSO without the PIN is refused with 6982"
grep -q "PIN data not logged" "$TEST_DIR/apdu.log" || fail "no PIN command in the trace"
if grep -q "31 32 33 34 35 36" "$TEST_DIR/apdu.log"; then fail "the PIN appears in the APDU trace"; fi
pass "the APDU trace never contains the PIN"
