#!/usr/bin/env bash
# The demo: the simulated TCOS card on a private pcscd, then (as the product grows) the simulated
# provider and the gateway with one message through it. Stage 1: the card, as OpenSC sees it, and
# a TLS-style signature made with its authentication key.
set -euo pipefail
build_dir=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
export DEMAIL_BUILD_DIR="$build_dir"
fixture="$src_dir/tests/fixture/pcsc-fixture.sh"
demo_dir=$(mktemp -d /tmp/demail-demo-XXXXXX)
cleanup() { "$fixture" stop "$demo_dir" >/dev/null 2>&1 || true; rm -rf "$demo_dir"; }
trap cleanup EXIT

heading() { printf '\n== %s ==\n' "$*"; }

heading "1. A simulated TeleSec TCOS 3 card in a virtual reader (private pcscd)"
"$fixture" start "$demo_dir"
# shellcheck disable=SC1091
. "$demo_dir/env"
echo "reader: $DEMAIL_READER   (pcscd socket $PCSCLITE_CSOCK_NAME)"
opensc-tool -l 2>/dev/null | sed 's/^/  /'

heading "2. What OpenSC's TCOS driver sees: ATR and driver"
opensc-tool -a -n 2>/dev/null | sed 's/^/  /'

heading "3. PINs, keys and certificates (pkcs15-tool)"
pkcs15-tool -D 2>/dev/null | grep -E '^(PIN|Private RSA Key|PKCS#15 Card)|Tries left|Key ref|Reference' | sed 's/^/  /'
pkcs15-tool --list-certificates 2>/dev/null | grep -E '^X.509' | sed 's/^/  /'
echo "  authentication certificate:"
openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -noout -subject -issuer -enddate | sed 's/^/    /'

heading "4. A signature with the TLS key (id 47, PIN 0x83) through PKCS#11, checked by openssl"
printf 'demail-gateway demo\n' >"$demo_dir/data"
pkcs11-tool --token-label "NetKey V3 Card (NetKey PIN2)" --login --pin 123456 --sign --id 47 \
  -m SHA256-RSA-PKCS -i "$demo_dir/data" -o "$demo_dir/sig" 2>&1 | sed 's/^/  /'
openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -pubkey -noout >"$demo_dir/pub.pem"
openssl dgst -sha256 -verify "$demo_dir/pub.pem" -signature "$demo_dir/sig" "$demo_dir/data" | sed 's/^/  /'

heading "Not yet in the demo"
echo "  The simulated provider, the gateway and a message through it arrive with issues 4-6."
