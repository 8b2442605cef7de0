# Shared by the sim.* integration tests: start the fixture in a private temp dir, stop it on exit,
# and small assertions. OpenSC's own tools are the judge of the simulated card throughout.
set -euo pipefail
FIXTURE="${DEMAIL_SOURCE_DIR:?}/tests/fixture/pcsc-fixture.sh"
TEST_DIR=$(mktemp -d /tmp/demail-simtest-XXXXXX)
cleanup() {
  "$FIXTURE" stop "$TEST_DIR" || true
  if [ "${KEEP_TEST_DIR:-0}" != 1 ]; then rm -rf "$TEST_DIR"; fi
}
trap cleanup EXIT

fixture_start() {  # [sim options...]
  "$FIXTURE" start "$TEST_DIR" -- "$@"
  # shellcheck disable=SC1091
  . "$TEST_DIR/env"
}

fail() { echo "FAIL: $*" >&2; echo "--- apdu log tail" >&2; tail -20 "$TEST_DIR/apdu.log" >&2 || true; exit 1; }
pass() { echo "ok: $*"; }

expect_contains() {  # haystack needle what
  grep -qF -- "$2" <<<"$1" || fail "$3: expected '$2' in: $1"
}
expect_not_contains() {
  if grep -qF -- "$2" <<<"$1"; then fail "$3: did not expect '$2' in: $1"; fi
}

# Sends raw APDUs (hex with colons); prints opensc-tool's output.
apdus() {
  local args=()
  for a in "$@"; do args+=(-s "$a"); done
  opensc-tool "${args[@]}" 2>&1 || true
}

tries_left() {  # PIN label as pkcs15-tool -D prints it -> number
  pkcs15-tool -D 2>/dev/null | awk -v want="PIN [$1]" '
    index($0, want) == 1 { inpin = 1; next }
    inpin && /Tries left/ { print $NF; exit }
    /^$/ { if (inpin) exit }'
}
