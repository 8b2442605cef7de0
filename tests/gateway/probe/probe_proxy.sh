#!/usr/bin/env bash
# `demailctl provider probe` through a real HTTP proxy (Debian's tinyproxy, our own instance on
# 127.0.0.1) to the simulated provider, configured by [provider] proxy / proxy_user /
# proxy_password_file: the TLS profile holds end to end (TLS 1.2, ECDHE-RSA-AES256-SHA384, P-521,
# server name verified inside the tunnel), the proxy logs the CONNECT, a proxy demanding
# authentication gets Basic credentials from the password file and refuses (407) without them
# with a clear error, and the password appears in no output.
set -euo pipefail
CTL="${DEMAIL_BUILD_DIR:?}/gateway/demailctl"
SIM="$DEMAIL_BUILD_DIR/sim/demail-sim"
TINYPROXY=$(command -v tinyproxy || true)
[ -n "$TINYPROXY" ] || { echo "FAIL: tinyproxy not installed (deploy/install-deps.sh)" >&2; exit 1; }
TEST_DIR=$(mktemp -d /tmp/demail-proxytest-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ "${KEEP_TEST_DIR:-0}" != 1 ]; then rm -rf "$TEST_DIR"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$TEST_DIR"/*.log; do echo "--- $f" >&2; tail -15 "$f" >&2 || true; done
  exit 1
}
pass() { echo "ok: $*"; }

mkdir -p "$TEST_DIR/prov"
"$SIM" provider --state "$TEST_DIR/prov" --listen 127.0.0.1:0 --control 127.0.0.1:0 \
  >"$TEST_DIR/provider.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -f "$TEST_DIR/prov/sim.env" ] && break; sleep 0.1; done
[ -f "$TEST_DIR/prov/sim.env" ] || fail "provider simulator did not start"
. "$TEST_DIR/prov/sim.env"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_proxy NAME [BasicAuth line]: a tinyproxy of our own on a free loopback port, CONNECT only
# to the simulator's port, logging every request line; sets PROXY_PORT and PROXY_PID.
start_proxy() {
  PROXY_PORT=$(free_port)
  cat >"$TEST_DIR/$1.conf" <<CONF
Port $PROXY_PORT
Listen 127.0.0.1
Timeout 60
LogFile "$TEST_DIR/$1.log"
LogLevel Info
PidFile "$TEST_DIR/$1.pid"
MaxClients 8
Allow 127.0.0.1
ConnectPort $HTTPS_PORT
${2:-}
CONF
  "$TINYPROXY" -d -c "$TEST_DIR/$1.conf" >>"$TEST_DIR/$1.log" 2>&1 &
  PROXY_PID=$!
  pids+=("$PROXY_PID")
  for _ in $(seq 1 300); do listening "$PROXY_PORT" && return 0; sleep 0.1; done
  fail "tinyproxy $1 did not listen on $PROXY_PORT"
}

write_config() {  # file, then extra [provider] lines
  local file=$1
  shift
  {
    printf '[smtp]\nrequire_tls = false\n[provider]\nprofile = mentana\nurl = %s\nca_file = %s\n' "$URL" "$CA"
    printf 'server_name = %s\nclient_cert = %s\nclient_key = %s\n' "$SERVER_NAME" "$CLIENT_CERT" "$CLIENT_KEY"
    printf '%s\n' "$@"
    printf '[queue]\ndir = %s/spool\n' "$TEST_DIR"
  } >"$file"
}
probe() {  # config -> output in $out, exit code in $rc
  set +e
  out=$("$CTL" --config "$1" provider probe 2>&1)
  rc=$?
  set -e
}

# 1. An open proxy: the probe tunnels through it with the profile intact.
start_proxy open
open_port=$PROXY_PORT
open_pid=$PROXY_PID
write_config "$TEST_DIR/open.ini" "proxy = 127.0.0.1:$open_port"
before=$(grep -c "CONNECT 127.0.0.1:$HTTPS_PORT" "$TEST_DIR/open.log" || true)
probe "$TEST_DIR/open.ini"
[ "$rc" = 0 ] || fail "probe through the proxy: exit $rc: $out"
for want in "protocol=TLSv1.2" "cipher=ECDHE-RSA-AES256-SHA384" "group=P-521" "accounts=3" \
  "binding=demail-json-v1" "proxy=127.0.0.1:$open_port"; do
  [[ "$out" == *"$want"* ]] || fail "probe output lacks $want: $out"
done
after=$(grep -c "CONNECT 127.0.0.1:$HTTPS_PORT" "$TEST_DIR/open.log" || true)
[ "$after" -gt "$before" ] || fail "the proxy logged no CONNECT to 127.0.0.1:$HTTPS_PORT"
pass "probe through tinyproxy: $out; proxy log: $(grep -m1 "CONNECT 127.0.0.1:$HTTPS_PORT" "$TEST_DIR/open.log")"

# The server name is still verified inside the tunnel: a wrong one is refused as without a proxy.
write_config "$TEST_DIR/wrongname.ini" "proxy = 127.0.0.1:$open_port"
sed -i "s/^server_name = .*/server_name = wrong.provider.test/" "$TEST_DIR/wrongname.ini"
probe "$TEST_DIR/wrongname.ini"
[ "$rc" = 6 ] || fail "wrong server name through the proxy: exit $rc: $out"
[[ "$out" == *"server certificate name mismatch: expected wrong.provider.test"* ]] ||
  fail "wrong server name through the proxy: $out"
pass "server name verified end to end through the proxy: $out"

# The connection really goes through the proxy: without it the probe fails, naming the proxy.
kill "$open_pid"
wait "$open_pid" 2>/dev/null || true
probe "$TEST_DIR/open.ini"
[ "$rc" = 6 ] || fail "proxy down: exit $rc: $out"
[[ "$out" == *"via proxy 127.0.0.1:$open_port"* ]] || fail "proxy down: the reason does not name the proxy: $out"
pass "proxy down: $out"

# 2. A proxy with BasicAuth: 407 without credentials, a tunnel with them.
password='Pr0xyS3cret7x'  # tinyproxy's BasicAuth takes letters and digits
start_proxy auth "BasicAuth gwproxy $password"
auth_port=$PROXY_PORT
write_config "$TEST_DIR/noauth.ini" "proxy = 127.0.0.1:$auth_port"
probe "$TEST_DIR/noauth.ini"
[ "$rc" = 6 ] || fail "proxy without credentials: exit $rc: $out"
[[ "$out" == *"refused the CONNECT tunnel (407 authentication required: set [provider] proxy_user and proxy_password_file)"* ]] ||
  fail "proxy without credentials: unclear error: $out"
pass "proxy demanding authentication: $out"

printf '%s\n' "$password" >"$TEST_DIR/proxy.password"
chmod 600 "$TEST_DIR/proxy.password"
write_config "$TEST_DIR/auth.ini" "proxy = 127.0.0.1:$auth_port" "proxy_user = gwproxy" \
  "proxy_password_file = $TEST_DIR/proxy.password"
probe "$TEST_DIR/auth.ini"
[ "$rc" = 0 ] || fail "probe with proxy credentials: exit $rc: $out"
[[ "$out" == *"protocol=TLSv1.2 cipher=ECDHE-RSA-AES256-SHA384 group=P-521"* ]] ||
  fail "probe with proxy credentials: $out"
grep -q "CONNECT 127.0.0.1:$HTTPS_PORT" "$TEST_DIR/auth.log" || fail "the auth proxy logged no CONNECT"
[[ "$out" != *"$password"* ]] || fail "the proxy password appears in the output"
pass "probe through the authenticating proxy: $out"

printf 'wrong-password\n' >"$TEST_DIR/proxy.password"
probe "$TEST_DIR/auth.ini"
[ "$rc" = 6 ] || fail "wrong proxy password: exit $rc: $out"
[[ "$out" == *"credentials of proxy_user gwproxy refused"* ]] || fail "wrong proxy password: $out"
[[ "$out" != *"wrong-password"* ]] || fail "the proxy password appears in the output"
pass "wrong proxy password: $out"

# The simulator saw the tunnelled connections as ordinary TLS clients with the card profile.
grep -q "event=request method=GET path=/v1/accounts status=200" "$TEST_DIR/provider.log" ||
  fail "the provider logged no successful request"
echo "all proxy checks passed"
