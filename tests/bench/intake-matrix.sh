#!/usr/bin/env bash
# Intake benchmark (not a test): demail-gatewayd and Postfix side by side, same machine, same run,
# same durability (fsync before 250). For every point of sessions x size x {plain, STARTTLS}:
# accepted messages per second and the latency from the end of DATA to the 250 (p50, p99), with
# demail-smtp-load; plain points are cross-checked with Postfix's smtp-source. After each run the
# server's queue is counted (every 250 must be a queued message) and emptied.
#   tests/bench/intake-matrix.sh BUILD_DIR [OUT_DIR]
# Writes OUT_DIR/intake.tsv (raw) and OUT_DIR/intake.txt (the table, also on stdout).
# Environment: SESSIONS ("1 8 32 128"), SIZES ("1024 102400 10485760"), MODES ("plain starttls"),
# BUDGET_MB (bytes per point and server, 100), MAX_MESSAGES (3000), at least 2 messages per
# session; SS_FRACTION (share of those messages smtp-source sends, 0.5), SMTP_SOURCE (1; 0: skip);
# WARMUP (3000): messages of 1 KB sent to each server over 8 sessions before the first point and
# then deleted with its operator command, so that both start as they run: the gateway reuses the
# files of removed messages (spool free/), and without this its first 3000 files are new inodes,
# which on ext4 without a journal cost a scan over the file system's recent deletions
# (docs/performance.md, "The file system's own cost"). Postfix gets the same warm-up.
set -euo pipefail
build=$(cd "${1:?usage: intake-matrix.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
SESSIONS=${SESSIONS:-1 8 32 128}; SIZES=${SIZES:-1024 102400 10485760}; MODES=${MODES:-plain starttls}
BUDGET_MB=${BUDGET_MB:-100}; MAX_MESSAGES=${MAX_MESSAGES:-3000}
SS_FRACTION=${SS_FRACTION:-0.5}; SMTP_SOURCE=${SMTP_SOURCE:-1}
LOAD=$build/tests/bench/demail-smtp-load
export GATEWAYD=$build/gateway/demail-gatewayd
if [ ! -x "$LOAD" ] || [ ! -x "$GATEWAYD" ]; then echo "build first: $LOAD, $GATEWAYD"; exit 1; fi
BENCH_DIR=$(mktemp -d /tmp/demail-bench-XXXXXX); export BENCH_DIR
. "$here/servers.sh"
trap 'bench_stop_servers; rm -rf "$BENCH_DIR"' EXIT
bench_start_servers
started=$(date +%s)
WARMUP=${WARMUP:-3000}
if [ "$WARMUP" -gt 0 ]; then
  for port in "$GW_PORT" "$PF_PORT"; do
    "$LOAD" --port "$port" --sessions 8 --messages "$WARMUP" --size 1024 --timeout 120 >/dev/null 2>&1 || true
  done
  sleep 1  # Postfix's queue manager moves the last ones to deferred
  bench_clear_queues
fi

# smtp-source (Postfix's load generator: no TLS, no latency, one connection per message unless
# told otherwise) as a second opinion on the rate: messages / wall time.
smtp_source_rate() {  # port sessions messages size
  local a b
  a=$(date +%s.%N)
  smtp-source -s "$2" -m "$3" -l "$4" -f a@firma.de -t b@behoerde.de-mail.de -M bench.test \
    "127.0.0.1:$1" >/dev/null 2>&1 || { echo "-"; return; }
  b=$(date +%s.%N)
  awk -v m="$3" -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", m / (b - a) }'
}
queued() { if [ "$1" = gateway ]; then bench_gw_queued; else bench_pf_queued; fi; }
# Postfix's qmgr moves what cleanup committed from incoming to deferred after the 250; wait until
# the count stops changing (at most 5 s) so the check sees every message.
settled_queued() {
  local n m
  n=$(queued "$1")
  for _ in $(seq 1 50); do sleep 0.1; m=$(queued "$1"); [ "$m" = "$n" ] && break; n=$m; done
  echo "$n"
}

tsv=$out/intake.tsv
{
printf 'server\tmode\tsessions\tsize\tmessages\tmsgs_per_s\tp50_ms\tp99_ms\tmax_ms\terrors\tsmtp_source_msgs_per_s'
printf '\tok\tqueued\tseconds\tsmtp_source_messages\ttxn_p50_ms\ttxn_p99_ms\n'
} >"$tsv"
{
echo "intake: demail-gatewayd vs Postfix $(postconf -d mail_version 2>/dev/null | awk '{print $3}'), fsync before 250, loopback, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rate: accepted msg/s (demail-smtp-load, connections kept); p50/p99: end of DATA to 250; ratio: gateway/postfix rate"
echo "txn p99: MAIL FROM to the 250 after DATA, the whole transaction a client waits for (gateway/postfix)"
printf '%-8s %4s %7s | %8s %7s %7s | %8s %7s %7s | %5s | %-15s | %-15s | %s\n' mode sess size "gw msg/s" "p50 ms" "p99 ms" \
  "pf msg/s" "p50 ms" "p99 ms" ratio "txn p99 gw/pf" "smtp-source gw/pf" "check"
} | tee "$out/intake.txt"
human() { case $1 in 1024) echo 1KB;; 102400) echo 100KB;; 10485760) echo 10MB;; *) echo "$1";; esac; }
for mode in $MODES; do
  for size in $SIZES; do
    for s in $SESSIONS; do
      m=$(( BUDGET_MB * 1048576 / size )); [ "$m" -le "$MAX_MESSAGES" ] || m=$MAX_MESSAGES
      [ "$m" -ge $((2 * s)) ] || m=$((2 * s))
      ssm=$(awk -v m="$m" -v f="$SS_FRACTION" -v s="$s" 'BEGIN { n = int(m * f); if (n < 2 * s) n = 2 * s; print n }')
      declare -A rate p50 p99 ss txn
      check=ok
      for server in gateway postfix; do
        port=$GW_PORT; [ "$server" = postfix ] && port=$PF_PORT
        bench_clear_queues
        tls=(); [ "$mode" = starttls ] && tls=(--starttls)
        line=$("$LOAD" --port "$port" --sessions "$s" --messages "$m" --size "$size" "${tls[@]}" \
               --from a@firma.de --to b@behoerde.de-mail.de --helo bench.test --timeout 120 2>"$BENCH_DIR/load.err" || true)
        rate[$server]=$(field "$line" msgs_per_s); p50[$server]=$(field "$line" p50_ms)
        p99[$server]=$(field "$line" p99_ms); txn[$server]=$(field "$line" txn_p99_ms)
        ok=$(field "$line" ok); errors=$(field "$line" errors); q=$(settled_queued "$server")
        if [ -z "$line" ] || [ "${errors:-1}" != 0 ]; then
          check="$server errors=${errors:-?}: $(head -c 200 "$BENCH_DIR/load.err" | tr '\n' ' ')"
        elif [ "$q" != "$ok" ]; then
          check="$server: $ok answered 250, $q queued"
        fi
        ss[$server]=-
        if [ "$mode" = plain ] && [ "$SMTP_SOURCE" = 1 ]; then
          bench_clear_queues; ss[$server]=$(smtp_source_rate "$port" "$s" "$ssm" "$size")
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$mode" "$s" "$size" "$m" \
          "${rate[$server]}" "${p50[$server]}" "${p99[$server]}" "$(field "$line" max_ms)" \
          "${errors:-}" "${ss[$server]}" "${ok:-}" "$q" "$(field "$line" seconds)" "$ssm" \
          "$(field "$line" txn_p50_ms)" "${txn[$server]}" >>"$tsv"
      done
      printf '%-8s %4s %7s | %8s %7s %7s | %8s %7s %7s | %5s | %-15s | %-15s | %s\n' "$mode" "$s" "$(human "$size")" \
        "${rate[gateway]}" "${p50[gateway]}" "${p99[gateway]}" "${rate[postfix]}" "${p50[postfix]}" \
        "${p99[postfix]}" "$(awk -v g="${rate[gateway]:-0}" -v p="${rate[postfix]:-0}" 'BEGIN { if (p > 0) printf "%.2f", g / p; else print "-" }')" \
        "${txn[gateway]}/${txn[postfix]}" "${ss[gateway]}/${ss[postfix]}" "$check" | tee -a "$out/intake.txt"
    done
  done
done
bench_clear_queues
echo "matrix took $(( $(date +%s) - started )) s; raw: $tsv" | tee -a "$out/intake.txt"
