#!/usr/bin/env bash
# tests/bench/objstore.sh: filesystem object store put/get of one object vs cp of the same
# file in the same run. Every side ends with its data fsync'd (the store fsyncs before
# publishing and the get's output is fsync'd; cp and cat are followed by `sync FILE`),
# and a global `sync` runs before each timed step so no step pays for the one before.
# The put also hashes while streaming (the digest check), so `sha256sum` is reported
# too; a get streams through user space, so `cat OBJECT > FILE` (the same stored file,
# right after the get) is its closer baseline.
# Each measurement is the best of ROUNDS runs (the machine is shared and noisy).
# Usage: tests/bench/objstore.sh [BUILD_DIR] [SIZE_MIB] [ROUNDS]  (build-bench, 1024, 2)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-bench}
MIB=${2:-1024}
ROUNDS=${3:-2}
if [ ! -x "$BUILD/bin/bench_objstore" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target bench_objstore >/dev/null
fi
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/stella-bench-objstore-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$WORK/src"
digest=$(sha256sum "$WORK/src" | cut -c1-64)

secs() { local t0 t1; sync; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }

best_cp=999999 best_cat=999999 best_sha=999999 best_put=999999 best_get=999999
rss_put=0 rss_get=0
for _ in $(seq "$ROUNDS"); do
  rm -rf "$WORK/store" "$WORK/copy" "$WORK/out"
  best_sha=$(min "$best_sha" "$(secs sh -c "sha256sum '$WORK/src' >/dev/null")")
  best_cp=$(min "$best_cp" "$(secs sh -c "cp '$WORK/src' '$WORK/copy' && sync '$WORK/copy'")")
  rm -f "$WORK/copy"
  sync
  read -r _ bytes t rss_put < <("$BUILD/bin/bench_objstore" put "$WORK/store" "$WORK/src" "$digest")
  best_put=$(min "$best_put" "$t")
  sync
  read -r _ _ t rss_get < <("$BUILD/bin/bench_objstore" get "$WORK/store" "$digest" "$WORK/out")
  best_get=$(min "$best_get" "$t")
  obj="$WORK/store/tenants/bench/sha256/$digest"
  best_cat=$(min "$best_cat" "$(secs sh -c "cat '$obj' >'$WORK/copy' && sync '$WORK/copy'")")
  cmp "$WORK/src" "$WORK/out"
done

printf 'object: %d MiB (%d bytes), best of %d rounds\n' "$MIB" "$bytes" "$ROUNDS"
printf 'baselines: cp+sync %.2f s   cat>file+sync %.2f s   sha256sum %.2f s\n' \
  "$best_cp" "$best_cat" "$best_sha"
printf 'put: %.2f s (%.0f MiB/s)  put/cp = %.2f  put/sha256sum = %.2f  peak RSS %d KiB\n' \
  "$best_put" "$(echo "$MIB / $best_put" | bc -l)" "$(echo "$best_put / $best_cp" | bc -l)" \
  "$(echo "$best_put / $best_sha" | bc -l)" "$rss_put"
printf 'get: %.2f s (%.0f MiB/s)  get/cp = %.2f  get/cat = %.2f  peak RSS %d KiB\n' \
  "$best_get" "$(echo "$MIB / $best_get" | bc -l)" "$(echo "$best_get / $best_cp" | bc -l)" \
  "$(echo "$best_get / $best_cat" | bc -l)" "$rss_get"
