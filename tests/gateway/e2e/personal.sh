#!/usr/bin/env bash
# Persönlich and the moment of retrieval, through the real stack (issue 21): Persönlich mail goes
# only to the person mapped for its account, never to the account's inbox or the postmaster; with
# no person mapped it is held with an alarm (the postmaster learns that, not what it says). Every
# delivered item carries X-Demail-Gateway-Retrieved, set by the gateway alone, with the time of
# the archive's record of the retrieval (for an Abholbestätigung the start of legal time limits).
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
stack_start
inject() {  # subject extra-header-lines: a Persönlich De-Mail for poststelle@firma.de-mail.de
  printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: %s\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\nX-de-mail-private: yes\r\n%s\r\nGeheimer Inhalt %s.\r\n' "$1" "$2" "$1" |
    curl -s -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
metric() { curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | awk -v m="$1" '$1==m {print $2}'; }

# 1. No person mapped: held, never at poststelle@ (the account's inbox) or the postmaster.
id1=$(inject "Zustellung eins" "")
wait_for 30 bash -c "ls $STACK/spool/inbound-quarantine/ 2>/dev/null | grep -q ." || fail "the Persönlich item was not held"
wait_for 20 bash -c "grep -l 'quarantined' $STACK/mailbox/*.eml >/dev/null 2>&1" || fail "no notice to the postmaster"
if grep -l "Geheimer Inhalt Zustellung eins" "$STACK"/mailbox/*.eml >/dev/null 2>&1; then fail "Persönlich content reached a mailbox"; fi
notice=$(grep -l "quarantined" "$STACK"/mailbox/*.eml | head -1)
grep -q "X-Sink-Rcpt-To: <postmaster@firma.de>" "$notice" || fail "the notice went elsewhere"
/usr/bin/python3 - "$notice" <<'PY' || fail "the postmaster's notice carries the content"
import sys, email
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for part in m.walk():
    payload = part.get_payload(decode=True) or b""
    assert b"Geheimer Inhalt" not in payload, "content in the notice"
PY
grep -q "event=inbound_parked provider_id=$id1 .*Persönlich mail for poststelle@firma.de-mail.de: no person is mapped" "$STACK/gatewayd.log" ||
  fail "no alarm in the log"
wait_for 20 bash -c "[ \"\$(curl -s http://127.0.0.1:$HEALTH_PORT/metrics | awk '\$1==\"demail_inbound_quarantined\" {print \$2}')\" -ge 1 ]" ||
  fail "demail_inbound_quarantined did not rise: $(metric demail_inbound_quarantined)"
pass "Persönlich without a mapped person: held, alarm (log, metric), the postmaster told without the content"

# 2. A person mapped ("<person> <account> personal"): it goes to that person alone, with the
#    retrieval time; a forged X-Demail-Gateway-Retrieved from outside is dropped.
printf 'chef@firma.de poststelle@firma.de-mail.de personal\n' >>"$STACK/accounts.map"
kill -HUP "$GATEWAYD_PID"
wait_for 20 grep -q "event=reloaded" "$STACK/gatewayd.log" || fail "no reload"
id2=$(inject "Zustellung zwei" $'X-de-mail-confirmation-of-retrieve: yes\r\nX-Demail-Gateway-Retrieved: 1999-01-01T00:00:00Z; forged\r\n')
wait_for 30 bash -c "grep -l 'Geheimer Inhalt Zustellung zwei' $STACK/mailbox/*.eml >/dev/null 2>&1" || fail "not delivered to the person"
f=$(grep -l "Geheimer Inhalt Zustellung zwei" "$STACK"/mailbox/*.eml)
[ "$(grep -c '^X-Sink-Rcpt-To:' "$f")" = 1 ] && grep -q "X-Sink-Rcpt-To: <chef@firma.de>" "$f" ||
  fail "delivered to $(grep '^X-Sink-Rcpt-To:' "$f")"
[ "$(grep -ci '^X-Demail-Gateway-Retrieved:' "$f")" = 1 ] || fail "X-Demail-Gateway-Retrieved not exactly once"
grep -q "forged" "$f" && fail "the forged retrieval header survived"
hdr=$(grep -i '^X-Demail-Gateway-Retrieved:' "$f")
grep -q "account=poststelle@firma.de-mail.de; retrieve-confirmation=yes" <<<"$hdr" || fail "header: $hdr"
seq=$(sed -n 's/.*archive=\([0-9]*\).*/\1/p' <<<"$hdr")
when=$(sed -n 's/^X-Demail-Gateway-Retrieved: \([^;]*\);.*/\1/p' <<<"$hdr" | tr -d '\r')
shown=$("$DEMAILCTL" --config "$STACK/gateway.ini" archive show "$seq")
grep -q "^kind: retrieved" <<<"$shown" && grep -q "^provider_id: $id2" <<<"$shown" && grep -q "^time: $when" <<<"$shown" ||
  fail "the header's archive record $seq does not match: $shown"
if grep -l "Geheimer Inhalt" "$STACK"/mailbox/*.eml | xargs grep -l "X-Sink-Rcpt-To: <poststelle@firma.de>\|X-Sink-Rcpt-To: <postmaster@firma.de>" >/dev/null 2>&1; then
  fail "Persönlich content reached the account inbox or the postmaster"
fi
pass "Persönlich to its mapped person only; retrieval time $when = archive record $seq ($hdr)"
