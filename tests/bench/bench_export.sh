#!/usr/bin/env bash
# bench_export.sh: a json:raw export of N generated OSV advisories (ledger read in keyset
# pages, plan check, RFC 8785 per document, gzip, seal with manifest/Merkle/DSSE, detached
# signature, store) against the floor of getting the same rows out:
# `psql -c "COPY (SELECT doc FROM ledger_advisories WHERE tenant_id = T ORDER BY id) TO
# STDOUT" | gzip -1`. Same run, same database. Wall time and peak RSS of each, and ratios.
# usage: eval "$(ops/services.sh env)"; tests/bench/bench_export.sh [N] (default 100000)
set -euo pipefail
N=${1:-100000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${STELLA_BIN_DIR:-$ROOT/build}/bin
WORK=$(mktemp -d)
T=bexp-$$
trap 'psql -q "$STELLA_PG_ADMIN_URL" -c "DELETE FROM export_runs WHERE tenant_id = '"'$T'"'; DELETE FROM export_profiles WHERE tenant_id = '"'$T'"'; DELETE FROM ledger_advisories WHERE tenant_id = '"'$T'"'" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

"$ROOT/tests/bench/gen_ledger" --count "$N" --seed bench --out "$WORK/docs"
STELLA_SOURCE_DIR=$ROOT "$BIN/stella" migrate >/dev/null 2>&1
"$BIN/stella" ledger import --tenant "$T" "$WORK/docs" >/dev/null
rm -rf "$WORK/docs"
"$BIN/stella" key generate --type ed25519 -o "$WORK/key.pem" >/dev/null
mkdir -p "$WORK/data" "$WORK/tmp"

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@"
  read -r wall rss < "$WORK/time"
  printf '%-34s %8.2f s  %8d KiB peak RSS\n' "$label" "$wall" "$rss"
  echo "$wall" > "$WORK/$label.wall"
  echo "$rss" > "$WORK/$label.rss"
}

echo "advisories: $N"
measure "export json:raw (bench_export)" "$BIN/bench_export" "$T" "$WORK/key.pem" "$WORK/data" "$WORK/tmp" >"$WORK/out"
cat "$WORK/out"
# psql's RSS is what /usr/bin/time reports for the pipeline's shell; measure psql itself
measure "psql COPY | gzip -1 (floor)" sh -c "psql -q \"$STELLA_PG_ADMIN_URL\" -c \"COPY (SELECT doc FROM ledger_advisories WHERE tenant_id = '$T' ORDER BY id) TO STDOUT\" | gzip -1 > '$WORK/copy.gz'"
echo "bundle $(find "$WORK/data" -name export.tgz -exec stat -c %s {} \;) bytes; copy.gz $(stat -c %s "$WORK/copy.gz") bytes"
awk -v a="$(cat "$WORK/export json:raw (bench_export).wall")" -v b="$(cat "$WORK/psql COPY | gzip -1 (floor).wall")" \
  'BEGIN { printf "ratio export / copy: %.2fx wall\n", a / b }'
