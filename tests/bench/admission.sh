#!/usr/bin/env bash
# The tail at many sessions (not a test): end-of-DATA latency at SESSIONS (128) sessions for the
# gateway without the DATA admission (max_concurrent_data = 0: every session commits when its
# "." arrives), with it (the default, 32 sessions in DATA at once, the rest wait before the 354),
# and Postfix, interleaved, RUNS (3) times; the median run by p99 is shown with its load average.
#   tests/bench/admission.sh BUILD_DIR [OUT_DIR]      (OUT_DIR/admission.txt)
# Environment: SESSIONS (128), SIZES ("1024 102400"), MODES ("plain starttls"), RUNS (3),
# MESSAGES (3000), LIMIT (the max_concurrent_data of "limited"; empty: the default).
set -euo pipefail
build=$(cd "${1:?usage: admission.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
SESSIONS=${SESSIONS:-128}; SIZES=${SIZES:-1024 102400}; MODES=${MODES:-plain starttls}
RUNS=${RUNS:-3}; MESSAGES=${MESSAGES:-3000}
LOAD=$build/tests/bench/demail-smtp-load
export GATEWAYD=$build/gateway/demail-gatewayd
if [ ! -x "$LOAD" ] || [ ! -x "$GATEWAYD" ]; then echo "build first: $LOAD, $GATEWAYD"; exit 1; fi
root=$(mktemp -d /tmp/demail-bench-XXXXXX); chmod 755 "$root"  # Postfix (user postfix) reads below it
. "$here/servers.sh"
declare -A port pid spool
cleanup() {
  for k in open limited; do [ -n "${pid[$k]:-}" ] && kill "${pid[$k]}" 2>/dev/null && wait "${pid[$k]}" 2>/dev/null; done
  bench_stop_postfix; rm -rf "$root"
}
trap cleanup EXIT
for k in open limited; do
  BENCH_DIR=$root/$k; mkdir -p "$BENCH_DIR"; export BENCH_DIR
  [ -f "$root/open/cert.pem" ] && cp "$root/open/cert.pem" "$root/open/key.pem" "$BENCH_DIR/"
  extra=; [ "$k" = open ] && extra="max_concurrent_data = 0"
  [ "$k" = limited ] && [ -n "${LIMIT:-}" ] && extra="max_concurrent_data = $LIMIT"
  GW_SMTP_EXTRA=$extra bench_start_gateway
  port[$k]=$GW_PORT; pid[$k]=$GW_PID; spool[$k]=$GW_SPOOL
done
GW_SPOOL=; bench_start_postfix   # in $root/limited, the same certificate
started=$(date +%s)

clear_all() {
  local k
  for k in open limited; do find "${spool[$k]}/queue" -type f -delete 2>/dev/null || true; done
  bench_clear_queues
}
{
echo "end of DATA to 250 at $SESSIONS sessions: the gateway without the DATA admission (open), with it (limited: max_concurrent_data ${LIMIT:-default}), Postfix"
echo "$(nproc) cores; median run of $RUNS by p99; rate msg/s, p50/p99 end of DATA, txn p99 (MAIL FROM to 250), load at the run's start"
printf '%-8s %6s | %-30s | %-30s | %-30s\n' mode size "gw open: rate p50/p99 txn99 ld" "gw limited: rate p50/p99 txn99 ld" "postfix: rate p50/p99 txn99 ld"
} | tee "$out/admission.txt"
for mode in $MODES; do
  for size in $SIZES; do
    rm -f "$root"/rows.*
    for r in $(seq 1 "$RUNS"); do
      for k in open limited postfix; do
        p=$PF_PORT; [ "$k" = postfix ] || p=${port[$k]}
        clear_all
        tls=(); [ "$mode" = starttls ] && tls=(--starttls)
        l=$(cut -d' ' -f1 /proc/loadavg)
        line=$("$LOAD" --port "$p" --sessions "$SESSIONS" --messages "$MESSAGES" --size "$size" "${tls[@]}" \
               --timeout 120 2>/dev/null || true)
        echo "$(field "$line" p99_ms) $(field "$line" msgs_per_s) $(field "$line" p50_ms) $(field "$line" txn_p99_ms) $l $(field "$line" errors)" >>"$root/rows.$k"
      done
    done
    cells=()
    for k in open limited postfix; do
      read -r p99 rate p50 txn l errs <<<"$(sort -g "$root/rows.$k" | sed -n "$(( (RUNS + 1) / 2 ))p")"
      cells+=("$(printf '%7s %6s/%-7s %7s %5s' "$rate" "$p50" "$p99" "$txn" "$l")$([ "${errs:-0}" = 0 ] || echo " errors=$errs")")
    done
    printf '%-8s %6s | %-30s | %-30s | %-30s\n' "$mode" "$size" "${cells[@]}" | tee -a "$out/admission.txt"
  done
done
clear_all
echo "took $(( $(date +%s) - started )) s" | tee -a "$out/admission.txt"
