#!/usr/bin/env bash
# TR conformance of what the gateway sends (issue 20), through the real stack: the size limit as
# the TR defines it (20 MiB net: decoded text and attachments; the SMTP limit is gross), and
# headers folded to RFC 5322 (no line over 998 characters), also a long X-de-mail-chosen-recipient.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
# 60 invented recipients: the provider's address look-up (gateway.recipients tests it) would
# refuse them at RCPT; this test is about sizes and folding.
stack_start "[provider]" "address_check = no"
submissions() { provider_state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['submissions'])"; }

# send.py MiB RECIPIENTS: a message with an attachment of MiB mebibytes (base64, as mail clients
# write it) to RECIPIENTS De-Mail addresses, over STARTTLS; prints the reply to DATA.
cat >"$STACK/send.py" <<'PY'
import smtplib, ssl, sys, os
from email.message import EmailMessage
mib, nrcpt, port, ca = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rcpts = ["amt@behoerde.de-mail.de"] + [
    "sachbearbeitung.fachbereich-%02d.ordnungsamt@behoerde.de-mail.de" % i for i in range(nrcpt - 1)]
m = EmailMessage()
m["From"] = "sachbearbeiter@firma.de"
m["To"] = ", ".join(rcpts)
m["Subject"] = "Antrag mit Anlage %.1f MiB" % mib
m.set_content("Sehr geehrte Damen und Herren,\nanbei die Unterlagen.\n")
if mib > 0:
    m.add_attachment(os.urandom(int(mib * 1024 * 1024)), maintype="application", subtype="pdf",
                     filename="unterlagen.pdf")
data = m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
print("encoded=%d" % len(data), file=sys.stderr)
ctx = ssl.create_default_context(cafile=ca)
with smtplib.SMTP("127.0.0.1", port, timeout=300) as s:
    s.starttls(context=ctx)
    s.ehlo("client.firma.test")
    try:
        s.sendmail("sachbearbeiter@firma.de", rcpts, data)
        print("250")
    except smtplib.SMTPDataError as e:
        print(e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPSenderRefused as e:
        print(e.smtp_code, e.smtp_error.decode())
PY
send() { /usr/bin/python3 "$STACK/send.py" "$1" "$2" "$SMTP_PORT" "$STACK/pki/ca.pem"; }

# 1. 19 MiB of attachment, about 26 MiB encoded: within the TR's 20 MiB net, accepted, submitted.
reply=$(send 19 1 2>"$STACK/enc1.txt")
[ "$reply" = 250 ] || fail "19 MiB attachment refused: $reply ($(cat "$STACK/enc1.txt"))"
enc=$(sed -n 's/encoded=//p' "$STACK/enc1.txt")
[ "$enc" -gt $((25 * 1024 * 1024)) ] || fail "the test message is only $enc bytes encoded"
wait_for 120 bash -c "[ \"\$(curl -s $PROVIDER_CONTROL/control/state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"submissions\"])')\" -ge 1 ]" ||
  fail "the 19 MiB message did not reach the provider"
pass "19 MiB of attachment ($enc bytes encoded) accepted and submitted"

# 2. 20.5 MiB of attachment: over the net limit, refused at the end of DATA, both sizes named.
reply=$(send 20.5 1 2>/dev/null)
grep -q "^552 5.3.4 the message carries 20.5 MiB of text and attachments (decoded); De-Mail allows 20.0 MiB" <<<"$reply" ||
  fail "20.5 MiB net: $reply"
pass "20.5 MiB net refused at DATA: $reply"

# 3. 60 recipients: X-de-mail-chosen-recipient is over 3,500 characters, folded, no line over 998.
reply=$(send 0 60 2>/dev/null)
[ "$reply" = 250 ] || fail "60 recipients refused: $reply"
wait_for 60 bash -c "[ \"\$(curl -s $PROVIDER_CONTROL/control/state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"submissions\"])')\" -ge 2 ]" ||
  fail "the message to 60 recipients did not reach the provider"
id=$(provider_state | /usr/bin/python3 -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["messages"] if m["messageType"]=="normal" and "60" not in m.get("subject","")][-1])')
curl -s "$PROVIDER_CONTROL/control/message/$id" >"$STACK/stored.eml"
/usr/bin/python3 - "$STACK/stored.eml" <<'PY' || fail "the provider's copy breaks RFC 5322 line length"
import sys, email, email.policy
raw = open(sys.argv[1], "rb").read()
head = raw.split(b"\r\n\r\n", 1)[0]
longest = max(len(l) for l in head.split(b"\r\n"))
assert longest <= 998, "a header line of %d characters" % longest
msg = email.message_from_bytes(raw, policy=email.policy.compat32)
chosen = msg["X-de-mail-chosen-recipient"]
assert chosen is not None, "no X-de-mail-chosen-recipient"
unfolded = "".join(chosen.splitlines())
assert len(unfolded) > 3500, len(unfolded)
assert unfolded.count("@behoerde.de-mail.de") == 60, unfolded.count("@behoerde.de-mail.de")
folds = [l for l in head.split(b"\r\n") if l.lower().startswith(b"x-de-mail-chosen-recipient")]
print("chosen-recipient: %d characters unfolded, longest header line %d" % (len(unfolded), longest))
PY
pass "a 60-recipient X-de-mail-chosen-recipient arrives folded, every header line ≤ 998"
