#!/usr/bin/env bash
# bench_bbolt.sh: build a Trivy-shaped DB of N advisories (default 200,000) with Stella's C
# bbolt writer and with bbolt itself, from the same op stream, in the same run.
#   C side:     bench_bbolt replay OPS DB (st_bbolt_*, one fsync at finish)
#   bbolt side: bboltcheck load OPS DB 10000 (Debian's go.etcd.io/bbolt 1.3.6, 10,000
#               operations per write transaction, NoSync = true, other options default:
#               FillPercent 0.5, free list synced)
# Both read the same file, so input parsing costs the same; wall time and peak RSS come
# from /usr/bin/time -v, median of RUNS (default 3) alternating runs. Both DBs are then
# dumped by bbolt and must hold identical contents.
# Usage: tests/bench/bench_bbolt.sh   (env: N, RUNS, BUILD=build dir, default build-bench)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
N=${N:-200000}
RUNS=${RUNS:-3}
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSTELLA_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" --target bench_bbolt -j2 >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOPROXY=off GOFLAGS=
export GOCACHE="$BUILD/go-cache" GOTOOLCHAIN=local
go build -o "$tmp/bboltcheck" "$SRC/tests/bbolt/check.go"
"$BUILD/bin/bench_bbolt" ops "trivy:$N" "$tmp/ops.bin"

# measure NAME CMD...: appends "seconds kib" to $tmp/NAME
measure() {
  local name=$1; shift
  /usr/bin/time -v "$@" 2>"$tmp/time.txt" >/dev/null
  awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0;
                for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%s ", s}
              /Maximum resident set size/ {print $2}' "$tmp/time.txt" >>"$tmp/$name"
}
for _ in $(seq "$RUNS"); do
  rm -f "$tmp/c.db" "$tmp/go.db"
  measure c "$BUILD/bin/bench_bbolt" replay "$tmp/ops.bin" "$tmp/c.db"
  measure go "$tmp/bboltcheck" load "$tmp/ops.bin" "$tmp/go.db" 10000
done
"$tmp/bboltcheck" check "$tmp/c.db" | sed '$d' >"$tmp/c.dump"
"$tmp/bboltcheck" check "$tmp/go.db" | sed '$d' >"$tmp/go.dump"
cmp -s "$tmp/c.dump" "$tmp/go.dump" || { echo "contents differ" >&2; exit 1; }

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
cs=$(cut -d' ' -f1 "$tmp/c" | median); cm=$(cut -d' ' -f2 "$tmp/c" | median)
gs=$(cut -d' ' -f1 "$tmp/go" | median); gm=$(cut -d' ' -f2 "$tmp/go" | median)
printf 'advisories %d (%d keys), ops stream %d bytes, runs %d (median)\n' "$N" \
  "$(grep -c '^key ' "$tmp/c.dump")" "$(stat -c %s "$tmp/ops.bin")" "$RUNS"
printf '%-22s %8s %10s %12s\n' writer wall_s peak_rss_kib db_bytes
printf '%-22s %8s %10s %12s\n' "stella C writer" "$cs" "$cm" "$(stat -c %s "$tmp/c.db")"
printf '%-22s %8s %10s %12s\n' "bbolt 1.3.6 (Go)" "$gs" "$gm" "$(stat -c %s "$tmp/go.db")"
awk -v cs="$cs" -v gs="$gs" -v cm="$cm" -v gm="$gm" \
  'BEGIN {printf "ratio bbolt/C: wall %.1fx, peak RSS %.1fx\n", gs / cs, gm / cm}'
