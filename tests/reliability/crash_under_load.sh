#!/usr/bin/env bash
# kill -9 of demail-gatewayd at random moments under a continuous load of numbered messages
# (during DATA, after 250, during submission) and of numbered inbound De-Mail (during inbound
# delivery). At the end every message answered 250 is at the provider exactly once (the queue id
# is the idempotency key), every inbound message reached the internal relay, nothing is corrupt,
# nothing stuck, and nothing came back to its sender as a bounce (a crash is no reason to bounce).
# Every fourth message is 512 KB, so kills also land in the middle of a submission's body; the
# internal relay takes 0.1 s per message, so kills also land in the middle of inbound delivery.
#   ROUNDS (default 6) kills; prints sent / accepted / at provider / duplicated / lost / bounced.
set -euo pipefail
. "${DEMAIL_SOURCE_DIR:?}/tests/gateway/e2e/stack.sh"
trap 'kill ${LOAD_PID:-0} ${INJECT_PID:-0} 2>/dev/null || true; stack_stop' EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$STACK/gatewayd.log" >&2; exit 1; }
ROUNDS=${ROUNDS:-6}
SINK_ARGS="--data-delay 0.1" stack_start

# The load: numbered messages, one SMTP session each; the numbers that got 250 are recorded.
/usr/bin/python3 - "$SMTP_PORT" "$STACK/pki/ca.pem" "$STACK/acked" "$STACK/sent" <<'PY' &
import smtplib, ssl, sys, time
port, ca, acked, sent = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
n = 0
while True:
    n += 1
    with open(sent, "a") as f: f.write("%d\n" % n)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.starttls(context=ctx)
            filler = ("x" * 998 + "\r\n") * 512 if n % 4 == 0 else ""  # 512 KB: killed mid-body
            s.sendmail("sachbearbeiter@firma.de", ["amt@behoerde.de-mail.de"],
                       "Subject: load %d\r\nFrom: sachbearbeiter@firma.de\r\n\r\nmessage %d\r\n%s" % (n, n, filler))
        with open(acked, "a") as f: f.write("%d\n" % n)
    except Exception:
        time.sleep(0.05)
PY
LOAD_PID=$!
ready_again() { [ "$(grep -c "event=ready" "$STACK/gatewayd.log")" -gt "$1" ]; }

# Inbound: numbered De-Mail arrive at the provider while the gateway is killed and restarted.
(n=0; while true; do
  n=$((n + 1))
  printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: inbound %d\r\nX-de-mail-message-type: normal\r\n\r\ninbound %d\r\n' "$n" "$n" |
    curl -sf -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" >/dev/null &&
    echo "$n" >>"$STACK/injected"
  sleep 0.2
done) &
INJECT_PID=$!
for round in $(seq 1 "$ROUNDS"); do
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + (r % 150) / 100 }')"
  kill -9 "$GATEWAYD_PID"; wait "$GATEWAYD_PID" 2>/dev/null || true
  readies=$(grep -c "event=ready" "$STACK/gatewayd.log" || true)
  "$GATEWAYD" --config "$STACK/gateway.ini" >>"$STACK/gatewayd.log" 2>&1 &
  GATEWAYD_PID=$!; STACK_PIDS+=($GATEWAYD_PID)
  wait_for 20 ready_again "$readies" || fail "gatewayd not ready again after the kill"
done
sleep 1
kill "$LOAD_PID" "$INJECT_PID" 2>/dev/null; wait "$LOAD_PID" "$INJECT_PID" 2>/dev/null || true
drained() { "$DEMAILCTL" --config "$STACK/gateway.ini" queue list | grep -q -- "-- 0 messages"; }
wait_for 60 drained || fail "queue not drained: $("$DEMAILCTL" --config "$STACK/gateway.ini" queue list | tail -3)"

provider_state | /usr/bin/python3 -c '
import json, sys, collections
d = json.load(sys.stdin)
c = collections.Counter(m["subject"] for m in d["messages"]
                        if m["messageType"] == "normal" and m["subject"].startswith("load "))
for s, k in c.items(): print(s, k)' >"$STACK/at_provider"
sent=$(wc -l <"$STACK/sent"); acked=$(sort -u "$STACK/acked" | wc -l)
lost=0; dup=0
while read -r n; do
  k=$(awk -v s="load $n" '$0 ~ "^"s" " { print $NF }' "$STACK/at_provider")
  [ -z "$k" ] && lost=$((lost + 1))
  [ -n "$k" ] && [ "$k" -gt 1 ] && dup=$((dup + 1))
done < <(sort -un "$STACK/acked")
total=$(awk '{ s += $NF } END { print s + 0 }' "$STACK/at_provider")
corrupt=$(ls "$STACK/spool/corrupt" 2>/dev/null | wc -l)
# A bounce is a DSN with Action: failed in the relay's mailbox (the load asks for no other DSNs).
bounced=$( (grep -l "^Action: failed" "$STACK"/mailbox/*.eml 2>/dev/null || true) | wc -l)
echo "crash suite: $ROUNDS x kill -9; sent $sent, answered 250: $acked, at the provider: $total, duplicated: $dup, lost: $lost, bounced: $bounced, corrupt: $corrupt"
[ "$bounced" = 0 ] || fail "$bounced messages bounced: $(grep -h "^Diagnostic-Code" "$STACK"/mailbox/*.eml | sort | uniq -c)"
[ "$lost" = 0 ] || fail "$lost messages answered 250 never reached the provider"
[ "$dup" = 0 ] || fail "$dup messages reached the provider twice"
[ "$corrupt" = 0 ] || fail "corrupt spool files"

# Inbound: acknowledged at the provider only after the relay's 250, so all of it arrives; a kill
# between the relay's 250 and the delivery ledger's fsync can deliver one message twice (at least
# once, as for any MTA), at most once per kill.
all_acked() {  # nothing left unacknowledged in our own account's inbox
  provider_state | /usr/bin/python3 -c 'import json,sys; sys.exit(any(m["account"] == "poststelle@firma.de-mail.de" and not m["acked"] for m in json.load(sys.stdin)["messages"]))'
}
# The relay takes 0.1 s a message: a long run (make soak, 100 kills: thousands injected) needs
# time to drain, 60 s plus an eighth of a second per injected message.
wait_for $((60 + $(wc -l <"$STACK/injected") / 8)) all_acked || fail "inbound still unacknowledged at the provider"
injected=$(wc -l <"$STACK/injected")
read -r in_lost in_dup < <(/usr/bin/python3 - "$STACK" <<'PY'
import collections, glob, re, sys
stack = sys.argv[1]
seen = collections.Counter()
for f in glob.glob(stack + "/mailbox/*.eml"):
    m = re.search(rb"^Subject: inbound (\d+)\r?$", open(f, "rb").read(), re.M)
    if m: seen[int(m[1])] += 1
wanted = [int(l) for l in open(stack + "/injected")]
print(sum(1 for n in wanted if seen[n] == 0), sum(1 for n in wanted if seen[n] > 1))
PY
)
echo "inbound under the same kills: injected $injected, lost: $in_lost, delivered twice: $in_dup (at most $ROUNDS allowed)"
[ "$in_lost" = 0 ] || fail "$in_lost inbound messages never reached the relay"
[ "$in_dup" -le "$ROUNDS" ] || fail "more inbound duplicates than kills"
echo "ok: nothing lost, nothing sent twice, nothing corrupt"
