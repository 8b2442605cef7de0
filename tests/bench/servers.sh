# The two servers the intake benchmarks compare, on loopback, with the same durability: the
# message is on disk (fsync) before the 250. Source it; it defines bench_start_servers and
# bench_stop_servers (and field, to read a demail-smtp-load result) and exports GW_PORT, GW_PID,
# GW_SPOOL, GW_HEALTH, PF_PORT, PF_DIR, PF_MASTER.
#
# demail-gatewayd runs with no card in its reader: sending is paused, so only the intake works
# (the state a gateway is in while its card is away: mail is still accepted and queued).
# Postfix accepts for a relay domain whose next hop is deferred, so it only queues as well.
#   BENCH_DIR  scratch directory (required)   GATEWAYD  the daemon binary (required)
#   GATEWAYD_ENV  a prefix for the daemon's command line, e.g. "env GLIBC_TUNABLES=..."
#   GW_SMTP_EXTRA  more [smtp] lines for the gateway, e.g. "max_concurrent_data = 0" (before/after)
#   PF_PARK  defer (default): Postfix's queue manager takes each message and defers it (a defer
#            log entry, incoming -> active -> deferred); hold: every message goes straight to the
#            hold queue (no queue manager work after the 250, closer to the paused gateway)
# Each server can also be stopped and started alone (bench_stop_gateway, bench_start_gateway,
# bench_stop_postfix, bench_start_postfix), so that one measurement's leftovers (Postfix keeps
# idle smtpd processes for max_idle, 100 s) do not weigh on the next one.

# The value of KEY in a demail-smtp-load result line (key=value pairs).
field() {  # line key
  tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'
}

bench_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_start_servers() {
  bench_start_gateway && bench_start_postfix
}

bench_start_gateway() {
  local T=${BENCH_DIR:?} src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  [ -f "$T/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
    -subj /CN=bench.test 2>/dev/null
  chmod 644 "$T/key.pem"
  echo 000000 >"$T/pin"
  echo "@firma.de poststelle@firma.de-mail.de" >"$T/accounts"
  GW_PORT=$(bench_free_port); GW_HEALTH=$(bench_free_port); GW_SPOOL=$T/gw-spool
  cat >"$T/gateway.ini" <<INI
[smtp]
listen = 127.0.0.1:$GW_PORT
hostname = bench.test
tls_cert = $T/cert.pem
tls_key = $T/key.pem
require_tls = false
relay_networks = 127.0.0.0/8
max_message_size = 50M
max_connections = 2000
max_connections_per_client = 2000
${GW_SMTP_EXTRA:-}
[card]
reader = Bench Reader Without Card 00 00
pkcs11_module = /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
key_uri = pkcs11:token=NetKey%20V3%20Card%20%28NetKey%20PIN2%29;id=%47;type=private
pin_file = $T/pin
opensc_conf = $src/deploy/opensc.conf
[provider]
url = https://127.0.0.1:9/
ca_file = $T/cert.pem
accounts_file = $T/accounts
; the intake alone is measured: there is no provider to ask about recipients
address_check = no
[delivery]
relay = 127.0.0.1:9
[queue]
dir = $GW_SPOOL
[health]
listen = 127.0.0.1:$GW_HEALTH
INI
  # exec: GW_PID is the daemon itself (it re-execs itself in place), not a shell around it.
  # shellcheck disable=SC2086
  ${GATEWAYD_ENV:-} "${GATEWAYD:?}" --config "$T/gateway.ini" >"$T/gatewayd.log" 2>&1 &
  GW_PID=$!
  for _ in $(seq 1 400); do grep -q "event=ready" "$T/gatewayd.log" && break; sleep 0.05; done
  grep -q "event=ready" "$T/gatewayd.log" || { echo "gatewayd did not start:"; cat "$T/gatewayd.log"; return 1; }
  # With GATEWAYD_ENV="env ...", $! is env, which execs the daemon: the same pid.
  export GW_PORT GW_PID GW_SPOOL GW_HEALTH
}

bench_start_postfix() {
  local T=${BENCH_DIR:?}
  [ -f "$T/cert.pem" ] || { echo "bench_start_postfix: start the gateway first (certificate)"; return 1; }
  # Postfix: a private instance (its own queue and master), fsync on (the default), TLS offered
  # with the same certificate, enough smtpd processes for 128 and 1000 sessions. A new port each
  # time, so a restart never waits for the old listener.
  PF_DIR=$T/pf; PF_PORT=$(bench_free_port)
  mkdir -p "$PF_DIR/queue" "$PF_DIR/data"; cp /etc/postfix/master.cf "$PF_DIR/"
  sed -i "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$PF_PORT inet n - n - - smtpd/" "$PF_DIR/master.cf"
  cat >"$PF_DIR/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
shlib_directory = /usr/lib/postfix
myhostname = bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = behoerde.de-mail.de
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:9
defer_transports = smtp
$( [ "${PF_PARK:-defer}" = hold ] && echo "smtpd_data_restrictions = check_client_access static:HOLD" )
message_size_limit = 52428800
default_process_limit = 1200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_tls_security_level = may
smtpd_tls_cert_file = $T/cert.pem
smtpd_tls_key_file = $T/key.pem
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $T
CF
  chmod 755 "$T"; chown postfix "$PF_DIR/data"
  postconf -c "$PF_DIR" -F '*/*/chroot = n' >/dev/null
  postfix -c "$PF_DIR" start >/dev/null 2>&1 || { echo "postfix did not start"; return 1; }
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PF_PORT") 2>/dev/null && break; sleep 0.1
  done
  PF_MASTER=$(head -1 "$PF_DIR/queue/pid/master.pid" | tr -d ' ')
  export PF_PORT PF_DIR PF_MASTER
}

# Empties the gateway's queue the operator's way, `demailctl queue delete -` (as postsuper -d ALL
# for Postfix): the gateway keeps the emptied files for its next messages (spool free/).
bench_gw_delete_queue() {
  local ctl=${DEMAILCTL:-$(dirname "$GATEWAYD")/demailctl}
  find "$GW_SPOOL/queue" -type f -printf '%f\n' | "$ctl" --config "$BENCH_DIR/gateway.ini" queue delete - >/dev/null 2>&1 || true
}

# Empties both queues between points, so the disk does not fill and every point starts alike.
bench_clear_queues() {
  if [ -n "${GW_SPOOL:-}" ] && [ -n "$(ls -A "$GW_SPOOL/queue" 2>/dev/null)" ]; then bench_gw_delete_queue; fi
  if [ -n "${PF_MASTER:-}" ]; then
    # Postfix may still be moving the last messages from incoming to deferred: delete until empty.
    for _ in $(seq 1 50); do
      postsuper -c "$PF_DIR" -d ALL >/dev/null 2>&1 || true
      [ "$(bench_pf_queued)" = 0 ] && break
      sleep 0.1
    done
  fi
}

# How many messages each server holds in its queue (every 250 must be one of them).
bench_gw_queued() { find "$GW_SPOOL/queue" -type f | wc -l; }
bench_pf_queued() {  # unique names: a file the queue manager moves during the scan is seen twice
  find "$PF_DIR/queue/maildrop" "$PF_DIR/queue/incoming" "$PF_DIR/queue/active" \
       "$PF_DIR/queue/deferred" "$PF_DIR/queue/hold" -type f -printf '%f\n' 2>/dev/null | sort -u | wc -l
}

bench_stop_gateway() {
  if [ -n "${GW_PID:-}" ]; then kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null; fi
  GW_PID=
}

bench_stop_postfix() {
  if [ -n "${PF_DIR:-}" ] && [ -n "${PF_MASTER:-}" ]; then
    postfix -c "$PF_DIR" stop >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do kill -0 "$PF_MASTER" 2>/dev/null || break; sleep 0.1; done
  fi
  PF_MASTER=
}

bench_stop_servers() {
  bench_stop_gateway
  bench_stop_postfix
  true
}

# Every process of the private Postfix (master, smtpd, cleanup, qmgr, ...): their pids.
bench_postfix_pids() {
  [ -n "${PF_MASTER:-}" ] || return 0
  echo "$PF_MASTER"; pgrep -P "$PF_MASTER"
}
