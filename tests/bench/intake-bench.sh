#!/usr/bin/env bash
# Intake benchmark (not a test): accepted messages per second with Postfix's smtp-source against
# the gateway's intake and against a Postfix on the same machine with the same durability
# (Postfix fsyncs its queue files before 250), in the same run.
#   tests/bench/intake-bench.sh BUILD_DIR [sessions] [messages] [size-bytes]
set -euo pipefail
build=${1:?usage: intake-bench.sh BUILD_DIR [sessions] [messages] [bytes]}
sessions=${2:-8}; messages=${3:-2000}; size=${4:-5120}
T=$(mktemp -d /tmp/demail-bench-XXXXXX)
cleanup() { [ -n "${gw:-}" ] && kill "$gw" 2>/dev/null; postfix -c "$T/pf" stop >/dev/null 2>&1 || true;
            [ -n "${sink:-}" ] && kill "$sink" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

"$build/tests/smtp/intake_server" --spool "$T/spool" --port-file "$T/port" --relay 127.0.0.0/8 2>/dev/null &
gw=$!
for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
gport=$(cat "$T/port")

# Postfix: accepts for a relay domain and defers delivery (a dead next hop), so the number is the
# accept rate with queue-file fsync, like the gateway's.
mkdir -p "$T/pf/queue" "$T/pf/data"; cp /etc/postfix/master.cf "$T/pf/"
pport=$((30000 + RANDOM % 20000))
sed -i "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$pport inet n - n - - smtpd/" "$T/pf/master.cf"
cat >"$T/pf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $T/pf/queue
data_directory = $T/pf/data
shlib_directory = /usr/lib/postfix
myhostname = bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = behoerde.de-mail.de
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:9
defer_transports = smtp
maillog_file = $T/pf/maillog
maillog_file_prefixes = $T
CF
chmod 755 "$T"; chown postfix "$T/pf/data"
postconf -c "$T/pf" -F '*/*/chroot = n' >/dev/null
postfix -c "$T/pf" start >/dev/null 2>&1 || { echo "postfix did not start"; exit 1; }
sleep 1

run() {  # port
  local start end
  start=$(date +%s.%N)
  smtp-source -s "$sessions" -m "$messages" -l "$size" -f a@firma.de -t b@behoerde.de-mail.de \
    -M bench.test "127.0.0.1:$1" >/dev/null 2>&1
  end=$(date +%s.%N)
  awk -v m="$messages" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", m / (b - a) }'
}
g=$(run "$gport")
p=$(run "$pport")
queued_g=$(ls "$T/spool/queue" | wc -l)
echo "intake benchmark: $sessions sessions, $messages messages of $size bytes, plain SMTP, fsync before 250"
printf '%-22s %10s msg/s   (%s queued)\n' "demail-gateway intake" "$g" "$queued_g"
printf '%-22s %10s msg/s\n' "postfix 3.7 smtpd" "$p"
echo "ratio gateway/postfix: $(awk -v g="$g" -v p="$p" 'BEGIN { printf "%.2f", g / p }')"

# Memory does not grow with the message: DATA streams to the spool. Peak resident memory of the
# intake after a 1 KB message and after a 20 MB message.
hwm() { awk '/VmHWM/ {print $2 " " $3}' "/proc/$gw/status"; }
smtp-source -s 1 -m 1 -l 1024 -f a@firma.de -t b@behoerde.de-mail.de -M bench.test "127.0.0.1:$gport" >/dev/null 2>&1
small=$(hwm)
smtp-source -s 1 -m 1 -l 20000000 -f a@firma.de -t b@behoerde.de-mail.de -M bench.test "127.0.0.1:$gport" >/dev/null 2>&1
big=$(hwm)
echo "intake peak resident memory: after a 1 KB message $small, after a 20 MB message $big"
