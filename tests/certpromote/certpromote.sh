#!/usr/bin/env bash
# demail-certpromote against the simulated card: the store gets one PEM per certificate, owner
# root, the configured group, mode 0640, exactly the configured ACL entries (getfacl is the
# judge); a second run changes nothing and says so; --dry-run writes nothing; --prune removes
# what is no longer on the card; --from-dir reads a "user store" directory.
. "${DEMAIL_SOURCE_DIR:?}/tests/sim/lib.sh"
PROMOTE="$DEMAIL_BUILD_DIR/certpromote/demail-certpromote"
fixture_start
S="$TEST_DIR/store"
# [smtp] and [provider] as the daemon would refuse them (require_tls without a certificate, no
# url): demail-certpromote reads [certpromote] and [card] only, the other sections by name.
cat >"$TEST_DIR/gw.ini" <<INI
[smtp]
require_tls = true
[provider]
profile = mentana
[card]
reader = $DEMAIL_READER
[certpromote]
store = $S
group = nogroup
read_users = nobody
read_groups = daemon
ca_file = $DEMAIL_CARD_CA
INI

# The reader from [card] reader (no --reader), with [smtp]/[provider] incomplete.
out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --dry-run) || fail "dry run: $out"
grep -q "3 added.*dry run" <<<"$out" || fail "dry run: $out"
[ ! -e "$S" ] || [ -z "$(ls -A "$S")" ] || fail "dry run wrote files"
pass "--dry-run reports 3 additions and writes nothing; the reader from [card], [smtp]/[provider] not its business"

# Its own sections are checked in full; an unknown name anywhere stops it.
bad_config() {  # sed-expression expected-message
  sed "$1" "$TEST_DIR/gw.ini" >"$TEST_DIR/bad.ini"
  set +e; out=$("$PROMOTE" --config "$TEST_DIR/bad.ini" --dry-run 2>&1); rc=$?; set -e
  [ "$rc" = 2 ] || fail "$2: exit $rc, expected 2: $out"
  [ "$out" = "demail-certpromote: $2" ] || fail "message: $out"
}
bad_config 's/^require_tls = true$/require_tsl = true/' "[smtp] require_tsl: unknown key (see docs/configuration.md)"
bad_config 's/^group = nogroup$/group = nogroup\nread_user = nobody/' "[certpromote] read_user: unknown key (see docs/configuration.md)"
bad_config 's|^store = .*|store = certs|' "[certpromote] store: expected an absolute directory path, got 'certs'"
bad_config 's|^reader = .*|pin_rejection_file = pin-rejected|' "[card] pin_rejection_file: expected an absolute path, got 'pin-rejected'"
pass "configuration: unknown keys in any section and bad values in [certpromote]/[card] exit 2 naming the key"

out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER") || fail "promote: $out"
grep -q "3 added, 0 updated, 0 unchanged" <<<"$out" || fail "first run: $out"
fp=$(openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
f="$S/$fp.pem"
[ -f "$f" ] || fail "no $fp.pem"
cmp <(openssl x509 -in "$f" -outform DER) <(openssl x509 -in "$DEMAIL_CARD_STATE/authentication.pem" -outform DER) || fail "content"
[ "$(stat -c '%U:%G %a' "$f")" = "root:nogroup 640" ] || fail "owner/mode: $(stat -c '%U:%G %a' "$f")"
acl=$(getfacl -cp "$f" | grep -v '^$' | sort | tr '\n' ' ')
[ "$acl" = "group::r-- group:daemon:r-- mask::r-- other::--- user::rw- user:nobody:r-- " ] || fail "ACL: $acl"
grep -q "pkcs11:token=NetKey%20V3%20Card%20%28NetKey%20PIN2%29;id=%47;type=private" "$S/index.tsv" || fail "index lacks the key URI"
grep -q "clientAuth" "$S/index.tsv" || fail "index lacks the usage"
chmod 755 "$TEST_DIR"
su nobody -s /bin/sh -c "cat '$f' >/dev/null" || fail "nobody cannot read"
pass "3 certificates: root:nogroup 0640, ACL exactly user:nobody and group:daemon read, index with usage and key URI"

out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER")
grep -q "nothing to do: 3 certificates already" <<<"$out" || fail "second run: $out"
setfacl -m u:daemon:rw "$f"
out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER")
grep -q "updated  $fp" <<<"$out" || fail "a changed ACL is not repaired: $out"
[ "$(getfacl -cp "$f" | grep -c 'user:daemon')" = 0 ] || fail "foreign ACL entry kept"
pass "idempotent: a second run changes nothing and says so; a tampered ACL is repaired"

mkdir -p "$TEST_DIR/userstore"
cp "$DEMAIL_CARD_STATE/authentication.pem" "$TEST_DIR/userstore/"
openssl x509 -in "$DEMAIL_CARD_STATE/signature.pem" -outform DER -out "$TEST_DIR/userstore/sig.der"
echo "junk" >"$TEST_DIR/userstore/readme.txt"
out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --from-dir "$TEST_DIR/userstore" --prune)
grep -q "removed" <<<"$out" || fail "prune: $out"
[ "$(ls "$S"/*.pem | wc -l)" = 2 ] || fail "after prune: $(ls "$S")"
pass "--from-dir reads PEM and DER, skips junk; --prune removes the certificate no longer present"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TEST_DIR/o.key" -out "$TEST_DIR/userstore/other.pem" -days 2 -subj /CN=foreign 2>/dev/null
set +e; out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --from-dir "$TEST_DIR/userstore" 2>&1); rc=$?; set -e
[ "$rc" = 1 ] || fail "a certificate outside the CA must fail the run: $rc $out"
grep -q "does not chain" <<<"$out" || fail "chain message: $out"
pass "a certificate that does not chain to [certpromote] ca_file is refused (exit 1)"
"$PROMOTE" --config "$TEST_DIR/gw.ini" --list | grep -q -- "-- 2 certificates" || fail "--list"

# The store must be root's alone (security review M7): certpromote runs as root and would
# otherwise write through whatever a service user planted there.
out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER") || fail "back to the card: $out"
before=$(cd "$S" && ls -l --time-style=+%s.%N . | md5sum)
chown nobody "$S"
set +e; out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER" 2>&1); rc=$?; set -e
[ "$rc" = 1 ] || fail "a store owned by nobody must be refused: rc $rc $out"
grep -q "refusing the store $S: it is owned by uid $(id -u nobody), not root" <<<"$out" || fail "message: $out"
chown root "$S"; chmod 0775 "$S"
set +e; out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER" 2>&1); rc=$?; set -e
[ "$rc" = 1 ] && grep -q "writable by its group or others" <<<"$out" || fail "a group-writable store: rc $rc $out"
chmod 0755 "$S"
[ "$(cd "$S" && ls -l --time-style=+%s.%N . | md5sum)" = "$before" ] || fail "a refused run changed the store"
mkdir -p "$TEST_DIR/svc"; chown nobody "$TEST_DIR/svc"
set +e; out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER" --store "$TEST_DIR/svc/store" 2>&1); rc=$?; set -e
[ "$rc" = 1 ] && grep -q "refusing the store $TEST_DIR/svc/store: $TEST_DIR/svc above it is owned by uid" <<<"$out" ||
  fail "a store below a directory nobody owns: rc $rc $out"
pass "a store owned by a non-root user, writable by its group, or below a non-root directory is refused (exit 1), untouched"

# Links planted while the store was not root's (StateDirectory= of older units gave it to the
# service): the old predictable temporary names and a certificate file that is a link.
echo "victim" >"$TEST_DIR/victim"; echo "victim2" >"$TEST_DIR/victim2"
rm "$f"; ln -s "$TEST_DIR/victim2" "$f"
ln -s "$TEST_DIR/victim" "$f.tmp"
ln -s "$TEST_DIR/created" "$S/index.tsv.tmp"
out=$("$PROMOTE" --config "$TEST_DIR/gw.ini" --reader "$DEMAIL_READER") || fail "promote over planted links: $out"
grep -q "updated  $fp" <<<"$out" || fail "the symlinked certificate was not replaced: $out"
[ "$(cat "$TEST_DIR/victim")" = victim ] && [ "$(cat "$TEST_DIR/victim2")" = victim2 ] || fail "a victim was written through a link"
[ ! -e "$TEST_DIR/created" ] || fail "a file was created at a dangling link's target"
[ -f "$f" ] && [ ! -L "$f" ] && [ "$(stat -c '%U:%G %a' "$f")" = "root:nogroup 640" ] || fail "the certificate is not a root file: $(ls -l "$f")"
[ -z "$(find "$S" -name '*.tmp')" ] || fail "temporary names left: $(ls -a "$S")"
pass "planted <sha>.pem.tmp / index.tsv.tmp links (to a victim, dangling) and a symlinked <sha>.pem are not followed; replaced by root files"
