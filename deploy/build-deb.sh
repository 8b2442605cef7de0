#!/usr/bin/env bash
# Builds demail-gateway_<version>_amd64.deb from a release build: binaries, systemd units,
# sysusers/tmpfiles, the udev rule, the configuration example, man pages, Prometheus alert rules
# and a Grafana dashboard. It conflicts with
# vsmartcard-vpcd (a test-only driver that listens on all interfaces and must never be installed
# on the appliance).
#   deploy/build-deb.sh BUILD_DIR OUT_DIR
set -euo pipefail
build=$(cd "${1:?usage: build-deb.sh BUILD_DIR OUT_DIR}" && pwd)
out=$(mkdir -p "${2:?}" && cd "$2" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
# The package version is the project's (CMakeLists.txt project(... VERSION x.y.z)).
version=$(sed -n 's/^project(demail-gateway VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || { echo "build-deb: no project version in CMakeLists.txt" >&2; exit 1; }
root=$(mktemp -d /tmp/demail-deb-XXXXXX)
trap 'rm -rf "$root"' EXIT
pkg="$root/demail-gateway"

install -d "$pkg/usr/sbin" "$pkg/usr/lib/demail-gateway" "$pkg/lib/systemd/system" \
  "$pkg/usr/lib/sysusers.d" "$pkg/usr/lib/tmpfiles.d" "$pkg/lib/udev/rules.d" \
  "$pkg/usr/share/man/man8" "$pkg/usr/share/doc/demail-gateway/examples" "$pkg/DEBIAN"
install -m 0755 -s "$build/gateway/demail-gatewayd" "$build/gateway/demailctl" \
  "$build/smartcard/demail-card" "$build/certpromote/demail-certpromote" "$pkg/usr/sbin/"
install -m 0755 "$src/deploy/usbip-keep-attached" "$pkg/usr/lib/demail-gateway/"
install -m 0644 "$src"/deploy/systemd/*.service "$pkg/lib/systemd/system/"
install -m 0644 "$src/deploy/sysusers.d/demail-gateway.conf" "$pkg/usr/lib/sysusers.d/"
install -m 0644 "$src/deploy/tmpfiles.d/demail-gateway.conf" "$pkg/usr/lib/tmpfiles.d/"
install -m 0644 "$src/udev/90-demail-reader.rules" "$pkg/lib/udev/rules.d/"
for m in "$src"/deploy/man/*.8; do gzip -9n <"$m" >"$pkg/usr/share/man/man8/$(basename "$m").gz"; done
install -m 0644 "$src/deploy/gateway.ini.example" "$pkg/usr/share/doc/demail-gateway/examples/gateway.ini"
install -d "$pkg/usr/share/demail-gateway"
install -m 0644 "$src/deploy/opensc.conf" "$pkg/usr/share/demail-gateway/opensc.conf"
# Monitoring: alert rules and a Grafana dashboard, outside /usr/share/doc (which sites may strip
# with path-exclude) so that a Prometheus on the host can name the rules file in rule_files.
install -d "$pkg/usr/share/demail-gateway/prometheus" "$pkg/usr/share/demail-gateway/grafana"
install -m 0644 "$src/deploy/prometheus/demail-gateway.rules.yml" "$pkg/usr/share/demail-gateway/prometheus/"
install -m 0644 "$src/deploy/grafana/demail-gateway.json" "$pkg/usr/share/demail-gateway/grafana/"
install -m 0644 "$src/docs/configuration.md" "$src/docs/operations.md" "$pkg/usr/share/doc/demail-gateway/"
cat >"$pkg/usr/share/doc/demail-gateway/copyright" <<'TXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demail-gateway
Source: https://example.invalid/demail-gateway

Files: *
Copyright: 2026 the demail-gateway authors
License: GPL-3+
 On Debian systems the full text of the GNU General Public License version 3 can be found in
 /usr/share/common-licenses/GPL-3.
TXT
printf 'demail-gateway (%s) bookworm; urgency=medium\n\n  * Build of the current main branch.\n\n -- demail-gateway maintainers <maintainers@example.invalid>  %s\n' \
  "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")" | gzip -9n >"$pkg/usr/share/doc/demail-gateway/changelog.gz"

deps=$(cd "$root" && mkdir -p debian && printf 'Source: demail-gateway\n\nPackage: demail-gateway\nArchitecture: amd64\n' >debian/control &&
  dpkg-shlibdeps -O "$pkg"/usr/sbin/* 2>/dev/null | sed 's/^shlibs:Depends=//')
cat >"$pkg/DEBIAN/control" <<CTL
Package: demail-gateway
Version: $version
Architecture: amd64
Maintainer: demail-gateway maintainers <maintainers@example.invalid>
Depends: $deps, pcscd, opensc-pkcs11, systemd
Recommends: usbip
Conflicts: vsmartcard-vpcd
Section: mail
Priority: optional
Homepage: https://example.invalid/demail-gateway
Description: De-Mail gateway for internal mail servers (TCOS card, provider TLS)
 Lets an organisation's own mail servers send and receive German De-Mail.
 Internal servers relay to it by SMTP; it submits to the De-Mail provider
 over mutual TLS signed with the key on a TeleSec TCOS signature card, and
 delivers inbound De-Mail and the provider's confirmations back.
CTL
# Maintainer scripts, as dh_installsystemd writes them (enable on install, restart after upgrade,
# stop on remove, forget on purge), for demail-gatewayd.service only: the other units are run on
# demand. A fresh install enables the service and tries to start it; until the operator writes
# /etc/demail-gateway/gateway.ini the unit's ConditionPathExists= skips the start quietly (no
# failed unit), and it starts at the next boot or `systemctl start` once the file is there.
cat >"$pkg/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemd-sysusers demail-gateway.conf >/dev/null || true
  systemd-tmpfiles --create demail-gateway.conf >/dev/null || true
  install -d -m 0750 -o root -g demail-gateway /etc/demail-gateway
  udevadm control --reload >/dev/null 2>&1 || true
fi
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
  deb-systemd-helper unmask demail-gatewayd.service >/dev/null || true
  if deb-systemd-helper --quiet was-enabled demail-gatewayd.service; then
    deb-systemd-helper enable demail-gatewayd.service >/dev/null || true
  else
    deb-systemd-helper update-state demail-gatewayd.service >/dev/null || true
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    # An upgrade ($2 = the old version) restarts the running daemon with the new binary; the
    # spool is on disk, so queued mail is kept and sent by the new one.
    if [ -n "$2" ]; then action=restart; else action=start; fi
    deb-systemd-invoke $action demail-gatewayd.service >/dev/null || true
  fi
fi
SH
cat >"$pkg/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
# Stopped on remove only; an upgrade keeps it running until postinst restarts it.
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop demail-gatewayd.service >/dev/null || true
fi
SH
cat >"$pkg/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
  deb-systemd-helper mask demail-gatewayd.service >/dev/null || true
fi
if [ "$1" = purge ]; then
  if command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper purge demail-gatewayd.service >/dev/null || true
    deb-systemd-helper unmask demail-gatewayd.service >/dev/null || true
  fi
  # Purge removes what the package and its operator put in place: the configuration (with the
  # card PIN) and the certificate store. The spool goes too, unless it still holds mail that was
  # accepted and not yet sent: that is kept, with a note, and never silently dropped. The system
  # user stays (Debian does not remove system users: files elsewhere may still carry its uid).
  rm -rf /etc/demail-gateway /var/lib/demail-gateway
  spool=/var/spool/demail-gateway
  if [ -d "$spool/queue" ] && [ -n "$(ls -A "$spool/queue" 2>/dev/null)" ]; then
    echo "demail-gateway: $spool/queue still holds $(ls -A "$spool/queue" | wc -l) unsent message(s); $spool is kept" >&2
  else
    rm -rf "$spool"
  fi
fi
SH
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
find "$pkg" -type d -exec chmod 0755 {} +
fakeroot_cmd=""; command -v fakeroot >/dev/null && fakeroot_cmd=fakeroot
$fakeroot_cmd dpkg-deb --root-owner-group --build "$pkg" "$out/demail-gateway_${version}_amd64.deb" >/dev/null
echo "$out/demail-gateway_${version}_amd64.deb"
