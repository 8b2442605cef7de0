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
version=0.1.0
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
cat >"$pkg/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemd-sysusers demail-gateway.conf >/dev/null || true
  systemd-tmpfiles --create demail-gateway.conf >/dev/null || true
  install -d -m 0750 -o root -g demail-gateway /etc/demail-gateway
  udevadm control --reload >/dev/null 2>&1 || true
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
SH
chmod 0755 "$pkg/DEBIAN/postinst"
find "$pkg" -type d -exec chmod 0755 {} +
fakeroot_cmd=""; command -v fakeroot >/dev/null && fakeroot_cmd=fakeroot
$fakeroot_cmd dpkg-deb --root-owner-group --build "$pkg" "$out/demail-gateway_${version}_amd64.deb" >/dev/null
echo "$out/demail-gateway_${version}_amd64.deb"
