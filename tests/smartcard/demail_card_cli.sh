#!/usr/bin/env bash
# demail-card against the real pcscd and the simulated card: every command and failure, with the
# exit codes of DESIGN.md (3 wrong PIN, 4 blocked, 5 no reader or card).
. "${DEMAIL_SOURCE_DIR:?}/tests/sim/lib.sh"
CARD="$DEMAIL_BUILD_DIR/smartcard/demail-card"
fixture_start

run() {  # expected-exit stdin-lines... -- args...
  local want=$1; shift
  local input=""
  while [ "$1" != "--" ]; do input+="$1"$'\n'; shift; done
  shift
  set +e
  out=$(printf '%s' "$input" | "$CARD" --reader "$DEMAIL_READER" "$@" 2>&1)
  rc=$?
  set -e
  [ "$rc" = "$want" ] || fail "demail-card $* exited $rc, expected $want: $out"
}

run 0 -- status
expect_contains "$out" "TeleSec TCOS 3 NetKey" "status"
expect_contains "$out" "89490170000000012345" "serial"
expect_contains "$out" "3 tries left  <- TLS key" "PIN2 tries"
run 0 -- status --json
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["serial"]=="89490170000000012345"; assert [p for p in d["pins"] if p["ref"]=="83"][0]["tries_left"]==3; assert len(d["certificates"])==3' <<<"$out" ||
  fail "status --json: $out"
pass "status, text and JSON"

# The reader from [card] reader of the configuration, read through the config module: the other
# sections are checked by name only (an [smtp] the daemon would refuse, no [provider] url).
cat >"$TEST_DIR/gw.ini" <<INI
[smtp]
require_tls = true
[card]
reader = $DEMAIL_READER   ; the simulated reader
INI
out=$("$CARD" --config "$TEST_DIR/gw.ini" status 2>&1) || fail "status with [card] reader: $out"
expect_contains "$out" "89490170000000012345" "status through [card] reader"
sed 's/^require_tls/require_tsl/' "$TEST_DIR/gw.ini" >"$TEST_DIR/typo.ini"
set +e; out=$("$CARD" --config "$TEST_DIR/typo.ini" status 2>&1); rc=$?; set -e
[ "$rc" = 2 ] && [ "$out" = "demail-card: [smtp] require_tsl: unknown key (see docs/configuration.md)" ] ||
  fail "unknown key: rc $rc $out"
printf '[card]\nkey_uri = token=x\n' >"$TEST_DIR/bad.ini"
set +e; out=$("$CARD" --config "$TEST_DIR/bad.ini" status 2>&1); rc=$?; set -e
[ "$rc" = 2 ] && [ "$out" = "demail-card: [card] key_uri: expected a pkcs11: URI (RFC 7512), got 'token=x'" ] ||
  fail "bad [card] value: rc $rc $out"
set +e; out=$("$CARD" --config "$TEST_DIR/none.ini" status 2>&1); rc=$?; set -e
[ "$rc" = 2 ] || fail "a missing --config file: rc $rc $out"
pass "configuration: [card] reader used, other sections by name only; unknown key or bad [card] value exit 2"

run 0 -- certs list
expect_contains "$out" "CN=poststelle@firma.de-mail.de" "certs list"
run 0 -- certs export --out "$TEST_DIR/export"
for c in signature encryption authentication; do
  openssl x509 -in "$TEST_DIR/export/$c.pem" -noout || fail "exported $c.pem is not a certificate"
done
cmp <(openssl x509 -in "$TEST_DIR/export/authentication.pem" -outform DER) \
    <(openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -outform DER) || fail "exported auth cert differs"
pass "certs list and export"

# Run as root into a directory someone else can write to: planted links are not followed
# (security review L10); an existing file needs --force, which replaces the link, not its target.
E="$TEST_DIR/export-planted"; mkdir -p "$E"
echo victim >"$TEST_DIR/victim"
ln -s "$TEST_DIR/victim" "$E/authentication.pem"
ln -s "$TEST_DIR/created-by-export" "$E/signature.pem"
run 1 -- certs export --out "$E"
expect_contains "$out" "it exists or is a link; --force replaces it" "export onto a planted link"
run 0 -- certs export --out "$E" --force
[ "$(cat "$TEST_DIR/victim")" = victim ] || fail "export wrote through a symlink"
[ ! -e "$TEST_DIR/created-by-export" ] || fail "export created the dangling link's target"
for c in signature encryption authentication; do
  [ -f "$E/$c.pem" ] && [ ! -L "$E/$c.pem" ] || fail "$c.pem is not a regular file"
  openssl x509 -in "$E/$c.pem" -noout || fail "$c.pem after --force"
done
pass "certs export follows no planted link (victim and dangling target untouched); --force replaces the links"

run 1 12345 654321 -- pin change --pin-stdin
expect_contains "$out" "the current PIN must have 6 to 16" "too short PIN"
[ "$(tries_left 'NetKey PIN2')" = 3 ] || fail "a PIN of impossible length must not reach the card"
run 3 000000 111111 -- pin change --pin-stdin
expect_contains "$out" "wrong PIN, 2 tries left" "wrong PIN message"
[ "$(tries_left 'NetKey PIN2')" = 2 ] || fail "a wrong PIN must cost exactly one try"
if grep -q "000000\|111111" <<<"$out"; then fail "a PIN was echoed"; fi
run 3 000000 111111 -- pin change --pin-stdin
run 1 000000 111111 -- pin change --pin-stdin
expect_contains "$out" "one try left" "refuses the last try without --force"
[ "$(tries_left 'NetKey PIN2')" = 1 ] || fail "refused attempt must not touch the card"
run 4 000000 111111 -- pin change --pin-stdin --force
[ "$(tries_left 'NetKey PIN2')" = 0 ] || fail "blocked"
run 4 123456 654321 -- pin change --pin-stdin
expect_contains "$out" "blocked" "change on a blocked PIN"
pass "wrong PIN: exit 3 and one try each; last try needs --force; blocked: exit 4"

run 3 00000000 654321 -- pin unblock --pin-stdin
expect_contains "$out" "wrong PUK, 9 PUK tries left" "wrong PUK"
run 0 12345678 654321 -- pin unblock --pin-stdin
[ "$(tries_left 'NetKey PIN2')" = 3 ] || fail "unblocked PIN has 3 tries"
run 0 654321 24681357 -- pin change --pin-stdin
pkcs15-tool --verify-pin --auth-id 03 --pin 24681357 >/dev/null 2>&1 || fail "changed PIN does not verify"
pass "unblock with the PUK, then change"

"$FIXTURE" card-pull "$TEST_DIR"
run 5 -- status
expect_contains "$out" "insert the De-Mail card" "no card"
"$FIXTURE" card-insert "$TEST_DIR"
"$FIXTURE" pcscd-stop "$TEST_DIR"
run 5 -- status
expect_contains "$out" "pcscd" "no service"
"$FIXTURE" pcscd-start "$TEST_DIR"
run 0 -- status
pass "no card and no pcscd: exit 5 with a reason; works again when they are back"

"$FIXTURE" sim-restart "$TEST_DIR" -- --remove-after 6
run 5 -- status
pass "card pulled in the middle of a command: exit 5, no hang"

"$FIXTURE" stop "$TEST_DIR"
rm -rf "$TEST_DIR/card"
fixture_start --sealed
run 0 -- status
expect_contains "$out" "not set (sealed, NullPIN)" "sealed status"
run 0 135790 -- pin init --pin-stdin
pkcs15-tool --verify-pin --auth-id 03 --pin 135790 >/dev/null 2>&1 || fail "initialised PIN does not verify"
run 1 246802 -- pin init --pin-stdin
expect_contains "$out" "already set" "second init"
run 2 -- frobnicate
pass "sealed card: pin init once; usage errors exit 2"
