#!/usr/bin/env bash
# kill -9 of the intake during DATA leaves no partial message; every message answered 250 is in
# the spool after a restart.
. "$(dirname "$0")/lib.sh"
start_server
acked=0
for round in 1 2 3 4 5; do
  # Three complete messages, then one cut off in the middle of DATA by kill -9.
  for i in 1 2 3; do
    out=$(raw_smtp "EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: r$round m$i\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    grep -q "250 2.0.0 Ok: queued as" <<<"$out" && acked=$((acked + 1))
  done
  /usr/bin/python3 - "$PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.recv(1000)
s.sendall(b"EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\n")
time.sleep(0.3)
s.sendall(b"Subject: half\r\n\r\n" + b"partial line\r\n" * 2000)
time.sleep(5)
PY
  writer=$!
  sleep 0.6
  kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true
  ls "$T/spool/tmp" | grep -q . || fail "round $round: kill came too late (no write in flight)"
  start_server
  grep -q "temp_removed=[1-9]" "$T/server.log" || fail "round $round: recovery did not remove the torn write"
  [ "$(queued)" = "$acked" ] || fail "round $round: $acked answered 250 but $(queued) queued"
  if grep -l "Subject: half" "$T"/spool/queue/* >/dev/null 2>&1; then fail "partial message in the queue"; fi
done
[ -z "$(ls "$T/spool/corrupt")" ] || fail "corrupt files after crashes"
pass "5 x kill -9 during DATA: $acked messages answered 250, $acked in the spool, no partial message"
