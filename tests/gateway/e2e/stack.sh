# The whole product on one machine, for the end-to-end tests and the demo: the simulated card on a
# private pcscd, the simulated provider (accounts bound to the card's certificate), the internal
# mail server (aiosmtpd, keeps what it receives) and demail-gatewayd between them.
# Source it; it defines stack_start / stack_stop and exports the ports and paths.
FIXTURE="${DEMAIL_SOURCE_DIR:?}/tests/fixture/pcsc-fixture.sh"
STACK=$(mktemp -d "${TMPDIR:-/tmp}/demail-stack-XXXXXX")
GATEWAYD="$DEMAIL_BUILD_DIR/gateway/demail-gatewayd"
DEMAILCTL="$DEMAIL_BUILD_DIR/gateway/demailctl"
SIM="$DEMAIL_BUILD_DIR/sim/demail-sim"
STACK_PIDS=()

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# STACK_CARD_ARGS / STACK_PROVIDER_ARGS: more options for demail-sim card / provider (benchmarks:
# "--sign-delay-ms 300", "--idle-timeout 2"). STACK_MORE_ACCOUNTS: more accounts bound to the card,
# JSON objects each after a comma (', {"address": "rechnung@firma.de-mail.de", ...}').
# STACK_SECOND_ACCOUNT=<name>: a second De-Mail
# account <name>@firma.de-mail.de bound to the card, mapped from the internal <name>@firma.de.
stack_start() {  # [extra gateway.ini lines]; STACK_CARD_PIN chooses the card's PIN (default 123456),
                 # STACK_PIN_FILE what the gateway's PIN file says (default: the card's PIN)
  # shellcheck disable=SC2086
  "$FIXTURE" start "$STACK/pcsc" -- --pin "${STACK_CARD_PIN:-123456}" ${STACK_CARD_ARGS:-} >/dev/null
  . "$STACK/pcsc/env"
  local P="$STACK/pki"; mkdir -p "$P"
  (cd "$P" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=stack-ca 2>/dev/null &&
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=provider.test 2>/dev/null &&
    printf 'subjectAltName=DNS:provider.test,DNS:mail.firma.test,DNS:gateway.firma.test,IP:127.0.0.1\n' >ext.cnf &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null)
  local subject
  subject=$(openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
  local second=""
  [ -z "${STACK_SECOND_ACCOUNT:-}" ] ||
    second=", {\"address\": \"$STACK_SECOND_ACCOUNT@firma.de-mail.de\", \"authLevel\": \"high\"}"
  cat >"$P/accounts.json" <<JSON
{ "providerDomain": "sim-provider.de-mail.de", "domains": ["behoerde.de-mail.de"],
  "certificates": [ { "subject": "$subject",
     "accounts": [ {"address": "poststelle@firma.de-mail.de", "authLevel": "high", "retrieveConfirmation": true}$second${STACK_MORE_ACCOUNTS:-} ] } ],
  "otherAccounts": ["amt@behoerde.de-mail.de"] }
JSON
  mkdir -p "$STACK/provider"
  "$SIM" provider --cert "$P/server.pem" --key "$P/server.key" --client-ca "$DEMAIL_CARD_CA" \
    --accounts "$P/accounts.json" --listen 127.0.0.1:0 --control 127.0.0.1:0 --state "$STACK/provider" \
    ${STACK_PROVIDER_ARGS:-} >"$STACK/provider.log" 2>&1 &
  STACK_PIDS+=($!)
  for _ in $(seq 1 100); do [ -f "$STACK/provider/sim.env" ] && break; sleep 0.1; done
  . "$STACK/provider/sim.env"
  export PROVIDER_CONTROL="http://127.0.0.1:$CONTROL_PORT"

  /usr/bin/python3 "$DEMAIL_SOURCE_DIR/tests/tools/smtp_sink.py" --dump "$STACK/mailbox" \
    --port-file "$STACK/sink.port" --cert "$P/server.pem" --key "$P/server.key" ${SINK_ARGS:-} >"$STACK/sink.log" 2>&1 &
  STACK_PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$STACK/sink.port" ] && break; sleep 0.05; done

  echo "${STACK_PIN_FILE:-${STACK_CARD_PIN:-123456}}" >"$STACK/card.pin"
  printf '@firma.de  poststelle@firma.de-mail.de\npoststelle@firma.de poststelle@firma.de-mail.de\n' >"$STACK/accounts.map"
  [ -z "${STACK_SECOND_ACCOUNT:-}" ] ||
    printf '%s@firma.de %s@firma.de-mail.de\n' "$STACK_SECOND_ACCOUNT" "$STACK_SECOND_ACCOUNT" >>"$STACK/accounts.map"
  export SMTP_PORT=$(free_port) HEALTH_PORT=$(free_port)
  cat >"$STACK/gateway.ini" <<INI
[smtp]
listen = 127.0.0.1:$SMTP_PORT
hostname = gateway.firma.test
tls_cert = $P/server.pem
tls_key = $P/server.key
require_tls = true
relay_networks = 127.0.0.1/32
[card]
reader = Virtual PCD 00 00
pkcs11_module = /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
key_uri = pkcs11:token=NetKey%20V3%20Card%20%28NetKey%20PIN2%29;id=%47;type=private
pin_file = $STACK/card.pin
opensc_conf = $DEMAIL_SOURCE_DIR/deploy/opensc.conf
[provider]
profile = mentana
url = https://127.0.0.1:$HTTPS_PORT
ca_file = $P/ca.pem
server_name = provider.test
accounts_file = $STACK/accounts.map
signature_ca = $SIGNING_CA
signature_crl = $SIGNING_CRL
poll_interval = 2s
[delivery]
relay = 127.0.0.1:$(cat "$STACK/sink.port")
tls = required
ca_file = $P/ca.pem
postmaster = postmaster@firma.de
[queue]
dir = $STACK/spool
retry_min = 2s
retry_max = 10s
[health]
listen = 127.0.0.1:$HEALTH_PORT
INI
  [ $# -eq 0 ] || printf '%s\n' "$@" >>"$STACK/gateway.ini"
  ${GATEWAYD_WRAPPER:-} "$GATEWAYD" --config "$STACK/gateway.ini" >>"$STACK/gatewayd.log" 2>&1 &
  GATEWAYD_PID=$!
  STACK_PIDS+=($GATEWAYD_PID)
  for _ in $(seq 1 100); do grep -q "event=ready" "$STACK/gatewayd.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "event=ready" "$STACK/gatewayd.log" || { echo "gatewayd did not start:"; cat "$STACK/gatewayd.log"; return 1; }
}

stack_stop() {
  for p in "${STACK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${STACK_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$FIXTURE" stop "$STACK/pcsc" 2>/dev/null || true
  [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$STACK"
}

send_mail() {  # subject [extra swaks args]
  local subject=$1; shift
  swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" \
    --from sachbearbeiter@firma.de --to amt@behoerde.de-mail.de \
    --header "Subject: $subject" --body "Sehr geehrte Damen und Herren, $subject." "$@"
}

# One SMTP session up to RCPT TO (then QUIT, nothing sent), repeated until the gateway answers 250:
# the provider has confirmed the recipient ([provider] address_check) and the gateway keeps it as
# confirmed, so a test may then take the provider or the card away and still hand in mail for it.
warm_recipient() {  # [address, default amt@behoerde.de-mail.de]
  local rcpt=${1:-amt@behoerde.de-mail.de}
  cat >"$STACK/warm_recipient.py" <<'PY'
import smtplib, ssl, sys
port, ca, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.ehlo()
    s.mail("sachbearbeiter@firma.de")
    sys.exit(0 if s.rcpt(rcpt)[0] == 250 else 1)
PY
  wait_for 60 /usr/bin/python3 "$STACK/warm_recipient.py" "$SMTP_PORT" "$STACK/pki/ca.pem" "$rcpt"
}

provider_state() { curl -s "$PROVIDER_CONTROL/control/state"; }
sub_json() { provider_state | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
mail_with() {  # files in the sink holding all the given fixed strings
  local files; files=$(ls "$STACK"/mailbox/*.eml 2>/dev/null || true)
  for s in "$@"; do [ -z "$files" ] || files=$(grep -lF -- "$s" $files || true); done
  echo $files
}
has_mail() { [ -n "$(mail_with "$@")" ]; }
# A test's verdicts (a script may define its own fail, e.g. to show another log).
fail() { echo "FAIL: $*" >&2; echo "--- gatewayd.log"; tail -30 "$STACK/gatewayd.log" >&2; exit 1; }
pass() { echo "ok: $*"; }
mailbox_count() { ls "$STACK/mailbox" 2>/dev/null | grep -c '\.eml$' || true; }
wait_for() {  # seconds command...
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -le "$deadline" ]; do "$@" && return 0; sleep 0.3; done
  return 1
}
