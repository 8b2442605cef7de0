#!/usr/bin/env bash
# Runs the enforced .clang-tidy checks over the project's sources using the build's compile database.
set -euo pipefail
build_dir=${1:?usage: clang-tidy.sh BUILD_DIR}
cd "$(dirname "$0")/../.."
files=$(find config smartcard connector smtp gateway certpromote sim -name '*.cpp' | sort)
echo "$files" | xargs -P 2 -n 4 clang-tidy -p "$build_dir" --quiet
echo "clang-tidy: $(echo "$files" | wc -l) files clean"
