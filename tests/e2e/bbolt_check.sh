#!/usr/bin/env bash
# bbolt_check.sh: the C bbolt writer (stella/bbolt.h) against bbolt itself.
# Builds tests/bbolt/check.go with Debian's golang-go and go.etcd.io/bbolt (GOPATH mode, no
# network), then for every scenario of bench_bbolt (empty, one, flat, deep, nested,
# overflow, mixed, maxdepth, trivy = 200,000 Trivy-shaped advisories):
#  1. bbolt opens the DB read-only, tx.Check() is clean, page headers carry their own ids,
#     and the dump of every bucket/key/value (sha256) plus bbolt's Bucket.Stats equals
#     what the generator fed the writer and what the writer says it wrote;
#  2. a second run writes a byte-identical file;
#  3. a read-write open leaves the file byte-identical; a no-op Update (bbolt rewrites its
#     free list and a meta page) leaves Check() clean and the contents unchanged.
# Also: the empty DB is byte-identical to the one bbolt creates, the scenarios reach the
# shapes they claim (branch levels, overflow pages, inline and page-backed buckets), and
# the harness catches a tampered value, a wrong page id and broken meta checksums.
set -euo pipefail

if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/go.etcd.io/bbolt ]; then
  if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    echo "golang-go / golang-github-coreos-bbolt-dev missing (ops/deps.sh)" >&2; exit 1; fi
  echo "skipping: golang-go or golang-github-coreos-bbolt-dev not installed" >&2; exit 77
fi
GEN="${STELLA_BIN_DIR:?}/bin/bench_bbolt"
SRC="${STELLA_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

export GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOPROXY=off GOFLAGS=
export GOCACHE="$STELLA_BIN_DIR/go-cache" GOTOOLCHAIN=local
go build -o bboltcheck "$SRC/tests/bbolt/check.go"
check() { ./bboltcheck check "$1" >"$2" 2>"$2.err" || fail "$1: $(cat "$2.err")"; }
# Field `name` of a dump's stats line.
stat() { sed -n "s/^stats .*\b$2=\([0-9]*\).*/\1/p" "$1"; }

for s in empty one flat deep nested overflow mixed maxdepth trivy; do
  "$GEN" write "$s" "$s.db" "$s.want"
  check "$s.db" "$s.got"
  if ! cmp -s "$s.want" "$s.got"; then
    diff "$s.want" "$s.got" | head -20 >&2; fail "$s: bbolt's dump differs from the input"
  fi
  "$GEN" write "$s" "$s.again.db"
  cmp -s "$s.db" "$s.again.db" || fail "$s: two runs wrote different bytes"
  cp "$s.db" "$s.rw.db"
  ./bboltcheck rwopen "$s.rw.db"
  cmp -s "$s.db" "$s.rw.db" || fail "$s: a read-write open changed the file"
  ./bboltcheck update "$s.rw.db"
  check "$s.rw.db" "$s.rw.got"
  cmp -s <(sed '$d' "$s.want") <(sed '$d' "$s.rw.got") ||
    fail "$s: contents changed after a no-op Update"
  rm -f "$s.again.db" "$s.rw.db"
  echo "ok $s: $(tail -1 "$s.got")"
done

# The empty DB is exactly what bbolt writes for a new file (4 pages: 2 metas, free list,
# empty root leaf).
./bboltcheck new bbolt-empty.db
cmp empty.db bbolt-empty.db || fail "empty DB differs from bbolt's own"

# Each scenario reaches the shape it is there for.
[ "$(stat flat.got branch)" -gt 0 ] || fail "flat: no branch pages"
[ "$(stat deep.got branch)" -gt 100 ] || fail "deep: expected a three-level tree"
[ "$(stat overflow.got leafovf)" -gt 0 ] || fail "overflow: no leaf overflow pages"
[ "$(stat overflow.got branchovf)" -gt 0 ] || fail "overflow: no branch overflow pages"
for s in nested mixed trivy; do
  [ "$(stat $s.got inline)" -gt 0 ] || fail "$s: no inline buckets"
  [ "$(stat $s.got inline)" -lt "$(stat $s.got buckets)" ] || fail "$s: no page-backed buckets"
done
[ "$(stat trivy.got leafovf)" -gt 0 ] || fail "trivy: no value larger than a page"
[ "$(grep -c '^key ' trivy.got)" -eq 400008 ] || fail "trivy: expected 400,008 keys"

# bbolt itself, fed the same input in one transaction, makes the same buckets inline (its
# rule: no sub-buckets and a leaf of at most pageSize/4 bytes; mixed has buckets on both
# sides of that edge) and holds the same contents; only page counts differ (bbolt splits
# pages at 50%).
for s in one overflow mixed maxdepth nested; do
  "$GEN" ops "$s" "$s.ops"
  ./bboltcheck load "$s.ops" "$s.bbolt.db" 1000000000
  check "$s.bbolt.db" "$s.bbolt.got"
  cmp -s <(sed '$d' "$s.want") <(sed '$d' "$s.bbolt.got") ||
    fail "$s: bbolt's own DB holds other contents"
  for f in buckets inline keys; do
    [ "$(stat $s.got $f)" = "$(stat $s.bbolt.got $f)" ] ||
      fail "$s: $f $(stat $s.got $f) here, $(stat $s.bbolt.got $f) when bbolt writes it"
  done
done

# The harness fails on damage: a changed value, a page whose header has another id, and
# both meta checksums broken.
cp one.db bad.db
off=$(grep -obUa 'value' bad.db | head -1 | cut -d: -f1)
printf 'V' | dd of=bad.db bs=1 seek="$off" conv=notrunc status=none
./bboltcheck check bad.db >bad.got 2>/dev/null || fail "a changed value broke Check()"
cmp -s one.want bad.got && fail "the dump did not show a changed value"
cp one.db bad.db
printf '\x07' | dd of=bad.db bs=1 seek=$((3 * 4096)) conv=notrunc status=none
./bboltcheck check bad.db >/dev/null 2>bad.err && fail "a wrong page id passed"
grep -q 'page 3: header says id 7' bad.err || fail "wrong page id: $(cat bad.err)"
cp one.db bad.db
printf 'X' | dd of=bad.db bs=1 seek=72 conv=notrunc status=none
printf 'X' | dd of=bad.db bs=1 seek=$((4096 + 72)) conv=notrunc status=none
./bboltcheck check bad.db >/dev/null 2>&1 && fail "broken meta checksums passed"
echo "ok: bbolt reads every scenario with exact contents"
