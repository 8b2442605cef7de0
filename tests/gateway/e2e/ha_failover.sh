#!/usr/bin/env bash
# Redundancy through real components, both directions at once (issue 22's must-show; also
# `make demo-ha`; docs/operations.md "Redundancy"): one real Postfix 3.7 as the internal MTA,
# relaying De-Mail to two gateways as an ordered next-hop list; each gateway with its own
# simulated card on its own pcscd/vpcd reader, `[smtp] when_paused = refuse`, the shared
# private-id key; one simulated provider with both cards' certificates bound to the same account
# and a fetch lease (HA_LEASE_SECONDS, 30); each gateway's path to it through a loopback TCP proxy
# the test cuts (tests/gateway/e2e/ha_stack.sh).
# HA_MESSAGES (500) messages go into Postfix at a steady pace, every tenth asking for a
# Versandbestätigung ("[versandbestaetigung]" subject tag) from one of seven senders, and
# HA_INBOUND (200) De-Mails are put into the account's inbox at the provider at a steady pace,
# while gateway 1 (the first hop) is in turn killed (-9), has its card pulled, and has its
# provider connection cut; each fault lasts HA_FAULT_SECONDS (12, less than the lease) and is
# undone before the next. Asserted: every outbound message at the provider exactly once (at most
# one twice, if Postfix logged that the kill swallowed a 250: SMTP's own window), none bounced,
# Postfix's queue empty; every inbound message delivered to the internal mail server,
# duplicates at most one (the kill -9 is the only fault that can land between the relay's 250 and
# the acknowledgement for longer than the lease: the documented residual window); every
# Versandbestätigung at its own sender. Printed: per fault the failover time (fault to the first
# message the peer accepted from Postfix) and the failback time (undone to the first message
# gateway 1 accepted again), and the duplicate count.
set -euo pipefail
export LC_ALL=C  # sort and join agree
. "$(dirname "$0")/ha_stack.sh"
N=${HA_MESSAGES:-500}
M=${HA_INBOUND:-200}
HOLD=${HA_FAULT_SECONDS:-12}
LEASE=${HA_LEASE_SECONDS:-30}
cleanup() {
  [ -z "${SENDER_PID:-}" ] || kill "$SENDER_PID" 2>/dev/null || true
  [ -z "${INJECTOR_PID:-}" ] || kill "$INJECTOR_PID" 2>/dev/null || true
  ha_stop
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for i in 1 2; do echo "--- gateway $i" >&2; tail -15 "$(ha_gateway_log $i)" >&2 || true; done
  echo "--- postfix" >&2; tail -15 "$HA/pf/maillog" >&2 || true
  exit 1
}
pass() { echo "ok: $*"; }

HA_PROVIDER_ARGS="--inbox-lease ${LEASE}s"
HA_GATEWAY_INI=$'[smtp]\nwhen_paused = refuse'
ha_start 2
ha_start_gateway 1 || fail "gateway 1 did not start"
ha_start_gateway 2 || fail "gateway 2 did not start"
ha_postfix_start || fail "postfix"
echo "gateways: SMTP 127.0.0.1:${HA_SMTP_PORT[1]} (first hop) and 127.0.0.1:${HA_SMTP_PORT[2]}, each with its own card and pcscd; provider lease ${LEASE}s"

accepted() { grep -c "event=accepted" "$(ha_gateway_log "$1")" 2>/dev/null || true; }
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

# Outbound: into Postfix, paced. Every tenth asks for a Versandbestätigung; senders sb0..sb6.
cat >"$HA/send.py" <<'PY'
import smtplib, sys, time
port, count, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
start = time.monotonic()
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
for n in range(1, count + 1):
    while time.monotonic() < start + (n - 1) / rate:
        time.sleep(0.01)
    sender = "sb%d@firma.de" % (n % 7)
    tag = "[versandbestaetigung] " if n % 10 == 0 else ""
    msg = ("From: %s\r\nTo: amt@behoerde.de-mail.de\r\nSubject: %sha-%04d\r\n\r\n"
           "Sehr geehrte Damen und Herren, Nachricht %d.\r\n" % (sender, tag, n, n))
    for attempt in range(5):
        try:
            s.sendmail(sender, ["amt@behoerde.de-mail.de"], msg)
            break
        except (smtplib.SMTPServerDisconnected, OSError):
            time.sleep(0.2)
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    else:
        sys.exit("postfix did not take message %d" % n)
s.quit()
PY
# Inbound: into the account's inbox at the provider, paced.
cat >"$HA/inject.py" <<'PY'
import sys, time, urllib.request
control, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
start = time.monotonic()
for n in range(1, count + 1):
    while time.monotonic() < start + (n - 1) / rate:
        time.sleep(0.01)
    body = ("From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: in-%04d\r\n"
            "X-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\n"
            "Bescheid %d\r\n" % (n, n)).encode()
    urllib.request.urlopen(urllib.request.Request(
        control + "/control/inject?account=poststelle@firma.de-mail.de", data=body), timeout=60).read()
    print("in-%04d %.3f" % (n, time.time()), flush=True)
PY
# Counts over the internal mail server: inbound "in-NNNN" by subject; Versandbestätigungen by
# the message they confirm and the recipient they went to. One line per finding.
cat >"$HA/sink_counts.py" <<'PY'
import collections, glob, os, re, sys
inbound, confs, first = collections.Counter(), collections.Counter(), {}
by, byconf = collections.Counter(), collections.Counter()
crossed = 0  # confirmations fetched by a gateway without a sent/ record of the message
for f in glob.glob(sys.argv[1] + "/*.eml"):
    text = open(f, encoding="utf-8", errors="replace").read()
    head = text.split("\n\n", 1)[0].split("\r\n\r\n", 1)[0]
    rcpt = re.search(r"^X-Sink-Rcpt-To: <([^>]*)>", head, re.M)
    subj = re.search(r"^Subject: (.*?)\r?$", head, re.M)
    gw = re.search(r"by (gateway\d)\.firma\.test \(demail-gateway\)", head)
    if subj and re.fullmatch(r"in-\d{4}", subj.group(1)):
        inbound[subj.group(1)] += 1
        t = os.path.getmtime(f)
        first[subj.group(1)] = min(t, first.get(subj.group(1), t))
        by[gw.group(1) if gw else "?"] += 1
    elif "confirmation of dispatch" in text:
        m = re.search(r"ha-(\d{4})", text)
        if m:
            confs[(int(m.group(1)), rcpt.group(1) if rcpt else "?")] += 1
            byconf[gw.group(1) if gw else "?"] += 1
            qid = re.search(r"^X-Demail-Gateway-Queue-Id: (\S+)", head, re.M)
            if gw and qid and not os.path.exists("%s/gw%s/spool/sent/%s" % (sys.argv[2], gw.group(1)[-1], qid.group(1))):
                crossed += 1
for s, c in sorted(inbound.items()):
    print("in", s, c, "%.3f" % first[s])
for (n, r), c in sorted(confs.items()):
    print("conf", n, r, c)
for g, c in sorted(by.items()):
    print("by", g, c)
for g, c in sorted(byconf.items()):
    print("byconf", g, c)
print("crossed", crossed)
PY
inbox_unacked() {  # items in the account's inbox not yet acknowledged
  curl -s "$PROVIDER_CONTROL/control/state" | /usr/bin/python3 -c \
    'import json,sys; print(sum(1 for m in json.load(sys.stdin)["messages"] if m["account"]=="poststelle@firma.de-mail.de" and not m["acked"]))'
}

# Warm both gateways' recipient check before any fault (a recipient the provider confirmed is
# kept while the provider cannot be asked).
for i in 1 2; do
  ha_send "$i" "warm-$i" >"$HA/warm-$i.log" 2>&1 || fail "gateway $i did not accept the warm-up message"
done

# The traffic, at a pace that spreads it over the three faults (a margin of a minute for the
# restart of a killed gateway, which logs in to its card again).
WINDOW=$(( 6 * HOLD + 60 ))
RATE=$(/usr/bin/python3 -c "print(round($N / $WINDOW, 2))")
IN_RATE=$(/usr/bin/python3 -c "print(round($M / $WINDOW, 2))")
t_start=$(now)
/usr/bin/python3 "$HA/send.py" "$HA_PF_PORT" "$N" "$RATE" >"$HA/send.log" 2>&1 &
SENDER_PID=$!
/usr/bin/python3 "$HA/inject.py" "$PROVIDER_CONTROL" "$M" "$IN_RATE" >"$HA/injected" 2>"$HA/inject.log" &
INJECTOR_PID=$!
echo "sending $N messages into Postfix at $RATE/s, $M inbound De-Mails into the provider at $IN_RATE/s"
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
restart_gw1() { ha_start_gateway 1 || fail "gateway 1 did not restart"; }
cut_gw1() { ha_cut 1; }
restore_gw1() { ha_restore 1; }
pull_gw1() { ha_card_pull 1; }
insert_gw1() { ha_card_insert 1; }
kill_gw1() { ha_kill_gateway 1; }
echo "faults on gateway 1, each held ${HOLD}s (failover: fault -> first message the peer accepted;"
echo "failback: undone -> first message gateway 1 accepted again):"
fault "killed (-9)" kill_gw1 restart_gw1
fault "card pulled" pull_gw1 insert_gw1
fault "provider cut" cut_gw1 restore_gw1

wait "$SENDER_PID" || fail "the sender failed: $(cat "$HA/send.log")"
SENDER_PID=
wait "$INJECTOR_PID" || fail "the injector failed: $(cat "$HA/inject.log")"
INJECTOR_PID=

# --- Outbound: each message at the provider exactly once.
at_provider() { ha_provider_subjects | awk '$1 ~ /^ha-/ {n++} END {print n+0}'; }
all_there() { [ "$(at_provider)" -ge "$N" ]; }
ha_wait_for 180 all_there || fail "only $(at_provider) of $N at the provider"
ha_wait_for 60 ha_postfix_empty || fail "Postfix still holds mail: $(postqueue -c "$HA/pf" -p | tail -3)"
t_out=$(now)
# --- Inbound: everything in the inbox acknowledged (the item a killed gateway held waits for
# its lease to run out).
inbox_done() { [ "$(inbox_unacked)" = 0 ]; }
ha_wait_for 300 inbox_done || fail "$(inbox_unacked) items in the inbox not acknowledged"
sleep 3  # a late second submission or delivery would show now
subjects=$(ha_provider_subjects | awk '$1 ~ /^ha-/')
distinct=$(wc -l <<<"$subjects")
twice=$(awk '$2 > 1 {n += $2 - 1} END {print n + 0}' <<<"$subjects")
[ "$distinct" = "$N" ] || fail "$distinct distinct messages at the provider, want $N"
# SMTP's own window (RFC 1047): a gateway killed after it stored a message and before its 250
# reached Postfix has it in its spool (and sends it after the restart) while Postfix, not knowing,
# sends it again through the peer. Postfix says so in its log; only such a message may be there
# twice, and the one kill makes at most one.
smtp_window=$(grep -c "message may be sent more than once" "$HA/pf/maillog" || true)
[ "$twice" -le "$smtp_window" ] && [ "$twice" -le 1 ] ||
  fail "$twice extra copies at the provider (Postfix lost $smtp_window 250s to the kill): $(awk '$2 > 1' <<<"$subjects" | head -5)"
bounced=$(grep -c "status=bounced" "$HA/pf/maillog" || true)
[ "$bounced" = 0 ] || fail "$bounced bounced by Postfix"
g1=$(grep -c "relay=127.0.0.1\[127.0.0.1\]:${HA_SMTP_PORT[1]},.*status=sent" "$HA/pf/maillog" || true)
g2=$(grep -c "relay=127.0.0.1\[127.0.0.1\]:${HA_SMTP_PORT[2]},.*status=sent" "$HA/pf/maillog" || true)
deferred=$(grep -c "status=deferred" "$HA/pf/maillog" || true)
pass "outbound: $N messages through Postfix, all $N at the provider, $twice of them twice (Postfix logged $smtp_window "may be sent more than once"), 0 bounced, all there $(secs "$t_start" "$t_out")s after the start"
echo "  relayed by gateway 1: $g1, by gateway 2: $g2; Postfix deferrals: $deferred"

/usr/bin/python3 "$HA/sink_counts.py" "$HA/mailbox" "$HA" >"$HA/counts"
got=$(awk '$1 == "in"' "$HA/counts" | wc -l)
in_dups=$(awk '$1 == "in" && $3 > 1 {n += $3 - 1} END {print n + 0}' "$HA/counts")
[ "$got" = "$M" ] || fail "$got of $M inbound De-Mails delivered; missing: $(comm -23 <(seq -f 'in-%04g' 1 "$M") <(awk '$1 == "in" {print $2}' "$HA/counts") | head)"
expect_conf=$(( N / 10 ))
conf_ok=0 conf_dups=0
for n in $(seq 10 10 "$N"); do
  c=$(awk -v n="$n" -v r="sb$(( n % 7 ))@firma.de" '$1 == "conf" && $2 == n && $3 == r {print $4}' "$HA/counts")
  [ -n "$c" ] || fail "no Versandbestätigung for ha-$(printf %04d "$n") at sb$(( n % 7 ))@firma.de: $(awk -v n="$n" '$1 == "conf" && $2 == n' "$HA/counts")"
  conf_ok=$((conf_ok + 1))
  [ "$c" = 1 ] || conf_dups=$((conf_dups + c - 1))
done
misrouted=$(awk '$1 == "conf" && $3 !~ /^sb[0-6]@firma.de$/' "$HA/counts" | wc -l)
[ "$misrouted" = 0 ] || fail "Versandbestätigungen not at their sender: $(awk '$1 == "conf" && $3 !~ /^sb/' "$HA/counts" | head -5)"
crossed=$(awk '$1 == "crossed" {print $2}' "$HA/counts")
# Most were sent by gateway 1 and fetched by gateway 2: routed by the sealed private-id alone.
[ "$crossed" -gt 0 ] || fail "no Versandbestätigung was fetched by the gateway that did not send the message"
dups=$((in_dups + conf_dups))
# How long inbound items waited, injection to the first delivery: the item a killed gateway held
# waits for its lease.
latency=$(join <(sort "$HA/injected") <(awk '$1 == "in" {print $2, $4}' "$HA/counts" | sort) |
  awk '{d = $3 - $2; if (d < 0) d = 0; print d}' | sort -n |
  awk '{a[NR] = $1} END {printf "median %.1f s, 99th percentile %.1f s, longest %.1f s", a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)], a[NR]}')
lost_leases=$(cat "$(ha_gateway_log 1)" "$(ha_gateway_log 2)" | grep -c "event=inbound_lease_lost" || true)
by=$(awk '$1 == "by" {printf "%s%s: %s", s, $2, $3; s = ", "}' "$HA/counts")
byconf=$(awk '$1 == "byconf" {printf "%s%s: %s", s, $2, $3; s = ", "}' "$HA/counts")
pass "inbound: $M De-Mails delivered to the internal mail server ($by); $conf_ok of $expect_conf Versandbestätigungen at their own sender (sb0..sb6@firma.de), fetched by $byconf; $crossed of them by the gateway that has no record of the message"
echo "  waited from the provider's inbox to the internal mail server: $latency (lease ${LEASE} s)"
echo "  duplicates: $dups (inbound $in_dups, confirmations $conf_dups; leases lost: $lost_leases)"
awk '$1 == "in" && $3 > 1 {print "    " $2 " delivered " $3 " times"}' "$HA/counts"
# Only the kill can leave an item delivered and not acknowledged for longer than the lease
# (the card and the provider path come back within it): the residual window, one item.
[ "$dups" -le 1 ] || fail "$dups duplicates: more than the one item a kill -9 can leave in flight"
pass "failover (s): killed ${FAILOVER["killed (-9)"]}, card pulled ${FAILOVER["card pulled"]}, provider cut ${FAILOVER["provider cut"]}; failback (s): ${FAILBACK["killed (-9)"]}, ${FAILBACK["card pulled"]}, ${FAILBACK["provider cut"]}; inbound duplicates $dups (at most 1, the kill), outbound $twice; whole run $(secs "$t_start" "$(now)")s"
