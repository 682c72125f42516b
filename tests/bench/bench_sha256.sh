#!/usr/bin/env bash
# bench_sha256.sh: SHA-256 file throughput of st_sha256_file against coreutils sha256sum
# on the same file in the same run. Both read a warm page cache (the file is read once
# first), so this compares hashing and read loops, not the disk. Best of N runs each,
# interleaved; the digests must agree.
#   tests/bench/bench_sha256.sh [build-dir] [size-MiB] [runs]
set -euo pipefail
BUILD=${1:-build-bench}
MIB=${2:-1024}
RUNS=${3:-3}
BIN="$BUILD/bin/bench_sha256"
if [ ! -x "$BIN" ]; then
  echo "build first: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release &&" \
    "cmake --build $BUILD --target bench_sha256" >&2
  exit 2
fi
FILE=$(mktemp "${TMPDIR:-/tmp}/st_bench_sha256.XXXXXX")
trap 'rm -f "$FILE"' EXIT
head -c "$((MIB << 20))" /dev/urandom >"$FILE"
cat "$FILE" >/dev/null

best_st=999999 best_sum=999999
for _ in $(seq "$RUNS"); do
  read -r st_hex st_s _ < <("$BIN" "$FILE")
  t0=$(date +%s.%N)
  sum_hex=$(sha256sum "$FILE" | cut -d' ' -f1)
  t1=$(date +%s.%N)
  sum_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  [ "$st_hex" = "$sum_hex" ] || { echo "digest mismatch: $st_hex vs $sum_hex" >&2; exit 1; }
  best_st=$(awk -v a="$st_s" -v b="$best_st" 'BEGIN { print (a < b) ? a : b }')
  best_sum=$(awk -v a="$sum_s" -v b="$best_sum" 'BEGIN { print (a < b) ? a : b }')
done
printf 'file: %d MiB, best of %d, digest %s\n' "$MIB" "$RUNS" "$st_hex"
awk -v m="$MIB" -v a="$best_st" -v b="$best_sum" 'BEGIN {
  printf "st_sha256_file: %8.1f MiB/s (%.3f s)\n", m / a, a
  printf "sha256sum:      %8.1f MiB/s (%.3f s)\n", m / b, b
  printf "ratio st_sha256_file/sha256sum: %.2f\n", b / a
}'
