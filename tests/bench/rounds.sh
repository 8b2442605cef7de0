#!/usr/bin/env bash
# The rate round after round (not a test): does the intake slow down as it runs? ROUNDS rounds of
# Postfix's smtp-source (SESSIONS sessions, SIZE bytes, a new connection per message, MESSAGES per
# round) against demail-gatewayd and Postfix (servers.sh), alternating, both queues emptied
# between rounds; each round's rate and its share of round 1. Then the gateway alone with its
# queue kept (as when the card is away for a while), and after every round what grows: queued
# messages, the size of the queue directory (ext4 never shrinks a directory), the dispatcher's
# state files and the sent journal, the daemon's CPU per second while idle (the dispatcher lists
# the queue once a second), its RSS and threads.
#   tests/bench/rounds.sh BUILD_DIR [OUT_DIR]       (OUT_DIR/rounds.txt)
# How the gateway's queue is emptied between rounds (CLEAR): "delete" (default) with `demailctl
# queue delete -`, the operator's command (the gateway keeps the emptied files for its next
# messages, spool free/); "rm" deletes the files from outside (every inode is freed: on ext4
# without a journal each new file then costs a scan over them for a minute or more, see
# docs/performance.md); "move" renames them out of the spool into a directory of the benchmark.
# Postfix's queue is always deleted with its operator's command (postsuper -d ALL).
# Environment: ROUNDS (5), MESSAGES (5000), SESSIONS (20), SIZE (5120), KEPT (1: the second part),
# CLEAR (delete), SETTLE (0: seconds to wait before round 1).
set -euo pipefail
build=$(cd "${1:?usage: rounds.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-5}; MESSAGES=${MESSAGES:-5000}; SESSIONS=${SESSIONS:-20}; SIZE=${SIZE:-5120}; KEPT=${KEPT:-1}
CLEAR=${CLEAR:-delete}
export GATEWAYD=${GATEWAYD:-$build/gateway/demail-gatewayd}  # GATEWAYD=...: another build (before/after)
[ -x "$GATEWAYD" ] || { echo "build first: $GATEWAYD"; exit 1; }
BENCH_DIR=$(mktemp -d /tmp/demail-bench-XXXXXX); export BENCH_DIR
. "$here/servers.sh"
trap 'bench_stop_servers; rm -rf "$BENCH_DIR"' EXIT
bench_start_servers
started=$(date +%s)
sleep "${SETTLE:-0}"
HZ=$(getconf CLK_TCK)
mkdir -p "$BENCH_DIR/moved"
clear_gateway() {
  case $CLEAR in
    move) find "$GW_SPOOL/queue" -type f -exec mv -t "$BENCH_DIR/moved" {} + 2>/dev/null || true ;;
    rm) find "$GW_SPOOL/queue" -type f -delete 2>/dev/null || true ;;
    *) bench_gw_delete_queue ;;
  esac
}

rate() {  # port: messages / wall time of one smtp-source round
  local a b
  a=$(date +%s.%N)
  smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f a@firma.de -t b@behoerde.de-mail.de \
    -M bench.test "127.0.0.1:$1" >/dev/null 2>&1 || { echo "-"; return; }
  b=$(date +%s.%N)
  awk -v m="$MESSAGES" -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", m / (b - a) }'
}
share() { awk -v x="$1" -v f="$2" 'BEGIN { if (f > 0 && x != "-") printf "%.0f%%", 100 * x / f; else print "-" }'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }

{
echo "rate per round: smtp-source $SESSIONS sessions x $SIZE B, $MESSAGES messages a round, a new connection per message"
echo "$(nproc) cores; both queues emptied between rounds (gateway: CLEAR=$CLEAR); load average at each round's start"
printf '%5s | %8s %5s | %8s %5s | %5s\n' round "gw msg/s" "of 1" "pf msg/s" "of 1" load
} | tee "$out/rounds.txt"
gw1=0; pf1=0
for r in $(seq 1 "$ROUNDS"); do
  l=$(cut -d' ' -f1 /proc/loadavg)
  clear_gateway; bench_clear_queues; g=$(rate "$GW_PORT")
  clear_gateway; bench_clear_queues; p=$(rate "$PF_PORT")
  [ "$r" = 1 ] && { gw1=$g; pf1=$p; }
  printf '%5s | %8s %5s | %8s %5s | %5s\n' "$r" "$g" "$(share "$g" "$gw1")" "$p" "$(share "$p" "$pf1")" "$l" | tee -a "$out/rounds.txt"
done
bench_clear_queues

if [ "$KEPT" = 1 ]; then
  {
  echo
  echo "the gateway with its queue kept (no card: nothing leaves), and what grows after each round"
  printf '%5s | %8s %5s | %7s %9s %8s %6s | %11s %7s %7s | %5s\n' round "gw msg/s" "of 1" queued "dir KB" dispatch sent \
    "idle ms/s" "RSS MB" threads load
  } | tee -a "$out/rounds.txt"
  for r in $(seq 1 "$ROUNDS"); do
    l=$(cut -d' ' -f1 /proc/loadavg)
    g=$(rate "$GW_PORT")
    [ "$r" = 1 ] && gw1=$g
    sleep 1  # let the dispatcher take in the new mail
    c0=$(cpu_ticks); sleep 3; c1=$(cpu_ticks)
    printf '%5s | %8s %5s | %7s %9s %8s %6s | %11s %7s %7s | %5s\n' "$r" "$g" "$(share "$g" "$gw1")" \
      "$(bench_gw_queued)" "$(( $(stat -c %s "$GW_SPOOL/queue") / 1024 ))" "$(find "$GW_SPOOL/dispatch" -type f | wc -l)" \
      "$(find "$GW_SPOOL/sent" -type f 2>/dev/null | wc -l)" \
      "$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { printf "%.0f", (b - a) * 1000 / hz / 3 }')" \
      "$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$GW_PID/status")" \
      "$(ls "/proc/$GW_PID/task" | wc -l)" "$l" | tee -a "$out/rounds.txt"
  done
  bench_clear_queues
fi
echo "took $(( $(date +%s) - started )) s" | tee -a "$out/rounds.txt"
