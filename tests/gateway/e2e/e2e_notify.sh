#!/usr/bin/env bash
# What demail-gatewayd tells systemd (sd_notify), read from a notify socket of the test's own with
# the kernel's receive timestamps, so a loaded machine cannot blur the intervals: READY=1 at start;
# WATCHDOG=1 no more often than half of WATCHDOG_USEC; STATUS only when its text changes; SIGHUP
# gives RELOADING=1 (with MONOTONIC_USEC) and then READY=1 again, for a reload that applies a
# changed accounts file and for one that fails and keeps the old settings; the process keeps its
# name after the re-exec. tests/system proves the same under a real systemd (make system-test).
set -euo pipefail
. "$(dirname "$0")/stack.sh"
NOTIFY_PID=
stop_all() { [ -z "$NOTIFY_PID" ] || kill "$NOTIFY_PID" 2>/dev/null || true; stack_stop; }
trap stop_all EXIT
fail() { echo "FAIL: $*" >&2; echo "--- notify"; cat "$STACK/notify.log" >&2 || true; echo "--- gatewayd.log"; tail -30 "$STACK/gatewayd.log" >&2; exit 1; }

: >"$STACK/notify.log"
# One line per datagram: <kernel receive time, s> <message, newlines as '|'>.
/usr/bin/python3 - "$STACK/notify.sock" "$STACK/notify.log" <<'PY' &
import socket, struct, sys
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)  # Linux; Python 3.11 has no name for it
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
s.bind(sys.argv[1])
with open(sys.argv[2], "w") as out:
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16))
        ts = None
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP:
                sec, usec = struct.unpack("qq", raw[:16])
                ts = sec + usec / 1e6
        out.write("%.6f %s\n" % (ts, data.decode().replace("\n", "|")))
        out.flush()
PY
NOTIFY_PID=$!
for _ in $(seq 1 100); do [ -S "$STACK/notify.sock" ] && break; sleep 0.05; done
[ -S "$STACK/notify.sock" ] || fail "the notify listener did not start"
# WatchdogSec=3: pings at least 1.5 s apart.
export GATEWAYD_WRAPPER="env NOTIFY_SOCKET=$STACK/notify.sock WATCHDOG_USEC=3000000"
stack_start

count() { grep -c -- "$1" "$STACK/notify.log" || true; }
wait_for 30 grep -q "READY=1" "$STACK/notify.log" || fail "no READY=1"
comm=$(cat "/proc/$GATEWAYD_PID/comm")
[ "$comm" = demail-gatewayd ] || fail "after the re-exec the process is called '$comm'"
pass "READY=1 sent; the process is called $comm after its re-exec"

wait_for 60 bash -c "[ \$(grep -c 'WATCHDOG=1' '$STACK/notify.log') -ge 4 ]" || fail "fewer than 4 WATCHDOG=1 in 60 s"
gaps=$(awk '/WATCHDOG=1/ { if (last) printf "%.2f ", $1 - last; last = $1 }' "$STACK/notify.log")
awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); for (i = 1; i <= n; i++) if (a[i] < 1.4) exit 1 }' ||
  fail "WATCHDOG=1 more often than half of WATCHDOG_USEC=3 s: gaps $gaps"
pass "WATCHDOG=1 at gaps of ${gaps}s (WATCHDOG_USEC 3 s: never under 1.5 s)"
dups=$(grep -o 'STATUS=[^|]*' "$STACK/notify.log" | uniq -d | head -3)
[ -z "$dups" ] || fail "the same STATUS sent again: $dups"
pass "STATUS only on change: $(count STATUS=) STATUS lines in $(wc -l <"$STACK/notify.log") datagrams, none a repeat of the one before"

# A reload that applies a changed accounts file.
zweig() { swaks --server "127.0.0.1:$SMTP_PORT" --tls --tls-ca-path "$STACK/pki/ca.pem" --from info@zweig.de \
  --to amt@behoerde.de-mail.de --header "Subject: zweig" --body zweig; }
out=$(zweig 2>&1) && fail "an unmapped sender was accepted"
grep -q "<~\* *553" <<<"$out" || fail "an unmapped sender: expected 553, got: $(grep '<~\*' <<<"$out")"
printf '@zweig.de poststelle@firma.de-mail.de\n' >>"$STACK/accounts.map"
before=$(wc -l <"$STACK/notify.log")
kill -HUP "$GATEWAYD_PID"
reloaded() { tail -n +"$((before + 1))" "$STACK/notify.log" | grep -A1000 "RELOADING=1" | grep -q "READY=1"; }
wait_for 60 reloaded || fail "no READY=1 after RELOADING=1"
tail -n +"$((before + 1))" "$STACK/notify.log" | grep "RELOADING=1" | grep -q "MONOTONIC_USEC=[0-9]" || fail "RELOADING=1 without MONOTONIC_USEC"
zweig >"$STACK/zweig.log" 2>&1 || fail "the reloaded accounts file is not applied: $(grep '<~\*' "$STACK/zweig.log")"
pass "SIGHUP: RELOADING=1 (MONOTONIC_USEC), then READY=1; the changed accounts file is applied (info@zweig.de 553 before, 250 after)"

# A reload that fails keeps the old settings and still ends with READY=1.
printf 'not-an-address\n' >>"$STACK/accounts.map"
before=$(wc -l <"$STACK/notify.log")
kill -HUP "$GATEWAYD_PID"
wait_for 60 reloaded || fail "no READY=1 after a failed reload"
grep -q "event=reload_failed" "$STACK/gatewayd.log" || fail "the failed reload is not logged"
kill -0 "$GATEWAYD_PID" || fail "the daemon stopped"
zweig >"$STACK/zweig.log" 2>&1 || fail "the old settings were not kept"
pass "a failed reload: event=reload_failed, the old accounts kept, and READY=1 all the same"
