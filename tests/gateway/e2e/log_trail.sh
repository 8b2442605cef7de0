#!/usr/bin/env bash
# One message's way through the log by its queue id, as a Postfix user follows one with grep
# (issue 18): the SMTP acceptance (client, TLS, AUTH user, from, to, Message-ID, size), the
# submission (attempts, duration, the provider's ids) and the dispatch confirmation routed back
# to the sender, all on lines that carry queue_id=<id>; and nothing secret on any line.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
stack_start

send_mail "[versandbestaetigung] Antrag auf Akteneinsicht" --header "Message-Id: <trail-1@firma.de>" \
  >"$STACK/swaks.log" 2>&1 || fail "swaks: $(tail -3 "$STACK/swaks.log")"
id=$(sed -n 's/.*250 2.0.0 Ok: queued as \([0-9A-Z]*\).*/\1/p' "$STACK/swaks.log" | head -1)
[ -n "$id" ] || fail "no queue id in the 250 reply"
confirmed() { grep -q "event=inbound_delivered .*kind=[a-z-]*confirmation.* queue_id=$id" "$STACK/gatewayd.log"; }
wait_for 60 confirmed || fail "the dispatch confirmation of $id was not logged with its queue id"

trail=$(grep "queue_id=$id" "$STACK/gatewayd.log")
echo "$trail" | sed 's/^/  /'
grep -q "event=accepted client=127.0.0.1 queue_id=$id from=\"sachbearbeiter@firma.de\" to=\"amt@behoerde.de-mail.de\" message_id=\"<trail-1@firma.de>\" nrcpt=1 auth=\"\" tls=\"TLSv1.[23] with cipher [^\"]*\" size=[0-9]* reply=\"250 2.0.0 Ok: queued as $id\"" <<<"$trail" ||
  fail "the acceptance line lacks client, TLS, envelope or Message-ID"
grep -q "event=submitted queue_id=$id attempts=1 duration_ms=[0-9]* provider_ids=[^ ]* detail=\"accepted by the provider\"" <<<"$trail" ||
  fail "the submission line lacks attempts, duration or provider ids"
grep -q "event=inbound_delivered provider_id=[^ ]* kind=[a-z-]*confirmation.* queue_id=$id" <<<"$trail" ||
  fail "the confirmation line lacks the queue id"
# In order: accepted, then submitted, then the confirmation.
order=$(grep -o "event=[a-z_]*" <<<"$trail" | tr '\n' ' ')
[[ "$order" == *"event=accepted"*"event=submitted"*"event=inbound_delivered"* ]] || fail "out of order: $order"
pin=$(cat "$STACK/card.pin")
if grep -q -- "$pin" "$STACK/gatewayd.log"; then fail "the PIN is in the log"; fi
pass "queue id $id followed through the log: $order"
