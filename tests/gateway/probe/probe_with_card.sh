#!/usr/bin/env bash
# demailctl provider probe with the client key on the simulated card (OpenSC through pcscd) and
# on a SoftHSM2 token, against the simulated provider; wrong PIN and missing card give their
# exit codes (3, 5) and the card counter drops by exactly one.
. "${DEMAIL_SOURCE_DIR:?}/tests/sim/lib.sh"
CTL="$DEMAIL_BUILD_DIR/gateway/demailctl"
SIM="$DEMAIL_BUILD_DIR/sim/demail-sim"
fixture_start
P="$TEST_DIR/pki"; mkdir -p "$P"
(cd "$P" && openssl req -x509 -newkey rsa:2048 -nodes -keyout srvca.key -out srvca.pem -days 2 -subj /CN=provider-ca 2>/dev/null &&
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=provider.test 2>/dev/null &&
  printf 'subjectAltName=DNS:provider.test,IP:127.0.0.1\n' >ext.cnf &&
  openssl x509 -req -in server.csr -CA srvca.pem -CAkey srvca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null)

# SoftHSM2 token with a client key whose certificate the test CA signs.
export SOFTHSM2_CONF="$TEST_DIR/softhsm2.conf"
mkdir -p "$TEST_DIR/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\n' "$TEST_DIR" >"$SOFTHSM2_CONF"
(cd "$P" && openssl req -newkey rsa:2048 -nodes -keyout hsm.key -out hsm.csr -subj "/O=Firma/CN=softhsm-gateway" 2>/dev/null &&
  printf 'extendedKeyUsage=clientAuth\n' >cli.cnf &&
  openssl x509 -req -in hsm.csr -CA srvca.pem -CAkey srvca.key -CAcreateserial -out hsm.pem -days 2 -extfile cli.cnf 2>/dev/null &&
  openssl pkcs8 -topk8 -nocrypt -in hsm.key -out hsm.p8)
softhsm2-util --init-token --free --label gw-token --so-pin 12345678 --pin 654321 >/dev/null
softhsm2-util --import "$P/hsm.p8" --token gw-token --label client --id 01 --pin 654321 >/dev/null

cat "$DEMAIL_CARD_CA" "$P/srvca.pem" >"$P/client-cas.pem"
card_subject=$(openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
cat >"$P/accounts.json" <<JSON
{ "providerDomain": "sim-provider.de-mail.de", "domains": ["behoerde.de-mail.de"],
  "certificates": [
    { "subject": "$card_subject", "accounts": [ {"address": "poststelle@firma.de-mail.de", "authLevel": "high"} ] },
    { "subject": "CN=softhsm-gateway,O=Firma", "accounts": [ {"address": "hsm@firma.de-mail.de", "authLevel": "normal"} ] } ] }
JSON
mkdir -p "$TEST_DIR/prov"
"$SIM" provider --cert "$P/server.pem" --key "$P/server.key" --client-ca "$P/client-cas.pem" \
  --accounts "$P/accounts.json" --listen 127.0.0.1:0 --control 127.0.0.1:0 --state "$TEST_DIR/prov" \
  >"$TEST_DIR/provider.log" 2>&1 &
prov=$!
trap 'kill $prov 2>/dev/null; wait $prov 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do [ -f "$TEST_DIR/prov/sim.env" ] && break; sleep 0.1; done
[ -f "$TEST_DIR/prov/sim.env" ] || fail "provider simulator did not start: $(cat "$TEST_DIR/provider.log")"
. "$TEST_DIR/prov/sim.env"

# [smtp] as the daemon would refuse it (require_tls without a certificate): the probe reads
# [card], [provider], [queue] and [certpromote] only (issue 18: a probe before [smtp] is done).
write_config() {  # file module uri pinfile [cert]
  cat >"$1" <<INI
[smtp]
require_tls = true
[card]
pkcs11_module = $2
key_uri = $3
pin_file = $4
[provider]
profile = mentana
url = https://127.0.0.1:$HTTPS_PORT
ca_file = $P/srvca.pem
server_name = provider.test
${5:+client_cert = $5}
[queue]
dir = $TEST_DIR/spool
INI
}
echo 123456 >"$TEST_DIR/card.pin"
write_config "$TEST_DIR/card.ini" /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so \
  "pkcs11:token=NetKey%20V3%20Card%20%28NetKey%20PIN2%29;id=%47;type=private" "$TEST_DIR/card.pin"
out=$("$CTL" --config "$TEST_DIR/card.ini" provider probe 2>&1) || fail "probe with the card: $out"
for want in "protocol=TLSv1.2" "cipher=ECDHE-RSA-AES256-SHA384" "group=P-521" "poststelle@firma.de-mail.de" "accounts=1"; do
  grep -q -- "$want" <<<"$out" || fail "probe output lacks $want: $out"
done
pass "probe with the card key through OpenSC and pcscd: $out"
set +e; out=$("$DEMAIL_BUILD_DIR/gateway/demail-gatewayd" --config "$TEST_DIR/card.ini" --check 2>&1); rc=$?; set -e
[ "$rc" = 2 ] && grep -q "\[smtp\] require_tls: true needs tls_cert" <<<"$out" ||
  fail "the daemon must refuse the [smtp] the probe ignores: rc $rc $out"
sed 's/^require_tls = true$/require_tsl = true/' "$TEST_DIR/card.ini" >"$TEST_DIR/typo.ini"
set +e; out=$("$CTL" --config "$TEST_DIR/typo.ini" provider probe 2>&1); rc=$?; set -e
[ "$rc" = 2 ] && [ "$out" = "demailctl: [smtp] require_tsl: unknown key (see docs/configuration.md)" ] ||
  fail "an unknown key in [smtp] must stop the probe too: rc $rc $out"
pass "the probe runs with an [smtp] the daemon refuses; an unknown key there still stops it (exit 2)"

echo 654321 >"$TEST_DIR/hsm.pin"
write_config "$TEST_DIR/hsm.ini" /usr/lib/softhsm/libsofthsm2.so "pkcs11:token=gw-token;id=%01;type=private" \
  "$TEST_DIR/hsm.pin" "$P/hsm.pem"
out=$("$CTL" --config "$TEST_DIR/hsm.ini" provider probe 2>&1) || fail "probe with SoftHSM2: $out"
grep -q "CN=softhsm-gateway" <<<"$out" || fail "probe with SoftHSM2: $out"
pass "probe with a SoftHSM2 key: $out"

echo 999999 >"$TEST_DIR/card.pin"
set +e; out=$("$CTL" --config "$TEST_DIR/card.ini" provider probe 2>&1); rc=$?; set -e
[ "$rc" = 3 ] || fail "wrong PIN: exit $rc, expected 3: $out"
[ "$(tries_left 'NetKey PIN2')" = 2 ] || fail "the wrong PIN must cost exactly one try"
if grep -q 999999 <<<"$out"; then fail "PIN in the output"; fi
"$FIXTURE" card-pull "$TEST_DIR"
echo 123456 >"$TEST_DIR/card.pin"
set +e; out=$("$CTL" --config "$TEST_DIR/card.ini" provider probe 2>&1); rc=$?; set -e
[ "$rc" = 5 ] || fail "no card: exit $rc, expected 5: $out"
pass "wrong PIN exits 3 after one try; no card exits 5"
