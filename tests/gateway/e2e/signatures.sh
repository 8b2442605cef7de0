#!/usr/bin/env bash
# The provider's signatures, verified through the real stack (card on pcscd, the simulated
# provider signing with its own key, the daemon with [provider] signature_ca/signature_crl, the
# SMTP sink): a Versandbestätigung arrives with X-de-mail-integrity and XML-DSig both "pass"; a
# message only hashed by the provider says "hash-only"; the same confirmation with its text altered
# and a forged X-Demail-Gateway-Verified from outside is delivered with exactly one such header,
# the gateway's, saying "fail" for both, logged, counted and archived; after the provider's signer
# is put on its CRL (and SIGHUP), a new confirmation is "fail": certificate revoked.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
STACK_MORE_ACCOUNTS=', {"address": "eingang@firma.de-mail.de", "authLevel": "high"}' stack_start
verified() { tr -d '\r' <"$1" | awk '/^$/{exit} /^X-Demail-Gateway-Verified:/{p=1; printf "%s", $0; next} p && /^[ \t]/{printf "%s", $0; next} {p=0}'; }
count_verified() { tr -d '\r' <"$1" | awk '/^$/{exit} tolower($0) ~ /^x-demail-gateway-verified:/{n++} END{print n+0}'; }

# 1. A Versandbestätigung as the provider signed it.
send_mail "[versandbestaetigung] Bescheid AZ-1" >"$STACK/swaks1.log" 2>&1 || fail "swaks: $(tail -3 "$STACK/swaks1.log")"
wait_for 60 has_mail "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "confirmation of dispatch" "Bescheid AZ-1" ||
  fail "no Versandbestätigung"
conf=$(mail_with "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "confirmation of dispatch" "Bescheid AZ-1")
v=$(verified "$conf")
[ "$(count_verified "$conf")" = 1 ] || fail "expected one X-Demail-Gateway-Verified"
[[ "$v" == *"integrity=pass (signed by the provider)"* ]] || fail "integrity: $v"
[[ "$v" == *"confirmation-signature=pass (XML signature by the provider)"* ]] || fail "XML signature: $v"
[[ "$v" == *'signer="CN=Bestaetigungsdienst sim-provider,O=demail-sim"'* && "$v" == *"trust=provider-ca+crl"* ]] ||
  fail "signer/trust: $v"
grep -q "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">" "$conf" || fail "the XML signature did not reach the sender"
pass "Versandbestätigung: $v"
# The archive record of that retrieval carries the verdict.
conf_id=$(sub_json 'print(*[m["id"] for m in d["messages"] if m["messageType"]=="confirmation of dispatch" and "AZ-1" in m["subject"]])')
rec=$("$DEMAILCTL" --config "$STACK/gateway.ini" archive list kind=retrieved | grep -F "provider_id=$conf_id" || true)
[ -n "$rec" ] || rec=$("$DEMAILCTL" --config "$STACK/gateway.ini" archive list kind=retrieved | grep -F "$conf_id" || true)
seq=$(awk '{print $1}' <<<"$rec" | head -1)
[ -n "$seq" ] || fail "no archive record for $conf_id: $("$DEMAILCTL" --config "$STACK/gateway.ini" archive list kind=retrieved)"
"$DEMAILCTL" --config "$STACK/gateway.ini" archive show "$seq" | grep -q "verification.*integrity=pass.*confirmation-signature=pass" ||
  fail "archive record $seq lacks the verdict: $("$DEMAILCTL" --config "$STACK/gateway.ini" archive show "$seq")"
pass "archive record $seq of $conf_id keeps the verdict"

# 2. A message the provider only hashed (not absenderbestätigt): to our second account.
printf 'eingang@firma.de eingang@firma.de-mail.de\n' >>"$STACK/accounts.map"
kill -HUP "$GATEWAYD_PID"
wait_for 20 grep -q "event=reloaded" "$STACK/gatewayd.log" || fail "no reload"
swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" --from sachbearbeiter@firma.de \
  --to eingang@firma.de-mail.de --header "Subject: Hausmitteilung H-1" --body "intern" >"$STACK/swaks2.log" 2>&1 ||
  fail "swaks: $(tail -3 "$STACK/swaks2.log")"
wait_for 60 has_mail "X-Sink-Rcpt-To: <eingang@firma.de>" "Hausmitteilung H-1" || fail "the internal De-Mail did not arrive"
m=$(mail_with "X-Sink-Rcpt-To: <eingang@firma.de>" "Hausmitteilung H-1")
v=$(verified "$m")
[[ "$v" == *"integrity=hash-only (header and body hash match (not signed))"* ]] || fail "hash-only message: $v"
pass "a message only hashed by the provider: $v"

# 3. The confirmation altered after signing, injected with a forged verdict on top.
curl -s "$PROVIDER_CONTROL/control/message/$conf_id" >"$STACK/orig.eml"
grep -q "Ihre Nachricht wurde versandt." "$STACK/orig.eml" || fail "unexpected confirmation text"
{ printf 'X-Demail-Gateway-Verified: integrity=pass (forged); confirmation-signature=pass (forged)\r\n'
  sed 's/Ihre Nachricht wurde versandt\./Ihre Nachricht wurde NICHT versandt./' "$STACK/orig.eml"; } >"$STACK/tampered.eml"
bad_id=$(curl -s -X POST --data-binary @"$STACK/tampered.eml" "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_for 60 has_mail "NICHT versandt" || fail "the tampered confirmation was not delivered (marked)"
bad=$(mail_with "NICHT versandt")
v=$(verified "$bad")
[ "$(count_verified "$bad")" = 1 ] || fail "the forged header survived: $(grep -i 'X-Demail-Gateway-Verified' "$bad")"
[[ "$v" != *forged* ]] || fail "the forged verdict reached the recipient: $v"
[[ "$v" == *"integrity=fail (the body was changed (body hash differs))"* ]] || fail "integrity of the altered confirmation: $v"
[[ "$v" == *"confirmation-signature=fail (the confirmation XML was changed after signing)"* ]] || fail "XML signature of the altered confirmation: $v"
grep -q "event=signature_invalid provider_id=$bad_id account=poststelle@firma.de-mail.de verdict=\"integrity=fail" "$STACK/gatewayd.log" ||
  fail "no event=signature_invalid for $bad_id"
# The counter moves when the poll pass ends, a moment after the delivery.
wait_for 30 bash -c "curl -s http://127.0.0.1:$HEALTH_PORT/metrics | grep -q '^demail_provider_signature_failures_total [1-9]'" ||
  fail "metric: $(curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | grep signature)"
seq=$("$DEMAILCTL" --config "$STACK/gateway.ini" archive list kind=retrieved | grep -F "$bad_id" | awk '{print $1}' | head -1)
"$DEMAILCTL" --config "$STACK/gateway.ini" archive show "$seq" | grep -q "verification.*integrity=fail" ||
  fail "archive record of $bad_id lacks the failed verdict"
"$DEMAILCTL" --config "$STACK/gateway.ini" archive export "$seq" | grep -q "X-Demail-Gateway-Verified: integrity=pass (forged)" ||
  fail "the archive does not keep the item byte for byte as retrieved"
pass "altered confirmation + forged header: one header, the gateway's: $v"

# 4. The provider's signer revoked: the CRL is read again at SIGHUP.
curl -sf -X POST -d "" "$PROVIDER_CONTROL/control/signing?revoked=true" >/dev/null || fail "cannot revoke the signer"
kill -HUP "$GATEWAYD_PID"
wait_for 20 bash -c "grep -c 'event=reloaded' '$STACK/gatewayd.log' | grep -q '^[2-9]'" || fail "no second reload"
send_mail "[versandbestaetigung] Bescheid AZ-2" >"$STACK/swaks4.log" 2>&1 || fail "swaks: $(tail -3 "$STACK/swaks4.log")"
wait_for 60 has_mail "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "confirmation of dispatch" "Bescheid AZ-2" ||
  fail "no second Versandbestätigung"
v=$(verified "$(mail_with "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "confirmation of dispatch" "Bescheid AZ-2")")
[[ "$v" == *"integrity=fail (signer certificate: certificate revoked)"* ]] || fail "revoked signer: $v"
pass "signer on the provider's CRL: $v"
