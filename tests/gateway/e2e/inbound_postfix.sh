#!/usr/bin/env bash
# The Internet -> internal boundary against a REAL internal relay: a private Postfix 3.7 instance
# with default settings (smtpd_forbid_bare_newline = no, the gateway in mynetworks), the simulated
# provider and demail-gatewayd (PEM client key, no card needed for the inbound path).
#  1. control: the smuggling payload sent to Postfix byte for byte (what the gateway did before)
#     really yields a forged second message here, so the test can see smuggling;
#  2. inbound De-Mail with "\n.\r\nMAIL FROM:..." and with "\n.\n" in the body: Postfix takes
#     exactly one message each, with the smuggled text inside its body, and no forged message;
#  3. a De-Mail with a 1.4 MB line: delivered, re-encoded, the same content after decoding;
#  4. a confirmation whose XML nests 200,000 levels: the daemon keeps running (same pid), the
#     intake answers, the item is parked (quarantine file, postmaster notice) and acknowledged.
set -euo pipefail
B=${DEMAIL_BUILD_DIR:?}
T=$(mktemp -d /tmp/demail-inbound-pf-XXXXXX)
PIDS=()
pf_started=0
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "$pf_started" = 1 ] && postfix -c "$T/pf" stop >/dev/null 2>&1 || true
  [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- gatewayd.log" >&2; tail -30 "$T/gatewayd.log" >&2 || true
  echo "--- postfix maillog" >&2; tail -20 "$T/pf/maillog" >&2 || true
  exit 1
}
pass() { echo "ok: $*"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # seconds command...
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -le "$deadline" ]; do "$@" && return 0; sleep 0.3; done
  return 1
}

# The simulated provider with its own test PKI (client certificate bound to poststelle@firma.de-mail.de).
mkdir -p "$T/provider"
"$B/sim/demail-sim" provider --state "$T/provider" --listen 127.0.0.1:0 --control 127.0.0.1:0 \
  >"$T/provider.log" 2>&1 &
PIDS+=($!)
wait_for 30 test -f "$T/provider/sim.env" || fail "provider did not start: $(cat "$T/provider.log")"
. "$T/provider/sim.env"
CONTROL="http://127.0.0.1:$CONTROL_PORT"

# Postfix: private instance (own config, queue, data dir, loopback port); firma.de is a virtual
# mailbox domain, every recipient lands in one Maildir, so each message Postfix accepted is a file.
pf=$T/pf; PF_PORT=$(free_port)
mkdir -p "$pf/queue" "$pf/data" "$pf/mail"
cp /etc/postfix/master.cf "$pf/"
sed -i "s/^smtp      inet  n       -       y       -       -       smtpd/127.0.0.1:$PF_PORT inet n - n - - smtpd/" "$pf/master.cf"
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
virtual_mailbox_domains = firma.de
virtual_mailbox_base = $pf/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:$(id -u postfix)
virtual_gid_maps = static:$(id -g postfix)
smtpd_tls_security_level = may
smtpd_tls_cert_file = $T/provider/server.pem
smtpd_tls_key_file = $T/provider/server.key
maillog_file = $pf/maillog
maillog_file_prefixes = $T
CF
chmod 755 "$T"; chown postfix "$pf/data" "$pf/mail"
postconf -c "$pf" -F '*/*/chroot = n' >/dev/null
postfix -c "$pf" start >"$T/pf-start.log" 2>&1 || fail "postfix did not start: $(cat "$T/pf-start.log")"
pf_started=1
wait_for 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PF_PORT" 2>/dev/null || fail "postfix does not listen"
[ "$(postconf -c "$pf" -h smtpd_forbid_bare_newline 2>/dev/null || echo no)" = no ] || fail "not the default"
box="$pf/mail/box/new"
delivered() { ls "$box" 2>/dev/null | wc -l; }
pf_idle() { postqueue -c "$pf" -p 2>/dev/null | grep -q "Mail queue is empty"; }
at_least() { [ "$(delivered)" -ge "$1" ]; }

SMUGGLE='MAIL FROM:<chef@firma.de>\r\nRCPT TO:<buchhaltung@firma.de>\r\nDATA\r\nFrom: Chef <chef@firma.de>\r\nSubject: Dringende Ueberweisung FORGED\r\n\r\nBitte sofort ueberweisen.\r\n.\r\n'

# 1. Control: the payload sent byte for byte, as libcurl did for the gateway before, is smuggled.
/usr/bin/python3 - "$PF_PORT" "$SMUGGLE" <<'PY' || fail "control session failed"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if line[3:4] != b"-":
            return line
reply()
smuggle = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
for cmd in (b"EHLO gw.test", b"MAIL FROM:<amt@behoerde.de-mail.de>", b"RCPT TO:<poststelle@firma.de>", b"DATA"):
    s.sendall(cmd + b"\r\n"); reply()
s.sendall(b"Subject: control\r\n\r\nHallo\n.\r\n" + smuggle + b"QUIT\r\n")
s.settimeout(30)
while True:  # every reply, until the one to QUIT
    line = f.readline()
    if not line or line.startswith(b"221"):
        break
s.close()
PY
wait_for 30 pf_idle || fail "postfix did not finish the control messages"
wait_for 10 at_least 2 || fail "control: bare LF smuggling did not work against this Postfix ($(delivered) messages); the test could not see it"
grep -l "Subject: Dringende Ueberweisung FORGED" "$box"/* >/dev/null || fail "control: no forged message"
rm -f "$box"/*
control_lines=$(wc -l <"$pf/maillog")
pass "control: Postfix 3.7 with default settings accepts a smuggled second message from a byte-for-byte relay"

# The gateway: PEM client key, postmaster, the Postfix above as its relay.
SMTP_PORT=$(free_port) HEALTH_PORT=$(free_port)
echo 000000 >"$T/pin"
printf '@firma.de  poststelle@firma.de-mail.de\npoststelle@firma.de poststelle@firma.de-mail.de\n' >"$T/accounts.map"
cat >"$T/gateway.ini" <<INI
[smtp]
listen = 127.0.0.1:$SMTP_PORT
hostname = gateway.firma.test
tls_cert = $T/provider/server.pem
tls_key = $T/provider/server.key
require_tls = false
relay_networks = 127.0.0.1/32
[card]
pin_file = $T/pin
[provider]
url = $URL
ca_file = $CA
server_name = $SERVER_NAME
client_cert = $CLIENT_CERT
client_key = $CLIENT_KEY
accounts_file = $T/accounts.map
poll_interval = 1s
[delivery]
relay = 127.0.0.1:$PF_PORT
tls = required
postmaster = postmaster@firma.de
inbound_max_attempts = 2
[queue]
dir = $T/spool
[health]
listen = 127.0.0.1:$HEALTH_PORT
INI
"$B/gateway/demail-gatewayd" --config "$T/gateway.ini" >"$T/gatewayd.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)
wait_for 30 grep -q "event=ready" "$T/gatewayd.log" || fail "gatewayd did not start"

inject() {  # file
  curl -sf -X POST --data-binary @"$1" "$CONTROL/control/inject?account=poststelle@firma.de-mail.de" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
acked() { curl -s "$CONTROL/control/state" | /usr/bin/python3 -c '
import json, sys
print(all(m["acked"] for m in json.load(sys.stdin)["messages"] if m["id"] == sys.argv[1]))' "$1" | grep -q True; }

# 2. Smuggling through the gateway, both spellings.
n=0
for dot in '\n.\r\n' '\n.\n'; do
  n=$((n + 1))
  printf "From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: Bescheid $n\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\nX-MS-Exchange-Organization-AuthAs: Internal\r\nX-Demail-Gateway-Verdict: type=internal\r\n\r\nIhr Bescheid.$dot$SMUGGLE" >"$T/smuggle$n.eml"
  id=$(inject "$T/smuggle$n.eml")
  wait_for 40 acked "$id" || fail "smuggling $n: not acknowledged"
  wait_for 30 pf_idle || fail "postfix queue not empty"
  [ "$(delivered)" = "$n" ] || fail "smuggling $n: Postfix holds $(delivered) messages, expected $n: $(grep -l FORGED "$box"/* | head -3)"
done
hdr() { awk '/^\r?$/ {exit} {print}' "$1"; }  # the header section of a delivered file
for f in "$box"/*; do
  h=$(hdr "$f")
  grep -q "^Subject: Bescheid" <<<"$h" || fail "a message that is not one of ours: $h"
  grep -q "^X-Demail-Gateway-Verdict: type=message; account=poststelle@firma.de-mail.de; sender=amt@behoerde.de-mail.de; provider-id=in-[0-9]*; repaired=crlf,stripped" <<<"$h" ||
    fail "no gateway verdict: $h"
  [ "$(grep -c "^X-Demail-Gateway-Verdict:" <<<"$h")" = 1 ] || fail "the forged verdict survived"
  if grep -q "X-MS-Exchange-Organization" <<<"$h"; then fail "internal-trust header kept"; fi
  grep -q "^MAIL FROM:<chef@firma.de>" "$f" || fail "the smuggled text is not in the body"
  grep -q "^Subject: Dringende Ueberweisung FORGED" "$f" || fail "the smuggled text is not in the body"
done
if tail -n +"$((control_lines + 1))" "$pf/maillog" | grep -q "from=<chef@firma.de>"; then fail "Postfix saw MAIL FROM:<chef@firma.de>"; fi
pass "smuggling via the gateway: Postfix accepted exactly one message per De-Mail, the smuggled text inside its body, no forged message"

# 3. A 1.4 MB line.
/usr/bin/python3 - "$T/long.eml" <<'PY'
import sys
line = ("Langezeile-" * 130000)[:1400 * 1024]
open(sys.argv[1], "w").write("From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: Lange Zeile\r\n"
    "X-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\nAnfang\r\n" + line + "\r\nEnde\r\n")
PY
id=$(inject "$T/long.eml")
wait_for 50 acked "$id" || fail "long line: not acknowledged"
wait_for 30 pf_idle || fail "postfix queue not empty"
f=$(grep -l "^Subject: Lange Zeile" "$box"/*) || fail "long line: not delivered"
/usr/bin/python3 - "$f" "$T/long.eml" <<'PY' || fail "long line: content differs after decoding"
import email, email.policy, sys
got = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
assert got["Content-Transfer-Encoding"] == "quoted-printable", got["Content-Transfer-Encoding"]
body = got.get_payload(decode=True).decode()
orig = open(sys.argv[2], newline="").read().split("\r\n\r\n", 1)[1]
assert body.replace("\r\n", "\n") == orig.replace("\r\n", "\n"), (len(body), len(orig))
assert max(len(l) for l in open(sys.argv[1], "rb").read().split(b"\n")) <= 1000
PY
pass "a De-Mail with a 1.4 MB line: delivered to Postfix re-encoded (quoted-printable), the same text after decoding"

# 4. A confirmation with XML nested 200,000 levels.
/usr/bin/python3 - "$T/deep.eml" <<'PY'
import sys
xml = '<?xml version="1.0" encoding="UTF-8"?><Acknowledge-Message xmlns="urn:de-mail">' + "<a>" * 200000 + "</a>" * 200000 + "</Acknowledge-Message>"
open(sys.argv[1], "w").write("From: system@sim-provider.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: Versandbestaetigung\r\n"
    "X-de-mail-message-type: confirmation of dispatch\r\nX-de-mail-private-id: 20261122000000ABCDEFGH\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/xml\r\n\r\n' + xml + "\r\n--b--\r\n")
PY
id=$(inject "$T/deep.eml")
wait_for 40 acked "$id" || fail "deep XML: not acknowledged"
kill -0 "$GW_PID" 2>/dev/null || fail "gatewayd died"
ls "$T/spool/inbound-quarantine/$id.eml" >/dev/null || fail "deep XML: not in the quarantine"
grep -q "deeper than 32" "$T/spool/inbound-quarantine/$id.reason" || fail "reason: $(cat "$T/spool/inbound-quarantine/$id.reason")"
grep -q "event=inbound_parked provider_id=$id" "$T/gatewayd.log" || fail "no log line"
wait_for 30 pf_idle || fail "postfix queue not empty"
wait_for 10 bash -c "grep -lq '^Subject: De-Mail inbound item $id quarantined' $box/*" || fail "no postmaster notice"
banner=$(/usr/bin/python3 -c "import socket; s=socket.create_connection(('127.0.0.1', $SMTP_PORT), timeout=30); print(s.makefile().readline().strip())")
[[ "$banner" == 220* ]] || fail "the intake does not answer: $banner"
wait_for 10 bash -c "curl -s http://127.0.0.1:$HEALTH_PORT/status | grep -q 'quarantined'" || fail "no health alarm"
if grep -q "Subject: Versandbestaetigung" "$box"/*; then fail "the hostile confirmation reached a mailbox"; fi
pass "a confirmation nested 200,000 deep: daemon still running (pid $GW_PID), intake answers ($banner), item parked, postmaster told, health alarm, acknowledged"
