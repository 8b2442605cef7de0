#!/usr/bin/env bash
# More hostile input against the intake (tests/smtp covers relay tricks, AUTH before TLS, STARTTLS
# injection, bare CR/LF smuggling, overlong lines): AUTH brute force is throttled, huge recipient
# lists stop at 100, NUL bytes and 8-bit garbage are refused or stored verbatim without harm, and
# a TLS scan (sslscan) finds no SSLv3/TLS 1.0/1.1 and no weak suite.
. "${DEMAIL_SOURCE_DIR:?}/tests/smtp/lib.sh"
make_pki
echo "u:$(/usr/bin/python3 -c 'import hashlib,base64,os; s=os.urandom(16); print("$pbkdf2-sha256$10000$%s$%s" % (base64.b64encode(s).decode(), base64.b64encode(hashlib.pbkdf2_hmac("sha256", b"right", s, 10000)).decode()))')" >"$T/users"
start_server --cert "$T/server.pem" --key "$T/server.key" --users "$T/users" --no-require-tls

/usr/bin/python3 - "$PORT" <<'PY' || fail "AUTH brute force"
import base64, smtplib, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
codes, slow = [], 0
for i in range(12):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.starttls(context=ctx)
    s.ehlo("x")
    t = time.time()
    try:  # exactly one attempt per connection (smtplib's login() would try two mechanisms)
        code, _ = s.docmd("AUTH PLAIN", base64.b64encode(b"\0u\0wrong%d" % i).decode())
        codes.append(code)
    except smtplib.SMTPServerDisconnected:
        codes.append(421)
    if time.time() - t > 1.5:
        slow += 1
    try: s.quit()
    except Exception: pass
print("AUTH attempts:", codes, "slowed:", slow)
assert 235 not in codes
assert codes[:3] == [535, 535, 535], codes
assert 454 in codes, "no block after repeated failures"
assert slow >= 3, "failures were not slowed down"
PY
pass "AUTH brute force: 535 for the first tries, then slowed, then 454 4.7.0 (blocked)"

rcpts=""; for i in $(seq 1 120); do rcpts+="RCPT TO:<r$i@behoerde.de-mail.de>\r\n"; done
out=$(raw_smtp "EHLO x\r\nMAIL FROM:<a@firma.de>\r\n${rcpts}QUIT\r\n")
[ "$(grep -c '^250 2.1.5' <<<"$out")" = 100 ] || fail "recipient limit: $(grep -c '^250 2.1.5' <<<"$out") accepted"
[ "$(grep -c '^452 4.5.3' <<<"$out")" = 20 ] || fail "no 452 4.5.3 beyond 100 recipients"
pass "120 recipients: 100 accepted, 20 answered 452 4.5.3"

out=$(raw_smtp 'EHLO x\r\nMAIL FROM:<a\x00b@firma.de>\r\nNOOP\r\nQUIT\r\n')
grep -q "^501" <<<"$out" || fail "NUL in an address: $out"
out=$(raw_smtp 'EHLO x\r\n\xff\xfe\xfd garbage\r\nMAIL FROM:<a@firma.de> BODY=8BITMIME\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: \xe4\xf6\xfc\r\n\r\n\xc3\x28 \x00 binary\r\n.\r\nQUIT\r\n')
grep -q "^500 5.5.2" <<<"$out" || fail "8-bit garbage command: $out"
grep -q "250 2.0.0 Ok: queued" <<<"$out" || fail "8-bit message body refused: $out"
f=$(ls -t "$T"/spool/queue/* | head -1)
grep -qa $'\xc3\x28 \x00 binary' "$f" || fail "8-bit body not stored verbatim"
out=$(raw_smtp 'EHLO x\r\nQUIT\r\n')
grep -q "221 2.0.0" <<<"$out" || fail "server harmed"
pass "NUL in an address 501; 8-bit garbage as a command 500; an 8-bit body with NUL stored verbatim; server unharmed"

# Weak suites, probed one by one with openssl (deterministic, and before sslscan, whose many
# connections meet the per-address connection limit): none may be negotiated.
probe() { echo QUIT | timeout 10 openssl s_client -starttls smtp -tls1_2 "$@" -connect "127.0.0.1:$PORT" 2>/dev/null || true; }
for cipher in AES256-SHA AES128-GCM-SHA256 DES-CBC3-SHA ECDHE-RSA-AES128-SHA RC4-SHA NULL-SHA256; do
  out=$(probe -cipher "$cipher")
  if grep -q "Cipher is $cipher" <<<"$out"; then fail "weak suite $cipher negotiated"; fi
done
out=$(probe)
grep -q "Cipher is ECDHE-RSA-AES256-GCM-SHA384" <<<"$out" || fail "TLS 1.2 with ECDHE-RSA-AES256-GCM-SHA384 not possible: $(head -c 600 <<<"$out")"
scan=$(timeout 120 sslscan --no-colour --starttls-smtp "127.0.0.1:$PORT" 2>&1 || true)
for p in SSLv2 SSLv3 TLSv1.0 TLSv1.1; do
  grep -Eq "^$p +disabled" <<<"$scan" || fail "$p not disabled: $(grep -E "^$p" <<<"$scan")"
done
(echo "$scan" | grep -E "^(Preferred|Accepted)" | sed 's/^/  /') || true
grep -Eq "^(Preferred|Accepted) +TLSv1.2 .*ECDHE-RSA-AES256-GCM-SHA384" <<<"$scan" || fail "sslscan saw no TLS 1.2 suite: $scan"
if grep -E "^(Preferred|Accepted)" <<<"$scan" | grep -Eiq "RC4|DES|NULL|EXP|MD5|CBC|ADH|AECDH"; then
  fail "weak suites offered: $(grep -E '^(Preferred|Accepted)' <<<"$scan")"
fi
out=$(raw_smtp 'EHLO x\r\nQUIT\r\n')
grep -q "221 2.0.0" <<<"$out" || fail "the intake did not survive the scan"
pass "sslscan: SSLv2/3, TLS 1.0/1.1 disabled, only AEAD suites with forward secrecy; weak suites refused one by one (openssl); the server survives the scan"
