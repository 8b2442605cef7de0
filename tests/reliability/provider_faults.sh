#!/usr/bin/env bash
# Faults under a steady load of numbered messages: the provider refusing connections, sending a
# TLS alert, stalling, resetting mid-body, answering 429/500/503 or garbage; the card pulled
# during submissions; pcscd killed and restarted; the internal relay down for inbound delivery.
# Printed per fault: messages sent (250), at the provider, duplicated, lost, seconds to recover.
set -euo pipefail
. "${DEMAIL_SOURCE_DIR:?}/tests/gateway/e2e/stack.sh"
trap stack_stop EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$STACK/gatewayd.log" >&2; exit 1; }
stack_start "[provider]" "poll_interval = 1s"
# Confirmed by the provider before any fault ([provider] address_check): the faults below are about
# mail already handed in, not about recipients the gateway cannot check (recipients.sh).
warm_recipient || fail "the recipient was not confirmed"
n=0
count_at_provider() { provider_state | /usr/bin/python3 -c '
import json, sys, collections
c = collections.Counter(m["subject"] for m in json.load(sys.stdin)["messages"] if m["messageType"] == "normal")
print(sum(1 for k in c if k.startswith(sys.argv[1])), sum(v - 1 for k, v in c.items() if v > 1))' "$1"; }
all_there() { read -r got dup < <(count_at_provider "$1"); [ "$got" = "$2" ]; }
fault() { curl -s -X POST -d "$1" "$PROVIDER_CONTROL/control/fault" >/dev/null; }

run_case() {  # name json-or-action
  local name=$1 action=$2 sent=0 start
  case "$action" in
    pull) "$FIXTURE" card-pull "$STACK/pcsc" ;;
    pcscd) "$FIXTURE" pcscd-stop "$STACK/pcsc" ;;
    *) fault "$action" ;;
  esac
  for i in 1 2 3 4 5; do
    n=$((n + 1))
    send_mail "$name-$i" >/dev/null 2>&1 && sent=$((sent + 1)) || fail "$name: intake refused message $i"
  done
  sleep "${hold:-2}"  # how long the fault lasts after the messages were accepted
  start=$(date +%s)
  case "$action" in
    pull) "$FIXTURE" card-insert "$STACK/pcsc" ;;
    pcscd) "$FIXTURE" pcscd-start "$STACK/pcsc" ;;
    *) fault '{"mode":"none"}' ;;
  esac
  wait_for 90 all_there "$name-" "$sent" || fail "$name: only $(count_at_provider "$name-") of $sent arrived"
  read -r got dup < <(count_at_provider "$name-")
  printf '  %-16s sent %d, at provider %d, duplicated %d, lost %d, recovered in %ds\n' \
    "$name" "$sent" "$got" "$dup" $((sent - got)) $(( $(date +%s) - start ))
  [ "$dup" = 0 ] || fail "$name: duplicates"
}

echo "provider and card faults (5 messages each, sent while the fault lasts):"
run_case refuse '{"mode":"refuse","count":0}'
run_case tls-alert '{"mode":"tls_alert","count":0}'
run_case stall '{"mode":"stall","stallSeconds":40,"count":0}'
run_case reset-mid-body '{"mode":"reset_mid_body","count":0}'
run_case http-429 '{"mode":"http_status","status":429,"count":0}'
run_case http-500 '{"mode":"http_status","status":500,"count":0}'
run_case malformed '{"mode":"malformed","count":0}'
run_case card-pulled pull
run_case pcscd-killed pcscd
# The reader gone for minutes (a USB-over-IP link down: pcscd and its readers away), only in the
# long runs: READER_GONE_SECONDS (make soak sets it).
if [ "${READER_GONE_SECONDS:-0}" -gt 0 ]; then
  hold=$READER_GONE_SECONDS run_case "reader-gone-${READER_GONE_SECONDS}s" pcscd
fi

# The internal relay down for inbound delivery: injected mail stays at the provider
# (unacknowledged) and arrives once the relay is back.
kill "${STACK_PIDS[1]}"; wait "${STACK_PIDS[1]}" 2>/dev/null || true
sink_port=$(cat "$STACK/sink.port")
for i in 1 2 3; do
  printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: inbound %d\r\nX-de-mail-message-type: normal\r\n\r\nx\r\n' "$i" |
    curl -s -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" >/dev/null
done
sleep 4
unacked=$(provider_state | grep -o '"acked":false' | wc -l)
[ "$unacked" -ge 3 ] || fail "inbound acknowledged although the relay is down"
start=$(date +%s)
/usr/bin/python3 - "$sink_port" "$STACK" <<'PY' &
import os, sys, subprocess
port, stack = sys.argv[1], sys.argv[2]
# the sink again on the same port
os.execv("/usr/bin/python3", ["/usr/bin/python3", os.environ["DEMAIL_SOURCE_DIR"] + "/tests/tools/smtp_sink.py",
  "--dump", stack + "/mailbox", "--port-file", stack + "/sink2.port", "--cert", stack + "/pki/server.pem",
  "--key", stack + "/pki/server.key", "--port", port])
PY
STACK_PIDS+=($!)
inbound_arrived() { [ "$(grep -l 'Subject: inbound' "$STACK"/mailbox/*.eml 2>/dev/null | wc -l)" = 3 ]; }
wait_for 60 inbound_arrived || fail "inbound mail did not arrive after the relay came back"
printf '  %-16s held 3 at the provider while the relay was down, delivered 3 after it returned in %ds\n' \
  relay-down $(( $(date +%s) - start ))
echo "ok: every fault survived; messages lost: 0, duplicated: 0"
