#!/usr/bin/env bash
# End-to-end benchmark (not a test): messages per second from the SMTP intake to the simulated
# provider, with the client key on the simulated card through pcscd and OpenSC, and the card
# signatures it cost.  tests/bench/e2e-bench.sh BUILD_DIR [messages] [sessions]
set -euo pipefail
export DEMAIL_BUILD_DIR=$(cd "${1:?usage: e2e-bench.sh BUILD_DIR [messages] [sessions]}" && pwd)
export DEMAIL_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
messages=${2:-500}; sessions=${3:-8}
. "$DEMAIL_SOURCE_DIR/tests/gateway/e2e/stack.sh"
trap stack_stop EXIT
stack_start >/dev/null
submitted() { provider_state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["submissions"])'; }
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
until [ "$(submitted)" -ge "$messages" ]; do sleep 0.2; done
done_at=$(date +%s.%N)
sigs=$(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | awk '/^demail_card_signatures_total/ {print $2}')
awk -v m="$messages" -v s="$sessions" -v a="$start" -v b="$accepted" -v c="$done_at" -v g="$sigs" 'BEGIN {
  printf "end-to-end: %d messages of 4 KB over %d STARTTLS sessions\n", m, s
  printf "  intake accepted  %8.1f msg/s\n", m / (b - a)
  printf "  at the provider  %8.1f msg/s (intake to provider, card key via pcscd/OpenSC)\n", m / (c - a)
  printf "  card signatures  %8d in total, %.2f per 1000 messages\n", g, g * 1000 / m }'
