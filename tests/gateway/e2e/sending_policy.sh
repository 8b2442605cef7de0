#!/usr/bin/env bash
# The sending policy through the real stack (issue 20): who may send as which De-Mail account,
# from where, with which options and how many a day, decided while the internal server waits.
# A relay host sends only its own senders; an option the policy does not grant is refused at the
# end of DATA with the option named; an option the provider does not allow the account (level
# "normal") likewise; a sender's daily limit is refused at MAIL FROM and survives a restart; a
# SIGHUP with a changed policy applies at the next message; nothing refused reaches the provider.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT

SUB_PORT=$(free_port)
echo "recht:$(/usr/bin/python3 -c 'import hashlib,base64,os; s=os.urandom(16); print("$pbkdf2-sha256$10000$%s$%s" % (base64.b64encode(s).decode(), base64.b64encode(hashlib.pbkdf2_hmac("sha256", b"geheim123", s, 10000)).decode()))')" >"$STACK/users"
cat >"$STACK/policy" <<'POLICY'
# The case-management system on 127.0.0.1 sends its own senders with every option.
allow sender=@fachverfahren.firma.de via=127.0.0.1/32 options=all
# The legal department, authenticated: standard options and Absenderbestätigt.
allow sender=@firma.de via=user:recht options=standard,authoritative
# The billing account, from the relay, asks for more than its level allows.
allow sender=rechnung@firma.de via=127.0.0.1/32 options=all
POLICY
export STACK_MORE_ACCOUNTS=', {"address": "rechnung@firma.de-mail.de", "authLevel": "normal"}'
stack_start "[smtp]" "submission_listen = 127.0.0.1:$SUB_PORT" "users_file = $STACK/users" \
  "[sending]" "policy_file = $STACK/policy" "sender_daily_limit = 2"
grep -qF "event=sending_policy source=\"$STACK/policy\" rules=3" "$STACK/gatewayd.log" || fail "policy not loaded"
printf '@fachverfahren.firma.de poststelle@firma.de-mail.de\nrechnung@firma.de rechnung@firma.de-mail.de\n' >>"$STACK/accounts.map"
kill -HUP "$GATEWAYD_PID"
wait_for 20 grep -q "event=reloaded" "$STACK/gatewayd.log" || fail "no reload"
# The provider's account list (levels) is fetched at the first poll.
wait_for 30 grep -q "event=accounts_listed count=2" "$STACK/gatewayd.log" || fail "the provider did not list the accounts"

relay() {  # from [swaks args]: the relay port, from 127.0.0.1
  local from=$1; shift
  swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" \
    --from "$from" --to amt@behoerde.de-mail.de --body "Bescheid." "$@"
}
submit() {  # from [swaks args]: the submission port as AUTH user recht
  local from=$1; shift
  swaks --server "127.0.0.1:$SUB_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" \
    --auth PLAIN --auth-user recht --auth-password geheim123 \
    --from "$from" --to amt@behoerde.de-mail.de --body "Bescheid." "$@"
}
submissions() { provider_state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['submissions'])"; }

# 1. The Fachverfahren's own sender from its host: every option, submitted with them.
relay akte@fachverfahren.firma.de --header "Subject: Bescheid 1" \
  --header "X-De-Mail-Options: absenderbestaetigt, abholbestaetigung" >"$STACK/s1.log" 2>&1 ||
  fail "the Fachverfahren's notice was refused: $(grep -E '^<~\* ' "$STACK/s1.log")"
wait_for 30 bash -c "[ \"\$(curl -s $PROVIDER_CONTROL/control/state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"submissions\"])')\" -ge 1 ]" ||
  fail "the notice did not reach the provider"
id=$(provider_state | /usr/bin/python3 -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["messages"] if m["messageType"]=="normal"][0])')
stored=$(curl -s "$PROVIDER_CONTROL/control/message/$id")
for h in "X-de-mail-authoritative: yes" "X-de-mail-confirmation-of-retrieve: yes" "X-de-mail-private: yes"; do
  grep -qi -- "^$h" <<<"$stored" || fail "the provider's copy lacks '$h'"
done
pass "a sender named for them sends Absenderbestätigt + Abholbestätigung from its host"

# 2. The same relay host with a sender that is not its own: refused at MAIL FROM, 5.7.1.
if relay sachbearbeiter@firma.de --header "Subject: nicht erlaubt" >"$STACK/s2.log" 2>&1; then
  fail "a sender not of the relay host was accepted"
fi
grep -q '^<~\* 553 5.7.1 <sachbearbeiter@firma.de> may not send De-Mail as <poststelle@firma.de-mail.de> from 127.0.0.1 (sending policy)' "$STACK/s2.log" ||
  fail "MAIL FROM refusal: $(grep -E '^<~\* ' "$STACK/s2.log")"
grep -q "^ ~> RCPT TO" "$STACK/s2.log" && fail "the client got past MAIL FROM"
pass "a relay host is allowed only its own senders (553 5.7.1 at MAIL FROM)"

# 3. The legal department: Absenderbestätigt allowed, Abholbestätigung refused at DATA by name.
submit sachbearbeiter@firma.de --header "Subject: Widerspruch" \
  --header "X-De-Mail-Options: absenderbestaetigt" >"$STACK/s3.log" 2>&1 ||
  fail "an authoritative message of the legal department was refused: $(grep -E '^<~\* ' "$STACK/s3.log")"
if submit sachbearbeiter@firma.de --header "Subject: [abholbestaetigung] Zustellung" >"$STACK/s4.log" 2>&1; then
  fail "an option the policy does not grant was accepted"
fi
grep -q '^<~\* 550 5.7.1 De-Mail option Abholbestätigung (retrieve-confirmation) not allowed for <sachbearbeiter@firma.de> as <poststelle@firma.de-mail.de> (sending policy)' "$STACK/s4.log" ||
  fail "DATA refusal: $(grep -E '^<~\* ' "$STACK/s4.log")"
grep -q '^ ~> RCPT TO' "$STACK/s4.log" || fail "the option was not judged at DATA"
pass "an option not granted is refused at the end of DATA, named (550 5.7.1)"

# 4. The account's level at the provider: rechnung@ is "normal", Persönlich needs "high".
if relay rechnung@firma.de --header "Subject: [persoenlich] Rechnung" >"$STACK/s5.log" 2>&1; then
  fail "Persönlich from an account at level normal was accepted"
fi
grep -q "^<~\* 550 5.7.1 De-Mail account <rechnung@firma.de-mail.de> is at level 'normal' at the provider" "$STACK/s5.log" ||
  fail "level refusal: $(grep -E '^<~\* ' "$STACK/s5.log")"
pass "an option the provider does not allow the account is refused at DATA (550 5.7.1)"

# 5. The sender's daily limit (2): two go, the third is refused at MAIL FROM, also after a restart.
for n in 1 2; do
  relay rechnung@firma.de --header "Subject: Rechnung $n" >"$STACK/r$n.log" 2>&1 ||
    fail "message $n of rechnung@ refused: $(grep -E '^<~\* ' "$STACK/r$n.log")"
done
if relay rechnung@firma.de --header "Subject: Rechnung 3" >"$STACK/r3.log" 2>&1; then fail "a third message passed the limit of 2"; fi
grep -q '^<~\* 550 5.7.1 <rechnung@firma.de> has sent the 2 De-Mails a day the sending policy allows' "$STACK/r3.log" ||
  fail "limit refusal: $(grep -E '^<~\* ' "$STACK/r3.log")"
kill -9 "$GATEWAYD_PID"; wait "$GATEWAYD_PID" 2>/dev/null || true
"$GATEWAYD" --config "$STACK/gateway.ini" >>"$STACK/gatewayd.log" 2>&1 &
GATEWAYD_PID=$!; STACK_PIDS+=($GATEWAYD_PID)
wait_for 30 bash -c "[ \$(grep -c 'event=ready' '$STACK/gatewayd.log') -ge 2 ]" || fail "no restart"
wait_for 30 bash -c "relay() { swaks --server 127.0.0.1:$SMTP_PORT --tls --tls-ca-path $STACK/pki/ca.pem --from rechnung@firma.de --to amt@behoerde.de-mail.de --quit-after MAIL; }; relay 2>&1 | grep -q '^<~\* 550 5.7.1 <rechnung@firma.de> has sent the 2'" ||
  fail "the daily count did not survive kill -9"
pass "a sender's daily limit: 2 accepted, the 3rd refused at MAIL FROM (550 5.7.1), also after kill -9"

# 6. SIGHUP with a narrower policy: the legal department loses Absenderbestätigt at once.
sed -i 's/options=standard,authoritative/options=standard/' "$STACK/policy"
kill -HUP "$GATEWAYD_PID"
wait_for 20 bash -c "[ \$(grep -c 'event=reloaded' '$STACK/gatewayd.log') -ge 2 ]" || fail "no second reload"
if submit sachbearbeiter@firma.de --header "Subject: [absenderbestaetigt] Widerspruch 2" >"$STACK/s6.log" 2>&1; then
  fail "a revoked option was still accepted after SIGHUP"
fi
grep -q '^<~\* 550 5.7.1 De-Mail option Absenderbestätigt (authoritative) not allowed' "$STACK/s6.log" ||
  fail "after SIGHUP: $(grep -E '^<~\* ' "$STACK/s6.log")"
pass "a narrowed policy applies after SIGHUP"

# Nothing refused reached the provider: the notice, the legal department's, rechnung 1 and 2.
wait_for 30 bash -c "[ \"\$(curl -s $PROVIDER_CONTROL/control/state | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[\"submissions\"])')\" -ge 4 ]" ||
  fail "accepted messages missing at the provider: $(submissions)"
sleep 2
[ "$(submissions)" = 4 ] || fail "submissions at the provider: $(submissions), expected 4"
if grep -l "Rechnung 3\|Zustellung\|nicht erlaubt" "$STACK"/mailbox/*.eml >/dev/null 2>&1; then
  fail "a refused message produced a bounce"
fi
pass "4 accepted messages submitted, none of the refused ones, no bounce"
