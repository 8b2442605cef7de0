#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS on a scratch copy of its corpus; new crashing inputs are
# written to build/fuzz/crashes/<target>/ (add them to the corpus once fixed).
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}; seconds=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
for t in smtp_command smtp_line message apdu_tlv dispatch_state spool_record provider_json provider_signature; do
  work="$build/fuzz-corpus/$t"; crashes="$build/crashes/$t"
  mkdir -p "$work" "$crashes"
  cp -n "$src/corpus/$t"/* "$work/" 2>/dev/null || true
  [ "$t" = message ] && cp -n "$src"/../connector/message/{corpus,golden}/*.eml "$work/" 2>/dev/null || true
  echo "== fuzz_$t for ${seconds}s"
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -artifact_prefix="$crashes/" -print_final_stats=1 "$work" 2>&1 |
    grep -E "stat::number_of_executed_units|stat::new_units_added|ERROR|SUMMARY" || true
done
