#!/usr/bin/env bash
# End-to-end benchmark (not a test): messages per second from the SMTP intake to the simulated
# provider, with the client key on the simulated card through pcscd and OpenSC, and the card
# signatures it cost, for each number of provider connections ([provider] connections).
#   tests/bench/e2e-bench.sh BUILD_DIR [messages] [sessions] ["connection counts"]
set -euo pipefail
export DEMAIL_BUILD_DIR=$(cd "${1:?usage: e2e-bench.sh BUILD_DIR [messages] [sessions] [connections...]}" && pwd)
export DEMAIL_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
messages=${2:-1000}; sessions=${3:-8}; connection_counts=${4:-1 4 16}

one_run() {  # connections
  . "$DEMAIL_SOURCE_DIR/tests/gateway/e2e/stack.sh"
  trap stack_stop RETURN
  stack_start "[provider]" "connections = $1" >/dev/null
  submitted() { provider_state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["submissions"])'; }
  local start accepted done_at sigs cpu0 cpu1
  cpu0=$(awk '{print $14 + $15}' "/proc/$GATEWAYD_PID/stat")
  start=$(date +%s.%N)
  /usr/bin/python3 - "$SMTP_PORT" "$STACK/pki/ca.pem" "$messages" "$sessions" <<'PY'
import smtplib, ssl, sys, threading
port, ca, total, sessions = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
def worker(k):
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.starttls(context=ctx)
        for i in range(k, total, sessions):
            s.sendmail("sachbearbeiter@firma.de", ["amt@behoerde.de-mail.de"],
                       "Subject: bench %d\r\nFrom: sachbearbeiter@firma.de\r\n\r\n%s" % (i, ("x" * 78 + "\r\n") * 50))
ts = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
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

echo "end-to-end: $messages messages of 4 KB over $sessions STARTTLS sessions, card key via pcscd/OpenSC"
printf '%11s %12s %14s %11s %10s %14s\n' connections "intake/s" "at provider/s" "drain s" signatures "gw CPU ms/msg"
for n in $connection_counts; do ( one_run "$n" ); done
