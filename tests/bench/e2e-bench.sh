#!/usr/bin/env bash
# End-to-end benchmark (not a test): messages per second from the SMTP intake to the simulated
# provider, with the client key on the simulated card through pcscd and OpenSC, and the card
# signatures it cost, for each number of provider connections ([provider] connections).
# Then the slow card: the card simulator answers each signature SIGN_DELAY_MS (300) late, as a real
# TCOS card does (200-500 ms for RSA-2048), and the provider closes connections idle for
# IDLE_TIMEOUT s (2); two bursts of messages with a pause longer than that between them: the
# rate at the provider in each, and the card signatures each cost (steady state: the second).
#   tests/bench/e2e-bench.sh BUILD_DIR [messages] [sessions] ["connection counts", "-": none]
# Environment: SLOW_CARD (1; 0 skips it), SIGN_DELAY_MS (300), IDLE_TIMEOUT (2), SLOW_CONNECTIONS (4).
set -euo pipefail
export DEMAIL_BUILD_DIR=$(cd "${1:?usage: e2e-bench.sh BUILD_DIR [messages] [sessions] [connections...]}" && pwd)
export DEMAIL_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
messages=${2:-1000}; sessions=${3:-8}; connection_counts=${4:-1 4 16}

SLOW_CARD=${SLOW_CARD:-1}; SIGN_DELAY_MS=${SIGN_DELAY_MS:-300}; IDLE_TIMEOUT=${IDLE_TIMEOUT:-2}
SLOW_CONNECTIONS=${SLOW_CONNECTIONS:-4}

# Sends messages FIRST..FIRST+COUNT-1 over SESSIONS STARTTLS sessions (4 KB each).
send_burst() {  # port ca first count sessions
  /usr/bin/python3 - "$@" <<'PY'
import smtplib, ssl, sys, threading
port, ca, first, count, sessions = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
def worker(k):
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.starttls(context=ctx)
        for i in range(first + k, first + count, sessions):
            s.sendmail("sachbearbeiter@firma.de", ["amt@behoerde.de-mail.de"],
                       "Subject: bench %d\r\nFrom: sachbearbeiter@firma.de\r\n\r\n%s" % (i, ("x" * 78 + "\r\n") * 50))
ts = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
}

one_run() {  # connections
  . "$DEMAIL_SOURCE_DIR/tests/gateway/e2e/stack.sh"
  trap stack_stop RETURN
  stack_start "[provider]" "connections = $1" >/dev/null
  submitted() { provider_state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["submissions"])'; }
  local start accepted done_at sigs cpu0 cpu1
  cpu0=$(awk '{print $14 + $15}' "/proc/$GATEWAYD_PID/stat")
  start=$(date +%s.%N)
  send_burst "$SMTP_PORT" "$STACK/pki/ca.pem" 0 "$messages" "$sessions"
  accepted=$(date +%s.%N)
  until [ "$(submitted)" -ge "$messages" ]; do sleep 0.1; done
  done_at=$(date +%s.%N)
  cpu1=$(awk '{print $14 + $15}' "/proc/$GATEWAYD_PID/stat")
  sigs=$(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | awk '/^demail_card_signatures_total/ {print $2}')
  awk -v n="$1" -v m="$messages" -v a="$start" -v b="$accepted" -v c="$done_at" -v g="$sigs" \
      -v cpu="$((cpu1 - cpu0))" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "%11d %12.1f %14.1f %11.2f %10d %14.2f\n", n, m / (b - a), m / (c - a), (c - b), g,
           cpu * 1000 / hz / m }'
}

slow_card_run() {
  . "$DEMAIL_SOURCE_DIR/tests/gateway/e2e/stack.sh"
  trap stack_stop RETURN
  STACK_CARD_ARGS="--sign-delay-ms $SIGN_DELAY_MS" STACK_PROVIDER_ARGS="--idle-timeout $IDLE_TIMEOUT" \
    stack_start "[provider]" "connections = $SLOW_CONNECTIONS" >/dev/null
  submitted() { provider_state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["submissions"])'; }
  sigs() { curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | awk '/^demail_card_signatures_total/ {print $2}'; }
  pf_sigs() { curl -s "$PROVIDER_CONTROL/control/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["clientSignatures"])'; }
  local burst start done_at s0 s1 p0 p1 total=0
  printf '%6s %14s %11s %13s %18s %6s\n' start - "$(sigs)" "$(pf_sigs)" - "$(cut -d' ' -f1 /proc/loadavg)"
  for burst in 1 2; do
    s0=$(sigs); p0=$(pf_sigs)
    start=$(date +%s.%N)
    send_burst "$SMTP_PORT" "$STACK/pki/ca.pem" "$total" "$messages" "$sessions"
    total=$((total + messages))
    local deadline=$(( $(date +%s) + 600 ))
    until [ "$(submitted)" -ge "$total" ]; do
      [ "$(date +%s)" -lt "$deadline" ] || { echo "burst $burst: not all submitted after 600 s"; return 1; }
      sleep 0.1
    done
    done_at=$(date +%s.%N)
    s1=$(sigs); p1=$(pf_sigs)
    awk -v b="$burst" -v m="$messages" -v a="$start" -v c="$done_at" -v g=$((s1 - s0)) -v p=$((p1 - p0)) \
        -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
      printf "%6s %14.1f %11d %13d %18.2f %6s\n", b, m / (c - a), g, p, g * 1000 / m, l }'
    # Longer than the provider keeps an idle connection: it closes them all.
    [ "$burst" = 2 ] || sleep $((IDLE_TIMEOUT * 2))
  done
}

echo "end-to-end: $messages messages of 4 KB over $sessions STARTTLS sessions, card key via pcscd/OpenSC"
printf '%11s %12s %14s %11s %10s %14s\n' connections "intake/s" "at provider/s" "drain s" signatures "gw CPU ms/msg"
for n in $connection_counts; do [ "$n" = - ] || ( one_run "$n" ); done
if [ "$SLOW_CARD" = 1 ]; then
  echo
  echo "slow card: ${SIGN_DELAY_MS} ms per signature, provider closes connections idle ${IDLE_TIMEOUT} s,"
  echo "  [provider] connections = $SLOW_CONNECTIONS; burst 2 follows an idle pause of $((IDLE_TIMEOUT * 2)) s"
  printf '%6s %14s %11s %13s %18s %6s\n' burst "at provider/s" "signatures" "pf CertVerify" "signatures/1000" load
  ( slow_card_run )
fi
