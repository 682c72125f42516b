#!/usr/bin/env bash
# bench_ledger.sh: `stella ledger import` of N generated OSV advisories (validation, JCS,
# SHA-256, batched RLS inserts with indexes) against the floor of loading the same bytes:
# `psql \copy` of the documents into an unindexed, RLS-free jsonb table. Same run, same
# database. Reports wall time and peak RSS of each, and the ratio.
# usage: eval "$(ops/services.sh env)"; tests/bench/bench_ledger.sh [N] (default 100000)
set -euo pipefail
N=${1:-100000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${STELLA_BIN_DIR:-$ROOT/build}/bin
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; psql -q "$STELLA_PG_ADMIN_URL" -c "DROP TABLE IF EXISTS bench_copy" >/dev/null 2>&1 || true' EXIT
T=bench-$$

"$ROOT/tests/bench/gen_ledger" --count "$N" --seed bench --out "$WORK/docs"
find "$WORK/docs" -name '*.json' | sort | xargs cat > "$WORK/all.ndjson"
STELLA_SOURCE_DIR=$ROOT "$BIN/stella" migrate >/dev/null 2>&1

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null
  read -r wall rss < "$WORK/time"
  printf '%-28s %8.2f s  %8d KiB peak RSS\n' "$label" "$wall" "$rss"
  echo "$wall" > "$WORK/$label.wall"
}

echo "advisories: $N ($(du -sh "$WORK/all.ndjson" | cut -f1) of JSON)"
measure "stella ledger import" "$BIN/stella" ledger import --tenant "$T" "$WORK/docs"
psql -q "$STELLA_PG_ADMIN_URL" -c "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (doc jsonb)"
measure "psql \\copy (floor)" psql -q "$STELLA_PG_ADMIN_URL" -c \
  "\\copy bench_copy (doc) FROM '$WORK/all.ndjson' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
echo "rows: ledger $(psql -tAq "$STELLA_PG_ADMIN_URL" -c "SELECT count(*) FROM ledger_advisories WHERE tenant_id = '$T'"), copy $(psql -tAq "$STELLA_PG_ADMIN_URL" -c 'SELECT count(*) FROM bench_copy')"
awk -v a="$(cat "$WORK/stella ledger import.wall")" -v b="$(cat "$WORK/psql \\copy (floor).wall")" \
  'BEGIN { printf "ratio import / copy: %.2fx\n", a / b }'
psql -q "$STELLA_PG_ADMIN_URL" -c "DELETE FROM ledger_advisories WHERE tenant_id = '$T'"
