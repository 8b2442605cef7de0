#!/usr/bin/env bash
# Resource benchmark (not a test): for demail-gatewayd and Postfix side by side, resident memory (PSS)
# with 100 and 1000 idle sessions and while a 20 MB message streams in, CPU time per accepted
# message; for the gateway also the start-up time to READY=1 and what its start-up re-exec
# (glibc perturb + no thread cache, so freed heap holding the PIN is overwritten) costs.
#   tests/bench/resources.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
build=$(cd "${1:?usage: resources.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-build/bench}; mkdir -p "$out"; out=$(cd "$out" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
LOAD=$build/tests/bench/demail-smtp-load
export GATEWAYD=$build/gateway/demail-gatewayd
export BENCH_DIR=$(mktemp -d /tmp/demail-bench-XXXXXX)
. "$here/servers.sh"
trap 'bench_stop_servers; rm -rf "$BENCH_DIR"' EXIT

# Proportional set size: pages shared by Postfix's many processes (libraries, the same smtpd
# binary) are divided among them instead of counted once per process.
rss_kb() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo $t; }
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
gw_pids() { echo "$GW_PID"; }
pf_pids() { bench_postfix_pids; }

# N idle sessions: connected, greeted, EHLO answered, then silent.
idle_sessions() {  # port count seconds
  /usr/bin/python3 - "$@" <<'PY'
import socket, sys, time
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port)); s.recv(512)
    s.sendall(b"EHLO bench.test\r\n"); time.sleep(0.001); socks.append(s)
for s in socks:
    s.settimeout(10); s.recv(4096)
print("open", flush=True)
time.sleep(hold)
PY
}

# The peak of the summed RSS of the given pids while a command runs.
peak_rss_during() {  # "pids-function" command...
  local pids_fn=$1; shift
  "$@" >/dev/null 2>&1 &
  local job=$! peak=0 now
  while kill -0 "$job" 2>/dev/null; do
    now=$(rss_kb $($pids_fn)); [ "$now" -gt "$peak" ] && peak=$now; sleep 0.02
  done
  wait "$job" || true
  echo "$peak"
}

{
echo "resources: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo)"

# Start-up to READY=1 (sd_notify), with and without the re-exec.
startup_ms() {  # extra env for the daemon
  /usr/bin/python3 - "$GATEWAYD" "$BENCH_DIR/gateway.ini" "$@" <<'PY'
import os, socket, subprocess, sys, time, tempfile
gw, ini, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
path = tempfile.mktemp(prefix="/tmp/demail-notify-")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path); s.settimeout(20)
env = dict(os.environ, NOTIFY_SOCKET=path)
for kv in extra:
    k, v = kv.split("=", 1); env[k] = v
t0 = time.monotonic()
p = subprocess.Popen([gw, "--config", ini], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while b"READY=1" not in s.recv(4096):
    pass
print("%.1f" % ((time.monotonic() - t0) * 1000))
p.terminate(); p.wait(); os.unlink(path)
PY
}
bench_start_servers
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true  # only its configuration was needed so far
a=(); b=()
for _ in 1 2 3 4 5; do a+=("$(startup_ms)"); b+=("$(startup_ms GLIBC_TUNABLES=glibc.malloc.perturb=0)"); done
med() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
echo "gatewayd start to READY=1 (median of 5, card absent): $(med "${a[@]}") ms; without the re-exec: $(med "${b[@]}") ms"

for variant in default no-reexec; do
  if [ "$variant" = no-reexec ]; then GATEWAYD_ENV="env GLIBC_TUNABLES=glibc.malloc.perturb=0"; else GATEWAYD_ENV=; fi
  export GATEWAYD_ENV
  bench_stop_servers; bench_start_servers
  for size in 1024 102400; do
    bench_clear_queues
    line=$("$LOAD" --port "$GW_PORT" --sessions 8 --messages 2000 --size "$size" --from a@firma.de \
           --to b@behoerde.de-mail.de --helo bench.test)
    echo "gatewayd ($variant heap) 8 sessions x $size B: $(tr ' ' '\n' <<<"$line" | grep -E '^(msgs_per_s|p50_ms|p99_ms)=' | tr '\n' ' ')"
  done
done
GATEWAYD_ENV=; bench_stop_servers; bench_start_servers

printf '\n%-44s %14s %14s\n' "" "demail-gatewayd" "postfix"
for n in 100 1000; do
  g0=$(rss_kb $(gw_pids)); p0=$(rss_kb $(pf_pids))
  idle_sessions "$GW_PORT" "$n" 3 >/dev/null & j=$!; sleep 2.5; g=$(rss_kb $(gw_pids)); wait $j || true
  idle_sessions "$PF_PORT" "$n" 3 >/dev/null & j=$!; sleep 2.5; p=$(rss_kb $(pf_pids)); wait $j || true
  printf '%-44s %11s kB %11s kB\n' "PSS idle (before the sessions)" "$g0" "$p0"
  printf '%-44s %11s kB %11s kB\n' "PSS with $n idle sessions" "$g" "$p"
  sleep 2
done
for size in 1024 20000000; do
  g=$(peak_rss_during gw_pids "$LOAD" --port "$GW_PORT" --sessions 1 --messages 1 --size "$size" --from a@firma.de --to b@behoerde.de-mail.de)
  p=$(peak_rss_during pf_pids "$LOAD" --port "$PF_PORT" --sessions 1 --messages 1 --size "$size" --from a@firma.de --to b@behoerde.de-mail.de)
  printf '%-44s %11s kB %11s kB\n' "peak PSS while one $size B message streams" "$g" "$p"
done
bench_clear_queues
for size in 1024 102400; do
  g0=$(cpu_ticks $(gw_pids)); p0=$(cpu_ticks $(pf_pids))
  "$LOAD" --port "$GW_PORT" --sessions 8 --messages 2000 --size "$size" --from a@firma.de --to b@behoerde.de-mail.de >/dev/null
  g1=$(cpu_ticks $(gw_pids))
  "$LOAD" --port "$PF_PORT" --sessions 8 --messages 2000 --size "$size" --from a@firma.de --to b@behoerde.de-mail.de >/dev/null
  sleep 1; p1=$(cpu_ticks $(pf_pids))
  printf '%-44s %11s ms %11s ms\n' "CPU per message ($size B, 8 sessions)" \
    "$(awk -v t=$((g1 - g0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t * 1000 / hz / 2000 }')" \
    "$(awk -v t=$((p1 - p0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t * 1000 / hz / 2000 }')"
  bench_clear_queues
done
echo "(Postfix: the sum over its master, smtpd, cleanup, qmgr, ... processes; CPU counts their children too)"
} | tee "$out/resources.txt"
