#!/usr/bin/env bash
# The spool's filesystem fills up (a 256 KiB tmpfs): the intake answers 452 4.3.1, every message
# answered 250 is complete in the spool, no partial file is left, and mail is accepted again once
# there is space.
. "$(dirname "$0")/lib.sh"
mkdir -p "$T/spool"
mount -t tmpfs -o size=256k tmpfs "$T/spool" || fail "cannot mount a tmpfs (needs root)"
trap 'cleanup_full' EXIT
cleanup_full() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; umount "$T/spool" 2>/dev/null; cleanup; }
start_server
body=$(printf 'X%.0s' $(seq 1 900))
msg=""; for _ in $(seq 1 20); do msg+="$body\r\n"; done
ok=0; full=""
for i in $(seq 1 40); do
  out=$(raw_smtp "EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: m$i\r\n\r\n$msg.\r\nQUIT\r\n")
  if grep -q "250 2.0.0 Ok: queued" <<<"$out"; then ok=$((ok + 1)); fi
  if grep -q "^452 4.3.1" <<<"$out"; then full=$i; break; fi
done
[ -n "$full" ] || fail "no 452 4.3.1 although the spool filesystem is full"
[ "$(queued)" = "$ok" ] || fail "$ok answered 250 but $(queued) queued"
[ -z "$(ls "$T/spool/tmp")" ] || fail "partial files left in tmp/: $(ls "$T/spool/tmp")"
for f in "$T"/spool/queue/*; do tail -c 32 "$f" | grep -q "^DEMAIL-END" || fail "incomplete file $f"; done
pass "spool full after $ok messages: 452 4.3.1, all $ok accepted messages complete, no partial file"

rm -f "$(ls "$T"/spool/queue/* | head -1)" "$(ls "$T"/spool/queue/* | tail -1)"
out=$(raw_smtp "EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: again\r\n\r\nsmall\r\n.\r\nQUIT\r\n")
grep -q "250 2.0.0 Ok: queued" <<<"$out" || fail "not accepted again after space returned: $out"
pass "space returns: accepted again"
