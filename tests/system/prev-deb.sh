#!/usr/bin/env bash
# The package of an earlier commit, for the upgrade check: the source of COMMIT (git archive, no
# worktree) is built in CACHE/src-COMMIT (release, only the shipped binaries) and packaged with
# that commit's own deploy/build-deb.sh. Cached: built only when CACHE holds no .deb for COMMIT.
#   tests/system/prev-deb.sh COMMIT CACHE      prints the path of the .deb
set -euo pipefail
commit=${1:?usage: prev-deb.sh COMMIT CACHE}
cache=$(mkdir -p "${2:?}" && cd "$2" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
full=$(git -C "$src" rev-parse --verify "$commit^{commit}")
short=${full:0:7}
out="$cache/deb-$short"
if deb=$(ls "$out"/demail-gateway_*.deb 2>/dev/null | head -1) && [ -n "$deb" ]; then
  echo "$deb"
  exit 0
fi
start=$(date +%s)
tree="$cache/src-$short"
rm -rf "$tree" "$out"
mkdir -p "$tree"
git -C "$src" archive "$full" | tar -x -C "$tree"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$src")} CCACHE_NOHASHDIR=1
fi
cmake -S "$tree" -B "$tree/build/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >"$cache/build-$short.log" 2>&1
cmake --build "$tree/build/release" -j2 --target demail-gatewayd demailctl demail-card demail-certpromote \
  >>"$cache/build-$short.log" 2>&1 || { tail -20 "$cache/build-$short.log" >&2; exit 1; }
deb=$("$tree/deploy/build-deb.sh" "$tree/build/release" "$out")
rm -rf "$tree"
echo "prev-deb: built $(basename "$deb") of $short in $(( $(date +%s) - start )) s" >&2
echo "$deb"
