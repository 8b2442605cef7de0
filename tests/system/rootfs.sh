#!/usr/bin/env bash
# The Debian 12 root file system the system test boots: built once with mmdebstrap from Debian's
# archive and cached; rebuilt only when the package list below changes. Booted as a throw-away
# overlay (--volatile=overlay), so it stays as built.
#   tests/system/rootfs.sh ROOT
# Holds systemd, pcscd and OpenSC (what the package depends on), the runtime libraries of the
# .deb (so `apt-get install ./demail-gateway.deb` works offline inside) and the test-only tools:
# vsmartcard-vpcd for the simulated card, python3-aiosmtpd for the internal relay, swaks and curl.
# None of the test-only ones is a dependency of the package.
set -euo pipefail
root=${1:?usage: rootfs.sh ROOT}
packages=(
  systemd systemd-sysv dbus udev pcscd opensc opensc-pkcs11
  libpococrypto80 libpocofoundation80 libpocojson80 libpoconet80 libpoconetssl80 libpocoutil80
  libpocoxml80 libcurl4 libssl3 libpcsclite1 libsystemd0 libacl1 libxml2 libxmlsec1 libxmlsec1-openssl
  vsmartcard-vpcd python3 python3-aiosmtpd swaks curl openssl iproute2 procps
)
stamp="${packages[*]}"
if [ -f "$root/.demail-rootfs" ] && [ "$(cat "$root/.demail-rootfs")" = "$stamp" ]; then
  echo "rootfs: cached $root"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "rootfs: mmdebstrap missing (tests/system/install-deps.sh)" >&2; exit 1; }
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
start=$(date +%s)
tmp="$root.new"
rm -rf "$tmp" "$root"
include=$(IFS=,; echo "${packages[*]}")
mmdebstrap --quiet --variant=minbase --include="$include" \
  --aptopt='APT::Install-Recommends "false"' bookworm "$tmp" "$sources" >&2
# The test's own machine: no getty on the console, a fixed machine-id is not wanted (each boot of
# the overlay gets a fresh one), nothing to start that is not needed.
rm -f "$tmp/etc/machine-id" && : >"$tmp/etc/machine-id"
echo "$stamp" >"$tmp/.demail-rootfs"
mv "$tmp" "$root"
echo "rootfs: built $root in $(( $(date +%s) - start )) s ($(du -sh "$root" | cut -f1))"
