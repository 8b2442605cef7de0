# Shared by the smtp.* integration tests: a test CA and server certificate, a users file, the
# intake server on a free port with its own spool, cleanup on exit.
set -euo pipefail
T=$(mktemp -d /tmp/demail-smtptest-XXXXXX)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

make_pki() {
  (cd "$T" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null &&
   openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=gateway.test 2>/dev/null &&
   printf 'subjectAltName=DNS:gateway.test,IP:127.0.0.1\n' > ext.cnf &&
   openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null)
}

start_server() {  # extra args
  rm -f "$T/port"
  "$DEMAIL_BUILD_DIR/tests/smtp/intake_server" --spool "$T/spool" --port-file "$T/port" "$@" 2>>"$T/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do [ -s "$T/port" ] && break; sleep 0.05; done
  [ -s "$T/port" ] || fail "intake server did not start: $(cat "$T/server.log")"
  PORT=$(cat "$T/port")
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

queued() { ls "$T/spool/queue" 2>/dev/null | wc -l; }

# Raw SMTP: sends the given bytes (printf format) and prints the server's answers.
raw_smtp() {  # bytes [source-address]
  /usr/bin/python3 - "$PORT" "$1" "${2:-127.0.0.1}" <<'PY'
import socket, sys, time
port, data, src = int(sys.argv[1]), sys.argv[2].encode().decode('unicode_escape').encode('latin-1'), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), source_address=(src, 0), timeout=10)
out = s.recv(4096)
s.sendall(data)
time.sleep(0.5)
s.settimeout(2)
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except socket.timeout:
    pass
sys.stdout.write(out.decode('latin-1'))
PY
}
