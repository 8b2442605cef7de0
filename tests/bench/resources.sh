#!/usr/bin/env bash
# Resource benchmark (not a test): demail-gatewayd and Postfix side by side (the same two servers
# as intake-matrix.sh, see servers.sh), each measurement on freshly started servers:
#  - start-up time of demail-gatewayd from exec to READY=1 on NOTIFY_SOCKET, with its start-up
#    re-exec (glibc heap perturbation, to keep the PIN out of freed memory) and without it
#    (GLIBC_TUNABLES=glibc.malloc.perturb=0 already set), and the intake rate both ways;
#  - resident memory idle, with 100 and with 1000 idle sessions (connected, EHLO answered):
#    RSS summed over the processes (for Postfix: master, smtpd, cleanup, qmgr, ...; shared pages
#    count once per process) and PSS (shared pages divided among the processes that map them);
#  - the peak RSS/PSS while one 1 KB and one 20 MB message stream in (sampled every 10 ms), and
#    the gateway's VmHWM;
#  - CPU time (utime + stime, from /proc) per accepted message over N messages, 8 sessions.
#   tests/bench/resources.sh BUILD_DIR [OUT_DIR]      (OUT_DIR/resources.txt; about 2 minutes)
# Environment: CPU_MESSAGES (2000), IDLE_COUNTS ("100 1000").
set -euo pipefail
build=$(cd "${1:?usage: resources.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
CPU_MESSAGES=${CPU_MESSAGES:-2000}; IDLE_COUNTS=${IDLE_COUNTS:-100 1000}
LOAD=$build/tests/bench/demail-smtp-load
SAMPLE="/usr/bin/python3 $here/proc_sample.py"
export GATEWAYD=$build/gateway/demail-gatewayd
if [ ! -x "$LOAD" ] || [ ! -x "$GATEWAYD" ]; then echo "build first: $LOAD, $GATEWAYD"; exit 1; fi
BENCH_DIR=$(mktemp -d /tmp/demail-bench-XXXXXX); export BENCH_DIR
. "$here/servers.sh"
trap 'bench_stop_servers; rm -rf "$BENCH_DIR"' EXIT
HZ=$(getconf CLK_TCK)
started=$(date +%s)
took() { echo "  ($1 took $(( $(date +%s) - ${2:-$started} )) s so far)"; }

load() {  # port sessions messages size [--starttls]
  "$LOAD" --port "$1" --sessions "$2" --messages "$3" --size "$4" "${@:5}" --from a@firma.de \
    --to b@behoerde.de-mail.de --helo bench.test --timeout 120
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
# Empty queues first: Postfix's start-up takes a minute and more over a few thousand queued files.
restart_both() { bench_clear_queues; bench_stop_servers; bench_start_servers; }
gw_spec() { echo "$GW_PID"; }
pf_spec() { echo "tree:$PF_MASTER"; }
row() { printf '%-50s %20s %20s\n' "$@"; }

# Exec to READY=1 on a NOTIFY_SOCKET we listen on, in ms; extra VAR=value for the daemon's env.
startup_ms() {
  /usr/bin/python3 - "$GATEWAYD" "$BENCH_DIR/gateway.ini" "$@" <<'PY'
import os, socket, subprocess, sys, time, tempfile
gw, ini, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
d = tempfile.mkdtemp(prefix="demail-notify-")
path = os.path.join(d, "notify")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path); s.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=path)
for kv in extra:
    k, v = kv.split("=", 1); env[k] = v
t0 = time.monotonic()
p = subprocess.Popen([gw, "--config", ini], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while b"READY=1" not in s.recv(4096):
        pass
    print("%.1f" % ((time.monotonic() - t0) * 1000))
except socket.timeout:
    print("timeout")
p.terminate(); p.wait(); os.unlink(path); os.rmdir(d)
PY
}
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

exec > >(tee "$out/resources.txt")
echo "resources: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), Postfix $(postconf -d mail_version 2>/dev/null | awk '{print $3}')"

# --- start-up to READY=1, with and without the re-exec ---------------------------------------
bench_start_gateway; bench_stop_gateway   # writes the configuration; port and spool stay free
a=(); b=()
for _ in 1 2 3 4 5 6 7; do
  a+=("$(startup_ms)"); b+=("$(startup_ms GLIBC_TUNABLES=glibc.malloc.perturb=0)")
done
echo "gatewayd exec to READY=1 (card absent), median of 7: with the start-up re-exec $(med "${a[@]}") ms, without it $(med "${b[@]}") ms"
echo "  all runs: with [${a[*]}] without [${b[*]}]"

took start-up
# --- what the re-exec's heap settings (perturb on free, no tcache) cost the intake ------------
echo "gatewayd intake, 8 sessions, plain, default (re-exec: glibc perturb + tcache off) vs GLIBC_TUNABLES=glibc.malloc.perturb=0 (no re-exec, glibc defaults):"
for round in 1 2; do
  for variant in default no-reexec; do
    GATEWAYD_ENV=; [ "$variant" = no-reexec ] && GATEWAYD_ENV="env GLIBC_TUNABLES=glibc.malloc.perturb=0"
    export GATEWAYD_ENV
    bench_clear_queues
    bench_start_gateway
    for size in 1024 102400; do
      n=3000; [ "$size" -gt 1024 ] && n=1000
      bench_clear_queues
      c0=$($SAMPLE cpu "$GW_PID")
      line=$(load "$GW_PORT" 8 "$n" "$size" || true)
      c1=$($SAMPLE cpu "$GW_PID")
      printf '  round %s %-10s %6s B: %8s msg/s  p50 %6s ms  p99 %6s ms  CPU %s ms/msg\n' "$round" "$variant" "$size" \
        "$(field "$line" msgs_per_s)" "$(field "$line" p50_ms)" "$(field "$line" p99_ms)" \
        "$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.3f", t * 1000 / hz / n }')"
    done
    bench_stop_gateway
  done
done
GATEWAYD_ENV=; export GATEWAYD_ENV
bench_clear_queues

took "re-exec"
echo
row "" "demail-gatewayd" "postfix"
# --- idle sessions --------------------------------------------------------------------------
declare -A m0 m1 sessions
for n in $IDLE_COUNTS; do
  restart_both
  sleep 1
  for server in gateway postfix; do
    if [ "$server" = gateway ]; then port=$GW_PORT; spec=$(gw_spec); else port=$PF_PORT; spec=$(pf_spec); fi
    m0[$server]=$($SAMPLE mem "$spec")
    coproc IDLE { $SAMPLE idle "$port" "$n" 300; }
    read -r opened <&"${IDLE[0]}"
    sleep 1
    m1[$server]=$($SAMPLE mem "$spec")
    if [ "$server" = gateway ]; then
      held=$(ss -Htn state established "( sport = :$port )" | wc -l)
    else
      held=$($SAMPLE count "$spec" smtpd)
    fi
    idle_in=${IDLE[1]}; exec {idle_in}>&-
    wait "$IDLE_PID" 2>/dev/null || true
    sessions[$server]="$opened; server $held"
  done
  k() { field "${2}" "$1"; }
  row "RSS idle, fresh start (processes)" "$(mb "$(k rss_kb "${m0[gateway]}")") ($(k procs "${m0[gateway]}"))" \
      "$(mb "$(k rss_kb "${m0[postfix]}")") ($(k procs "${m0[postfix]}"))"
  row "RSS with $n idle sessions (processes)" "$(mb "$(k rss_kb "${m1[gateway]}")") ($(k procs "${m1[gateway]}"))" \
      "$(mb "$(k rss_kb "${m1[postfix]}")") ($(k procs "${m1[postfix]}"))"
  row "PSS with $n idle sessions" "$(mb "$(k pss_kb "${m1[gateway]}")")" "$(mb "$(k pss_kb "${m1[postfix]}")")"
  per() { echo "$(( ($(k rss_kb "${m1[$1]}") - $(k rss_kb "${m0[$1]}")) / n )) / $(( ($(k pss_kb "${m1[$1]}") - $(k pss_kb "${m0[$1]}")) / n ))"; }
  row "  added per session, RSS / PSS (KB)" "$(per gateway)" "$(per postfix)"
  row "  sessions (client open/failed; server)" "${sessions[gateway]}" "${sessions[postfix]}"
done

took "idle sessions"
# --- one message streaming in ---------------------------------------------------------------
restart_both
for size in 1024 20971520; do
  g=$($SAMPLE peak "$(gw_spec)" -- "$LOAD" --port "$GW_PORT" --sessions 1 --messages 1 --size "$size" --timeout 120)
  p=$($SAMPLE peak "$(pf_spec)" -- "$LOAD" --port "$PF_PORT" --sessions 1 --messages 1 --size "$size" --timeout 120)
  label="one $(( size / 1024 )) KB message"
  row "peak RSS while $label streams" "$(mb "$(field "$g" peak_rss_kb)")" "$(mb "$(field "$p" peak_rss_kb)")"
  row "peak PSS while $label streams" "$(mb "$(field "$g" peak_pss_kb)")" "$(mb "$(field "$p" peak_pss_kb)")"
  row "gatewayd VmHWM after $label" "$(mb "$(field "$g" hwm_kb)")" "-"
  [ "$(field "$g" status)$(field "$p" status)" = 00 ] || row "  (load generator failed: gateway/postfix exit)" "$(field "$g" status)" "$(field "$p" status)"
done

took streaming
# --- CPU per message ------------------------------------------------------------------------
# (No restart between the points: the smtpd processes the steps before left behind sit idle.)
for mode in plain starttls; do
  for size in 1024 102400; do
    bench_clear_queues
    tls=(); [ "$mode" = starttls ] && tls=(--starttls)
    res=()
    for server in gateway postfix; do
      if [ "$server" = gateway ]; then port=$GW_PORT; spec=$(gw_spec); else port=$PF_PORT; spec=$(pf_spec); fi
      c0=$($SAMPLE cpu "$spec")
      line=$(load "$port" 8 "$CPU_MESSAGES" "$size" "${tls[@]}" || true)
      # Postfix's qmgr and the smtpd processes finish after the last 250: let them.
      sleep 2
      c1=$($SAMPLE cpu "$spec")
      res+=("$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$(field "$line" ok)" 'BEGIN { if (n > 0) printf "%.3f ms", t * 1000 / hz / n; else print "-" }')")
    done
    row "CPU per message ($mode, $size B, 8 sessions)" "${res[0]}" "${res[1]}"
  done
done
echo "(Postfix: summed over master and every process it started, reaped ones included; the load"
echo " generator's own CPU is not counted; $CPU_MESSAGES messages per figure. The machine is shared.)"
echo "resources took $(( $(date +%s) - started )) s"
