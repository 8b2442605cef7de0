#!/usr/bin/env bash
# demailctl as root on a spool that the service user owns and has filled with traps (what a
# compromised daemon could plant; security review M6, L4):
#  - dispatch/<id>.tmp symlinks to a root-owned victim and to a name that does not exist yet, and a
#    dispatch/<id> state file that is itself a symlink: `queue retry` follows none of them, the
#    victims stay as they were, nothing is created at the dangling target, and the retry works;
#  - demailctl drops to the spool's owner: the state file it writes belongs to that user;
#  - the same traps in a root-owned spool (no privilege drop): the file writes alone follow no link;
#  - ESC, C1 and bidi bytes in last_error, HELO and a recipient: queue list and show print them
#    escaped (\xNN), never raw.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (plants files as another user)"; exit 0; }
B=${DEMAIL_BUILD_DIR:?}
CTL="$B/gateway/demailctl"
T=$(mktemp -d /tmp/demail-ctlroot-XXXXXX); trap 'rm -rf "$T"' EXIT
chmod 0755 "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
SVC=nobody; SVCGROUP=$(id -gn nobody)

# A spool message in the spool's on-disk format (gateway/src/spool.cpp), as the service writes it.
spool_message() {  # dir id helo rcpt
  local body=$'Subject: test\r\nX-Evil: \e]0;owned\a\r\n\r\nhello\r\n'
  {
    printf 'DEMAIL-SPOOL 1\nsender=alice@firma.test\nrcpt=%s\t\t\nret=\nenvid=\nclient=127.0.0.1\nhelo=%s\nauth=\ntls=\narrival=1764000000000\nend-envelope\n' "$4" "$3"
    printf '%s' "$body"
    printf 'DEMAIL-END %020d\n' "$(printf '%s' "$body" | wc -c)"
  } >"$1/queue/$2"
}

state_file() {  # path last_error
  printf 'demail-dispatch 1\nphase=submit\nattempts=3\nnext=4000000000000\ndelay_warned=0\nlast_status=4.4.1\nlast_error=%s\nend\n' "$2" >"$1"
}

# spool_with_traps DIR OWNER: three messages; A with .tmp -> victim, B with .tmp -> dangling,
# C whose state file is a symlink to victim2.
A=20261201000000AAAAAAAA; Bq=20261201000000BBBBBBBB; C=20261201000000CCCCCCCC
spool_with_traps() {
  local d=$1
  mkdir -p "$d/queue" "$d/dispatch" "$d/tmp"
  spool_message "$d" "$A" $'helo\e[2J' 'amt@behoerde.de-mail.de'
  spool_message "$d" "$Bq" 'mx.firma.test' $'x\xc2\x9b31m@behoerde.de-mail.de'
  spool_message "$d" "$C" 'mx.firma.test' 'amt@behoerde.de-mail.de'
  state_file "$d/dispatch/$A" $'provider said \e[31mRED\e]0;title\a; run: sudo demailctl queue retry \xe2\x80\xaeexe.sh'
  state_file "$d/dispatch/$Bq" 'provider said 503'
  ln -s "$T/victim" "$d/dispatch/$A.tmp"
  ln -s "$d-dangling" "$d/dispatch/$Bq.tmp"
  ln -s "$T/victim2" "$d/dispatch/$C"
}

conf() {  # spool dir -> config path
  cat >"$1.ini" <<INI
[smtp]
require_tls = false
[provider]
url = https://provider.example
[card]
key_uri = pkcs11:token=x;id=%47;type=private
[queue]
dir = $1
INI
  echo "$1.ini"
}

echo "original content" >"$T/victim"; echo "second victim" >"$T/victim2"
chmod 0666 "$T/victim" "$T/victim2"  # writable by the service user: only no-follow protects them
victims_intact() {
  [ "$(cat "$T/victim")" = "original content" ] || fail "$1: the victim was written through the .tmp symlink"
  [ "$(cat "$T/victim2")" = "second victim" ] || fail "$1: the victim was written through the state-file symlink"
  [ ! -e "$2-dangling" ] && [ ! -L "$2-dangling" ] || fail "$1: a file was created at the dangling link's target"
}
retried() {  # dir id: state says next=0 (due now), the file is a regular file
  [ -f "$1/dispatch/$2" ] && [ ! -L "$1/dispatch/$2" ] || fail "no regular state file for $2"
  grep -qx 'next=0' "$1/dispatch/$2" || fail "retry did not reset next attempt of $2: $(cat "$1/dispatch/$2")"
}

# 1. The service's spool, demailctl as root: privilege drop plus no-follow writes.
S="$T/spool"; spool_with_traps "$S"
chown -hR "$SVC:$SVCGROUP" "$S"
CONF=$(conf "$S")
for id in "$A" "$Bq" "$C"; do
  out=$("$CTL" --config "$CONF" queue retry "$id" 2>&1) || fail "retry $id: $out"
  grep -q "$id will be tried at the next dispatcher pass" <<<"$out" || fail "retry $id: $out"
  retried "$S" "$id"
done
victims_intact "service-owned spool" "$S"
grep -qx 'attempts=3' "$S/dispatch/$A" || fail "retry lost the attempt count"
[ "$(stat -c %U "$S/dispatch/$A")" = "$SVC" ] || fail "the state file was written as $(stat -c %U "$S/dispatch/$A"), not as the spool's owner"
[ -z "$(find "$S/dispatch" -name '.*.tmp')" ] || fail "temporary files left behind"
pass "root on the service's spool: .tmp symlinks (to a victim, dangling) and a symlinked state file are not followed; retry works and writes as $SVC"

# 2. queue list / show: terminal control bytes escaped.
list=$("$CTL" --config "$CONF" queue list) || fail "queue list"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' <<<"$list"; then fail "queue list prints raw control bytes: $(cat -v <<<"$list")"; fi
if grep -q $'\xc2\x9b\|\xe2\x80\xae' <<<"$list"; then fail "queue list prints a raw C1 or bidi control"; fi
grep -qF 'provider said \x1B[31mRED\x1B]0;title\x07; run: sudo demailctl queue retry \xE2\x80\xAEexe.sh' <<<"$list" ||
  fail "last_error not shown escaped: $(cat -v <<<"$list")"
grep -qF 'x\xC2\x9B31m@behoerde.de-mail.de' <<<"$list" || fail "recipient not escaped: $(cat -v <<<"$list")"
grep -q -- "-- 3 messages" <<<"$list" || fail "list: $list"
show=$("$CTL" --config "$CONF" queue show "$A") || fail "queue show"
if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' <<<"$show"; then fail "queue show prints raw control bytes: $(cat -v <<<"$show")"; fi
grep -qF '(helo\x1B[2J)' <<<"$show" || fail "HELO not escaped: $(cat -v <<<"$show")"
grep -qF 'X-Evil: \x1B]0;owned\x07' <<<"$show" || fail "header not escaped: $(cat -v <<<"$show")"
pass "queue list/show escape ESC, BEL, C1 (U+009B) and bidi overrides in last_error, HELO, recipients and headers"

# 3. The same traps in a root-owned spool: demailctl stays root, the writes alone must not follow.
echo "original content" >"$T/victim"; echo "second victim" >"$T/victim2"
R="$T/rootspool"; spool_with_traps "$R"
CONF=$(conf "$R")
for id in "$A" "$Bq" "$C"; do
  "$CTL" --config "$CONF" queue retry "$id" >/dev/null 2>&1 || fail "retry $id in the root-owned spool"
  retried "$R" "$id"
done
victims_intact "root-owned spool" "$R"
[ "$(stat -c %U "$R/dispatch/$A")" = root ] || fail "expected root to write in a root-owned spool"
pass "root-owned spool (no privilege drop): the durable write itself follows no symlink"
