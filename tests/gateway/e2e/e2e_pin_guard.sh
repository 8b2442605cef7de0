#!/usr/bin/env bash
# The card's PIN guard across processes, judged by the card itself: the simulator's APDU trace
# counts every VERIFY that carried a PIN. A rejected PIN is sent exactly once, whatever happens
# next (SIGHUP with the same PIN file, a restart, `demailctl provider probe`); a new PIN in the
# file plus SIGHUP logs in; with one try left nothing is sent; a card whose certificate is not the
# configured one never gets the PIN.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
fail() { echo "FAIL: $*" >&2; echo "--- gatewayd.log"; tail -30 "$STACK/gatewayd.log" >&2; echo "--- apdu.log"; grep -n '00 20 00' "$STACK/pcsc/apdu.log" | tail -20 >&2; exit 1; }

# VERIFY commands with PIN data the card received (the trace logs their header only).
verifies() { grep -c '^> 00 20 00 83 \[' "$STACK/pcsc/apdu.log" || true; }
expect_verifies() {  # n what
  local n; n=$(verifies)
  [ "$n" = "$1" ] || fail "$2: the card received $n PIN VERIFYs, expected $1"
}
readyz() { curl -s "http://127.0.0.1:$HEALTH_PORT/readyz" || true; }
readyz_says() { readyz | grep -qF -- "$1"; }
events() { grep -c "$1" "$STACK/gatewayd.log" || true; }
start_gatewayd() {
  local before; before=$(events "event=ready")
  "$GATEWAYD" --config "$STACK/gateway.ini" >>"$STACK/gatewayd.log" 2>&1 &
  GATEWAYD_PID=$!; STACK_PIDS+=("$GATEWAYD_PID")
  wait_for 60 bash -c "[ \$(grep -c event=ready '$STACK/gatewayd.log') -gt $before ]" || fail "gatewayd did not start"
}
stop_gatewayd() { kill -TERM "$GATEWAYD_PID"; wait "$GATEWAYD_PID" || true; }
reload_gatewayd() {
  local before; before=$(events "event=reloaded")
  kill -HUP "$GATEWAYD_PID"
  wait_for 60 bash -c "[ \$(grep -c event=reloaded '$STACK/gatewayd.log') -gt $before ]" || fail "no reload"
}
submissions() { provider_state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['submissions'])"; }
submissions_are() { [ "$(submissions)" = "$1" ]; }
tries() { PCSCLITE_CSOCK_NAME="$STACK/pcsc/run/pcscd.comm" "$DEMAIL_BUILD_DIR/smartcard/demail-card" --reader "Virtual PCD" status --json |
  /usr/bin/python3 -c "import json,sys; print([p['tries_left'] for p in json.load(sys.stdin)['pins'] if p['ref']=='83'][0])"; }

# 1. Wrong PIN in the file: the daemon's start costs exactly one VERIFY.
STACK_PIN_FILE=000000 stack_start
wait_for 60 readyz_says "rejected the PIN" || fail "readiness does not report the rejected PIN: $(readyz)"
expect_verifies 1 "daemon start with a wrong PIN"
[ "$(tries)" = 2 ] || fail "tries left after one wrong PIN: $(tries)"
[ -f "$STACK/spool/card-pin-rejected" ] || fail "no persisted rejection record"
[ "$(stat -c %a "$STACK/spool/card-pin-rejected")" = 600 ] || fail "record mode $(stat -c %a "$STACK/spool/card-pin-rejected")"
[ "$(stat -c %a "$STACK/spool/card-pin-rejected.key")" = 600 ] || fail "key mode"
# -w: the PIN as a word ("pin=000000"), not inside the archive's genesis hash of 64 zeros
if grep -qw 000000 "$STACK/spool/card-pin-rejected" "$STACK/gatewayd.log"; then fail "the PIN is in the record or the log"; fi
pass "start with a wrong PIN: 1 VERIFY, 2 tries left, rejection recorded (0600): $(readyz | grep card)"

# 2. SIGHUP with the same PIN file: nothing sent.
reload_gatewayd
wait_for 30 readyz_says "rejected the PIN" || fail "readiness after SIGHUP: $(readyz)"
expect_verifies 1 "SIGHUP with the same PIN file"
pass "SIGHUP with the same PIN file: still 1 VERIFY ($(readyz | grep card))"

# 3. Restart: nothing sent.
stop_gatewayd
start_gatewayd
wait_for 30 readyz_says "rejected the PIN" || fail "readiness after restart: $(readyz)"
expect_verifies 1 "restart with the same PIN file"
pass "restart: still 1 VERIFY"

# 4. demailctl provider probe (another process): exit 3, a clear line, nothing sent.
set +e; out=$("$DEMAILCTL" --config "$STACK/gateway.ini" provider probe 2>&1); rc=$?; set -e
[ "$rc" = 3 ] || fail "probe with the rejected PIN: exit $rc, expected 3: $out"
grep -q "rejected the PIN" <<<"$out" || fail "probe message: $out"
expect_verifies 1 "demailctl provider probe"
pass "demailctl provider probe: exit 3, still 1 VERIFY: $out"

# 5. The right PIN in the file + SIGHUP: logs in (the second VERIFY) and mail flows.
echo 123456 >"$STACK/card.pin"
reload_gatewayd
wait_for 30 curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" -o /dev/null || fail "not ready after the PIN file was fixed: $(readyz)"
expect_verifies 2 "SIGHUP after the PIN file was fixed"
[ ! -e "$STACK/spool/card-pin-rejected" ] || fail "the record outlived the PIN change"
send_mail "after the PIN fix" >/dev/null 2>&1 || fail "intake refused"
wait_for 60 submissions_are 1 || fail "no submission after the fix"
pass "right PIN + SIGHUP: 2 VERIFYs in total, record cleared, mail submitted"

# 6. One try left: the daemon and the probe send nothing, and say what to do.
stop_gatewayd
sel=00:A4:08:0C:04:DF:01:50:49; wrong=00:20:00:83:06:30:30:30:30:30:30
PCSCLITE_CSOCK_NAME="$STACK/pcsc/run/pcscd.comm" opensc-tool -r "Virtual PCD 00 00" -s $sel -s $wrong -s $wrong >/dev/null 2>&1 || true
[ "$(tries)" = 1 ] || fail "could not bring the PIN to one try: $(tries)"
base=$(verifies)
start_gatewayd
wait_for 30 readyz_says "one try left" || fail "readiness with one try left: $(readyz)"
set +e; out=$("$DEMAILCTL" --config "$STACK/gateway.ini" provider probe 2>&1); rc=$?; set -e
[ "$rc" = 4 ] || fail "probe with one try left: exit $rc, expected 4: $out"
expect_verifies "$base" "one try left (daemon start and probe)"
[ "$(tries)" = 1 ] || fail "a try was spent: $(tries)"
pass "one try left: no VERIFY by the daemon or the probe (exit 4): $out"

# The operator verifies by hand (counter back to 3); a reload then logs in.
PCSCLITE_CSOCK_NAME="$STACK/pcsc/run/pcscd.comm" opensc-tool -r "Virtual PCD 00 00" -s $sel -s 00:20:00:83:06:31:32:33:34:35:36 >/dev/null 2>&1 || true
[ "$(tries)" = 3 ] || fail "manual verify did not reset the counter: $(tries)"
reload_gatewayd
wait_for 30 curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" -o /dev/null || fail "not ready after the manual verify: $(readyz)"
pass "after a manual verify, SIGHUP logs in"

# 7. A card whose certificate is not the expected one never gets the PIN (store with another
# certificate); with the card's certificate in the store it logs in.
stop_gatewayd
mkdir -p "$STACK/store"
cp "$STACK/pki/server.pem" "$STACK/store/other.pem"
printf '[certpromote]\nstore = %s\n' "$STACK/store" >>"$STACK/gateway.ini"
base=$(verifies)
start_gatewayd
wait_for 30 readyz_says "not the configured one" || fail "readiness with a foreign card: $(readyz)"
set +e; out=$("$DEMAILCTL" --config "$STACK/gateway.ini" provider probe 2>&1); rc=$?; set -e
[ "$rc" = 5 ] || fail "probe with a foreign card: exit $rc, expected 5: $out"
expect_verifies "$base" "card with an unexpected certificate"
cp "$DEMAIL_CARD_STATE/authentication.pem" "$STACK/store/card.pem"
reload_gatewayd
wait_for 30 curl -sf "http://127.0.0.1:$HEALTH_PORT/readyz" -o /dev/null || fail "not ready with the card's certificate in the store: $(readyz)"
expect_verifies $((base + 1)) "card with the expected certificate"
pass "unexpected certificate: no VERIFY (probe exit 5); expected certificate: logged in"
