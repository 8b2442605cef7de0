#!/bin/bash
# Provider probe against the simulator (must pass) and against `openssl s_server` with each
# setting outside the TLS profile (must be refused with exit 6 and the reason naming the
# mismatch). Usage: probe_matrix.sh PROBE_TOOL DEMAIL_SIM
set -u
PROBE=$1
SIM=$2
T=$(mktemp -d /tmp/h4-probe.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fail=0
cd "$T" || exit 1

# --- test PKI: CA with a server cert for provider.test and a client cert; a second CA; a cert
# with the wrong name; an expired cert (openssl ca with explicit dates works on OpenSSL 3.0).
q() { "$@" >/dev/null 2>&1 || { echo "setup failed: $*"; exit 1; }; }
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=Probe Test CA"
q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca2.key -out ca2.pem -days 30 -subj "/CN=Other CA"
issue() {  # name cn san ca
    q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
    q openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 30 \
        -extfile "$1.ext" -out "$1.pem"
}
issue server provider.test DNS:provider.test ca
issue client "probe client" DNS:client.test ca
issue otherca provider.test DNS:provider.test ca2
issue wrongname other.test DNS:other.test ca
mkdir -p db/new && : > db/index.txt && echo 1000 > db/serial
cat > ca.cnf <<CNF
[ ca ]
default_ca = d
[ d ]
database = $T/db/index.txt
new_certs_dir = $T/db/new
serial = $T/db/serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[ p ]
commonName = supplied
CNF
q openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "/CN=provider.test" \
    -addext "subjectAltName=DNS:provider.test"
q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate 20210101000000Z -notext

# start_server LOG ARGS...: s_server on a free port (port 0), sets PORT.
start_server() {
    local log=$1; shift
    openssl s_server -accept 127.0.0.1:0 -www -naccept 20 "$@" > "$log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do
        PORT=$(sed -n 's/^ACCEPT 127.0.0.1:\([0-9]*\)$/\1/p' "$log")
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "s_server did not start: $(cat "$log")"; exit 1
}

# expect_refused NAME EXPECTED-REASON-SUBSTRING S_SERVER-ARGS...
expect_refused() {
    local name=$1 want=$2; shift 2
    start_server "$name.log" -Verify 1 -CAfile ca.pem "$@"
    local out rc
    out=$("$PROBE" --url "https://127.0.0.1:$PORT" --ca ca.pem --server-name provider.test \
        --cert client.pem --key client.key)
    rc=$?
    if [ $rc -eq 6 ] && [[ "$out" == *"$want"* ]]; then
        echo "ok   $name: $out"
    else
        echo "FAIL $name: rc=$rc out='$out' expected '$want'"
        fail=1
    fi
    kill "${PIDS[-1]}" 2>/dev/null
}

expect_refused tls13_only "server negotiated TLSv1.3, profile requires TLSv1.2" \
    -tls1_3 -cert server.pem -key server.key
expect_refused aes128_gcm "server offers no ECDHE-RSA-AES256-SHA384" \
    -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -cert server.pem -key server.key
expect_refused p256_only "server does not support group P-521" \
    -tls1_2 -groups P-256 -cert server.pem -key server.key
expect_refused p384_only "server does not support group P-521" \
    -tls1_2 -groups P-384 -cert server.pem -key server.key
expect_refused other_ca "server certificate not issued by the configured CA" \
    -tls1_2 -cert otherca.pem -key otherca.key
expect_refused wrong_name "server certificate name mismatch: expected provider.test" \
    -tls1_2 -cert wrongname.pem -key wrongname.key
expect_refused expired "server certificate expired" \
    -tls1_2 -cert expired.pem -key expired.key

# Profile-conformant s_server: the handshake passes (the reason is about HTTP, not TLS), and
# s_server saw a PKCS#1 v1.5 client signature (the card cannot do PSS).
start_server good.log -Verify 1 -CAfile ca.pem -tls1_2 -cipher ECDHE-RSA-AES256-SHA384 \
    -groups P-521 -cert server.pem -key server.key
out=$("$PROBE" --url "https://127.0.0.1:$PORT" --ca ca.pem --server-name provider.test \
    --cert client.pem --key client.key)
if [[ "$out" == *"TLS"* && "$out" != *"malformed"* && "$out" != *"provider answered"* ]]; then
    echo "FAIL conformant s_server: TLS refused: $out"; fail=1
else
    echo "ok   conformant s_server passes TLS: $out"
fi

# The simulator: full success with accounts and domains.
"$SIM" provider --state "$T/sim" --listen 127.0.0.1:0 --control 127.0.0.1:0 > sim.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -f "$T/sim/sim.env" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$T/sim/sim.env" || { echo "simulator did not start: $(cat sim.log)"; exit 1; }
out=$("$PROBE" --url "$URL" --ca "$CA" --server-name "$SERVER_NAME" --cert "$CLIENT_CERT" \
    --key "$CLIENT_KEY")
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == *"protocol=TLSv1.2 cipher=ECDHE-RSA-AES256-SHA384 group=P-521"* ]] &&
   # domains: the provider's listed ones (behoerde, example) and the accounts' (firma, standort-b.firma)
   [[ "$out" == *"domains=4 accounts=3"* ]]; then
    echo "ok   simulator: $out"
else
    echo "FAIL simulator: rc=$rc out='$out'"; fail=1
fi
# Wrong server name against the simulator as well (Poco's own check must not rescue it).
out=$("$PROBE" --url "$URL" --ca "$CA" --server-name localhost.invalid --cert "$CLIENT_CERT" \
    --key "$CLIENT_KEY")
if [[ "$out" == *"server certificate name mismatch: expected localhost.invalid"* ]]; then
    echo "ok   simulator wrong name: $out"
else
    echo "FAIL simulator wrong name: $out"; fail=1
fi
# A client certificate from a CA the simulator does not trust: refused, and said so.
out=$("$PROBE" --url "$URL" --ca "$CA" --server-name "$SERVER_NAME" --cert client.pem \
    --key client.key)
rc=$?
if [ $rc -eq 6 ] && [[ "$out" == *"server refused the client certificate"* ]]; then
    echo "ok   simulator foreign client certificate: $out"
else
    echo "FAIL simulator foreign client certificate: rc=$rc $out"; fail=1
fi
exit $fail
