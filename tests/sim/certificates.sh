#!/usr/bin/env bash
# The three certificates, in the TeleSec OID-prefixed form (default) and as plain DER. Debian 12's
# OpenSC 0.23 skips plain-DER TCOS certificates (backported length check, fixed in 0.26.1): this
# test asserts what the installed OpenSC does, so it tells us when Debian ships the fix.
. "$(dirname "$0")/lib.sh"
fixture_start

list=$(pkcs15-tool --list-certificates 2>&1)
for label in "Telesec Signatur Zertifikat" "Telesec Verschluesselungs Zertifikat" \
  "Telesec Authentifizierungs Zertifikat"; do
  expect_contains "$list" "X.509 Certificate [$label]" "oid-prefixed list"
done
pkcs15-tool --read-certificate 47 2>/dev/null | openssl x509 -noout -fingerprint -sha256 >"$TEST_DIR/read.fp"
openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -noout -fingerprint -sha256 >"$TEST_DIR/file.fp"
cmp -s "$TEST_DIR/read.fp" "$TEST_DIR/file.fp" || fail "certificate 47 read through OpenSC differs"
openssl verify -CAfile "$DEMAIL_CARD_CA" "$DEMAIL_CARD_STATE/authentication.pem" >/dev/null ||
  fail "auth certificate does not chain to the card CA"
openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -noout -ext extendedKeyUsage | grep -q "TLS Web Client Authentication" ||
  fail "auth certificate lacks clientAuth"
pass "3 certificates listed; the auth certificate read by OpenSC is the one on file, chains, has clientAuth"

"$FIXTURE" sim-restart "$TEST_DIR" -- --cert-form der
raw=$(apdus 00:A4:08:0C:04:DF:01:C5:00 00:B0:00:00:0C)
head=$(awk '/Sending: 00 B0/ { f = 1 } f && /^30 82/ { print; exit }' <<<"$raw")
# Plain DER: 30 82 LL LL 30 82 (the TBSCertificate follows at once), no OID at byte 4.
[[ "$head" =~ ^30\ 82\ ..\ ..\ 30\ 82 ]] || fail "plain DER file starts with: $head"
list=$(pkcs15-tool --list-certificates 2>&1)
version=$(dpkg-query -W -f='${Version}' opensc)
if dpkg --compare-versions "$version" lt 0.26.1; then
  expect_not_contains "$list" "X.509 Certificate" "OpenSC $version with plain DER (Debian quirk)"
  pass "OpenSC $version skips plain-DER certificates, as documented (DESIGN.md 'Known trap')"
else
  expect_contains "$list" "Telesec Authentifizierungs Zertifikat" "OpenSC $version with plain DER"
  pass "OpenSC $version lists plain-DER certificates: the quirk is fixed"
fi
