#!/usr/bin/env bash
# The evidence archive through the real stack (issue 21): every submission as submitted, the
# provider's answer with its message ids, every inbound item as retrieved (byte for byte, before
# the gateway normalises it); `demailctl archive verify` passes after kill -9 under load and finds
# an altered record's bytes, an altered field and a removed record.
set -euo pipefail
. "$(dirname "$0")/stack.sh"
trap stack_stop EXIT
ctl() { "$DEMAILCTL" --config "$STACK/gateway.ini" archive "$@"; }
submissions() { provider_state | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['submissions'])"; }
submitted_at_least() { [ "$(submissions)" -ge "$1" ]; }
stack_start

# 1. Three messages out: submitted (bytes) and accepted (provider ids) for each.
for n in 1 2 3; do send_mail "Antrag $n" >"$STACK/s$n.log" 2>&1 || fail "message $n refused"; done
wait_for 60 submitted_at_least 3 || fail "not submitted"
wait_for 20 bash -c "[ \$('$DEMAILCTL' --config '$STACK/gateway.ini' archive list kind=accepted | wc -l) -ge 3 ]" ||
  fail "answers not archived: $(ctl list)"
[ "$(ctl list kind=submitted | wc -l)" -eq 3 ] || fail "submitted records: $(ctl list kind=submitted)"
seq=$(ctl list kind=submitted | head -1 | cut -d' ' -f1)
qid=$(ctl show "$seq" | sed -n 's/^queue_id: //p')
ctl export "$seq" >"$STACK/exported.eml"
grep -q "^X-de-mail-private-id: $qid" "$STACK/exported.eml" || fail "the archived submission lacks its private-id"
grep -q "Sehr geehrte Damen und Herren, Antrag 1" "$STACK/exported.eml" || fail "the archived submission lacks its body"
[ "$(sha256sum <"$STACK/exported.eml" | cut -d' ' -f1)" = "$(ctl show "$seq" | sed -n 's/^sha256: //p')" ] ||
  fail "exported bytes differ from the recorded SHA-256"
ctl list kind=accepted queue_id="$qid" | grep -q "provider_message_ids=<dm-" || fail "provider ids not archived: $(ctl list kind=accepted)"
pass "3 submissions archived as submitted, each with the provider's message ids"

# 2. Inbound, with a bare LF the gateway must normalise before relaying: archived as retrieved.
printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: Bescheid roh\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\nZeile eins\nZeile zwei\r\n' >"$STACK/raw.eml"
pid=$(curl -s -X POST --data-binary @"$STACK/raw.eml" "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_for 30 bash -c "grep -q 'Subject: Bescheid roh' $STACK/mailbox/*.eml 2>/dev/null" || fail "inbound not delivered"
rseq=$(ctl list kind=retrieved provider_id="$pid" | head -1 | cut -d' ' -f1)
[ -n "$rseq" ] || fail "the retrieval of $pid is not archived: $(ctl list kind=retrieved)"
curl -s "$PROVIDER_CONTROL/control/message/$pid" >"$STACK/at-provider.eml"
ctl export "$rseq" | cmp -s - "$STACK/at-provider.eml" || fail "the archived inbound bytes differ from the provider's"
grep -q $'Zeile eins\nZeile zwei' "$STACK/at-provider.eml" || fail "the provider's copy lost its bare LF"
pass "an inbound message archived byte for byte as retrieved (bare LF kept), then delivered normalised"

# 3. kill -9 while 20 messages are being submitted; after the restart everything verifies.
senders=()
for n in $(seq 1 20); do send_mail "Last $n" >/dev/null 2>&1 & senders+=($!); done
wait_for 30 submitted_at_least 5 || fail "load did not start"
kill -9 "$GATEWAYD_PID"; wait "$GATEWAYD_PID" 2>/dev/null || true
for p in "${senders[@]}"; do wait "$p" || true; done  # some are cut off by the kill
"$GATEWAYD" --config "$STACK/gateway.ini" >>"$STACK/gatewayd.log" 2>&1 &
GATEWAYD_PID=$!; STACK_PIDS+=($GATEWAYD_PID)
wait_for 30 bash -c "[ \$(grep -c 'event=ready' '$STACK/gatewayd.log') -ge 2 ]" || fail "no restart"
wait_for 90 bash -c "'$DEMAILCTL' --config '$STACK/gateway.ini' queue list | grep -q '0 messages'" ||
  fail "the queue did not drain: $("$DEMAILCTL" --config "$STACK/gateway.ini" queue list)"
out=$(ctl verify) || fail "verify after kill -9: $out"
pass "after kill -9 under load: $(head -1 <<<"$out")"
# Every message the provider has is archived as submitted.
for q in $(provider_state | /usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(set(m.get("privateId","") for m in json.load(sys.stdin)["messages"] if m["messageType"]=="normal" and m.get("privateId")))))'); do
  ctl list kind=submitted queue_id="$q" | grep -q . || fail "message $q at the provider is not archived"
done
pass "every message at the provider has its submitted record"

# 4. Tampering is found: altered bytes, an altered field, a removed record.
month=$(ls -d "$STACK/spool/archive/"????-?? | tail -1)
cp "$month/$seq.bin" "$STACK/keep.bin"; cp "$month/index.jsonl" "$STACK/keep.index"
printf 'X' | dd of="$month/$seq.bin" bs=1 seek=10 conv=notrunc 2>/dev/null
if out=$(ctl verify); then fail "altered bytes not found"; fi
grep -q "record $seq (.*its bytes were altered" <<<"$out" || fail "verify output: $out"
cp "$STACK/keep.bin" "$month/$seq.bin"
sed -i "0,/\"queue_id\":\"$qid\"/s//\"queue_id\":\"FORGED$qid\"/" "$month/index.jsonl"
if out=$(ctl verify); then fail "an altered field not found"; fi
grep -q "altered (its hash does not match" <<<"$out" || fail "verify output: $out"
cp "$STACK/keep.index" "$month/index.jsonl"
sed -i "2d" "$month/index.jsonl"
if out=$(ctl verify); then fail "a removed record not found"; fi
grep -q "records missing" <<<"$out" || fail "verify output: $out"
cp "$STACK/keep.index" "$month/index.jsonl"
ctl verify >/dev/null || fail "the restored archive does not verify"
pass "altered bytes, an altered field and a removed record are each found by demailctl archive verify"
