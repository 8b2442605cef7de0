# Two (or more) appliances of one organisation on one machine, for the redundancy tests: each
# gateway with its own simulated card on its own private pcscd/vpcd reader, every card's
# certificate bound (by fingerprint) to the same De-Mail accounts at one simulated provider, one
# internal mail server (aiosmtpd) that all gateways deliver to, one accounts file they share.
# Source it (after `set -euo pipefail`), then:
#
#   ha_start [N]                      cards 1..N (default 2), the provider, the sink; no gateway yet
#   ha_start_gateway I [ini lines]    gateway I, its gateway.ini plus the extra lines (a later
#                                     "[section]" + "key = value" wins over the defaults)
#   ha_stop_gateway I                 SIGTERM, and wait for it (it drains)
#   ha_kill_gateway I                 SIGKILL, no goodbye (a crash, a power cut)
#   ha_card_pull I / ha_card_insert I gateway I's card out of / into its reader
#   ha_stop                           everything (trap it on EXIT)
#   ha_send I subject [swaks args]    one mail into gateway I's SMTP port
#   ha_gateway_log I                  path of gateway I's log
#   ha_mail_count subject             how many messages with this exact Subject the sink holds
#
# Knobs (set before ha_start): HA_PROVIDER_ARGS (e.g. "--inbox-lease 20s"), HA_SINK_ARGS (e.g.
# "--data-delay 0.5"), HA_CARD_ARGS. After ha_start_gateway I: HA_SMTP_PORT[I],
# HA_HEALTH_PORT[I], HA_GATEWAY_PID[I]; PROVIDER_CONTROL; HA (the test directory).
FIXTURE="${DEMAIL_SOURCE_DIR:?}/tests/fixture/pcsc-fixture.sh"
HA=$(mktemp -d "${TMPDIR:-/tmp}/demail-ha-XXXXXX")
GATEWAYD="$DEMAIL_BUILD_DIR/gateway/demail-gatewayd"
SIM="$DEMAIL_BUILD_DIR/sim/demail-sim"
HA_CARDS=0
HA_SIDE_PIDS=()       # provider, sink
declare -A HA_GATEWAY_PID=() HA_SMTP_PORT=() HA_HEALTH_PORT=()

ha_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ha_start() {  # [number of gateways, default 2]
  HA_CARDS=${1:-2}
  local P="$HA/pki" i
  mkdir -p "$P"
  (cd "$P" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ha-stack-ca 2>/dev/null &&
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=provider.test 2>/dev/null &&
    printf 'subjectAltName=DNS:provider.test,DNS:mail.firma.test,DNS:gateway.firma.test,IP:127.0.0.1\n' >ext.cnf &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null)
  # One card per gateway; each card's simulator makes its own CA, so the provider trusts them all.
  local certs="" sep=""
  : >"$P/client-ca.pem"
  for i in $(seq 1 "$HA_CARDS"); do
    # shellcheck disable=SC2086
    "$FIXTURE" start "$HA/gw$i/pcsc" -- --pin 123456 --serial "$(printf '89490000000000%06d' "$i")" \
      ${HA_CARD_ARGS:-} >/dev/null
    cat "$HA/gw$i/pcsc/card/ca.pem" >>"$P/client-ca.pem"
    local fp
    fp=$(openssl x509 -in "$HA/gw$i/pcsc/card/authentication.pem" -noout -fingerprint -sha256 | sed 's/^.*=//; s/://g' | tr A-F a-f)
    certs+="$sep{ \"fingerprint\": \"$fp\", \"accounts\": [ {\"address\": \"poststelle@firma.de-mail.de\", \"authLevel\": \"high\", \"retrieveConfirmation\": true} ] }"
    sep=", "
  done
  cat >"$P/accounts.json" <<JSON
{ "providerDomain": "sim-provider.de-mail.de", "domains": ["behoerde.de-mail.de"],
  "certificates": [ $certs ],
  "otherAccounts": ["amt@behoerde.de-mail.de"] }
JSON
  mkdir -p "$HA/provider"
  # shellcheck disable=SC2086
  "$SIM" provider --cert "$P/server.pem" --key "$P/server.key" --client-ca "$P/client-ca.pem" \
    --accounts "$P/accounts.json" --listen 127.0.0.1:0 --control 127.0.0.1:0 --state "$HA/provider" \
    ${HA_PROVIDER_ARGS:-} >"$HA/provider.log" 2>&1 &
  HA_SIDE_PIDS+=($!)
  for _ in $(seq 1 100); do [ -f "$HA/provider/sim.env" ] && break; sleep 0.1; done
  [ -f "$HA/provider/sim.env" ] || { echo "provider did not start:"; cat "$HA/provider.log"; return 1; }
  . "$HA/provider/sim.env"
  export PROVIDER_CONTROL="http://127.0.0.1:$CONTROL_PORT" HA_HTTPS_PORT=$HTTPS_PORT

  # shellcheck disable=SC2086
  /usr/bin/python3 "$DEMAIL_SOURCE_DIR/tests/tools/smtp_sink.py" --dump "$HA/mailbox" \
    --port-file "$HA/sink.port" --cert "$P/server.pem" --key "$P/server.key" ${HA_SINK_ARGS:-} >"$HA/sink.log" 2>&1 &
  HA_SIDE_PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$HA/sink.port" ] && break; sleep 0.05; done
  [ -s "$HA/sink.port" ] || { echo "sink did not start:"; cat "$HA/sink.log"; return 1; }

  echo 123456 >"$HA/card.pin"
  printf '@firma.de  poststelle@firma.de-mail.de\npoststelle@firma.de poststelle@firma.de-mail.de\n' >"$HA/accounts.map"
}

ha_gateway_log() { echo "$HA/gw$1/gatewayd.log"; }

ha_start_gateway() {  # I [extra gateway.ini lines]
  local i=$1; shift
  local dir="$HA/gw$i" P="$HA/pki"
  [ -n "${HA_SMTP_PORT[$i]:-}" ] || HA_SMTP_PORT[$i]=$(ha_free_port)
  [ -n "${HA_HEALTH_PORT[$i]:-}" ] || HA_HEALTH_PORT[$i]=$(ha_free_port)
  cat >"$dir/gateway.ini" <<INI
[smtp]
listen = 127.0.0.1:${HA_SMTP_PORT[$i]}
hostname = gateway$i.firma.test
tls_cert = $P/server.pem
tls_key = $P/server.key
require_tls = true
relay_networks = 127.0.0.1/32
[card]
reader = Virtual PCD 00 00
pkcs11_module = /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
key_uri = pkcs11:token=NetKey%20V3%20Card%20%28NetKey%20PIN2%29;id=%47;type=private
pin_file = $HA/card.pin
opensc_conf = $DEMAIL_SOURCE_DIR/deploy/opensc.conf
[provider]
profile = mentana
url = https://127.0.0.1:$HA_HTTPS_PORT
ca_file = $P/ca.pem
server_name = provider.test
accounts_file = $HA/accounts.map
poll_interval = 1s
[delivery]
relay = 127.0.0.1:$(cat "$HA/sink.port")
tls = required
ca_file = $P/ca.pem
postmaster = postmaster@firma.de
[queue]
dir = $dir/spool
retry_min = 2s
retry_max = 10s
[health]
listen = 127.0.0.1:${HA_HEALTH_PORT[$i]}
INI
  [ $# -eq 0 ] || printf '%s\n' "$@" >>"$dir/gateway.ini"
  local log="$dir/gatewayd.log" before=0
  [ -f "$log" ] && before=$(grep -c "event=ready" "$log" || true)
  # Its own pcscd (PCSCLITE_CSOCK_NAME from the fixture's env): its own reader and card.
  (. "$dir/pcsc/env"; exec "$GATEWAYD" --config "$dir/gateway.ini") >>"$log" 2>&1 &
  HA_GATEWAY_PID[$i]=$!
  for _ in $(seq 1 300); do
    [ "$(grep -c "event=ready" "$log" 2>/dev/null || true)" -gt "$before" ] && return 0
    kill -0 "${HA_GATEWAY_PID[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "gateway $i did not start:"; tail -30 "$log"; return 1
}

ha_stop_gateway() {  # I
  local pid=${HA_GATEWAY_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "HA_GATEWAY_PID[$1]"
}

ha_kill_gateway() {  # I
  local pid=${HA_GATEWAY_PID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "HA_GATEWAY_PID[$1]"
}

ha_card_pull() { "$FIXTURE" card-pull "$HA/gw$1/pcsc"; }      # I: gateway I's card out
ha_card_insert() { "$FIXTURE" card-insert "$HA/gw$1/pcsc"; }  # I: and back in

ha_stop() {
  local i p
  for i in "${!HA_GATEWAY_PID[@]}"; do ha_stop_gateway "$i"; done
  for p in "${HA_SIDE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${HA_SIDE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for i in $(seq 1 "$HA_CARDS"); do "$FIXTURE" stop "$HA/gw$i/pcsc" 2>/dev/null || true; done
  [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$HA"
}

ha_send() {  # I subject [extra swaks args]; HA_FROM: the sender (sachbearbeiter@firma.de)
  local i=$1 subject=$2; shift 2
  swaks --server "127.0.0.1:${HA_SMTP_PORT[$i]}" --tls --tls-ca-path "$HA/pki/ca.pem" \
    --from "${HA_FROM:-sachbearbeiter@firma.de}" --to amt@behoerde.de-mail.de \
    --header "Subject: $subject" --body "Sehr geehrte Damen und Herren, $subject." "$@"
}

ha_mail_count() {  # exact Subject
  grep -lxF -e "Subject: $1"$'\r' -e "Subject: $1" "$HA/mailbox"/*.eml 2>/dev/null | wc -l
}

ha_wait_for() {  # seconds command...
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -le "$deadline" ]; do "$@" && return 0; sleep 0.3; done
  return 1
}
