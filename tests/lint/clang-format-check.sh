#!/usr/bin/env bash
# Fails when a tracked or new C++ file differs from .clang-format.
set -euo pipefail
cd "$1"
files=$(find config smartcard connector smtp gateway certpromote sim tests -name '*.cpp' -o -name '*.h' | sort)
[ -n "$files" ] || exit 0
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files
echo "clang-format: $(echo "$files" | wc -l) files clean"
