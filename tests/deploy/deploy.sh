#!/usr/bin/env bash
# The appliance packaging: every unit passes systemd-analyze verify, the service's exposure score
# is printed and at most 2.0, the configuration example is accepted by the loader, the .deb
# builds with the expected contents and lintian reports no errors.
set -euo pipefail
S=${DEMAIL_SOURCE_DIR:?}; B=${DEMAIL_BUILD_DIR:?}
T=$(mktemp -d /tmp/demail-deploy-XXXXXX); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

mkdir -p "$T/units"
for u in "$S"/deploy/systemd/*.service; do
  sed -e "s|/usr/sbin/demail-gatewayd|$B/gateway/demail-gatewayd|; s|/usr/sbin/demail-certpromote|$B/certpromote/demail-certpromote|; s|/usr/lib/demail-gateway/usbip-keep-attached|$S/deploy/usbip-keep-attached|" \
    "$u" >"$T/units/$(basename "$u")"
done
out=$(cd "$T/units" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./*.service 2>&1 | grep -v "usbip\|modprobe\|Documentation" || true)
[ -z "$out" ] || fail "systemd-analyze verify: $out"
pass "systemd-analyze verify: $(ls "$T/units" | tr '\n' ' ')"
score=$(systemd-analyze security --offline=yes "$T/units/demail-gatewayd.service" 2>/dev/null | awk '/Overall exposure level/ {print $(NF-2)}')
echo "systemd-analyze security demail-gatewayd.service: exposure $score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $score above 2.0"
pass "exposure level $score (<= 2.0)"

# The root-owned store (security review M7): no unit may hand /var/lib/demail-gateway to the
# service user (StateDirectory=demail-gateway chowns the whole tree at every start, certs/
# included); the daemon owns state/ only, reads certs/ read-only and dumps no core.
if grep -Eq '^StateDirectory=(.* )?demail-gateway( |$)' "$S"/deploy/systemd/*.service; then
  fail "a unit sets StateDirectory=demail-gateway (chowns the certificate store to the service)"
fi
grep -q '^StateDirectory=demail-gateway/state$' "$S/deploy/systemd/demail-gatewayd.service" || fail "no state directory of its own"
grep -q '^ReadOnlyPaths=-/var/lib/demail-gateway/certs$' "$S/deploy/systemd/demail-gatewayd.service" || fail "certs not read-only"
grep -q '^LimitCORE=0$' "$S/deploy/systemd/demail-gatewayd.service" || fail "core dumps not disabled"
# tmpfiles gives an existing tree its owners back (as an upgrade finds it: all the service's).
R="$T/root"; mkdir -p "$R/usr/lib/sysusers.d" "$R/usr/lib/tmpfiles.d" "$R/etc" "$R/var/lib/demail-gateway/certs"
cp "$S/deploy/sysusers.d/demail-gateway.conf" "$R/usr/lib/sysusers.d/"
cp "$S/deploy/tmpfiles.d/demail-gateway.conf" "$R/usr/lib/tmpfiles.d/"
systemd-sysusers --root="$R" demail-gateway.conf >/dev/null 2>&1 || fail "sysusers"
svc=$(awk -F: '$1 == "demail-gateway" {print $3}' "$R/etc/passwd")
chown -R "$svc:$svc" "$R/var/lib/demail-gateway"; chmod 0777 "$R/var/lib/demail-gateway"
systemd-tmpfiles --root="$R" --create demail-gateway.conf || fail "tmpfiles"
got=$(cd "$R" && stat -c '%n %u:%g %a' var/lib/demail-gateway var/lib/demail-gateway/certs var/lib/demail-gateway/state var/spool/demail-gateway | tr '\n' ';')
[ "$got" = "var/lib/demail-gateway 0:0 755;var/lib/demail-gateway/certs 0:$svc 750;var/lib/demail-gateway/state $svc:$svc 700;var/spool/demail-gateway $svc:$svc 750;" ] ||
  fail "tmpfiles layout: $got"
pass "store root's: no StateDirectory=demail-gateway, tmpfiles repairs /var/lib/demail-gateway root 0755, certs root:service 0750, state and spool the service's; LimitCORE=0"

touch "$T/f.pem"
sed -E -e "s#/etc/demail-gateway/[a-z.-]+[.](pem|key)#$T/f.pem#g; s#/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so#$T/f.pem#" \
  "$S/deploy/gateway.ini.example" >"$T/gateway.ini"
"$B/gateway/demail-gatewayd" --config "$T/gateway.ini" --check >/dev/null || fail "the example configuration is refused: $("$B/gateway/demail-gatewayd" --config "$T/gateway.ini" --check 2>&1)"
pass "the commented configuration example is accepted by the loader"

deb=$("$S/deploy/build-deb.sh" "$B" "$T/out") || fail "build-deb"
contents=$(dpkg-deb --contents "$deb")
for f in usr/sbin/demail-gatewayd usr/sbin/demailctl usr/sbin/demail-card usr/sbin/demail-certpromote \
  lib/systemd/system/demail-gatewayd.service lib/systemd/system/demail-certpromote.service \
  'lib/systemd/system/demail-usbip@.service' usr/lib/sysusers.d/demail-gateway.conf \
  usr/lib/tmpfiles.d/demail-gateway.conf lib/udev/rules.d/90-demail-reader.rules \
  usr/share/man/man8/demail-gatewayd.8.gz usr/share/man/man8/demailctl.8.gz \
  usr/share/man/man8/demail-card.8.gz usr/share/man/man8/demail-certpromote.8.gz \
  usr/share/doc/demail-gateway/examples/gateway.ini \
  usr/share/demail-gateway/prometheus/demail-gateway.rules.yml \
  usr/share/demail-gateway/grafana/demail-gateway.json; do
  grep -q " ./$f$" <<<"$contents" || fail "the package lacks $f"
done
if dpkg-deb -f "$deb" Depends | grep -q vsmartcard; then fail "depends on vsmartcard-vpcd"; fi
dpkg-deb -f "$deb" Conflicts | grep -qw vsmartcard-vpcd || fail "does not conflict with vsmartcard-vpcd"
pass "the .deb holds binaries, units, sysusers/tmpfiles, udev rule, man pages and the example; conflicts with vsmartcard-vpcd"
dpkg-deb -e "$deb" "$T/control"
for s in postinst prerm postrm; do
  [ -x "$T/control/$s" ] && sh -n "$T/control/$s" || fail "maintainer script $s missing or not valid sh"
done
grep -q "deb-systemd-helper enable demail-gatewayd.service" "$T/control/postinst" || fail "postinst does not enable the service"
grep -q "deb-systemd-invoke stop demail-gatewayd.service" "$T/control/prerm" || fail "prerm does not stop the service on remove"
pass "maintainer scripts: enable and start (restart on upgrade), stop on remove, purge (make system-test runs them under systemd)"
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 || true)
echo "$lint" | sed 's/^/  lintian: /' | head -20
if grep -q "^E:" <<<"$lint"; then fail "lintian errors"; fi
pass "lintian: no errors ($(grep -c '^W:' <<<"$lint" || true) warnings)"
