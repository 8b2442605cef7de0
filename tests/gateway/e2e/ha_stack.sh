# Two (or more) appliances of one organisation on one machine, for the redundancy tests and
# `make demo-ha`: each gateway with its own simulated card on its own private pcscd/vpcd reader,
# its own spool, and its own path to the one simulated provider through a loopback TCP proxy the
# test can cut (tests/tools/tcp_proxy.py); every card's certificate bound (by fingerprint) to the
# same De-Mail account at that provider; one internal mail server (aiosmtpd) that all gateways
# deliver to; one accounts file and one private-id key ([provider] private_id_key_file) they
# share; the provider's signing CA and CRL on every gateway. Optionally a real Postfix as the
# internal MTA with the gateways as its ordered next hops.
# Source it (after `set -euo pipefail`), then:
#
#   ha_start [N]                      cards 1..N (default 2), proxies, provider, sink; no gateway yet
#   ha_start_gateway I [ini lines]    gateway I: its gateway.ini (the defaults, then HA_GATEWAY_INI,
#                                     then these lines: a later "[section]" + "key = value" wins),
#                                     started, waited for (event=ready)
#   ha_stop_gateway I                 SIGTERM, and wait for it (it drains)
#   ha_kill_gateway I                 SIGKILL, no goodbye (a crash, a power cut)
#   ha_gateway_running I
#   ha_card_pull I / ha_card_insert I gateway I's card out of / into its reader
#   ha_cut I / ha_restore I           gateway I's TCP path to the provider: reset and refused / back
#   ha_postfix_start                  a private Postfix 3.7 on HA_PF_PORT relaying the De-Mail
#                                     domain to gateways 1..N in that order (TLS required); its
#                                     log is $HA/pf/maillog; ha_postfix_empty: its queue is empty
#   ha_stop                           everything (trap it on EXIT)
#   ha_send I subject [swaks args]    one mail into gateway I's SMTP port (HA_FROM: the sender)
#   ha_inject subject                 one inbound De-Mail for poststelle@firma.de-mail.de at the provider
#   ha_gateway_log I                  path of gateway I's log
#   ha_mail_count subject             how many messages with this exact Subject the sink holds
#   ha_provider_subjects              "<subject> <count>" of the normal messages sent to amt@behoerde
#   ha_wait_for seconds command...
#
# Knobs (set before ha_start): HA_PROVIDER_ARGS (e.g. "--inbox-lease 20s"), HA_SINK_ARGS (e.g.
# "--data-delay 0.5"), HA_CARD_ARGS; HA_GATEWAY_INI (lines for every gateway, e.g.
# "[smtp] when_paused = refuse" as two lines). After ha_start: HA (the test directory), HA_CA (the
# CA of the SMTP, relay and provider server certificates), HA_SMTP_PORT[I], HA_HEALTH_PORT[I],
# PROVIDER_CONTROL, DEMAILCTL; after ha_start_gateway I: HA_GATEWAY_PID[I].
FIXTURE="${DEMAIL_SOURCE_DIR:?}/tests/fixture/pcsc-fixture.sh"
HA=$(mktemp -d "${TMPDIR:-/tmp}/demail-ha-XXXXXX")
GATEWAYD="$DEMAIL_BUILD_DIR/gateway/demail-gatewayd"
DEMAILCTL="$DEMAIL_BUILD_DIR/gateway/demailctl"
SIM="$DEMAIL_BUILD_DIR/sim/demail-sim"
HA_CARDS=0
HA_SIDE_PIDS=()       # provider, sink, proxies
HA_PF_STARTED=0
declare -A HA_GATEWAY_PID=() HA_SMTP_PORT=() HA_HEALTH_PORT=() HA_PROXY_PID=()

ha_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ha_wait_for() {  # seconds command...
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -le "$deadline" ]; do "$@" && return 0; sleep 0.3; done
  return 1
}

ha_start() {  # [number of gateways, default 2]
  HA_CARDS=${1:-2}
  local P="$HA/pki" i
  mkdir -p "$P"
  (cd "$P" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ha-stack-ca 2>/dev/null &&
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=provider.test 2>/dev/null &&
    printf 'subjectAltName=DNS:provider.test,DNS:mail.firma.test,DNS:gateway.firma.test,IP:127.0.0.1\n' >ext.cnf &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null)
  HA_CA="$P/ca.pem"
  # One card per gateway (its own serial); each card's simulator makes its own CA, so the
  # provider trusts them all.
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
  ha_wait_for 30 test -f "$HA/provider/sim.env" || { echo "provider did not start:"; cat "$HA/provider.log"; return 1; }
  . "$HA/provider/sim.env"
  export PROVIDER_CONTROL="http://127.0.0.1:$CONTROL_PORT" HA_HTTPS_PORT=$HTTPS_PORT

  # shellcheck disable=SC2086
  /usr/bin/python3 "$DEMAIL_SOURCE_DIR/tests/tools/smtp_sink.py" --dump "$HA/mailbox" \
    --port-file "$HA/sink.port" --cert "$P/server.pem" --key "$P/server.key" ${HA_SINK_ARGS:-} >"$HA/sink.log" 2>&1 &
  HA_SIDE_PIDS+=($!)
  ha_wait_for 30 test -s "$HA/sink.port" || { echo "sink did not start:"; cat "$HA/sink.log"; return 1; }

  # Each gateway's own path to the provider, which the test can cut (ha_cut / ha_restore).
  for i in $(seq 1 "$HA_CARDS"); do
    /usr/bin/python3 "$DEMAIL_SOURCE_DIR/tests/tools/tcp_proxy.py" --target "127.0.0.1:$HTTPS_PORT" \
      --port-file "$HA/gw$i/proxy.port" >"$HA/gw$i/proxy.log" 2>&1 &
    HA_PROXY_PID[$i]=$!
    HA_SIDE_PIDS+=($!)
    ha_wait_for 30 test -s "$HA/gw$i/proxy.port" || { echo "proxy $i did not start:"; cat "$HA/gw$i/proxy.log"; return 1; }
    HA_SMTP_PORT[$i]=$(ha_free_port)
    HA_HEALTH_PORT[$i]=$(ha_free_port)
  done

  echo 123456 >"$HA/card.pin"
  printf '@firma.de  poststelle@firma.de-mail.de\npoststelle@firma.de poststelle@firma.de-mail.de\n' >"$HA/accounts.map"
  # The key every gateway seals the sender into the private-id with (a confirmation fetched by a
  # peer still finds its sender): copied once, like the accounts file.
  openssl rand -hex 32 >"$HA/private-id.key"
}

ha_gateway_log() { echo "$HA/gw$1/gatewayd.log"; }

ha_start_gateway() {  # I [extra gateway.ini lines]
  local i=$1; shift
  local dir="$HA/gw$i" P="$HA/pki"
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
url = https://127.0.0.1:$(cat "$dir/proxy.port")
ca_file = $P/ca.pem
server_name = provider.test
accounts_file = $HA/accounts.map
private_id_key_file = $HA/private-id.key
signature_ca = $SIGNING_CA
signature_crl = $SIGNING_CRL
poll_interval = 1s
[delivery]
relay = 127.0.0.1:$(cat "$HA/sink.port")
tls = required
ca_file = $P/ca.pem
postmaster = postmaster@firma.de
[queue]
dir = $dir/spool
retry_min = 2s
retry_max = 4s
[health]
listen = 127.0.0.1:${HA_HEALTH_PORT[$i]}
INI
  [ -z "${HA_GATEWAY_INI:-}" ] || printf '%s\n' "$HA_GATEWAY_INI" >>"$dir/gateway.ini"
  [ $# -eq 0 ] || printf '%s\n' "$@" >>"$dir/gateway.ini"
  local log="$dir/gatewayd.log" before=0
  [ -f "$log" ] && before=$(grep -c "event=ready" "$log" || true)
  # Its own pcscd (PCSCLITE_CSOCK_NAME from the fixture's env): its own reader and card.
  (. "$dir/pcsc/env"; exec "$GATEWAYD" --config "$dir/gateway.ini") >>"$log" 2>&1 &
  HA_GATEWAY_PID[$i]=$!
  for _ in $(seq 1 600); do
    [ "$(grep -c "event=ready" "$log" 2>/dev/null || true)" -gt "$before" ] && return 0
    kill -0 "${HA_GATEWAY_PID[$i]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "gateway $i did not start:"; tail -30 "$log"; return 1
}

ha_gateway_running() { [ -n "${HA_GATEWAY_PID[$1]:-}" ] && kill -0 "${HA_GATEWAY_PID[$1]}" 2>/dev/null; }

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

ha_card_pull() { "$FIXTURE" card-pull "$HA/gw$1/pcsc" >/dev/null; }      # I: gateway I's card out
ha_card_insert() { "$FIXTURE" card-insert "$HA/gw$1/pcsc" >/dev/null; }  # I: and back in
ha_cut() { kill -USR1 "${HA_PROXY_PID[$1]}"; }      # I: gateway I's provider path reset and refused
ha_restore() { kill -USR2 "${HA_PROXY_PID[$1]}"; }  # I: and back (same port)

# The internal MTA: a private Postfix (own config, queue, loopback port) with the gateways as the
# ordered next-hop list for the De-Mail domain (transport_maps, Postfix >= 3.5), TLS required
# towards them; short retry times so that a message deferred in the middle of a fault is tried
# again within the test.
ha_postfix_start() {
  local pf=$HA/pf i hops="" sep=""
  HA_PF_PORT=$(ha_free_port)
  mkdir -p "$pf/queue" "$pf/data"
  cp /etc/postfix/master.cf "$pf/"
  sed -i "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$HA_PF_PORT inet n - n - - smtpd/" "$pf/master.cf"
  for i in $(seq 1 "$HA_CARDS"); do hops+="${sep}[127.0.0.1]:${HA_SMTP_PORT[$i]}"; sep=", "; done
  printf 'behoerde.de-mail.de smtp:%s\n' "$hops" >"$pf/transport"
  cat >"$pf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
shlib_directory = /usr/lib/postfix
myhostname = relay.firma.test
mydomain = firma.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
transport_maps = texthash:$pf/transport
smtp_tls_security_level = encrypt
smtp_tls_CAfile = $HA_CA
minimal_backoff_time = 2s
maximal_backoff_time = 4s
queue_run_delay = 2s
smtp_connect_timeout = 5s
maillog_file = $pf/maillog
maillog_file_prefixes = $HA
CF
  chmod 755 "$HA"; chown postfix "$pf/data"
  postconf -c "$pf" -F '*/*/chroot = n' >/dev/null
  postfix -c "$pf" start >"$HA/pf-start.log" 2>&1 || { echo "postfix did not start: $(cat "$HA/pf-start.log")"; return 1; }
  HA_PF_STARTED=1
  ha_wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HA_PF_PORT" 2>/dev/null || { echo "postfix does not listen"; return 1; }
}
ha_postfix_empty() { postqueue -c "$HA/pf" -p 2>/dev/null | grep -q "Mail queue is empty"; }

ha_stop() {
  local i p
  [ "$HA_PF_STARTED" = 0 ] || postfix -c "$HA/pf" stop >/dev/null 2>&1 || true
  for i in "${!HA_GATEWAY_PID[@]}"; do ha_stop_gateway "$i"; done
  for p in "${HA_SIDE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${HA_SIDE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for i in $(seq 1 "$HA_CARDS"); do "$FIXTURE" stop "$HA/gw$i/pcsc" 2>/dev/null || true; done
  [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$HA"
}

ha_send() {  # I subject [extra swaks args]; HA_FROM: the sender (sachbearbeiter@firma.de)
  local i=$1 subject=$2; shift 2
  swaks --server "127.0.0.1:${HA_SMTP_PORT[$i]}" --tls --tls-ca-path "$HA_CA" \
    --from "${HA_FROM:-sachbearbeiter@firma.de}" --to amt@behoerde.de-mail.de \
    --header "Subject: $subject" --body "Sehr geehrte Damen und Herren, $subject." "$@"
}

ha_inject() {  # subject: a De-Mail from amt@behoerde.de-mail.de into the account's inbox
  printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: %s\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\nBescheid %s\r\n' "$1" "$1" |
    curl -sf -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" >/dev/null
}

ha_mail_count() {  # exact Subject
  grep -lxF -e "Subject: $1"$'\r' -e "Subject: $1" "$HA/mailbox"/*.eml 2>/dev/null | wc -l
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
