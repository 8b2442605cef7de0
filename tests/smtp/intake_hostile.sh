#!/usr/bin/env bash
# What the intake refuses: relaying for foreign clients, non-De-Mail recipients, unmapped
# senders, AUTH before TLS, MAIL before STARTTLS, STARTTLS command injection, bare-LF and
# bare-CR smuggling, overlong lines, oversized messages. The server stays up throughout.
. "$(dirname "$0")/lib.sh"
make_pki
echo "u:$(/usr/bin/python3 -c 'import hashlib,base64,os; s=os.urandom(16); print("$pbkdf2-sha256$10000$%s$%s" % (base64.b64encode(s).decode(), base64.b64encode(hashlib.pbkdf2_hmac("sha256", b"p", s, 10000)).decode()))')" > "$T/users"
start_server --cert "$T/server.pem" --key "$T/server.key" --users "$T/users" --max-size 20000

expect() {  # output pattern what
  grep -q -- "$2" <<<"$1" || fail "$3: expected '$2' in:
$1"
}

out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a@firma.de>\r\nQUIT\r\n')
expect "$out" "530 5.7.0" "MAIL before STARTTLS"
expect "$out" "250.STARTTLS" "STARTTLS offered"
if grep -q "AUTH" <<<"$out"; then fail "AUTH offered before TLS"; fi
out=$(raw_smtp 'EHLO x\r\nAUTH PLAIN AHUAcA==\r\nQUIT\r\n')
expect "$out" "538 5.7.11" "AUTH before TLS"
pass "MAIL before STARTTLS 530; AUTH not offered and refused before TLS (538)"

stop_server
start_server --cert "$T/server.pem" --key "$T/server.key" --no-require-tls --max-size 20000
out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nQUIT\r\n' 127.0.0.2)
expect "$out" "554 5.7.1 Relay access denied" "foreign client (refused at MAIL: no sender enumeration)"
out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<someone@gmail.com>\r\nRCPT TO:<x@firma.de>\r\nQUIT\r\n')
[ "$(grep -c '550 5.7.1' <<<"$out")" = 2 ] || fail "non-De-Mail recipients: $out"
expect "$out" "not a De-Mail address" "reason"
out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<intruder@elsewhere.com>\r\nQUIT\r\n')
expect "$out" "553 5.7.1" "unmapped sender"
out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<@evil.com:b@behoerde.de-mail.de>\r\nRCPT TO:<b%evil.com@behoerde.de-mail.de>\r\nRCPT TO:<"b@evil.com"@behoerde.de-mail.de>\r\nRCPT TO:<b@[127.0.0.1]>\r\nRCPT TO:<b@behoerde.de-mail.de@evil.com>\r\nQUIT\r\n')
[ "$(grep -c '^501 5.1.3\|^550 5.7.1' <<<"$out")" = 5 ] || fail "relay tricks: $out"
pass "foreign client 554 5.7.1; non-De-Mail recipients and unmapped senders refused; source routes, %-hack, quoted, literals refused"

# STARTTLS command injection (CVE-2011-0411): RSET pipelined with STARTTLS must not run after TLS.
/usr/bin/python3 - "$PORT" <<'PY' || fail "STARTTLS injection"
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
def line():
    return f.readline().decode()
line()
s.sendall(b"EHLO x\r\n")
while not line().startswith("250 "): pass
s.sendall(b"STARTTLS\r\nRSET\r\n")
assert line().startswith("220 2.0.0"), "no 220 for STARTTLS"
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
t.sendall(b"NOOP\r\n")
first = t.recv(4096).decode()
assert first.startswith("250 2.0.0 Ok"), "first reply after TLS: %r" % first
t.sendall(b"QUIT\r\n")
rest = t.recv(4096).decode()
assert rest.startswith("221"), "expected only the QUIT reply, got %r" % rest
PY
pass "STARTTLS injection: the pipelined RSET is discarded"

for payload in 'EHLO x\nMAIL FROM:<a@firma.de>\r\n' 'EHLO x\rMAIL FROM:<a@firma.de>\r\n'; do
  out=$(raw_smtp "$payload")
  expect "$out" "521 5.5.2" "bare newline in a command"
done
before=$(queued)
out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: s\r\n\r\nhello\n.\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<c@behoerde.de-mail.de>\r\nDATA\r\nsmuggled\r\n.\r\n')
expect "$out" "521 5.5.2" "bare LF smuggling in DATA"
[ "$(queued)" = "$before" ] || fail "a smuggled message was queued"
out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nhello\r.\rMAIL FROM:<a@firma.de>\r\n.\r\n')
expect "$out" "521 5.5.2" "bare CR smuggling in DATA"
[ "$(queued)" = "$before" ] || fail "bare CR message queued"
pass "bare LF and bare CR in commands and DATA: 521 and nothing queued"

# Smuggling through an over-long line (review H1): a DATA line beyond the limit that ends in a
# bare LF must not let the reader resynchronise there, or the "." after it ends DATA and the lines
# after that run as a second transaction with the relay rights of this client.
long=$(printf 'A%.0s' $(seq 1 2000))
for where in DATA command; do
  if [ "$where" = DATA ]; then
    head='EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: s\r\n\r\n'
  else
    head='EHLO x\r\nNOOP '
  fi
  out=$(raw_smtp "$head$long\n.\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<c@behoerde.de-mail.de>\r\nDATA\r\nsmuggled\r\n.\r\n")
  expect "$out" "521 5.5.2" "over-long line ending in a bare LF ($where)"
  if grep -q "^250 2.1.0\|^354" <<<"$(sed -n '/^521/,$p' <<<"$out")"; then fail "commands ran after the 521 ($where): $out"; fi
  [ "$(queued)" = "$before" ] || fail "a smuggled message was queued ($where)"
  # The same with a bare CR inside the over-long part.
  out=$(raw_smtp "$head$long\r.\r\nMAIL FROM:<a@firma.de>\r\n")
  expect "$out" "521 5.5.2" "over-long line with a bare CR ($where)"
done
pass "over-long lines ending in a bare LF or holding a bare CR: 521, the session ends, nothing queued"
grep -q '^event=smtp_bare_newline client=127.0.0.1 phase=data queue_id=' "$T/server.log" || fail "no audit line for the smuggling attempt: $(tail -5 "$T/server.log")"
grep -q '^event=relay_denied client=127.0.0.2 from="a@firma.de"' "$T/server.log" || fail "no audit line for the relay refusal"
out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: s\r\n\r\nhi\r\n.\r\nQUIT\r\n')
grep -q '^event=accepted client=127.0.0.1 queue_id=[0-9A-Z]* from="a@firma.de" to="b@behoerde.de-mail.de" message_id="" nrcpt=1 auth="" tls="" size=[0-9]* reply="250 2.0.0 Ok: queued as' "$T/server.log" || fail "no audit line for an accepted message: $(tail -3 "$T/server.log")"
before=$(queued)
pass "the audit trail: one line per accepted message, per relay refusal and per smuggling attempt, with the client"

long=$(printf 'A%.0s' $(seq 1 1600))
out=$(raw_smtp "EHLO x\r\nNOOP $long\r\nNOOP\r\nQUIT\r\n")
expect "$out" "500 5.5.2 Line too long" "overlong command"
expect "$out" "221 2.0.0" "session continues after an overlong line"
body=$(printf 'B%.0s' $(seq 1 1200))
out=$(raw_smtp "EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\n$body\r\n.\r\nQUIT\r\n")
expect "$out" "554 5.6.0 Line longer than 998" "overlong DATA line"
big=$(printf 'C%.0s' $(seq 1 900))
bigbody=""; for _ in $(seq 1 30); do bigbody+="$big\r\n"; done
out=$(raw_smtp "EHLO x\r\nMAIL FROM:<a@firma.de> SIZE=999999\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\n$bigbody.\r\nQUIT\r\n")
expect "$out" "552 5.3.4" "oversized message"
[ "$(queued)" = "$before" ] || fail "refused messages were queued"
pass "overlong lines 500/554, oversized messages 552 (SIZE and actual), nothing queued"

out=$(raw_smtp 'EHLO x\r\nDATA\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nMAIL FROM:<a@firma.de>\r\nMAIL FROM:<a@firma.de>\r\nDATA\r\nFOO\r\nQUIT\r\n')
[ "$(grep -c '^503 5.5.1' <<<"$out")" = 3 ] || fail "sequence errors: $out"
expect "$out" "554 5.5.1" "DATA without recipients"
expect "$out" "500 5.5.2" "unknown command"
out=$(raw_smtp 'EHLO x\r\nQUIT\r\n')
expect "$out" "221 2.0.0" "server still serves"
pass "sequence errors 503, unknown commands 500; the server is unharmed"
