#!/usr/bin/env bash
# One message per new STARTTLS connection (not a test): how relays such as Postfix and Exchange
# deliver at low load, so every message pays a TCP connection, a greeting, a TLS handshake and a
# second EHLO. demail-gatewayd and Postfix side by side (servers.sh: the same RSA-2048 test
# certificate, the same durability), 1 and 8 clients, each point RUNS times; the median run is
# shown with the load average at its start.
#   tests/bench/tls-connect.sh BUILD_DIR [OUT_DIR]       (OUT_DIR/tls-connect.txt, .tsv)
# Clients:
#   load    demail-smtp-load --per-connection 1 (C++, OpenSSL, TCP_NODELAY), full handshakes;
#   resume  the same offering the previous connection's session (as relays with a session cache
#           do: Postfix's smtp_tls_session_cache_database, Exchange);
#   py      Python's smtplib in CLIENTS processes (no TCP_NODELAY, the OpenSSL of Python), full
#           handshakes: a second client, since a server's stalls depend on the client's ACKs.
# Columns: msg/s, p99 of end of DATA to 250, and the mean ms per step of a connection (connect and
# greeting, EHLO, STARTTLS, handshake, EHLO after STARTTLS, MAIL..250, QUIT).
# Environment: CLIENTS ("1 8"), RUNS (3), MESSAGES_1 (200), MESSAGES_N (800), CLIENT_KINDS
# ("load resume py").
set -euo pipefail
build=$(cd "${1:?usage: tls-connect.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
CLIENTS=${CLIENTS:-1 8}; RUNS=${RUNS:-3}; MESSAGES_1=${MESSAGES_1:-200}; MESSAGES_N=${MESSAGES_N:-800}
CLIENT_KINDS=${CLIENT_KINDS:-load resume py}
LOAD=$build/tests/bench/demail-smtp-load
export GATEWAYD=${GATEWAYD:-$build/gateway/demail-gatewayd}  # GATEWAYD=...: another build (before/after)
if [ ! -x "$LOAD" ] || [ ! -x "$GATEWAYD" ]; then echo "build first: $LOAD, $GATEWAYD"; exit 1; fi
BENCH_DIR=$(mktemp -d /tmp/demail-bench-XXXXXX); export BENCH_DIR
. "$here/servers.sh"
trap 'bench_stop_servers; rm -rf "$BENCH_DIR"' EXIT
bench_start_servers
started=$(date +%s)

# Python smtplib client: PROCS processes share MESSAGES, one message per connection. Prints a
# line in demail-smtp-load's format (msgs_per_s, p99_ms, steps_ms, errors).
py_client() {  # port procs messages
  /usr/bin/python3 - "$@" <<'PY'
import multiprocessing as mp, smtplib, ssl, sys, time
port, procs, total = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
names = ["connect", "ehlo", "starttls", "ehlo_tls", "txn", "quit"]
body = b"Subject: tls-connect\r\nFrom: a@firma.de\r\n\r\n" + (b"x" * 76 + b"\r\n") * 12
def worker(args):
    k, n = args
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    sums, eod, errors = [0.0] * 6, [], 0
    for _ in range(n):
        try:
            t = [time.perf_counter()]
            s = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test"); t.append(time.perf_counter())
            s.ehlo(); t.append(time.perf_counter())
            s.starttls(context=ctx); t.append(time.perf_counter())   # STARTTLS and the handshake
            s.ehlo(); t.append(time.perf_counter())
            s.mail("a@firma.de"); s.rcpt("b@behoerde.de-mail.de"); s.putcmd("data"); s.getreply()
            s.send(body + b".\r\n"); a = time.perf_counter()
            code, _ = s.getreply(); b = time.perf_counter(); t.append(b)
            if code != 250: errors += 1
            eod.append((b - a) * 1000)
            s.quit(); t.append(time.perf_counter())
            for i in range(6): sums[i] += t[i + 1] - t[i]
        except Exception:
            errors += 1
    return sums, eod, errors
share = [(k, total // procs + (1 if k < total % procs else 0)) for k in range(procs)]
t0 = time.perf_counter()
with mp.Pool(procs) as pool:
    res = pool.map(worker, share)
secs = time.perf_counter() - t0
sums = [sum(r[0][i] for r in res) for i in range(6)]; eod = sorted(x for r in res for x in r[1])
errors = sum(r[2] for r in res); ok = len(eod)
p99 = eod[min(len(eod) - 1, max(0, int(0.99 * len(eod) + 0.999) - 1))] if eod else 0
print("ok=%d errors=%d msgs_per_s=%.1f p99_ms=%.2f steps_ms=%s" % (ok, errors, ok / secs, p99,
      ",".join("%s:%.2f" % (names[i], sums[i] * 1000 / max(ok, 1)) for i in range(6))))
PY
}

run_point() {  # kind port clients messages
  case $1 in
    py) py_client "$2" "$3" "$4" ;;
    resume) "$LOAD" --port "$2" --sessions "$3" --messages "$4" --size 1024 --starttls --per-connection 1 --resume --timeout 120 ;;
    *) "$LOAD" --port "$2" --sessions "$3" --messages "$4" --size 1024 --starttls --per-connection 1 --timeout 120 ;;
  esac
}

tsv=$out/tls-connect.tsv
printf 'client\tclients\tserver\trun\tload1\tmsgs_per_s\tp99_ms\terrors\tsteps_ms\n' >"$tsv"
{
echo "one message per new STARTTLS connection, 1 KB, RSA-2048 (the same certificate on both), median of $RUNS runs"
echo "$(nproc) cores, load at start $(cut -d' ' -f1-3 /proc/loadavg); steps: mean ms per connection (connect+220/EHLO/STARTTLS[+handshake for py]/handshake/EHLO after TLS/MAIL..250/QUIT)"
printf '%-6s %3s | %8s %7s %5s | %8s %7s %5s | %5s | %s\n' client n "gw msg/s" "p99 ms" load "pf msg/s" "p99 ms" load ratio "steps gw / pf"
} | tee "$out/tls-connect.txt"
for kind in $CLIENT_KINDS; do
  for n in $CLIENTS; do
    m=$MESSAGES_N; [ "$n" = 1 ] && m=$MESSAGES_1
    declare -A med p99 ld steps
    for server in gateway postfix; do
      port=$GW_PORT; [ "$server" = postfix ] && port=$PF_PORT
      rows=()
      for r in $(seq 1 "$RUNS"); do
        bench_clear_queues
        l=$(cut -d' ' -f1 /proc/loadavg)
        line=$(run_point "$kind" "$port" "$n" "$m" 2>>"$BENCH_DIR/load.err" || true)
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$n" "$server" "$r" "$l" "$(field "$line" msgs_per_s)" \
          "$(field "$line" p99_ms)" "$(field "$line" errors)" "$(field "$line" steps_ms)" >>"$tsv"
        rows+=("$(field "$line" msgs_per_s) $(field "$line" p99_ms) $l $(field "$line" steps_ms)")
      done
      # The median run by rate.
      mid=$(printf '%s\n' "${rows[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
      read -r med[$server] p99[$server] ld[$server] steps[$server] <<<"$mid"
    done
    printf '%-6s %3s | %8s %7s %5s | %8s %7s %5s | %5s | %s / %s\n' "$kind" "$n" "${med[gateway]}" "${p99[gateway]}" "${ld[gateway]}" \
      "${med[postfix]}" "${p99[postfix]}" "${ld[postfix]}" \
      "$(awk -v g="${med[gateway]:-0}" -v p="${med[postfix]:-0}" 'BEGIN { if (p > 0) printf "%.2f", g / p; else print "-" }')" \
      "${steps[gateway]}" "${steps[postfix]}" | tee -a "$out/tls-connect.txt"
  done
done
bench_clear_queues
errs=$(awk -F'\t' 'NR > 1 && $8 != 0 { n++ } END { print n + 0 }' "$tsv")
echo "runs with errors: $errs; took $(( $(date +%s) - started )) s; raw: $tsv" | tee -a "$out/tls-connect.txt"
