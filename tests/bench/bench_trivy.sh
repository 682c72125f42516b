#!/usr/bin/env bash
# bench_trivy.sh: `stella trivy build` for N (default 200,000) gen_ledger advisories: wall
# time and peak RSS (GNU time), against bbolt itself writing the same buckets, keys and
# values (tests/bbolt/check.go: `ops` dumps our trivy.db as an op stream, `load` replays
# it with bbolt, 10,000 puts per write transaction, NoSync) in the same run.
# usage: tests/bench/bench_trivy.sh [BUILD_DIR] [N]
set -euo pipefail
BUILD="${1:-build}"; N="${2:-200000}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOPROXY=off GOFLAGS=
export GOCACHE="$tmp/go-cache" GOTOOLCHAIN=local
go build -o "$tmp/bboltcheck" "$SRC/tests/bbolt/check.go"
"$SRC/tests/bench/gen_ledger" --count "$N" --seed bench --out "$tmp/in" >/dev/null
measure() { /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null; cat "$tmp/t"; }
read -r s_wall s_rss < <(measure "$BUILD/bin/stella" trivy build --input "$tmp/in" -o "$tmp/out")
"$tmp/bboltcheck" ops "$tmp/out/trivy.db" "$tmp/ops.bin"
read -r g_wall g_rss < <(measure "$tmp/bboltcheck" load "$tmp/ops.bin" "$tmp/bbolt.db" 10000)
keys=$("$tmp/bboltcheck" check "$tmp/out/trivy.db" | sed -n 's/^stats .*keys=\([0-9]*\).*/\1/p')
printf 'advisories=%s keys=%s trivy.db=%s bytes (bbolt: %s)\n' "$N" "$keys" \
  "$(stat -c %s "$tmp/out/trivy.db")" "$(stat -c %s "$tmp/bbolt.db")"
printf 'stella trivy build (validate + map + sort + write + tgz): %6.2f s  %7d KiB peak RSS\n' "$s_wall" "$s_rss"
printf 'bbolt load (write only, batched tx):                     %6.2f s  %7d KiB peak RSS\n' "$g_wall" "$g_rss"
awk -v a="$s_wall" -v b="$g_wall" -v c="$s_rss" -v d="$g_rss" \
  'BEGIN { printf "ratio stella/bbolt: wall %.2fx, peak RSS %.2fx\n", a / b, c / d }'
