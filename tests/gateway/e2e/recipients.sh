#!/usr/bin/env bash
# Recipients at RCPT time through the real stack (issue 20): the gateway asks the simulated
# provider's directory (GET /v1/addresses/{address}) and answers in the SMTP session, never by a
# bounce after 250: an address the provider does not know, or a closed one, 550 5.1.1; a known one
# 250 and submitted; a domain outside de-mail.de that the provider lists is De-Mail unless the
# operator pinned the list ([provider] demail_domains_from_provider = no); provider unreachable:
# 451 4.4.3 for an address it never confirmed, 250 for one it confirmed before.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
stack_start

# One SMTP session up to RCPT (python smtplib, STARTTLS); prints "<code> <text>" of the RCPT reply
# and the milliseconds it took.
rcpt() {
  /usr/bin/python3 - "$SMTP_PORT" "$STACK/pki/ca.pem" "$1" <<'PY'
import smtplib, ssl, sys, time
port, ca, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
s.starttls(context=ssl.create_default_context(cafile=ca))
s.ehlo()
code, msg = s.mail("sachbearbeiter@firma.de")
if code != 250:
    print("MAIL", code, msg.decode()); sys.exit(0)
t0 = time.monotonic()
code, msg = s.rcpt(rcpt)
print(code, msg.decode(), "(%d ms)" % ((time.monotonic() - t0) * 1000))
s.quit()
PY
}
directory() { curl -sf --max-time 30 -d "" "$PROVIDER_CONTROL/control/address?$1" >/dev/null || fail "control/address $1"; }
submissions() { provider_state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['submissions'])"; }
submissions_are() { [ "$(submissions)" = "$1" ]; }
rcpt_starts() { local out; out=$(rcpt "$1"); [[ "$out" == "$2"* ]]; }

# 1. Unknown and closed addresses: 550 5.1.1 at RCPT, with a text that says what is wrong.
out=$(rcpt niemand@behoerde.de-mail.de)
[[ "$out" == "550 5.1.1 <niemand@behoerde.de-mail.de>: the De-Mail provider knows no De-Mail address"* ]] ||
  fail "an unknown recipient: $out"
directory "address=weg@behoerde.de-mail.de&state=closed"
out2=$(rcpt weg@behoerde.de-mail.de)
[[ "$out2" == "550 5.1.1 <weg@behoerde.de-mail.de>: this De-Mail address has been closed"* ]] ||
  fail "a closed recipient: $out2"
grep -q 'event=recipient_check client=127.0.0.1 rcpt="niemand@behoerde.de-mail.de" result=unknown' "$STACK/gatewayd.log" ||
  fail "no event=recipient_check line for the refusal"
# The whole message is refused at SMTP time: swaks sees 550 at RCPT, nothing reaches the provider.
if send_mail "an niemand" --to niemand@behoerde.de-mail.de >"$STACK/swaks-unknown.log" 2>&1; then
  fail "swaks: a message to an unknown recipient was accepted"; fi
grep -q "<~\* *550 5.1.1" "$STACK/swaks-unknown.log" || fail "swaks: $(grep "<~\*" "$STACK/swaks-unknown.log")"
pass "unknown recipient: $out"
pass "closed recipient: $out2"

# 2. A known recipient (a mailbox at the provider): 250 at RCPT, the message submitted.
first=$(rcpt amt@behoerde.de-mail.de)
[[ "$first" == "250 "* ]] || fail "a known recipient: $first"
cached=$(rcpt amt@behoerde.de-mail.de)
send_mail "an das Amt" >"$STACK/swaks-known.log" 2>&1 || fail "swaks to a known recipient: $(tail -3 "$STACK/swaks-known.log")"
wait_for 60 submissions_are 1 || fail "the message to a known recipient was not submitted: $(provider_state | head -c 400)"
pass "known recipient: $first (asked), then $cached (cached); submitted"

# An address at another provider that the directory knows (the simulator's control API).
directory "address=buerger@example.de-mail.de&state=known&authLevel=normal"
out=$(rcpt buerger@example.de-mail.de)
[[ "$out" == "250 "* ]] || fail "an address the directory knows: $out"
pass "address known to the directory beyond the provider's mailboxes: $out"

# 3. A provider-listed De-Mail domain outside de-mail.de (a Sammeldomäne).
out=$(rcpt amt@stadt.sammel.example)
[[ "$out" == "550 5.7.1 "*"not a De-Mail address"* ]] || fail "before the provider lists the domain: $out"
curl -sf --max-time 30 -d "" "$PROVIDER_CONTROL/control/domain?domain=sammel.example" >/dev/null || fail "control/domain"
directory "address=amt@stadt.sammel.example&state=known&authLevel=high&accessOpening=true"
wait_for 60 rcpt_starts amt@stadt.sammel.example "250 " || fail "a provider-listed domain is not taken: $(rcpt amt@stadt.sammel.example)"
send_mail "an die Stadt" --to amt@stadt.sammel.example >"$STACK/swaks-sammel.log" 2>&1 ||
  fail "swaks to a provider-listed domain: $(tail -3 "$STACK/swaks-sammel.log")"
wait_for 60 submissions_are 2 || fail "the message to stadt.sammel.example was not submitted"
pass "provider-listed domain sammel.example (outside de-mail.de): 550 5.7.1 before, 250 and submitted after"

# 4. Provider unreachable: an address it never confirmed 451 4.4.3 (try again later), one it
# confirmed 250 (the provider checks again at submission); the same address 250 once it is back.
directory "address=neu@behoerde.de-mail.de&state=known"
curl -s -X POST -d '{"mode":"refuse","count":0}' "$PROVIDER_CONTROL/control/fault" >/dev/null
out=$(rcpt neu@behoerde.de-mail.de)
[[ "$out" == "451 4.4.3 <neu@behoerde.de-mail.de>: the De-Mail provider cannot be asked right now"* ]] ||
  fail "provider unreachable, an unconfirmed recipient: $out"
known=$(rcpt amt@behoerde.de-mail.de)
[[ "$known" == "250 "* ]] || fail "provider unreachable, a confirmed recipient: $known"
curl -s -X POST -d '{"mode":"none"}' "$PROVIDER_CONTROL/control/fault" >/dev/null
wait_for 60 rcpt_starts neu@behoerde.de-mail.de "250 " || fail "not accepted once the provider is back: $(rcpt neu@behoerde.de-mail.de)"
pass "provider unreachable: $out; a confirmed recipient $known; 250 once it is back"

# What the operator sees: the checks by how they were answered (mirrored after each queue pass).
asked_metric() { curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | grep -qE '^demail_address_checks_total\{result="asked"\} [1-9]'; }
wait_for 60 asked_metric || fail "/metrics: no demail_address_checks_total{result=\"asked\"}"
pass "/metrics: $(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | grep '^demail_address_checks_total' | tr '\n' ' ')"

# 5. The operator pins the De-Mail domains: the provider's sammel.example no longer counts.
kill -TERM "$GATEWAYD_PID"; wait "$GATEWAYD_PID" 2>/dev/null || true
printf '[provider]\ndemail_domains_from_provider = no\n' >>"$STACK/gateway.ini"
before=$(wc -l <"$STACK/gatewayd.log")
"$GATEWAYD" --config "$STACK/gateway.ini" >>"$STACK/gatewayd.log" 2>&1 &
GATEWAYD_PID=$!; STACK_PIDS+=($GATEWAYD_PID)
ignored() { tail -n +"$((before + 1))" "$STACK/gatewayd.log" | grep -q 'event=provider_domain_ignored domain="sammel.example"'; }
wait_for 60 ignored || fail "the pinned gateway did not report the provider's extra domain"
out=$(rcpt amt@stadt.sammel.example)
[[ "$out" == "550 5.7.1 "*"not a De-Mail address"* ]] || fail "pinned: $out"
out2=$(rcpt amt@behoerde.de-mail.de)
[[ "$out2" == "250 "* ]] || fail "pinned: a de-mail.de recipient: $out2"
pass "pinned (demail_domains_from_provider = no): $out"
