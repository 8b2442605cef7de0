# Two (or more) gateways of one organisation on one machine, for the redundancy tests and
# `make demo-ha`: each gateway with its own simulated card on its own private pcscd/vpcd reader,
# its own spool, and its own path to the one simulated provider through a loopback TCP proxy the
# test can cut (tests/tools/tcp_proxy.py); both cards' certificates are bound to the same account
# at the provider. One internal mail server (aiosmtpd) receives what the gateways deliver.
# Source it; it defines ha_start / ha_stop and the fault helpers below. Generic on purpose (the
# inbound half has its own two-gateway stack; the two can become one file).
#
#   ha_start N [extra gateway.ini lines for every gateway]
#   ha_gw_start I | ha_gw_kill I (kill -9) | ha_gw_stop I (SIGTERM) | ha_gw_running I
#   ha_card_pull I | ha_card_insert I        the card of gateway I (pcsc-fixture.sh)
#   ha_cut I | ha_restore I                  gateway I's TCP path to the provider
#   ha_stop
# After ha_start: HA (the directory), HA_SMTP_PORT[I], HA_HEALTH_PORT[I], PROVIDER_CONTROL,
# HA_CA (the CA of the SMTP and provider server certificates), gateway I's log HA/gwI/gatewayd.log.
FIXTURE="${DEMAIL_SOURCE_DIR:?}/tests/fixture/pcsc-fixture.sh"
HA=$(mktemp -d "${TMPDIR:-/tmp}/demail-ha-XXXXXX")
GATEWAYD="$DEMAIL_BUILD_DIR/gateway/demail-gatewayd"
DEMAILCTL="$DEMAIL_BUILD_DIR/gateway/demailctl"
SIM="$DEMAIL_BUILD_DIR/sim/demail-sim"
HA_PIDS=()          # provider, sink, proxies
declare -A HA_GW_PID HA_PROXY_PID HA_SMTP_PORT HA_HEALTH_PORT
HA_N=0

ha_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ha_wait_for() {  # seconds command...
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -le "$deadline" ]; do "$@" && return 0; sleep 0.2; done
  return 1
}

ha_start() {  # N [extra gateway.ini lines]
  HA_N=$1; shift
  local P="$HA/pki" i subject subjects=() cas=()
  mkdir -p "$P"
  (cd "$P" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ha-ca 2>/dev/null &&
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=provider.test 2>/dev/null &&
    printf 'subjectAltName=DNS:provider.test,DNS:gateway.firma.test,IP:127.0.0.1\n' >ext.cnf &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null)
  HA_CA="$P/ca.pem"
  for i in $(seq 1 "$HA_N"); do
    "$FIXTURE" start "$HA/pcsc$i" -- --pin 123456 >/dev/null
    subject=$(openssl x509 -in "$HA/pcsc$i/card/authentication.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
    subjects+=("$subject")
    cas+=("$HA/pcsc$i/card/ca.pem")
  done
  cat "${cas[@]}" >"$P/client-cas.pem"
  # Every card's certificate bound to the same account (two appliances, one organisation).
  /usr/bin/python3 - "$P/accounts.json" "${subjects[@]}" <<'PY'
import json, sys
subjects = list(dict.fromkeys(sys.argv[2:]))
acc = [{"address": "poststelle@firma.de-mail.de", "authLevel": "high", "retrieveConfirmation": True}]
json.dump({"providerDomain": "sim-provider.de-mail.de", "domains": ["behoerde.de-mail.de"],
           "certificates": [{"subject": s, "accounts": acc} for s in subjects],
           "otherAccounts": ["amt@behoerde.de-mail.de"]}, open(sys.argv[1], "w"))
PY
  mkdir -p "$HA/provider"
  "$SIM" provider --cert "$P/server.pem" --key "$P/server.key" --client-ca "$P/client-cas.pem" \
    --accounts "$P/accounts.json" --listen 127.0.0.1:0 --control 127.0.0.1:0 --state "$HA/provider" \
    ${HA_PROVIDER_ARGS:-} >"$HA/provider.log" 2>&1 &
  HA_PIDS+=($!)
  ha_wait_for 20 test -f "$HA/provider/sim.env" || { echo "provider did not start"; cat "$HA/provider.log"; return 1; }
  . "$HA/provider/sim.env"
  export PROVIDER_CONTROL="http://127.0.0.1:$CONTROL_PORT"

  /usr/bin/python3 "$DEMAIL_SOURCE_DIR/tests/tools/smtp_sink.py" --dump "$HA/mailbox" \
    --port-file "$HA/sink.port" --cert "$P/server.pem" --key "$P/server.key" >"$HA/sink.log" 2>&1 &
  HA_PIDS+=($!)
  ha_wait_for 20 test -s "$HA/sink.port"

  printf '@firma.de  poststelle@firma.de-mail.de\n' >"$HA/accounts.map"
  for i in $(seq 1 "$HA_N"); do
    mkdir -p "$HA/gw$i"
    /usr/bin/python3 "$DEMAIL_SOURCE_DIR/tests/tools/tcp_proxy.py" --target "127.0.0.1:$HTTPS_PORT" \
      --port-file "$HA/gw$i/proxy.port" >"$HA/gw$i/proxy.log" 2>&1 &
    HA_PROXY_PID[$i]=$!
    HA_PIDS+=($!)
    ha_wait_for 20 test -s "$HA/gw$i/proxy.port"
    echo 123456 >"$HA/gw$i/card.pin"
    HA_SMTP_PORT[$i]=$(ha_free_port)
    HA_HEALTH_PORT[$i]=$(ha_free_port)
    cat >"$HA/gw$i/gateway.ini" <<INI
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
pin_file = $HA/gw$i/card.pin
opensc_conf = $DEMAIL_SOURCE_DIR/deploy/opensc.conf
[provider]
profile = mentana
url = https://127.0.0.1:$(cat "$HA/gw$i/proxy.port")
ca_file = $P/ca.pem
server_name = provider.test
accounts_file = $HA/accounts.map
poll_interval = 2s
[delivery]
relay = 127.0.0.1:$(cat "$HA/sink.port")
tls = required
ca_file = $P/ca.pem
postmaster = postmaster@firma.de
[queue]
dir = $HA/gw$i/spool
retry_min = 2s
retry_max = 4s
[health]
listen = 127.0.0.1:${HA_HEALTH_PORT[$i]}
INI
    [ $# -eq 0 ] || printf '%s\n' "$@" >>"$HA/gw$i/gateway.ini"
    ha_gw_start "$i" || return 1
  done
}

ha_gw_running() { [ -n "${HA_GW_PID[$1]:-}" ] && kill -0 "${HA_GW_PID[$1]}" 2>/dev/null; }

ha_gw_start() {  # I: starts gateway I on its own pcscd and waits for event=ready
  local i=$1 log="$HA/gw$1/gatewayd.log" before
  before=$(grep -c "event=ready" "$log" 2>/dev/null || true)
  (. "$HA/pcsc$i/env" && exec "$GATEWAYD" --config "$HA/gw$i/gateway.ini") >>"$log" 2>&1 &
  HA_GW_PID[$i]=$!
  ha_wait_for 30 bash -c "[ \$(grep -c event=ready '$log') -gt ${before:-0} ]" ||
    { echo "gateway $i did not start:"; tail -20 "$log"; return 1; }
}

ha_gw_kill() { kill -9 "${HA_GW_PID[$1]}" 2>/dev/null || true; wait "${HA_GW_PID[$1]}" 2>/dev/null || true; HA_GW_PID[$1]=; }
ha_gw_stop() { kill "${HA_GW_PID[$1]}" 2>/dev/null || true; wait "${HA_GW_PID[$1]}" 2>/dev/null || true; HA_GW_PID[$1]=; }
ha_card_pull() { "$FIXTURE" card-pull "$HA/pcsc$1" >/dev/null; }
ha_card_insert() { "$FIXTURE" card-insert "$HA/pcsc$1" >/dev/null; }
ha_cut() { kill -USR1 "${HA_PROXY_PID[$1]}"; }
ha_restore() { kill -USR2 "${HA_PROXY_PID[$1]}"; }

ha_stop() {
  local i p
  for i in $(seq 1 "$HA_N"); do ha_gw_stop "$i"; done
  for p in "${HA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${HA_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for i in $(seq 1 "$HA_N"); do "$FIXTURE" stop "$HA/pcsc$i" 2>/dev/null || true; done
  [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$HA"
}

# Normal messages at the provider for amt@behoerde.de-mail.de, by subject: "<subject> <count>"
# lines, for exactly-once checks.
ha_provider_subjects() {
  curl -s "$PROVIDER_CONTROL/control/state" | /usr/bin/python3 -c '
import collections, json, sys
c = collections.Counter(m["subject"] for m in json.load(sys.stdin)["messages"]
                        if m["messageType"] == "normal" and m["account"] == "amt@behoerde.de-mail.de")
for s, n in sorted(c.items()):
    print(s, n)'
}
