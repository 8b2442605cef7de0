#!/usr/bin/env bash
# Redundancy: a confirmation of a message sent through gateway 1 but fetched by gateway 2 (both
# poll the same account) reaches the internal sender although gateway 2 has no record of the
# message (shared nothing): gateway 1 sealed the sender into the X-de-mail-private-id with the
# key both hold ([provider] private_id_key_file), and the provider copied it into the
# confirmation. Without the key, gateway 2 can only give it to the account's inbox.
# Gateway 1 polls once at its start and then not for an hour, so gateway 2 fetches everything.
set -euo pipefail
. "$(dirname "$0")/ha_stack.sh"
trap ha_stop EXIT
fail() {
  echo "FAIL: $*" >&2
  for i in 1 2; do echo "--- gateway $i" >&2; tail -20 "$(ha_gateway_log $i)" >&2 || true; done
  exit 1
}
pass() { echo "ok: $*"; }
mail_with() {  # files in the sink holding all the given fixed strings
  local files; files=$(ls "$HA"/mailbox/*.eml 2>/dev/null || true)
  for s in "$@"; do [ -z "$files" ] || files=$(grep -lF -- "$s" $files || true); done
  echo $files
}
has_mail() { [ -n "$(mail_with "$@")" ]; }
private_id_of() {  # subject -> the private-id the provider holds for that submission
  curl -s "$PROVIDER_CONTROL/control/state" | /usr/bin/python3 -c \
    "import json,sys; print(*[m['privateId'] for m in json.load(sys.stdin)['messages'] if m['messageType']=='normal' and m['subject']=='$1'])"
}

ha_start 2
# Both gateways hold the stack's shared key ($HA/private-id.key).
ha_start_gateway 1 "[provider]" "poll_interval = 1h"
ha_start_gateway 2

# 1. Through gateway 1, from a sender the accounts file maps by its domain (@firma.de).
HA_FROM=referent@firma.de ha_send 1 "[versandbestaetigung] Antrag HA-1" \
  --header "X-de-mail-private-id: AZ-HA/1" --header "Message-Id: <ha1@fachverfahren.firma.de>" \
  >"$HA/swaks1.log" 2>&1 || fail "swaks: $(tail -3 "$HA/swaks1.log")"
ha_wait_for 60 bash -c "[ -n \"\$(curl -s $PROVIDER_CONTROL/control/state | grep -F 'Antrag HA-1')\" ]" || fail "not submitted"
pid=$(private_id_of "Antrag HA-1")
[[ "$pid" =~ ^([0-9A-Z]{22})-[A-Z2-7]+\.AZ-HA/1$ ]] || fail "private-id at the provider: '$pid' (expected <queue id>-<seal>.AZ-HA/1)"
qid=${BASH_REMATCH[1]}
[[ "$pid" != *referent* ]] || fail "the sender is readable in the private-id: $pid"
pass "gateway 1 sent X-de-mail-private-id: $pid (queue id, the sealed sender, the sender's own value)"
fp1=$(grep -o "event=private_id_key fingerprint=[0-9a-f]*" "$HA/gw1/gatewayd.log" | head -1)
fp2=$(grep -o "event=private_id_key fingerprint=[0-9a-f]*" "$HA/gw2/gatewayd.log" | head -1)
[ -n "$fp1" ] && [ "$fp1" = "$fp2" ] || fail "the gateways do not log the same key fingerprint: '$fp1' '$fp2'"
! grep -qf "$HA/private-id.key" "$HA/gw1/gatewayd.log" || fail "the key itself is in the log"
pass "both gateways log the same key fingerprint ($fp1), not the key"

ha_wait_for 60 has_mail "X-Sink-Rcpt-To: <referent@firma.de>" "confirmation of dispatch" ||
  fail "no Versandbestätigung at referent@firma.de: $(grep -h "X-Sink-Rcpt-To" "$HA"/mailbox/*.eml 2>/dev/null | sort | uniq -c)"
conf=$(mail_with "X-Sink-Rcpt-To: <referent@firma.de>" "confirmation of dispatch")
grep -q "by gateway2.firma.test" "$conf" || fail "not fetched by gateway 2: $(grep '^Received: from De-Mail' "$conf")"
[ ! -e "$HA/gw2/spool/sent/$qid" ] || fail "gateway 2 has a record of $qid: not a test of shared nothing"
[ -e "$HA/gw1/spool/sent/$qid" ] || fail "gateway 1 kept no record of $qid"
grep -q "^X-de-mail-private-id: AZ-HA/1"$'\r'"\?$" "$conf" || fail "the sender's own private-id not restored: $(grep -i private-id "$conf")"
grep -q "^X-Demail-Gateway-Queue-Id: $qid" "$conf" || fail "no X-Demail-Gateway-Queue-Id: $qid"
grep -q "^References: <dm-" "$conf" || fail "no References to the provider's message id: $(grep -i '^References' "$conf")"
grep -q "event=correlated_by_seal .*queue_id=$qid" "$(ha_gateway_log 2)" || fail "gateway 2 did not log event=correlated_by_seal"
pass "the Versandbestätigung, fetched by gateway 2 (no sent/$qid there), reached referent@firma.de with X-de-mail-private-id: AZ-HA/1 and X-Demail-Gateway-Queue-Id: $qid"

# 2. The control: gateway 2 without the key cannot know the sender: the account's inbox.
ha_stop_gateway 2
ha_start_gateway 2 "[provider]" "private_id_key_file ="
HA_FROM=referent@firma.de ha_send 1 "[versandbestaetigung] Antrag HA-2" \
  --header "X-de-mail-private-id: AZ-HA/2" >"$HA/swaks2.log" 2>&1 || fail "swaks: $(tail -3 "$HA/swaks2.log")"
ha_wait_for 60 has_mail "X-Sink-Rcpt-To: <poststelle@firma.de>" "Antrag HA-2" ||
  fail "the confirmation did not reach the account's inbox"
[ -z "$(mail_with "X-Sink-Rcpt-To: <referent@firma.de>" "Antrag HA-2")" ] || fail "routed to the sender without the key"
pass "without the key gateway 2 gives such a confirmation to the account's inbox (poststelle@firma.de)"
