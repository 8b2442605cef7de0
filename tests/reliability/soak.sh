#!/usr/bin/env bash
# The long versions of the crash and fault suites (`make soak`, never part of `make test`):
# for SOAK_MINUTES (default 30), alternately the crash suite with SOAK_ROUNDS kills (default 40)
# and the fault suite with the reader gone for READER_GONE_SECONDS (150) as well, each on a fresh
# stack. Stops at the first failure; prints each run's figures and the totals.
#   tests/reliability/soak.sh BUILD_DIR
set -euo pipefail
export DEMAIL_BUILD_DIR=$(cd "${1:?usage: soak.sh BUILD_DIR}" && pwd)
export DEMAIL_SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
minutes=${SOAK_MINUTES:-30}; rounds=${SOAK_ROUNDS:-40}
end=$(( $(date +%s) + minutes * 60 )); runs=0; kills=0
log=$(mktemp /tmp/demail-soak-XXXXXX.log)
echo "soak: $minutes minutes, crash runs of $rounds kills alternating with fault runs; log $log"
while [ "$(date +%s)" -lt "$end" ]; do
  runs=$((runs + 1))
  if [ $((runs % 2)) = 1 ]; then
    ROUNDS=$rounds "$DEMAIL_SOURCE_DIR/tests/reliability/crash_under_load.sh" >"$log.run" 2>&1 ||
      { echo "run $runs (crash) FAILED:"; tail -30 "$log.run"; exit 1; }
    kills=$((kills + rounds))
    echo "run $runs crash: $(grep -E 'sent|lost|inbound' "$log.run" | tr '\n' ' ')"
  else
    READER_GONE_SECONDS=${READER_GONE_SECONDS:-150} \
      "$DEMAIL_SOURCE_DIR/tests/reliability/provider_faults.sh" >"$log.run" 2>&1 ||
      { echo "run $runs (faults) FAILED:"; tail -30 "$log.run"; exit 1; }
    echo "run $runs faults: $(grep -c 'lost 0' "$log.run" || true) faults survived with 0 lost"
  fi
  cat "$log.run" >>"$log"
done
echo "soak passed: $runs runs, $kills kill -9 of the gateway, every message delivered exactly once"
