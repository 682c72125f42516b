#!/usr/bin/env bash
# bench_mirror.sh: mirror bundles of N generated OSV advisories (gen_ledger) and a 1% delta
# (N/100 documents changed), against `rsync -a` of the same trees in the same run.
#   build full(T0), full(T1) and delta(T0->T1): RFC 8785 per document, SHA-256, spool,
#     indexes, TUF roles, seal (manifest, Merkle, DSSE), deterministic tgz;
#   import full(T0) into an empty directory, import the delta onto it (verify the bundle,
#     extract, build the new tree beside, check every TUF role, index and blob, swap);
#   rsync -a tree(T0) into an empty target, and tree(T1) into an up-to-date copy of T0
#     (what a mirror without bundles would ship: rsync --stats gives the bytes sent).
# Wall time and peak RSS of each (/usr/bin/time), bundle sizes, and ratios.
# usage: tests/bench/bench_mirror.sh [N] (default 100000); STELLA_BIN_DIR=build-rel
set -euo pipefail
N=${1:-100000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${STELLA_BIN_DIR:-$ROOT/build-rel}/bin
STELLA=$BIN/stella
command -v rsync >/dev/null || { echo "rsync missing (ops/deps.sh)"; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o time.txt "$@" >out.txt
  read -r wall rss < time.txt
  printf '%-40s %8.2f s  %8d KiB peak RSS\n' "$label" "$wall" "$rss"
  echo "$wall" > "$label.wall"
}
ratio() { awk -v a="$(cat "$1.wall")" -v b="$(cat "$2.wall")" -v l="$3" 'BEGIN { printf "%-40s %8.2fx\n", l, a / b }'; }

"$ROOT/tests/bench/gen_ledger" --count "$N" --seed bench --out docs0
cp -r docs0 docs1
python3 - docs1 "$N" <<'EOF'
import glob, json, sys
fs = sorted(glob.glob(sys.argv[1] + '/*/*.json'))
for p in fs[:: 100]:  # every 100th document: 1%
    d = json.load(open(p)); d['summary'] += ' (revised)'; d['modified'] = '2025-06-01T00:00:00Z'
    json.dump(d, open(p, 'w'))
EOF
"$STELLA" key generate --type ed25519 -o k.pem >/dev/null
T0=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ) T1=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "advisories: $N, changed: $((N / 100)); $(nproc) cores"
measure "build full(T0)" "$STELLA" mirror build --from docs0 -o full0.tgz --key k.pem --issued "$T0" --state-out state0
measure "build full(T1)" "$STELLA" mirror build --from docs1 -o full1.tgz --key k.pem --issued "$T1"
measure "build delta(T0->T1)" "$STELLA" mirror build --from docs1 -o delta.tgz --key k.pem --issued "$T1" --base state0
measure "import full(T0) into empty" "$STELLA" mirror import full0.tgz --into A --key k.pub.pem
cp -a A A0
measure "import delta onto T0" "$STELLA" mirror import delta.tgz --into A --key k.pub.pem
measure "stella mirror verify (at rest)" "$STELLA" mirror verify A --key k.pub.pem
"$STELLA" mirror import full1.tgz --into B --key k.pub.pem >/dev/null
diff -r A B >/dev/null && echo "full(T0) + delta == full(T1): identical trees"
rm -rf B
cp -a A0 R1
measure "rsync -a T0 into empty" rsync -a --stats A0/ R0/
sent0=$(awk '/Total bytes sent/ { gsub(",", "", $4); print $4 }' out.txt)
measure "rsync -a T1 into up-to-date T0" rsync -a --stats A/ R1/
sent1=$(awk '/Total bytes sent/ { gsub(",", "", $4); print $4 }' out.txt)
full=$(stat -c %s full1.tgz) delta=$(stat -c %s delta.tgz) tree=$(du -sb A | cut -f1)
printf 'sizes: full bundle %d B, delta %d B (%.2f%% of full); tree %d B (du -sb), %d files\n' \
  "$full" "$delta" "$(awk -v d="$delta" -v f="$full" 'BEGIN { print d / f * 100 }')" "$tree" "$(find A -type f | wc -l)"
printf 'rsync bytes sent: %d into empty, %d into up-to-date\n' "$sent0" "$sent1"
ratio "import full(T0) into empty" "rsync -a T0 into empty" "import full / rsync into empty"
ratio "import delta onto T0" "rsync -a T1 into up-to-date T0" "import delta / rsync up-to-date"
