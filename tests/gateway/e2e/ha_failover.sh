#!/usr/bin/env bash
# Outbound failover through real components (also `make demo-ha`): one real Postfix 3.7 as the
# internal MTA, relaying De-Mail to two gateways as an ordered next-hop list (transport_maps,
# Postfix >= 3.5); each gateway with its own simulated card on its own pcscd/vpcd reader and
# `[smtp] when_paused = refuse`; one simulated provider with both cards' certificates bound to
# the same account; each gateway's path to it through a loopback TCP proxy the test cuts.
# HA_MESSAGES (500) messages go into Postfix at a steady pace while gateway 1 (the first hop) is
# in turn killed (-9), has its card pulled, and has its provider connection cut; each fault lasts
# HA_FAULT_SECONDS (12) and is undone before the next. Asserted: every message at the provider
# exactly once, none bounced, Postfix's queue empty. Printed: per fault the failover time (fault
# to the first message the peer accepted) and the failback time (undone to the first message
# gateway 1 accepted again).
set -euo pipefail
. "$(dirname "$0")/ha_outbound_stack.sh"
N=${HA_MESSAGES:-500}
HOLD=${HA_FAULT_SECONDS:-12}
pf_started=0
cleanup() {
  [ -z "${SENDER_PID:-}" ] || kill "$SENDER_PID" 2>/dev/null || true
  [ "$pf_started" = 1 ] && postfix -c "$HA/pf" stop >/dev/null 2>&1 || true
  ha_stop
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for i in 1 2; do echo "--- gateway $i" >&2; tail -15 "$HA/gw$i/gatewayd.log" >&2 || true; done
  echo "--- postfix" >&2; tail -15 "$HA/pf/maillog" >&2 || true
  exit 1
}
pass() { echo "ok: $*"; }

ha_start 2 "[smtp]" "when_paused = refuse"
echo "gateways: SMTP 127.0.0.1:${HA_SMTP_PORT[1]} (first hop) and 127.0.0.1:${HA_SMTP_PORT[2]}, each with its own card and pcscd"

# The internal MTA: a private Postfix (own config, queue, loopback port) with the two gateways as
# the next-hop list for the De-Mail domain, TLS required towards them; short retry times so that
# a message deferred in the middle of a fault is tried again within the test.
pf=$HA/pf; PF_PORT=$(ha_free_port)
mkdir -p "$pf/queue" "$pf/data"
cp /etc/postfix/master.cf "$pf/"
sed -i "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$PF_PORT inet n - n - - smtpd/" "$pf/master.cf"
printf 'behoerde.de-mail.de smtp:[127.0.0.1]:%s, [127.0.0.1]:%s\n' "${HA_SMTP_PORT[1]}" "${HA_SMTP_PORT[2]}" >"$pf/transport"
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
postfix -c "$pf" start >"$HA/pf-start.log" 2>&1 || fail "postfix did not start: $(cat "$HA/pf-start.log")"
pf_started=1
ha_wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PF_PORT" 2>/dev/null || fail "postfix does not listen"
pf_empty() { postqueue -c "$pf" -p 2>/dev/null | grep -q "Mail queue is empty"; }

accepted() { grep -c "event=accepted" "$HA/gw$1/gatewayd.log" 2>/dev/null || true; }
at_provider() { ha_provider_subjects | awk '$1 ~ /^ha-/ {n++} END {print n+0}'; }
now() { date +%s.%N; }
secs() { /usr/bin/python3 -c "print('%.1f' % ($2 - $1))"; }
# Seconds from now until gateway $1 accepts one more message than it had ($2 seconds at most).
until_accepts() {
  local i=$1 from t0 limit=$(( $(date +%s) + $2 ))
  from=$(accepted "$i"); t0=$(now)
  while [ "$(accepted "$i")" -le "$from" ]; do
    [ "$(date +%s)" -le "$limit" ] || { echo "none"; return 1; }
    sleep 0.1
  done
  secs "$t0" "$(now)"
}

# Warm both gateways' recipient check before any fault (a recipient the provider confirmed is
# kept while the provider cannot be asked).
cat >"$HA/send.py" <<'PY'
import smtplib, sys, time
port, first, count, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
start = time.monotonic()
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
for n in range(first, first + count):
    while time.monotonic() < start + (n - first) / rate:
        time.sleep(0.01)
    msg = ("From: sachbearbeiter@firma.de\r\nTo: amt@behoerde.de-mail.de\r\n"
           "Subject: ha-%04d\r\n\r\nSehr geehrte Damen und Herren, Nachricht %d.\r\n" % (n, n))
    for attempt in range(5):
        try:
            s.sendmail("sachbearbeiter@firma.de", ["amt@behoerde.de-mail.de"], msg)
            break
        except (smtplib.SMTPServerDisconnected, OSError):
            time.sleep(0.2)
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    else:
        sys.exit("postfix did not take message %d" % n)
s.quit()
PY
for i in 1 2; do
  swaks --server "127.0.0.1:${HA_SMTP_PORT[$i]}" --tls --tls-ca-path "$HA_CA" --from sachbearbeiter@firma.de \
    --to amt@behoerde.de-mail.de --header "Subject: warm-$i" --body warm >"$HA/warm-$i.log" 2>&1 ||
    fail "gateway $i did not accept the warm-up message"
done

# The messages, at a pace that spreads them over the three faults.
# (A margin of a minute for the restart of a killed gateway, which logs in to its card again.)
RATE=$(/usr/bin/python3 -c "print(round($N / (6 * $HOLD + 60), 2))")
t_start=$(now)
/usr/bin/python3 "$HA/send.py" "$PF_PORT" 1 "$N" "$RATE" >"$HA/send.log" 2>&1 &
SENDER_PID=$!
echo "sending $N messages into Postfix at $RATE/s"
until_accepts 1 60 >/dev/null || fail "gateway 1 (first hop) takes no mail"

declare -A FAILOVER FAILBACK
fault() {  # name inject undo
  local name=$1 inject=$2 undo=$3
  sleep 3
  kill -0 "$SENDER_PID" 2>/dev/null || fail "all messages were sent before the fault '$name': no traffic to fail over"
  $inject
  FAILOVER[$name]=$(until_accepts 2 60) || fail "$name: the peer took no mail"
  sleep "$HOLD"
  $undo
  FAILBACK[$name]=$(until_accepts 1 90) || fail "$name: gateway 1 took no mail after it was undone"
  printf '  %-14s failover %5ss   failback %5ss\n' "$name" "${FAILOVER[$name]}" "${FAILBACK[$name]}"
}
restart_gw1() { ha_gw_start 1; }
cut_gw1() { ha_cut 1; }
restore_gw1() { ha_restore 1; }
pull_gw1() { ha_card_pull 1; }
insert_gw1() { ha_card_insert 1; }
kill_gw1() { ha_gw_kill 1; }
echo "faults on gateway 1, each held ${HOLD}s (failover: fault -> first message the peer accepted;"
echo "failback: undone -> first message gateway 1 accepted again):"
fault "killed (-9)" kill_gw1 restart_gw1
fault "card pulled" pull_gw1 insert_gw1
fault "provider cut" cut_gw1 restore_gw1

wait "$SENDER_PID" || fail "the sender failed: $(cat "$HA/send.log")"
SENDER_PID=
all_there() { [ "$(at_provider)" -ge "$N" ]; }
ha_wait_for 180 all_there || fail "only $(at_provider) of $N at the provider"
ha_wait_for 60 pf_empty || fail "Postfix still holds mail: $(postqueue -c "$pf" -p | tail -3)"
sleep 3  # a late second submission would show now
subjects=$(ha_provider_subjects | awk '$1 ~ /^ha-/')
distinct=$(wc -l <<<"$subjects")
twice=$(awk '$2 > 1' <<<"$subjects" | wc -l)
[ "$distinct" = "$N" ] || fail "$distinct distinct messages at the provider, want $N"
[ "$twice" = 0 ] || fail "$twice messages at the provider more than once: $(awk '$2 > 1' <<<"$subjects" | head -5)"
bounced=$(grep -c "status=bounced" "$pf/maillog" || true)
[ "$bounced" = 0 ] || fail "$bounced bounced by Postfix"
total=$(secs "$t_start" "$(now)")
g1=$(grep -c "relay=127.0.0.1\[127.0.0.1\]:${HA_SMTP_PORT[1]},.*status=sent" "$pf/maillog" || true)
g2=$(grep -c "relay=127.0.0.1\[127.0.0.1\]:${HA_SMTP_PORT[2]},.*status=sent" "$pf/maillog" || true)
deferred=$(grep -c "status=deferred" "$pf/maillog" || true)
pass "$N messages through Postfix: $N at the provider, each exactly once, 0 bounced, in ${total}s"
echo "  relayed by gateway 1: $g1, by gateway 2: $g2; Postfix deferrals: $deferred"
