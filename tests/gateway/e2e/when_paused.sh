#!/usr/bin/env bash
# [smtp] when_paused through the real daemon, card, pcscd and provider: with `refuse`, MAIL FROM
# is answered 451 4.3.2 naming the reason while the card is pulled and while the provider does
# not answer, and 250 again once the cause is gone (no restart); `queue` (SIGHUP) accepts and
# queues with the card pulled, as one appliance always did; a blocked account is no reason to
# refuse (peers share the account), its mail is accepted and held.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
STACK_SECOND_ACCOUNT=zweite
stack_start "[smtp]" "when_paused = refuse"
submissions() { provider_state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['submissions'])"; }
submissions_are() { [ "$(submissions)" = "$1" ]; }
queued() { find "$STACK/spool/queue" -type f | wc -l; }

# The reply to MAIL FROM, one line ("250 2.1.0 Sender ok").
cat >"$STACK/mail_from.py" <<'PY'
import smtplib, ssl, sys
port, ca, sender = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.ehlo()
    code, text = s.mail(sender)
    print(code, text.decode().replace("\n", " "))
PY
mail_from() { /usr/bin/python3 "$STACK/mail_from.py" "$SMTP_PORT" "$STACK/pki/ca.pem" "${1:-sachbearbeiter@firma.de}"; }
answers() { mail_from "${2:-}" | grep -q "^$1"; }  # prefix of the reply

warm_recipient || fail "the recipient was not confirmed with the card in"
answers "250 " || fail "MAIL FROM with the card in: $(mail_from)"
send_mail "before" >/dev/null 2>&1 || fail "not accepted with the card in"
wait_for 30 submissions_are 1 || fail "not submitted"
pass "card in, provider up: 250 at MAIL FROM, submitted"

# 1. The card pulled: refused at MAIL FROM with the reason, nothing queued here.
"$FIXTURE" card-pull "$STACK/pcsc"
wait_for 20 answers "451 4.3.2" || fail "MAIL FROM with the card pulled: $(mail_from)"
reply=$(mail_from)
grep -q "card absent" <<<"$reply" && grep -q "try another gateway" <<<"$reply" || fail "reply text: $reply"
if send_mail "refused while the card is out" >"$STACK/swaks-refused.log" 2>&1; then fail "a message was accepted with the card out"; fi
grep -q "<~\* 451 4.3.2" "$STACK/swaks-refused.log" || fail "swaks did not see 451 4.3.2: $(tail -5 "$STACK/swaks-refused.log")"
[ "$(queued)" = 0 ] || fail "$(queued) message(s) queued here although refused"
grep -q "sender_refused.*451 4.3.2" "$STACK/gatewayd.log" || fail "no audit line for the refusal"
pass "card pulled, when_paused = refuse: '$reply', nothing queued"

# 2. when_paused = queue by SIGHUP: the single-appliance behaviour, the card still out.
sed -i 's/^when_paused = refuse$/when_paused = queue/' "$STACK/gateway.ini"
kill -HUP "$GATEWAYD_PID"
wait_for 20 answers "250 " || fail "MAIL FROM after SIGHUP to queue: $(mail_from)"
send_mail "queued while the card is out" >/dev/null 2>&1 || fail "queue mode did not accept with the card out"
[ "$(queued)" = 1 ] || fail "not queued: $(queued)"
sed -i 's/^when_paused = queue$/when_paused = refuse/' "$STACK/gateway.ini"
kill -HUP "$GATEWAYD_PID"
wait_for 20 answers "451 4.3.2" || fail "MAIL FROM after SIGHUP back to refuse: $(mail_from)"
pass "SIGHUP to when_paused = queue: 250 and queued with the card out; back to refuse: 451 again"

# 3. The card back: 250 without a restart, the queued message goes out.
"$FIXTURE" card-insert "$STACK/pcsc"
wait_for 30 answers "250 " || fail "MAIL FROM after the card came back: $(mail_from)"
wait_for 30 submissions_are 2 || fail "the queued message was not submitted after the card came back"
pass "card back: 250 at MAIL FROM, the message queued meanwhile submitted"

# 4. The provider does not answer (its port refuses connections): refused; back: 250.
curl -s -X POST -d '{"mode":"refuse"}' "$PROVIDER_CONTROL/control/fault" >/dev/null
wait_for 30 answers "451 4.3.2" || fail "MAIL FROM with the provider down: $(mail_from)"
reply=$(mail_from)
grep -q "provider unreachable" <<<"$reply" || fail "reply text: $reply"
curl -s "http://127.0.0.1:$HEALTH_PORT/readyz" | grep -q "provider" || fail "/readyz does not name the provider"
curl -s -X POST -d '{"mode":"none"}' "$PROVIDER_CONTROL/control/fault" >/dev/null
wait_for 30 answers "250 " || fail "MAIL FROM after the provider came back: $(mail_from)"
send_mail "after the provider came back" >/dev/null 2>&1 || fail "not accepted after the provider came back"
wait_for 30 submissions_are 3 || fail "not submitted after the provider came back"
pass "provider unreachable: '$reply'; back: 250 and submitted"

# 5. An account blocked at the provider is not this gateway's trouble: accepted and held.
curl -sf -X POST -d "" "$PROVIDER_CONTROL/control/block?account=zweite@firma.de-mail.de&blocked=true" >/dev/null || fail "block"
paused() { curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | grep -q '^demail_account_paused{account="zweite@firma.de-mail.de"} 1$'; }
wait_for 30 paused || fail "the blocked account is not shown paused"
answers "250 " zweite@firma.de || fail "MAIL FROM of the blocked account: $(mail_from zweite@firma.de)"
answers "250 " || fail "MAIL FROM of the other account: $(mail_from)"
pass "a blocked account: 250 at MAIL FROM (the peers share the account; its mail is held here)"
