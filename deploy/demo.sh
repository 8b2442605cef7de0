#!/usr/bin/env bash
# The demo: the simulated TeleSec card on a private pcscd, the simulated De-Mail provider, an
# internal mail server and demail-gatewayd between them. One message goes out through the
# gateway (TLS 1.2, ECDHE-RSA-AES256-SHA384, P-521, the handshake signed by the card), its
# Versandbestätigung comes back to the sender, and one inbound De-Mail arrives internally.
set -euo pipefail
build_dir=$(cd "${1:?usage: demo.sh BUILD_DIR}" && pwd)
export DEMAIL_BUILD_DIR="$build_dir" DEMAIL_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
. "$DEMAIL_SOURCE_DIR/tests/gateway/e2e/stack.sh"
trap stack_stop EXIT
heading() { printf '\n== %s ==\n' "$*"; }
state() { provider_state | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d['$1'])"; }
submitted() { [ "$(state submissions)" -ge 1 ]; }
mail_for() { grep -lq "X-Sink-Rcpt-To: <$1>" "$STACK"/mailbox/*.eml 2>/dev/null; }

heading "1. Starting the simulated card, the simulated provider, the internal mail server and the gateway"
stack_start
echo "card:     $(PCSCLITE_CSOCK_NAME=$PCSCLITE_CSOCK_NAME opensc-tool -n 2>/dev/null) in '$DEMAIL_READER'"
echo "provider: https://127.0.0.1:$HTTPS_PORT (simulated; accounts bound to the card's certificate)"
echo "gateway:  SMTP 127.0.0.1:$SMTP_PORT, health http://127.0.0.1:$HEALTH_PORT"

heading "2. What the card looks like to the operator (demail-card status)"
PCSCLITE_CSOCK_NAME=$PCSCLITE_CSOCK_NAME "$DEMAIL_BUILD_DIR/smartcard/demail-card" --reader "$DEMAIL_READER" status | sed 's/^/  /'

heading "3. The TLS profile against the provider, signed by the card (demailctl provider probe)"
"$DEMAILCTL" --config "$STACK/gateway.ini" provider probe | sed 's/^/  /'

heading "4. An internal server sends a De-Mail through the gateway (swaks, STARTTLS)"
send_mail "[versandbestaetigung] Antrag auf Baugenehmigung" 2>&1 | grep -E '^ *(<-|->|<~|~>) ' | grep -E 'STARTTLS|MAIL FROM|RCPT TO|queued as|<-  220' | sed 's/^/  /'
wait_for 30 submitted || { echo "the message did not reach the provider"; exit 1; }
echo "  the provider received it:"
provider_state | /usr/bin/python3 -c '
import json, sys
for m in json.load(sys.stdin)["messages"]:
    print("    %-30s %-26s private-id=%s subject=%s" % (m["account"], m["messageType"], m["privateId"], m["subject"]))'

heading "5. The provider's Versandbestätigung arrives at the internal mailbox of the sender"
wait_for 30 mail_for sachbearbeiter@firma.de || { echo "no confirmation arrived"; exit 1; }
f=$(grep -l "X-Sink-Rcpt-To: <sachbearbeiter@firma.de>" "$STACK"/mailbox/*.eml | head -1)
grep -E "^(X-Sink-Mail-From|X-Sink-Rcpt-To|X-Sink-TLS|Subject|X-de-mail-message-type|X-de-mail-private-id):" "$f" | sed 's/^/  /'
echo "  the provider's signatures, checked by the gateway on the bytes as retrieved:"
tr -d '\r' <"$f" | awk '/^$/{exit} /^X-Demail-Gateway-(Verified|Retrieved):/{p=1; print "    " $0; next} p && /^[ \t]/{print "    " $0; next} {p=0}'

heading "6. An inbound De-Mail is delivered to the internal server"
printf 'From: amt@behoerde.de-mail.de\r\nTo: poststelle@firma.de-mail.de\r\nSubject: Ihr Bescheid\r\nX-de-mail-message-type: normal\r\nX-de-mail-sender: amt@behoerde.de-mail.de\r\n\r\nAnbei Ihr Bescheid.\r\n' |
  curl -s -X POST --data-binary @- "$PROVIDER_CONTROL/control/inject?account=poststelle@firma.de-mail.de" >/dev/null
wait_for 30 mail_for poststelle@firma.de || { echo "the inbound De-Mail did not arrive"; exit 1; }
f=$(grep -l "X-Sink-Rcpt-To: <poststelle@firma.de>" "$STACK"/mailbox/*.eml | head -1)
grep -E "^(X-Sink-Mail-From|X-Sink-Rcpt-To|X-Sink-TLS|Subject):" "$f" | sed 's/^/  /'

heading "7. The gateway's health (demailctl health)"
"$DEMAILCTL" --config "$STACK/gateway.ini" health | sed 's/^/  /' || true
echo
echo "Demo complete: the message went out signed by the card, its confirmation and an inbound De-Mail arrived."
