# shellcheck shell=bash
# Boots a throw-away Debian 12 with systemd as PID 1 (systemd-nspawn, the overlay of a cached root
# file system) and runs commands in it. Source it. What works on these hosts and why is in
# tests/system/README.md: the container is started from a cgroup of its own (else nspawn puts
# payload/ and supervisor/ at the root of the host's trees), with the unified hierarchy and BPF
# allowed so that DevicePolicy= and IPAddressDeny= are really enforced, no machined/D-Bus on the
# host (--register=no --keep-unit), its own network namespace (only loopback inside).
#   nspawn_boot ROOT NAME STAGE   STAGE is bind-mounted read-only at /srv/demail-test
#   cx CMD...                      runs CMD inside (all namespaces of the container's PID 1)
#   nspawn_stop                    powers the container off, removes the cgroups
NSPAWN_PID=; NSPAWN_PID1=; NSPAWN_NAME=; NSPAWN_LOG=

nspawn_boot() {
  local root=$1 name=$2 stage=$3
  NSPAWN_NAME=$name NSPAWN_LOG=$stage.nspawn.log
  mkdir -p "/sys/fs/cgroup/systemd/$name" "/sys/fs/cgroup/unified/$name"
  (
    echo "$BASHPID" >"/sys/fs/cgroup/systemd/$name/cgroup.procs"
    echo "$BASHPID" >"/sys/fs/cgroup/unified/$name/cgroup.procs"
    exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -D "$root" -M "$name" -b \
      --console=pipe --system-call-filter=bpf --volatile=overlay --private-network \
      --register=no --keep-unit --bind-ro="$stage:/srv/demail-test"
  ) </dev/null >"$NSPAWN_LOG" 2>&1 &
  NSPAWN_PID=$!
  for _ in $(seq 1 300); do
    NSPAWN_PID1=$(pgrep -P "$NSPAWN_PID" -x systemd | head -1 || true)
    [ -n "$NSPAWN_PID1" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || { cat "$NSPAWN_LOG" >&2; return 1; }
    sleep 0.1
  done
  [ -n "$NSPAWN_PID1" ] || { echo "nspawn: no systemd in the container" >&2; cat "$NSPAWN_LOG" >&2; return 1; }
  # PID 1 answers on its socket only a moment after it started: ask until it does.
  local state=
  for _ in $(seq 1 600); do
    state=$(cx timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
    [ -n "$state" ] && break
    sleep 0.1
  done
  [ "$state" = running ] || { echo "nspawn: the container is $state:" >&2; cx systemctl --failed --no-pager >&2; return 1; }
}

cx() {
  nsenter -t "$NSPAWN_PID1" -a -- "$@"
}

nspawn_stop() {
  [ -n "$NSPAWN_PID" ] || return 0
  if kill -0 "$NSPAWN_PID" 2>/dev/null; then
    cx systemctl poweroff --no-block >/dev/null 2>&1 || true
    for _ in $(seq 1 300); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN_PID" 2>/dev/null || true
  fi
  wait "$NSPAWN_PID" 2>/dev/null || true
  NSPAWN_PID=
  # The cgroups nspawn and the container's systemd left below ours, deepest first.
  local tree
  for tree in "/sys/fs/cgroup/systemd/$NSPAWN_NAME" "/sys/fs/cgroup/unified/$NSPAWN_NAME"; do
    [ -d "$tree" ] && find "$tree" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
