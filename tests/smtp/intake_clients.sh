#!/usr/bin/env bash
# Real clients written by others against the intake: swaks (STARTTLS, AUTH PLAIN/LOGIN),
# Python's smtplib, and Postfix relaying to it as an internal mail server would.
. "$(dirname "$0")/lib.sh"
make_pki
pw_hash=$(/usr/bin/python3 -c 'import hashlib,base64,os,sys; s=os.urandom(16); h=hashlib.pbkdf2_hmac("sha256", b"s3cret pass", s, 10000); print("$pbkdf2-sha256$10000$%s$%s" % (base64.b64encode(s).decode(), base64.b64encode(h).decode()))')
echo "relay-user:$pw_hash" > "$T/users"
start_server --cert "$T/server.pem" --key "$T/server.key" --users "$T/users"

swaks --server "127.0.0.1:$PORT" --from sachbearbeiter@firma.de --to poststelle@behoerde.de-mail.de \
  --tls --tls-ca-path "$T/ca.pem" --tls-verify --tls-protocol tlsv1_2,tlsv1_3 \
  --header "Subject: swaks STARTTLS" >"$T/swaks1.log" 2>&1 || fail "swaks STARTTLS: $(tail -5 "$T/swaks1.log")"
grep -q "250 2.0.0 Ok: queued as" "$T/swaks1.log" || fail "no queue id"
[ "$(queued)" = 1 ] || fail "expected 1 queued message"
msg=$(cat "$T"/spool/queue/*)
grep -q "with ESMTPS id" <<<"$msg" || fail "Received header without ESMTPS"
grep -Eq "\(using TLSv1\.[23] with cipher [A-Z0-9_-]+ \([0-9]+/[0-9]+ bits\)\)" <<<"$msg" || fail "Received lacks TLS details"
pass "swaks with STARTTLS and certificate verification; Received records TLS version and cipher"

for mech in PLAIN LOGIN; do
  swaks --server "127.0.0.1:$PORT" --from someone@firma.de --to poststelle@behoerde.de-mail.de \
    --tls --auth "$mech" --auth-user relay-user --auth-password "s3cret pass" >"$T/swaks-$mech.log" 2>&1 ||
    fail "swaks AUTH $mech: $(tail -5 "$T/swaks-$mech.log")"
  grep -q "235 2.7.0" "$T/swaks-$mech.log" || fail "AUTH $mech not accepted"
done
if swaks --server "127.0.0.1:$PORT" --from a@firma.de --to poststelle@behoerde.de-mail.de --tls \
  --auth PLAIN --auth-user relay-user --auth-password wrong >"$T/swaks-bad.log" 2>&1; then
  fail "wrong password accepted"
fi
grep -q "535 5.7.8" "$T/swaks-bad.log" || fail "wrong password: $(grep '<~' "$T/swaks-bad.log" | tail -2)"
if grep -q "s3cret pass" "$T/server.log"; then fail "password in the server log"; fi
pass "AUTH PLAIN and LOGIN over TLS; wrong password 535 5.7.8"

/usr/bin/python3 - "$PORT" "$T/ca.pem" <<'PY' || fail "smtplib"
import smtplib, ssl, sys
from email.message import EmailMessage
port, ca = int(sys.argv[1]), sys.argv[2]
m = EmailMessage()
m["From"] = "sachbearbeiter@firma.de"; m["To"] = "amt@stadt.de-mail.de"; m["Subject"] = "smtplib"
m.set_content("Grüße aus Python\n.line starting with a dot\n")
with smtplib.SMTP("127.0.0.1", port, local_hostname="python.test") as s:
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.ehlo("python.test")
    assert "dsn" in s.esmtp_features and "8bitmime" in s.esmtp_features
    refused = s.send_message(m, mail_options=["BODY=8BITMIME", "RET=HDRS", "ENVID=abc+2Bdef"],
                             rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;amt@stadt.de-mail.de"])
    assert not refused
PY
f=$(ls -t "$T"/spool/queue/* | head -1)
grep -q "^ret=HDRS" "$f" || fail "RET not kept"
grep -q "^envid=abc+def" "$f" || fail "ENVID not decoded and kept"
grep -q "NOTIFY\|FAILURE,DELAY" "$f" || fail "NOTIFY not kept"
grep -q "^\.line starting with a dot" "$f" || fail "dot-unstuffing"
pass "Python smtplib with STARTTLS, 8BITMIME and DSN parameters kept with the message"

# A client that offers the session of its last connection resumes it (no new key exchange and
# no certificate signature), in TLS 1.3 (one ticket per handshake) and TLS 1.2.
/usr/bin/python3 - "$PORT" "$T/ca.pem" <<'PY' || fail "TLS session resumption"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
def session(ctx, offer):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    def reply():
        while True:
            l = f.readline()
            if l[3:4] != b"-": return l
    reply(); s.sendall(b"EHLO python.test\r\n"); reply()
    s.sendall(b"STARTTLS\r\n"); assert reply().startswith(b"220")
    t = ctx.wrap_socket(s, server_hostname="gateway.test", session=offer)
    tf = t.makefile("rb")
    t.sendall(b"EHLO python.test\r\n")
    while tf.readline()[3:4] == b"-": pass   # the reply is read after the ticket(s)
    t.sendall(b"QUIT\r\n"); tf.readline()
    reused, sess, version = t.session_reused, t.session, t.version()
    t.close()
    return reused, sess, version
for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ctx.maximum_version = v
    reused, sess, version = session(ctx, None)
    assert not reused and sess is not None, (version, "first connection")
    reused, _, _ = session(ctx, sess)
    assert reused, (version, "the offered session was not resumed")
    print("resumed", version)
PY
pass "a client offering its last TLS session resumes it (TLS 1.3 and 1.2)"

# Postfix as the internal server: a private instance relaying everything to the intake.
pf="$T/postfix"
mkdir -p "$pf/queue" "$pf/data"
cp /etc/postfix/master.cf "$pf/"
cat >"$pf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
myhostname = internal.firma.test
mydomain = firma.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relayhost = [127.0.0.1]:$PORT
smtp_tls_security_level = encrypt
smtp_tls_CAfile = $T/ca.pem
smtp_tls_loglevel = 1
maillog_file = $pf/maillog
maillog_file_prefixes = $T
mynetworks = 127.0.0.0/8
multi_instance_enable = no
shlib_directory = /usr/lib/postfix
smtp_bind_address = 127.0.0.1
CF
sed -i 's/^smtp      inet/#smtp      inet/' "$pf/master.cf"
postconf -c "$pf" -F '*/*/chroot = n'   # no chroot: the CA file lives in the test directory
chmod 755 "$T"
chown postfix "$pf/data"
postfix -c "$pf" start >/dev/null 2>&1 || fail "postfix did not start"
trap 'postfix -c "$pf" stop >/dev/null 2>&1 || true; cleanup' EXIT
before=$(queued)
printf 'Subject: via postfix\n\nHallo\n' | sendmail -C "$pf" -f sachbearbeiter@firma.de poststelle@behoerde.de-mail.de
for _ in $(seq 1 100); do [ "$(queued)" -gt "$before" ] && break; postqueue -c "$pf" -f 2>/dev/null; sleep 0.2; done
[ "$(queued)" -gt "$before" ] || fail "postfix did not relay: $(tail -5 "$pf/maillog" 2>/dev/null)"
grep -q "status=sent" "$pf/maillog" || fail "postfix log does not say sent"
grep -q "TLS connection established to 127.0.0.1" "$pf/maillog" || fail "postfix did not use TLS"
pass "Postfix relays to the intake over STARTTLS (status=sent)"
