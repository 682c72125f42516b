#!/usr/bin/env bash
# bench_jcs.sh: canonical JSON encode throughput on a generated ~100 MB document against
# jansson's json_dumps of the same document in the same run (see bench_jcs.c).
#   tests/bench/bench_jcs.sh [build-dir] [target-MB] [runs]
set -euo pipefail
BUILD=${1:-build-bench}
BIN="$BUILD/bin/bench_jcs"
if [ ! -x "$BIN" ]; then
  echo "build first: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release &&" \
    "cmake --build $BUILD --target bench_jcs" >&2
  exit 2
fi
exec "$BIN" "${2:-100}" "${3:-3}"
