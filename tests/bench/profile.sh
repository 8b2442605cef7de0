#!/usr/bin/env bash
# Where demail-gatewayd's time goes at one intake point (not a test): the servers of servers.sh,
# a steady load from demail-smtp-load, and meanwhile
#  - perf record (on-CPU samples with DWARF call graphs) of the daemon: the top symbols by self
#    time, by shared object, and with children (inclusive);
#  - perf trace -s: the daemon's system calls, how many and how long (fsync and friends: the
#    off-CPU side, which perf record does not see).
#   tests/bench/profile.sh BUILD_DIR [OUT_DIR]       (OUT_DIR/profile.txt, about 40 s)
# Environment: SESSIONS (32), SIZE (1024), MODE (plain|starttls), SECONDS_RECORDED (6).
set -euo pipefail
build=$(cd "${1:?usage: profile.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
SESSIONS=${SESSIONS:-32}; SIZE=${SIZE:-1024}; MODE=${MODE:-plain}; REC=${SECONDS_RECORDED:-6}
LOAD=$build/tests/bench/demail-smtp-load
export GATEWAYD=$build/gateway/demail-gatewayd
PERF=${PERF:-$(command -v perf || true)}
if [ -z "$PERF" ]; then echo "profile: no perf (linux-perf); skipped"; exit 0; fi
if [ ! -x "$LOAD" ] || [ ! -x "$GATEWAYD" ]; then echo "build first: $LOAD, $GATEWAYD"; exit 1; fi
BENCH_DIR=$(mktemp -d /tmp/demail-bench-XXXXXX); export BENCH_DIR
. "$here/servers.sh"
load_pid=
cleanup() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; fi
  bench_stop_servers; rm -rf "$BENCH_DIR"
}
trap cleanup EXIT
bench_start_gateway
tls=(); [ "$MODE" = starttls ] && tls=(--starttls)

# A load that outlasts the recording: about 3000 messages/s at most, for 3 recordings and slack.
loaded() {  # runs "$@" while the gateway is under load
  bench_clear_queues
  "$LOAD" --port "$GW_PORT" --sessions "$SESSIONS" --messages $(( (REC * 3 + 10) * 3000 )) \
    --size "$SIZE" "${tls[@]}" --timeout 120 >"$BENCH_DIR/load.out" 2>&1 &
  load_pid=$!
  sleep 1   # past the connection ramp
  local q0 t0 q1 t1
  q0=$(bench_gw_queued); t0=$(date +%s.%N)
  "$@"
  q1=$(bench_gw_queued); t1=$(date +%s.%N)
  echo "(accepted while recording: $(awk -v n=$((q1 - q0)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }') msg/s)"
  kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; load_pid=
}

exec > >(tee "$out/profile.txt")
echo "profile: demail-gatewayd, $SESSIONS sessions x $SIZE B $MODE, $REC s recorded, load $(cut -d' ' -f1-3 /proc/loadavg)"
loaded "$PERF" record -F 499 --call-graph dwarf,16384 -p "$GW_PID" -o "$BENCH_DIR/perf.data" \
  -- sleep "$REC" 2>"$BENCH_DIR/record.err"
tail -1 "$BENCH_DIR/record.err"
report() {  # lines percent-limit perf-report-options...
  { "$PERF" report -i "$BENCH_DIR/perf.data" --stdio --percent-limit "$2" "${@:3}" 2>/dev/null || true; } \
    | grep -v -e '^#' -e '^$' | sed -e 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' | cut -c1-150 \
    | head -"$1" || true
}
echo; echo "== on-CPU, self time by symbol (top 25) =="
report 25 1 --no-children --sort symbol -g none
echo; echo "== on-CPU, self time by shared object =="
report 12 1 --no-children --sort dso -g none
echo; echo "== on-CPU, inclusive (children) by symbol (top 30) =="
report 30 3 --children --sort symbol -g none
echo; echo "== system calls of the daemon over ${REC} s (perf trace -s) =="
if loaded "$PERF" trace -s -p "$GW_PID" -o "$BENCH_DIR/trace.txt" -- sleep "$REC" 2>/dev/null; then
  # Every thread's table summed per syscall: calls, total ms.
  awk '$1 ~ /^[a-z_0-9]+$/ && $2 ~ /^[0-9]+$/ && NF >= 8 { c[$1] += $2; t[$1] += $4 }
       END { for (k in c) printf "%-18s %9d calls %12.1f ms\n", k, c[k], t[k] }' "$BENCH_DIR/trace.txt" \
    | sort -k4 -n -r | head -15
else
  echo "(perf trace unavailable)"
fi
