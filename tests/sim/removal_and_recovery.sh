#!/usr/bin/env bash
# The card can be pulled and inserted; pcscd can go away and come back; --remove-after pulls the
# card in the middle of a conversation.
. "$(dirname "$0")/lib.sh"
fixture_start

"$FIXTURE" card-pull "$TEST_DIR"
out=$(opensc-tool -n 2>&1 || true)
expect_not_contains "$out" "TCOS" "pulled card"
"$FIXTURE" card-insert "$TEST_DIR"
expect_contains "$(opensc-tool -n 2>&1)" "TCOS" "inserted card"
pass "SIGUSR1 pulls, SIGUSR2 inserts"

"$FIXTURE" pcscd-restart "$TEST_DIR"
expect_contains "$(opensc-tool -n 2>&1)" "TCOS" "after pcscd restart"
pass "card found again after pcscd restarts (the simulator reconnects)"

"$FIXTURE" sim-restart "$TEST_DIR" -- --remove-after 5
out=$(pkcs15-tool -D 2>&1 || true)
expect_not_contains "$out" "Private RSA Key [Authentifizierungs Schluessel]" "pulled mid-way"
sleep 0.5
expect_not_contains "$(opensc-tool -l 2>&1)" "Yes  Virtual PCD 00 00" "card after --remove-after"
"$FIXTURE" card-insert "$TEST_DIR"
expect_contains "$(opensc-tool -n 2>&1)" "TCOS" "re-inserted after --remove-after"
pass "--remove-after 5 pulls the card mid-conversation; SIGUSR2 brings it back"
