#!/usr/bin/env bash
# The package proven in a booted Debian 12 (issue 17): systemd as PID 1 in systemd-nspawn, the
# .deb installed with apt and the appliance run as shipped, its unit started by systemctl. Around
# it, test-only parts that exist only in the container: pcscd from Debian with vsmartcard-vpcd and
# the project's card simulator, the provider simulator, an internal relay (aiosmtpd).
#
#   tests/system/system-test.sh BUILD_DIR DEB [PREV_COMMIT]
#
# BUILD_DIR holds sim/demail-sim; DEB is the package under test; PREV_COMMIT (default a649f4a)
# the source of the previous package, built once and cached (tests/system/prev-deb.sh), which is
# installed first and upgraded with mail in the queue. The root file system is cached in
# build/nspawn-rootfs (tests/system/rootfs.sh). Prints each check with the time it was done.
set -euo pipefail
build=$(cd "${1:?usage: system-test.sh BUILD_DIR DEB [PREV_COMMIT]}" && pwd)
deb=$(readlink -f "${2:?}")
prev_commit=${3:-a649f4a}
src=$(cd "$(dirname "$0")/../.." && pwd)
here="$src/tests/system"
cache="$src/build/system-test"
rootfs="$src/build/nspawn-rootfs"
[ "$(id -u)" = 0 ] || { echo "system-test: needs root (systemd-nspawn)" >&2; exit 1; }
[ -f "$deb" ] || { echo "system-test: no package $deb" >&2; exit 1; }
[ -x "$build/sim/demail-sim" ] || { echo "system-test: $build/sim/demail-sim not built" >&2; exit 1; }

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%6.1f", b - a }'; }
say() { echo "[$(elapsed) s] $*"; }
pass() { say "ok: $*"; }
STAGE=$(mktemp -d /tmp/demail-system-XXXXXX)
fail() {
  say "FAIL: $*" >&2
  if [ -n "${NSPAWN_PID1:-}" ]; then
    echo "--- systemctl status demail-gatewayd" >&2
    cx systemctl status demail-gatewayd --no-pager -n 0 >&2 || true
    echo "--- journalctl -u demail-gatewayd (last 40)" >&2
    cx journalctl -u demail-gatewayd --no-pager -n 40 >&2 || true
  fi
  exit 1
}
. "$here/nspawn.sh"
cleanup() {
  nspawn_stop
  [ "${KEEP_TEST_DIR:-0}" = 1 ] && echo "kept $STAGE" || rm -rf "$STAGE" "$STAGE.nspawn.log"
}
trap cleanup EXIT

# Waits for a condition inside the container: wait_in SECONDS COMMAND... (run by bash -c).
wait_in() {
  local deadline=$(( $(date +%s) + $1 )); shift
  while [ "$(date +%s)" -le "$deadline" ]; do
    cx bash -c "$*" >/dev/null 2>&1 && return 0
    sleep 0.3
  done
  return 1
}
prop() { cx systemctl show -p "$1" --value demail-gatewayd; }
main_pid() { prop MainPID; }
provider_count() {  # SUBJECT -> how often the provider holds a message with that subject
  cx curl -sf http://127.0.0.1:8444/control/state | python3 -c '
import json, sys
want = sys.argv[1]
print(sum(1 for m in json.load(sys.stdin)["messages"] if m["subject"] == want))' "$1"
}
at_provider_once() {  # SUBJECT [seconds]: waits until the provider holds it, then exactly once
  local deadline=$(( $(date +%s) + ${2:-60} ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    [ "$(provider_count "$1")" != 0 ] && break
    sleep 0.3
  done
  [ "$(provider_count "$1")" = 1 ]
}
all_once_at_provider() {  # FILE inside with one subject per line -> 0 when each is there once
  local state
  state=$(cx curl -sf http://127.0.0.1:8444/control/state) || return 1
  python3 -c '
import collections, json, sys
subjects = [l.strip() for l in open(sys.argv[1]) if l.strip()]
have = collections.Counter(m["subject"] for m in json.loads(sys.argv[2])["messages"])
missing = [s for s in subjects if have[s] == 0]
twice = [s for s in subjects if have[s] > 1]
if twice:
    print("submitted more than once: %s" % twice); sys.exit(2)
if missing:
    print("%d of %d not at the provider yet, e.g. %s" % (len(missing), len(subjects), missing[0])); sys.exit(1)
print("%d of %d at the provider, each once" % (len(subjects), len(subjects)))' "$STAGE/root$1" "$state"
}
# Files written inside are read from the host through the container's root.
mkdir -p "$STAGE/root"
inside_file() { cx cat "$1"; }
queue_size() { cx bash -c 'ls /var/spool/demail-gateway/queue | wc -l'; }
card() {  # pull | insert, and wait until pcscd sees it
  local sig want
  if [ "$1" = pull ]; then sig=USR1 want=No; else sig=USR2 want=Yes; fi
  cx systemctl kill -s "$sig" --kill-who=main test-card
  wait_in 30 "opensc-tool -l 2>/dev/null | grep -Eq '^[0-9]+ +$want +Virtual PCD 00 00'" || fail "the card is not ${1}ed (opensc-tool -l: $(cx opensc-tool -l 2>&1 | tail -2))"
}

echo "== demail-gateway system test: $(basename "$deb") in a booted Debian 12 (systemd-nspawn)"
"$here/install-deps.sh"
"$here/rootfs.sh" "$rootfs"
prev=$("$here/prev-deb.sh" "$prev_commit" "$cache")
say "packages: previous $(basename "$prev") (commit $prev_commit), new $(basename "$deb")"

# What the container gets, read-only at /srv/demail-test: the two packages and the test-only
# parts (simulator binary, relay, sender, a test PKI for the provider's and the relays' TLS).
mkdir -p "$STAGE/stage/pki"
cp "$deb" "$STAGE/stage/new.deb"; cp "$prev" "$STAGE/stage/prev.deb"
cp "$build/sim/demail-sim" "$src/tests/tools/smtp_sink.py" "$here/send.py" "$STAGE/stage/"
(cd "$STAGE/stage/pki" &&
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=system-test-ca 2>/dev/null &&
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=provider.test 2>/dev/null &&
  printf 'subjectAltName=DNS:provider.test,DNS:gateway.firma.test,IP:127.0.0.1\n' >ext.cnf &&
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null)
chmod -R a+rX "$STAGE/stage"
name="demail-st-$$"
nspawn_boot "$rootfs" "$name" "$STAGE/stage"
# The container's root as the host sees it, for reading files written inside.
rmdir "$STAGE/root"; ln -s "/proc/$NSPAWN_PID1/root" "$STAGE/root"
pass "booted Debian $(cx cat /etc/debian_version) with systemd $(cx systemctl --version | awk 'NR==1 {print $2}') as PID 1: $(cx systemctl is-system-running)"

# --- The test-only parts, as transient units inside ------------------------------------------
cx systemctl start pcscd.service
cx systemd-run --quiet --unit=test-card /srv/demail-test/demail-sim card --state /var/lib/test-card \
  --log /var/log/test-card-apdu.log
wait_in 30 "opensc-tool -l 2>/dev/null | grep -Eq '^[0-9]+ +Yes +Virtual PCD 00 00'" || fail "the simulated card does not appear in pcscd"
subject=$(cx openssl x509 -in /var/lib/test-card/authentication.pem -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
cat >"$STAGE/accounts.json" <<JSON
{ "providerDomain": "sim-provider.de-mail.de", "domains": ["behoerde.de-mail.de"],
  "certificates": [ { "subject": "$subject",
     "accounts": [ {"address": "poststelle@firma.de-mail.de", "authLevel": "high", "retrieveConfirmation": true} ] } ],
  "otherAccounts": ["amt@behoerde.de-mail.de"] }
JSON
cx mkdir -p /var/lib/test-provider
cx tee /var/lib/test-provider/accounts.json <"$STAGE/accounts.json" >/dev/null
cx systemd-run --quiet --unit=test-provider /srv/demail-test/demail-sim provider \
  --cert /srv/demail-test/pki/server.pem --key /srv/demail-test/pki/server.key \
  --client-ca /var/lib/test-card/ca.pem --accounts /var/lib/test-provider/accounts.json \
  --listen 127.0.0.1:8443 --control 127.0.0.1:8444 --state /var/lib/test-provider
cx systemd-run --quiet --unit=test-relay /usr/bin/python3 /srv/demail-test/smtp_sink.py \
  --dump /var/lib/test-relay --port 2526 --port-file /run/test-relay.port \
  --cert /srv/demail-test/pki/server.pem --key /srv/demail-test/pki/server.key
wait_in 30 "curl -sf http://127.0.0.1:8444/control/state" || fail "the provider simulator did not start"
wait_in 30 "test -s /run/test-relay.port" || fail "the relay did not start"
pass "test-only parts up: pcscd $(cx dpkg-query -W -f '${Version}' pcscd) + vsmartcard-vpcd + simulated card, provider simulator on 127.0.0.1:8443, relay on 127.0.0.1:2526"

# --- 1. The previous package, configured as operations.md says, mail queued without the card --
cx apt-get install -y -q /srv/demail-test/prev.deb >"$STAGE/apt-prev.log" 2>&1 || { cat "$STAGE/apt-prev.log"; fail "installing the previous package"; }
pass "installed $(cx dpkg-query -W -f '${Package} ${Version}' demail-gateway) (previous)"
cx install -m 0640 -g demail-gateway /srv/demail-test/pki/server.pem /etc/demail-gateway/smtp.pem
cx install -m 0640 -g demail-gateway /srv/demail-test/pki/server.key /etc/demail-gateway/smtp.key
cx install -m 0640 -g demail-gateway /srv/demail-test/pki/ca.pem /etc/demail-gateway/provider-ca.pem
cx bash -c 'umask 077 && echo 123456 >/etc/demail-gateway/card.pin'
cx bash -c "umask 027 && printf '@firma.de  poststelle@firma.de-mail.de\npoststelle@firma.de  poststelle@firma.de-mail.de\n' >/etc/demail-gateway/accounts.map && chgrp demail-gateway /etc/demail-gateway/accounts.map"
cx bash -c "umask 027 && cat >/etc/demail-gateway/gateway.ini && chgrp demail-gateway /etc/demail-gateway/gateway.ini" <<'INI'
[smtp]
listen = 127.0.0.1:2525
hostname = gateway.firma.test
tls_cert = /etc/demail-gateway/smtp.pem
tls_key = /etc/demail-gateway/smtp.key
require_tls = true
relay_networks = 127.0.0.1/32
[card]
reader = Virtual PCD 00 00
pkcs11_module = /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
key_uri = pkcs11:token=NetKey%20V3%20Card%20%28NetKey%20PIN2%29;id=%47;type=private
pin_file = /run/credentials/demail-gatewayd.service/card.pin
opensc_conf = /usr/share/demail-gateway/opensc.conf
[provider]
profile = mentana
url = https://127.0.0.1:8443
ca_file = /etc/demail-gateway/provider-ca.pem
server_name = provider.test
accounts_file = /etc/demail-gateway/accounts.map
poll_interval = 2s
[delivery]
relay = 127.0.0.1:2526
tls = required
ca_file = /etc/demail-gateway/provider-ca.pem
postmaster = postmaster@firma.de
[queue]
dir = /var/spool/demail-gateway
retry_min = 2s
retry_max = 10s
[health]
listen = 127.0.0.1:8025
INI
card pull
cx systemctl enable --now demail-gatewayd >/dev/null 2>&1 || fail "systemctl enable --now (previous package)"
[ "$(prop ActiveState)" = active ] || fail "the previous package's service is $(prop ActiveState)"
cx python3 /srv/demail-test/send.py before-upgrade 3 /run/before-upgrade.txt || fail "intake (previous package)"
wait_in 30 "[ \$(ls /var/spool/demail-gateway/queue | wc -l) = 3 ]" || fail "queue: $(queue_size)"
[ "$(provider_count before-upgrade-000)" = 0 ] || fail "submitted without a card"
old_pid=$(main_pid)
old_warn=$(cx journalctl -u demail-gatewayd --no-pager | grep -c "already exists but the mode is different" || true)
conf_sums=$(cx bash -c 'cd /etc/demail-gateway && sha256sum * && stat -c "%n %U:%G %a" . *')
pass "previous package running (pid $old_pid), 3 messages queued with the card out; its ConfigurationDirectory warnings: $old_warn"

# --- 2. The upgrade, with mail in the queue ---------------------------------------------------
cursor=$(cx journalctl -u demail-gatewayd -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
t=$(date +%s.%N)
cx apt-get install -y -q /srv/demail-test/new.deb >"$STAGE/apt-new.log" 2>&1 || { cat "$STAGE/apt-new.log"; fail "upgrading"; }
took=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
version=$(cx dpkg-query -W -f '${Version}' demail-gateway)
pass "upgraded to $version in $took s (apt-get install ./new.deb)"
wait_in 30 "systemctl is-active demail-gatewayd" || fail "not active after the upgrade"
new_pid=$(main_pid)
[ "$new_pid" != "$old_pid" ] && [ "$new_pid" != 0 ] || fail "the upgrade did not restart the daemon (pid $old_pid -> $new_pid)"
pass "the upgrade restarted the service: pid $old_pid -> $new_pid, $(prop ActiveState) ($(prop SubState))"
[ "$(cx bash -c 'cd /etc/demail-gateway && sha256sum * && stat -c "%n %U:%G %a" . *')" = "$conf_sums" ] ||
  fail "the configuration changed in the upgrade"
pass "configuration kept: /etc/demail-gateway (gateway.ini, accounts.map, card.pin, certificates) unchanged, owner and modes too"
[ "$(queue_size)" = 3 ] || fail "queue after the upgrade: $(queue_size)"
[ "$(cx systemctl is-enabled demail-gatewayd)" = enabled ] || fail "not enabled after the upgrade"
pass "3 messages still queued after the upgrade; the unit is enabled"
card insert
wait_in 60 "[ \$(ls /var/spool/demail-gateway/queue | wc -l) = 0 ]" || fail "the queue did not drain: $(queue_size)"
out=$(all_once_at_provider /run/before-upgrade.txt) || fail "$out"
pass "card back: the queued mail from before the upgrade was sent by the new version ($out)"

# --- 3. The new version as shipped -------------------------------------------------------------
comm=$(cx cat "/proc/$(main_pid)/comm")
[ "$comm" = demail-gatewayd ] || fail "the process is called '$comm'"
pass "process name after the re-exec: $comm ($(cx systemctl status demail-gatewayd --no-pager | grep -o 'Main PID: .*'))"
warn=$(cx journalctl -u demail-gatewayd --after-cursor "$cursor" --no-pager | grep -c "already exists but the mode is different" || true)
[ "$warn" = 0 ] || fail "ConfigurationDirectory mode warning after the upgrade"
pass "no ConfigurationDirectory mode warning since the upgrade (the previous unit: $old_warn)"
exposure=$(cx systemd-analyze security demail-gatewayd --no-pager | awk '/Overall exposure level/ {print $(NF-2)}')
say "systemd-analyze security demail-gatewayd: exposure $exposure ($(cx systemd-analyze security demail-gatewayd --no-pager | grep -o 'Overall exposure level.*'))"
awk -v s="$exposure" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure $exposure above 2.0"
pass "exposure $exposure <= 2.0"

cx python3 /srv/demail-test/send.py out 1 /run/out.txt || fail "intake"
at_provider_once out-000 || fail "mail out did not reach the provider once: $(provider_count out-000)"
pass "mail out: SMTP STARTTLS into the gateway -> the provider simulator (card-signed TLS), once"
printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: system-test inbound\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\nAnbei.\r\n' |
  cx curl -sf -X POST --data-binary @- "http://127.0.0.1:8444/control/inject?account=poststelle@firma.de-mail.de" >/dev/null || fail "inject"
wait_in 60 "grep -l 'Subject: system-test inbound' /var/lib/test-relay/*.eml" || fail "the inbound De-Mail did not reach the relay"
f=$(cx bash -c "grep -l 'Subject: system-test inbound' /var/lib/test-relay/*.eml | head -1")
cx grep -q '^X-Sink-Rcpt-To: <poststelle@firma.de>' "$f" || fail "the inbound De-Mail went to $(cx grep '^X-Sink-Rcpt-To:' "$f")"
pass "mail in: injected at the provider -> the internal relay ($(cx grep -E '^X-Sink-(Rcpt-To|TLS):' "$f" | tr '\n' ' '))"

# Reload: a sender the accounts file does not map is refused; mapped in the file and reloaded,
# it is accepted and sent. `systemctl reload` returns only when the daemon says READY=1 again.
refused=$(cx python3 /srv/demail-test/send.py zweig 1 /run/zweig.txt --from info@zweig.de --expect-refused) || fail "an unmapped sender was accepted"
cx bash -c "printf '@zweig.de  poststelle@firma.de-mail.de\n' >>/etc/demail-gateway/accounts.map"
pid=$(main_pid)
# Each `systemctl reload` must return only after the daemon has reloaded: its event=reloaded is in
# the journal by then and the unit is active again. Three times: a race would show only at times.
reloaded_events() { cx journalctl -u demail-gatewayd --no-pager -o cat | grep -c "event=reloaded" || true; }
times=()
for i in 1 2 3; do
  before=$(reloaded_events)
  t=$(date +%s.%N)
  cx timeout 60 systemctl reload demail-gatewayd || fail "systemctl reload $i did not complete within 60 s (state $(prop ActiveState)/$(prop SubState))"
  times+=("$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')")
  state=$(prop ActiveState)
  after=$(reloaded_events)
  [ "$state" = active ] && [ "$(main_pid)" = "$pid" ] || fail "after reload $i: $state, pid $(main_pid)"
  [ "$after" -gt "$before" ] || fail "systemctl reload $i returned before the daemon reloaded (event=reloaded $before -> $after)"
done
took="${times[*]}"
cx python3 /srv/demail-test/send.py zweig 1 /run/zweig.txt --from info@zweig.de || fail "the reloaded accounts file is not applied"
at_provider_once zweig-000 || fail "the newly mapped sender's mail did not reach the provider once"
pass "systemctl reload x3, each returned after the daemon's event=reloaded, in $took s (same pid $pid, active); before it info@zweig.de got '$refused', after it the message was accepted and sent"

t=$(date +%s.%N)
cx systemctl restart demail-gatewayd || fail "systemctl restart"
took=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
[ "$(main_pid)" != "$pid" ] && [ "$(prop ActiveState)" = active ] || fail "restart: $(prop ActiveState), pid $(main_pid)"
cx python3 /srv/demail-test/send.py after-restart 1 /run/after-restart.txt || fail "intake after restart"
at_provider_once after-restart-000 || fail "no mail out after the restart"
pass "systemctl restart in $took s (stop and start until READY=1): pid $pid -> $(main_pid), mail flows"

# kill -9 while mail is being accepted and sent: Restart=on-failure brings it back (RestartSec=5),
# every message answered 250 reaches the provider once.
restarts=$(prop NRestarts); pid=$(main_pid)
cx systemd-run --quiet --unit=test-sender --property=Type=exec /usr/bin/python3 /srv/demail-test/send.py killed 40 /run/killed.txt --pause 0.1
wait_in 60 "[ \$(wc -l </run/killed.txt) -ge 10 ]" || fail "the sender does not get its mail accepted"
cx kill -9 "$pid"
killed_after=$(wc -l <"$STAGE/root/run/killed.txt")
wait_in 60 "[ \$(systemctl show -p NRestarts --value demail-gatewayd) -gt $restarts ] && systemctl is-active demail-gatewayd" ||
  fail "not restarted after kill -9: $(prop ActiveState) $(prop SubState), NRestarts $(prop NRestarts)"
new_pid=$(main_pid)
wait_in 180 "! systemctl is-active test-sender" || fail "the sender did not finish"
[ "$(cx systemctl show -p Result --value test-sender)" = success ] || fail "the sender failed: $(cx journalctl -u test-sender --no-pager -n 5)"
for _ in $(seq 1 200); do out=$(all_once_at_provider /run/killed.txt) && break; [ $? = 2 ] && fail "$out"; sleep 0.3; done
out=$(all_once_at_provider /run/killed.txt) || fail "after kill -9: $out"
pass "kill -9 of pid $pid after $killed_after of 40 accepted: restarted by systemd (NRestarts $restarts -> $(prop NRestarts), pid $new_pid), $out"

# The watchdog. With a short WatchdogSec in a runtime drop-in, systemd sees the pings and never
# kills the daemon; as shipped (WatchdogSec=60) it pings every 30 s, so in the seconds after a
# start systemd sees at most the first ping (the old daemon pinged every second).
cx mkdir -p /run/systemd/system/demail-gatewayd.service.d
cx bash -c 'printf "[Service]\nWatchdogSec=3\n" >/run/systemd/system/demail-gatewayd.service.d/watchdog.conf'
cx systemctl daemon-reload; cx systemctl restart demail-gatewayd
restarts=$(prop NRestarts); pid=$(main_pid)
seen=(); last=$(prop WatchdogTimestampMonotonic); deadline=$(( $(date +%s) + 60 ))
while [ ${#seen[@]} -lt 3 ] && [ "$(date +%s)" -le "$deadline" ]; do
  now=$(prop WatchdogTimestampMonotonic)
  if [ "$now" != "$last" ]; then seen+=("$now"); last=$now; fi
  sleep 0.2
done
[ ${#seen[@]} -ge 3 ] || fail "WATCHDOG=1 not seen with WatchdogSec=3 (${#seen[@]} pings in 60 s)"
gaps=$(awk -v s="${seen[*]}" 'BEGIN { n = split(s, a, " "); for (i = 2; i <= n; i++) printf "%.1f ", (a[i] - a[i-1]) / 1e6 }')
[ "$(main_pid)" = "$pid" ] && [ "$(prop NRestarts)" = "$restarts" ] || fail "the watchdog killed the daemon"
stamp=$(prop WatchdogTimestamp)
cx rm /run/systemd/system/demail-gatewayd.service.d/watchdog.conf; cx systemctl daemon-reload; cx systemctl restart demail-gatewayd
[ "$(prop WatchdogUSec)" = 1min ] || fail "WatchdogUSec=$(prop WatchdogUSec) as shipped"
changes=0; last=$(prop WatchdogTimestampMonotonic); end=$(( $(date +%s) + 8 ))
while [ "$(date +%s)" -lt "$end" ]; do
  now=$(prop WatchdogTimestampMonotonic)
  if [ "$now" != "$last" ]; then changes=$((changes + 1)); last=$now; fi
  sleep 0.2
done
[ "$changes" -le 1 ] || fail "WATCHDOG=1 more often than half of WatchdogSec=60: $changes pings within 8 s of the start"
pass "watchdog: with WatchdogSec=3 systemd saw WATCHDOG=1 at gaps of ${gaps}s (WatchdogTimestamp ${stamp:0:28}), never killed; as shipped (WatchdogSec=60) $changes ping in the 8 s after a start"

st=$(cx demailctl --config /etc/demail-gateway/gateway.ini health 2>&1) || fail "demailctl health: $st"
ql=$(cx demailctl --config /etc/demail-gateway/gateway.ini queue list 2>&1) || fail "demailctl queue list: $ql"
pass "demailctl as root: health -> $(head -1 <<<"$st" | cut -c1-80); queue list -> $(wc -l <<<"$ql") line(s)"
journal=$(cx journalctl -u demail-gatewayd --no-pager -o cat)
for want in "event=ready" "event=reloaded" "event=stopping" "event=stopped" "event=card_ready" \
  "event=card_not_ready" "status=9/KILL" "Scheduled restart job" "Reloaded demail-gatewayd.service"; do
  grep -qF -- "$want" <<<"$journal" || fail "the journal lacks '$want'"
done
pass "journalctl -u demail-gatewayd shows start, card, reload, stop, kill -9 and restart ($(wc -l <<<"$journal") lines)"

# --- 4. Remove and purge ------------------------------------------------------------------------
card pull
# Sending pauses once the daemon has seen the card go (until then a pooled TLS connection could
# still carry a submission): wait for readiness to say so.
wait_in 60 "! curl -sf http://127.0.0.1:8025/readyz" || fail "still ready without the card"
cx python3 /srv/demail-test/send.py before-remove 1 /run/before-remove.txt || fail "intake before remove"
cx apt-get remove -y -q demail-gateway >"$STAGE/apt-remove.log" 2>&1 || { cat "$STAGE/apt-remove.log"; fail "apt-get remove"; }
[ "$(cx dpkg-query -W -f '${db:Status-Abbrev}' demail-gateway)" = "rc " ] || fail "dpkg state after remove: $(cx dpkg-query -W -f '${db:Status-Abbrev}' demail-gateway)"
cx test ! -e /usr/sbin/demail-gatewayd || fail "binary left after remove"
cx pgrep -x demail-gatewayd >/dev/null && fail "the daemon still runs after remove"
cx test -f /etc/demail-gateway/gateway.ini -a -f /etc/demail-gateway/card.pin || fail "remove deleted the configuration"
[ "$(queue_size)" = 1 ] || fail "remove touched the queue: $(queue_size)"
pass "apt-get remove: daemon stopped, binaries gone, configuration and spool (1 queued message) kept, dpkg state rc"
cx apt-get purge -y -q demail-gateway >"$STAGE/apt-purge.log" 2>&1 || { cat "$STAGE/apt-purge.log"; fail "apt-get purge"; }
cx test ! -e /etc/demail-gateway || fail "purge left /etc/demail-gateway"
cx test ! -e /var/lib/demail-gateway || fail "purge left /var/lib/demail-gateway"
[ "$(queue_size)" = 1 ] || fail "purge dropped unsent mail"
grep -q "still holds 1 unsent message" "$STAGE/apt-purge.log" || fail "purge did not say why the spool is kept"
cx getent passwd demail-gateway >/dev/null || fail "purge removed the system user"
[ -z "$(cx dpkg-query -W -f '${db:Status-Abbrev}' demail-gateway 2>/dev/null)" ] || [ "$(cx dpkg-query -W -f '${db:Status-Abbrev}' demail-gateway 2>/dev/null)" = "un " ] || fail "dpkg still knows the package"
pass "apt-get purge: configuration (with card.pin) and /var/lib/demail-gateway removed; the spool kept because it holds 1 unsent message (said so); system user kept"

# A fresh install with no configuration: enabled, the start skipped by its condition, not failed.
cx apt-get install -y -q /srv/demail-test/new.deb >"$STAGE/apt-fresh.log" 2>&1 || { cat "$STAGE/apt-fresh.log"; fail "fresh install"; }
[ "$(cx systemctl is-enabled demail-gatewayd)" = enabled ] || fail "not enabled after a fresh install"
[ "$(prop ActiveState)" = inactive ] && [ "$(prop ConditionResult)" = no ] || fail "fresh install without configuration: $(prop ActiveState), condition $(prop ConditionResult)"
pass "fresh install: enabled, start skipped until /etc/demail-gateway/gateway.ini exists (ConditionResult=no, inactive, not failed)"
cx rm -rf /var/spool/demail-gateway/queue
cx apt-get purge -y -q demail-gateway >/dev/null 2>&1 || fail "second purge"
cx test ! -e /var/spool/demail-gateway || fail "purge with an empty queue left the spool"
pass "purge with nothing unsent removes the spool too"

say "system test passed"
