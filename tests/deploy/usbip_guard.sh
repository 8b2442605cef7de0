#!/usr/bin/env bash
# usbip-keep-attached attaches a reader only over a protected link (the PIN crosses USB/IP in
# clear): over the loopback route it refuses, unless the operator names the device as trusted.
# `usbip` is replaced by a recorder; `ip` and `getent` are the real ones.
set -euo pipefail
S=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/demail-usbip-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$T/bin"
cat > "$T/bin/usbip" <<SH
#!/bin/sh
echo "\$*" >> "$T/calls"
SH
chmod +x "$T/bin/usbip"

PATH="$T/bin:$PATH" timeout 3 "$S/deploy/usbip-keep-attached" 127.0.0.1:1-2 2>"$T/err" >/dev/null || true
grep -q "refusing to attach 1-2 on 127.0.0.1: the route leaves through 'lo'" "$T/err" || fail "no refusal: $(cat "$T/err")"
if grep -q "^attach" "$T/calls" 2>/dev/null; then fail "attached over an unprotected link"; fi
echo "ok: over a plain route (lo) the reader is not attached, with a clear message"

PATH="$T/bin:$PATH" USBIP_TRUSTED_DEVICES="eth9 lo" timeout 3 "$S/deploy/usbip-keep-attached" 127.0.0.1:1-2 >/dev/null 2>&1 || true
grep -q "^attach --remote=127.0.0.1 --busid=1-2" "$T/calls" || fail "not attached over a trusted device: $(cat "$T/calls")"
echo "ok: over a device named in USBIP_TRUSTED_DEVICES it attaches"
