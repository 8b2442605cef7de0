#!/usr/bin/env bash
# The intake's limits hold against a client that trickles (slowloris) and one that never ends a
# line: whole-command, whole-DATA and TLS-handshake deadlines (not per-read timeouts), a bound on
# the bytes skipped of an over-long line, max_connections fitted to the open-file limit, and
# IPv6 listeners (a specific address and the dual-stack [::]). The server stays up throughout.
. "$(dirname "$0")/lib.sh"
make_pki

# Deadlines of 3 s (command), 4 s (DATA) and 3 s (handshake). The trickling client sends one byte a
# second for up to 40 s: with per-read timeouts it would never be cut off.
start_server --cert "$T/server.pem" --key "$T/server.key" --no-require-tls --timeouts 3,4,3

trickle() {  # mode: command | data | handshake ; prints what the server answered, then "closed after N bytes"
  /usr/bin/python3 - "$PORT" "$1" <<'PY'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
f = s.makefile("rb")
def line():
    return f.readline().decode("latin-1")
out = line()
s.sendall(b"EHLO x\r\n")
while True:
    l = line(); out += l
    if l.startswith("250 "): break
if mode == "data":
    s.sendall(b"MAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\n")
    for _ in range(3): out += line()
    drip = b"x" * 10 + b"\r\n"
elif mode == "handshake":
    s.sendall(b"STARTTLS\r\n"); out += line()
    drip = bytes.fromhex("16030100a5010000a10303") + b"\x00" * 200  # the start of a ClientHello
else:
    drip = b"NOOP " + b"y" * 100
sent = 0
s.settimeout(1.0)
try:
    for b in drip * 4:
        s.sendall(bytes([b])); sent += 1
        try:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk.decode("latin-1")
            if out.startswith("421") or "\n421 " in out:
                # the server said goodbye; it must also close
                s.settimeout(10); rest = s.recv(4096)
                out += rest.decode("latin-1")
                break
        except socket.timeout:
            pass
        if sent >= 40:
            break
except (BrokenPipeError, ConnectionResetError):
    pass
print(out.replace("\r", ""))
print("closed after %d bytes" % sent)
PY
}

bytes_sent() { sed -n 's/^closed after \([0-9]*\) bytes$/\1/p' <<<"$1"; }

out=$(trickle command)
grep -q "^421 4.4.2" <<<"$out" || fail "a command trickled byte by byte was not cut off: $out"
[ "$(bytes_sent "$out")" -lt 40 ] || fail "the command deadline did not hold: $out"
pass "command trickled one byte a second: 421 4.4.2 after $(bytes_sent "$out") bytes (deadline 3 s)"

out=$(trickle data)
grep -q "^421 4.4.2" <<<"$out" || fail "DATA trickled byte by byte was not cut off: $out"
[ "$(bytes_sent "$out")" -lt 40 ] || fail "the DATA deadline did not hold: $out"
pass "DATA trickled one byte a second: 421 4.4.2 after $(bytes_sent "$out") bytes (deadline 4 s)"

out=$(trickle handshake)
[ "$(bytes_sent "$out")" -lt 40 ] || fail "the TLS handshake deadline did not hold: $out"
pass "TLS handshake trickled one byte a second: closed after $(bytes_sent "$out") bytes (deadline 3 s)"

# A command line that never ends: cut off after the skip bound (64 KiB), not read for ever.
out=$(/usr/bin/python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.recv(4096)
sent = 0
try:
    while sent < 8 * 1024 * 1024:
        s.sendall(b"A" * 65536); sent += 65536
except (BrokenPipeError, ConnectionResetError):
    pass
s.settimeout(5)
out = b""
try:
    while True:
        c = s.recv(4096)
        if not c: break
        out += c
except (socket.timeout, ConnectionResetError):
    pass
print(out.decode().replace("\r", ""), "sent=%d" % sent)
PY
)
grep -q "421 4.7.0 Line too long" <<<"$out" || fail "an endless command line: $out"
pass "an endless command line: 421 4.7.0 and closed"
out=$(raw_smtp 'EHLO x\r\nQUIT\r\n')
grep -q "221 2.0.0" <<<"$out" || fail "server unhealthy after the limits: $out"
stop_server

# max_connections fitted to the open-file limit: with 300 descriptors, 22 sessions fit
# ((300 - 256) / 2); the 23rd and later get 421 at once, and the server keeps serving.
rm -f "$T/port"
prlimit --nofile=300:300 "$DEMAIL_BUILD_DIR/tests/smtp/intake_server" --spool "$T/spool" \
  --port-file "$T/port" --no-require-tls 2>>"$T/server.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
PORT=$(cat "$T/port")
grep -q "max_connections lowered from 1000 to 22" "$T/server.log" || fail "no notice of the lowered cap: $(cat "$T/server.log")"
out=$(/usr/bin/python3 - "$PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
held, refused = [], 0
for i in range(40):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    banner = s.recv(4096)
    if banner.startswith(b"421"):
        refused += 1; s.close()
    else:
        held.append(s)
print(len(held), refused)
PY
)
[ "$out" = "22 18" ] || fail "sessions held/refused at 300 descriptors: $out"
out=$(raw_smtp 'EHLO x\r\nQUIT\r\n')
grep -q "221 2.0.0" <<<"$out" || fail "server unhealthy after the connection cap: $out"
pass "open-file limit 300: max_connections lowered to 22 (said in the log), 22 held, 18 refused with 421"
stop_server

# IPv6: a listener on ::1 relays for ::1/128; one on [::] also takes IPv4 clients, which are
# matched against IPv4 relay networks as themselves (not as ::ffff:127.0.0.1).
smtp6() {  # host bytes
  /usr/bin/python3 - "$1" "$PORT" "$2" <<'PY'
import socket, sys, time
host, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode().decode('unicode_escape').encode('latin-1')
s = socket.create_connection((host, port), timeout=10)
out = s.recv(4096); s.sendall(data); time.sleep(0.5); s.settimeout(2)
try:
    while True:
        c = s.recv(65536)
        if not c: break
        out += c
except socket.timeout:
    pass
print(out.decode().replace("\r", ""))
PY
}
msg='EHLO x\r\nMAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\nDATA\r\nSubject: v6\r\n\r\nhi\r\n.\r\nQUIT\r\n'
before=$(queued)
start_server --no-require-tls --listen ::1 --relay ::1/128
out=$(smtp6 ::1 "$msg")
grep -q "250 2.0.0 Ok: queued" <<<"$out" || fail "IPv6 client on ::1: $out"
stop_server
start_server --no-require-tls --listen :: --relay 127.0.0.0/8
out=$(smtp6 127.0.0.1 "$msg")
grep -q "250 2.0.0 Ok: queued" <<<"$out" || fail "IPv4 client on the dual-stack listener: $out"
out=$(smtp6 ::1 "$msg")
grep -q "554 5.7.1 Relay access denied" <<<"$out" || fail "::1 is not in 127.0.0.0/8: $out"
[ "$(queued)" = "$((before + 2))" ] || fail "expected 2 more queued, have $(queued) (was $before)"
pass "IPv6: ::1 listener relays for ::1/128; [::] takes IPv4 clients as IPv4 (relayed) and refuses ::1 (not in 127.0.0.0/8)"

# Session threads are kept for the next client (issue 19: a new thread waited up to a scheduler
# tick before it greeted): 200 connections one after another run on the threads started at
# start-up, and after 40 sessions at once at most 16 threads stay as spares; the others exit.
stop_server
start_server --no-require-tls
threads() { ls "/proc/$SERVER_PID/task" | wc -l; }
base=$(threads)  # main, accept loop and the spare threads started at start-up
# While each session is open, the server runs no thread it did not have at start.
/usr/bin/python3 - "$PORT" "$SERVER_PID" <<'PY' || fail "sequential sessions did not run on the threads there at start"
import os, socket, sys
port, pid = int(sys.argv[1]), sys.argv[2]
tasks = lambda: set(os.listdir("/proc/%s/task" % pid))
base = tasks()
for i in range(200):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220"), "no greeting"
    new = tasks() - base
    assert not new, "session %d runs on a new thread %s (threads at start: %s)" % (i, new, base)
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"221"), "no 221"
    s.close()
PY
/usr/bin/python3 - "$PORT" <<'PY' || fail "40 concurrent sessions were not served"
import socket, sys
held = []
for i in range(40):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
    assert s.makefile("rb").readline().startswith(b"220"), "no greeting"
    held.append(s)
for s in held:
    s.sendall(b"QUIT\r\n")
for s in held:
    assert s.makefile("rb").readline().startswith(b"221"), "no 221"
    s.close()
PY
# Threads leave once their session has ended: wait for it (a generous bound, no timing asserted).
for _ in $(seq 1 300); do [ "$(threads)" -le $((base - 4 + 16)) ] && break; sleep 0.1; done
[ "$(threads)" -le $((base - 4 + 16)) ] || fail "after 40 sessions $(threads) threads remain (at most 16 spares expected, base $base)"
out=$(raw_smtp 'EHLO x\r\nQUIT\r\n')
grep -q "221 2.0.0" <<<"$out" || fail "server unhealthy after thread reuse: $out"
pass "session threads reused: 200 sequential sessions on $base threads; after 40 at once $(threads) remain (<= 16 spares)"
stop_server

# DATA admission (max_concurrent_data, issue 19): with one slot, a second session's DATA waits
# before its 354 while the first is in its DATA phase, gets it when the first has its 250, and a
# session that waits longer than the bound (2 s here) goes ahead anyway. Every message is kept.
start_server --no-require-tls --data-slots 1,2000
before=$(queued)
/usr/bin/python3 - "$PORT" <<'PY' || fail "DATA admission"
import socket, sys
port = int(sys.argv[1])
def session():
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220")
    s.sendall(b"EHLO x\r\n")
    while f.readline()[3:4] == b"-": pass
    s.sendall(b"MAIL FROM:<a@firma.de>\r\nRCPT TO:<b@behoerde.de-mail.de>\r\n")
    assert f.readline().startswith(b"250") and f.readline().startswith(b"250")
    return s, f
def body(s, f, subject):
    s.sendall(b"Subject: " + subject + b"\r\n\r\nhi\r\n.\r\n")
    line = f.readline(); assert line.startswith(b"250"), line
a, fa = session(); b, fb = session()
a.sendall(b"DATA\r\n"); assert fa.readline().startswith(b"354")
b.sendall(b"DATA\r\n")
b.settimeout(0.5)
try:
    early = b.recv(100)
except socket.timeout:
    early = b""
assert early == b"", "354 while the only slot is taken: %r" % early
b.settimeout(60)
body(a, fa, b"first")
assert fb.readline().startswith(b"354"), "no 354 after the slot was freed"
# b holds the slot now; c waits past the 2 s bound and then goes ahead anyway.
c, fc = session()
c.sendall(b"DATA\r\n")
assert fc.readline().startswith(b"354"), "no 354 after the admission bound"
body(c, fc, b"third"); body(b, fb, b"second")
print("admission ok")
PY
[ "$(queued)" = "$((before + 3))" ] || fail "expected 3 more queued, have $(queued) (was $before)"
pass "max_concurrent_data 1: DATA waits for the slot before its 354, goes ahead after the bound; 3 messages kept"
stop_server
