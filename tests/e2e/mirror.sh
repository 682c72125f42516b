#!/usr/bin/env bash
# mirror.sh: mirror bundles end to end, with tools nobody here wrote (tuf-js, sha256sum,
# tar, python3's tarfile/gzip):
#  - full(T0) + delta(T0->T1) imported gives a tree byte-identical to full(T1) imported
#    (diff -r); the delta from a state file equals the delta from a tree;
#  - a delta after 1% of 10,000 documents changed is 0.5..2% of the full bundle's size;
#  - tuf-js refreshes from the tree (Ed25519 and P-256 keys) and downloads every target; an older repository
#    (timestamp rollback), a crafted snapshot rollback and an expired timestamp are refused
#    by tuf-js, and by `stella mirror import` / `stella mirror verify`;
#  - refused with the installed tree left byte-identical: a tampered blob in the bundle, a
#    wrong base, a truncated bundle, an untrusted key, a rollback, an archive with a `..`
#    path (nothing written outside), a tree whose blob was tampered at rest (delta refused);
#  - sha256sum of every blob file is its name.
set -euo pipefail
BIN=${STELLA_BIN_DIR:?}/bin
STELLA=$BIN/stella
SRC=${STELLA_SOURCE_DIR:?}
NODE_DIR=$SRC/tests/e2e
if [ ! -d "$NODE_DIR/node_modules/tuf-js" ]; then
  bash "$SRC/ops/test-clients.sh" || { echo "npm clients missing (ops/test-clients.sh)"; exit 77; }
fi
TUF="node $NODE_DIR/mirror_tuf.mjs"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
ts() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

# A listing that changes when any file or directory of DIR is replaced, resized, touched or
# re-moded (inode, size, mtime, mode of every path, the top directory included).
listing() { find "$1" -printf '%p %i %s %T@ %m\n' | sort | sha256sum; }
# refused DIR CMD...: exits 1 and DIR is exactly as before.
refused() {
  local dir=$1 rc=0 before
  shift
  before=$(listing "$dir")
  "$@" >out.txt 2>err.txt || rc=$?
  [ $rc = 1 ] || fail "$* exited $rc, want 1: $(cat out.txt err.txt)"
  [ "$(listing "$dir")" = "$before" ] || fail "$*: $dir changed"
  ls -a "$(dirname "$dir")" | grep -q '\.import-' && fail "$*: staging directory left behind"
  return 0
}

"$STELLA" key generate --type ed25519 -o k.pem >/dev/null
"$STELLA" key generate --type ed25519 -o other.pem >/dev/null
"$SRC/tests/bench/gen_ledger" --count 10000 --seed e2e --out docs0
cp -r docs0 docs1
python3 - docs1 <<'EOF'
import glob, json, os, sys
fs = sorted(glob.glob(sys.argv[1] + '/*/*.json'))
for p in fs[0:80]:                      # 80 changed
    d = json.load(open(p)); d['summary'] += ' (revised)'; d['modified'] = '2025-06-01T00:00:00Z'
    json.dump(d, open(p, 'w'))
for p in fs[80:90]:                     # 10 removed
    os.remove(p)
for i, p in enumerate(fs[90:100]):      # 10 added
    d = json.load(open(p)); d['id'] = 'STELLA-E2E-NEW-%d' % i; json.dump(d, open(p + '.new.json', 'w'))
EOF
VEX=$SRC/tests/fixtures/ledger/vex
POL=$SRC/tests/fixtures/ledger/policy
T0=$(ts '-2 hours') T1=$(ts '-1 hour')
"$STELLA" mirror build --from docs0 --from "$VEX" --from "$POL" -o full0.tgz --key k.pem \
  --issued "$T0" --state-out state0 >/dev/null
"$STELLA" mirror build --from docs1 --from "$VEX" --from "$POL" -o full1.tgz --key k.pem --issued "$T1" >/dev/null
"$STELLA" mirror build --from docs1 --from "$VEX" --from "$POL" -o delta01.tgz --key k.pem \
  --issued "$T1" --base state0 > delta.txt
grep -q '+10 ~80 -10' delta.txt || fail "delta counts: $(cat delta.txt)"
"$STELLA" verify full0.tgz --key k.pub.pem >/dev/null || fail "stella verify full0.tgz"
"$STELLA" verify delta01.tgz --key k.pub.pem >/dev/null || fail "stella verify delta01.tgz"

# full(T0) + delta == full(T1)
"$STELLA" mirror import full0.tgz --into A --key k.pub.pem >/dev/null || fail "import full0"
"$STELLA" mirror build --from docs1 --from "$VEX" --from "$POL" -o delta01b.tgz --key k.pem \
  --issued "$T1" --base A >/dev/null
cmp -s delta01.tgz delta01b.tgz || fail "delta from the state file != delta from the tree"
cp -a A A0
"$STELLA" mirror import delta01.tgz --into A --key k.pub.pem >/dev/null || fail "import delta"
"$STELLA" mirror import full1.tgz --into B --key k.pub.pem >/dev/null || fail "import full1"
diff -r A B >/dev/null || fail "full(T0)+delta differs from full(T1)"
ok "full(T0) + delta(T0->T1) == full(T1) (diff -r)"
"$STELLA" mirror verify A --key k.pub.pem >/dev/null || fail "verify A"
n=$(find A/blobs -type f -exec sha256sum {} + | awk '{ n = split($2, p, "/"); if ($1 != p[n]) bad++ } END { print bad ? -1 : NR }')
[ "$n" -ge 10000 ] || fail "blob files: $n (-1: a digest is not its name)"
ok "sha256sum of each of $n blobs is its name"

full=$(stat -c %s full1.tgz) delta=$(stat -c %s delta01.tgz)
awk -v d="$delta" -v f="$full" 'BEGIN { r = d / f * 100; printf "delta %d / full %d bytes = %.2f%%\n", d, f, r; exit !(r >= 0.5 && r <= 2) }' \
  || fail "a 1% change should give a delta of 0.5..2% of the full size"
ok "1% changed: delta is about 1% of the full bundle"

# tuf-js as the receiving client
mkdir c && cp A0/tuf/root.json c/
$TUF update A0 c | grep -q '^ok 5 targets' || fail "tuf-js on T0"
$TUF update A c | grep -q '^ok 5 targets' || fail "tuf-js on T1"
$TUF update A0 c > out.txt && fail "tuf-js accepted an older repository"
grep -q 'BadVersionError' out.txt || fail "tuf-js rollback: $(cat out.txt)"
$TUF rollback-snapshot A0 A R k.pem
$TUF update R c > out.txt && fail "tuf-js accepted a rolled-back snapshot"
grep -q 'BadVersionError: New snapshot version' out.txt || fail "snapshot rollback: $(cat out.txt)"
"$STELLA" mirror verify R --key k.pub.pem >/dev/null 2>&1 && fail "stella mirror verify accepted R"
"$STELLA" key generate --type p256 -o p256.pem >/dev/null
mkdir -p small && cp docs0/0000/000000*.json small/
"$STELLA" mirror build --from small -o p256.tgz --key p256.pem >/dev/null
"$STELLA" mirror import p256.tgz --into P --key p256.pub.pem >/dev/null || fail "import P-256"
mkdir cp256 && cp P/tuf/root.json cp256/
$TUF update P cp256 | grep -q '^ok 5 targets' || fail "tuf-js with an ECDSA P-256 root"
ok "tuf-js verifies the roles and targets (Ed25519, P-256); refuses timestamp and snapshot rollbacks"

"$STELLA" mirror build --from docs0 -o exp.tgz --key k.pem --issued "$(ts '-2 days')" >/dev/null
refused A "$STELLA" mirror import exp.tgz --into A --key k.pub.pem
grep -q 'timestamp.json: expired' err.txt || fail "expired: $(cat err.txt)"
"$STELLA" mirror import exp.tgz --into E --key k.pub.pem --at "$(ts '-36 hours')" >/dev/null
mkdir ce && cp E/tuf/root.json ce/
$TUF update E ce > out.txt && fail "tuf-js accepted an expired timestamp"
grep -q 'ExpiredMetadataError' out.txt || fail "tuf-js expired: $(cat out.txt)"
refused E "$STELLA" mirror verify E --key k.pub.pem
ok "an expired timestamp is refused by tuf-js, stella mirror import and verify"

# refusals leave the installed tree as it was
refused A "$STELLA" mirror import full0.tgz --into A --key k.pub.pem
grep -q 'rollback' err.txt || fail "rollback: $(cat err.txt)"
refused A "$STELLA" mirror import delta01.tgz --into A --key k.pub.pem
grep -q 'wrong base' err.txt || fail "wrong base: $(cat err.txt)"
refused A "$STELLA" mirror import full1.tgz --into A --key other.pub.pem
head -c $(( $(stat -c %s full1.tgz) / 2 )) full1.tgz > trunc.tgz
refused A "$STELLA" mirror import trunc.tgz --into A --key k.pub.pem
python3 - delta01.tgz tampered.tgz <<'EOF'
import gzip, io, sys, tarfile
src = tarfile.open(sys.argv[1], 'r:gz')
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as out:
    for m in src.getmembers():
        data = src.extractfile(m).read() if m.isfile() else None
        if m.name == 'payload/blobs.ndjson':
            data = data.replace(b'(revised)', b'(REVISED)', 1)
        out.addfile(m, io.BytesIO(data) if data is not None else None)
open(sys.argv[2], 'wb').write(gzip.compress(buf.getvalue(), mtime=0))
EOF
cp -a A0 A2
refused A2 "$STELLA" mirror import tampered.tgz --into A2 --key k.pub.pem
python3 - evil.tgz <<'EOF'
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w:gz') as t:
    for name in ['manifest.json', 'payload/../../evil.txt']:
        i = tarfile.TarInfo(name); i.size = 2; t.addfile(i, io.BytesIO(b'{}'))
EOF
refused A2 "$STELLA" mirror import evil.tgz --into A2 --key k.pub.pem
[ ! -e evil.txt ] && [ ! -e ../evil.txt ] || fail "a .. path was written"
blob=$(find A2/blobs -type f -print -quit)
chmod u+w "$blob" && printf ' ' >> "$blob"
refused A2 "$STELLA" mirror verify A2 --key k.pub.pem
refused A2 "$STELLA" mirror import delta01.tgz --into A2 --key k.pub.pem
ok "tampered blob, wrong base, truncated, untrusted key, rollback, .. path: refused, tree intact"
