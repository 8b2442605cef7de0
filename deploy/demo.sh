#!/usr/bin/env bash
# The demo: simulated card on a private pcscd, simulated provider, the gateway, one message through.
# Stage reached so far: the build and the configuration check. The card simulator (issue 2) has
# not landed yet, so this says so and fails rather than pretend.
set -euo pipefail
build_dir=${1:?usage: demo.sh BUILD_DIR}
echo "== demail-gateway demo =="
echo "built: $(ls "$build_dir"/sim/demail-sim 2>/dev/null || echo 'no binaries yet')"
if ! "$build_dir"/sim/demail-sim card --help >/dev/null 2>&1; then
  echo "demo: the TCOS card simulator (demail-sim card, issue 2) is not built yet; nothing to show beyond the build" >&2
  exit 1
fi
