#!/usr/bin/env bash
# Intake benchmark (not a test): demail-gatewayd and Postfix side by side, same machine, same run,
# same durability (fsync before 250). For every point of sessions x size x {plain, STARTTLS}:
# accepted messages per second and the latency from the end of DATA to the 250 (p50, p99), with
# demail-smtp-load; plain points are cross-checked with Postfix's smtp-source.
#   tests/bench/intake-matrix.sh BUILD_DIR [OUT_DIR]
# Environment: SESSIONS ("1 8 32 128"), SIZES ("1024 102400 10485760"), MODES ("plain starttls"),
# BUDGET_MB (bytes per point, 200), MAX_MESSAGES (4000).
set -euo pipefail
build=$(cd "${1:?usage: intake-matrix.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
SESSIONS=${SESSIONS:-1 8 32 128}; SIZES=${SIZES:-1024 102400 10485760}; MODES=${MODES:-plain starttls}
BUDGET_MB=${BUDGET_MB:-200}; MAX_MESSAGES=${MAX_MESSAGES:-4000}
LOAD=$build/tests/bench/demail-smtp-load
export GATEWAYD=$build/gateway/demail-gatewayd
export BENCH_DIR=$(mktemp -d /tmp/demail-bench-XXXXXX)
. "$here/servers.sh"
trap 'bench_stop_servers; rm -rf "$BENCH_DIR"' EXIT
bench_start_servers

field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }
smtp_source_rate() {  # port sessions messages size
  local a b
  a=$(date +%s.%N)
  smtp-source -s "$2" -m "$3" -l "$4" -f a@firma.de -t b@behoerde.de-mail.de -M bench.test \
    "127.0.0.1:$1" >/dev/null 2>&1 || { echo "-"; return; }
  b=$(date +%s.%N)
  awk -v m="$3" -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", m / (b - a) }'
}

tsv=$out/intake.tsv
printf 'server\tmode\tsessions\tsize\tmessages\tmsgs_per_s\tp50_ms\tp99_ms\tmax_ms\terrors\tsmtp_source_msgs_per_s\n' >"$tsv"
echo "intake: demail-gatewayd vs Postfix $(postconf -d mail_version 2>/dev/null | awk '{print $3}'), fsync before 250, loopback, $(nproc) cores"
printf '%-8s %5s %9s | %9s %8s %8s | %9s %8s %8s | %6s | %s\n' mode sess size "gw msg/s" "p50 ms" "p99 ms" \
  "pf msg/s" "p50 ms" "p99 ms" ratio "smtp-source gw/pf msg/s"
for mode in $MODES; do
  for size in $SIZES; do
    for s in $SESSIONS; do
      m=$(( BUDGET_MB * 1048576 / size )); [ "$m" -le "$MAX_MESSAGES" ] || m=$MAX_MESSAGES
      [ "$m" -ge "$s" ] || m=$s
      declare -A rate p50 p99 ss
      for server in gateway postfix; do
        port=$GW_PORT; [ "$server" = postfix ] && port=$PF_PORT
        bench_clear_queues
        tls=(); [ "$mode" = starttls ] && tls=(--starttls)
        line=$("$LOAD" --port "$port" --sessions "$s" --messages "$m" --size "$size" "${tls[@]}" \
               --from a@firma.de --to b@behoerde.de-mail.de --helo bench.test --timeout 120 || true)
        rate[$server]=$(field "$line" msgs_per_s); p50[$server]=$(field "$line" p50_ms)
        p99[$server]=$(field "$line" p99_ms)
        ss[$server]=-
        if [ "$mode" = plain ]; then bench_clear_queues; ss[$server]=$(smtp_source_rate "$port" "$s" "$m" "$size"); fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$mode" "$s" "$size" "$m" \
          "${rate[$server]}" "${p50[$server]}" "${p99[$server]}" "$(field "$line" max_ms)" \
          "$(field "$line" errors)" "${ss[$server]}" >>"$tsv"
      done
      printf '%-8s %5s %9s | %9s %8s %8s | %9s %8s %8s | %6s | %s / %s\n' "$mode" "$s" "$size" \
        "${rate[gateway]}" "${p50[gateway]}" "${p99[gateway]}" "${rate[postfix]}" "${p50[postfix]}" \
        "${p99[postfix]}" "$(awk -v g="${rate[gateway]:-0}" -v p="${rate[postfix]:-0}" 'BEGIN { if (p > 0) printf "%.2f", g / p; else print "-" }')" \
        "${ss[gateway]}" "${ss[postfix]}"
    done
  done
done
bench_clear_queues
echo "raw: $tsv"
