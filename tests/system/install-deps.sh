#!/usr/bin/env bash
# What `make system-test` needs on the host besides the build (deploy/install-deps.sh): mmdebstrap
# to build the Debian 12 root file system once, systemd-nspawn (systemd-container) to boot it.
set -euo pipefail
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "system-test needs root (and: ${missing[*]})" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
  { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
