#!/usr/bin/env bash
# trivy_db.sh: `stella trivy build` checked with tools Stella did not write: Debian's
# go.etcd.io/bbolt (tests/bbolt/check.go `trivy` mode: Check() clean, strict decode of
# every value into trivy-db's types, data-source and vulnerability rows present), the
# sqlite3 CLI (PRAGMA integrity_check, trivy-java-db's lookup queries), jq (OCI layout).
#  1. fixtures: the dump equals tests/fixtures/trivy/osv.dump; bad documents rejected
#     one by one (exit 1) while the rest builds;
#  2. same input => byte-identical trivy.db, trivy-java.db, db.tar.gz, javadb.tar.gz;
#  3. 0 advisories; 10,000 from gen_ledger (with values over a page) through a small
#     sort memory (several spilled runs) equal to the in-memory build;
#  4. unknown schema version refused before anything is written.
set -euo pipefail
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/go.etcd.io/bbolt ] ||
   ! command -v sqlite3 >/dev/null; then
  echo "skipping: golang-go, golang-github-coreos-bbolt-dev or sqlite3 missing" >&2; exit 77
fi
STELLA="${STELLA_BIN_DIR:?}/bin/stella"
SRC="${STELLA_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
export GO111MODULE=off GOPATH="$tmp/gopath:/usr/share/gocode" GOPROXY=off GOFLAGS=
export GOCACHE="$STELLA_BIN_DIR/go-cache" GOTOOLCHAIN=local
go build -o bboltcheck "$SRC/tests/bbolt/check.go"
FIX="$SRC/tests/fixtures"

# 1. fixtures and golden dump
"$STELLA" trivy build --input "$FIX/ledger/osv" -o a --java-index "$FIX/trivy/maven-index.csv" \
  --oci >a.out 2>a.err && fail "bad Maven rows should make the exit code 1"
./bboltcheck trivy a/trivy.db >a.dump || fail "bboltcheck trivy: $(cat a.dump)"
diff -u "$FIX/trivy/osv.dump" a.dump >&2 || fail "dump differs from tests/fixtures/trivy/osv.dump"
[ "$(grep -c '^reject: ' a.err)" -eq 3 ] || fail "expected 3 Maven row rejects: $(cat a.err)"
tar -tzf a/db.tar.gz | sort | tr '\n' ' ' | grep -qx 'metadata.json trivy.db ' ||
  fail "db.tar.gz must hold metadata.json and trivy.db at its root"
jq -e '.Version == 2 and .UpdatedAt == "2024-04-11T07:15:00Z" and
       .NextUpdate == "2024-04-12T07:15:00Z"' a/metadata.json >/dev/null || fail "metadata.json"
jq -e '.Version == 1' a/java-db/metadata.json >/dev/null || fail "java metadata.json"
[ "$(sqlite3 a/java-db/trivy-java.db 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
sqlite3 a/java-db/trivy-java.db .schema >schema.sql
for s in 'CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);' \
  'CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id);' \
  'CREATE INDEX indices_artifact_idx ON indices(artifact_id);' \
  'CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1);'; do
  grep -qxF "$s" schema.sql || fail "schema lacks: $s"
done
# trivy-java-db SelectIndexBySha1 and SelectIndexByArtifactIDAndGroupID
by_sha=$(sqlite3 a/java-db/trivy-java.db "SELECT a.group_id, a.artifact_id, i.version, i.archive_type
  FROM indices i JOIN artifacts a ON a.id = i.artifact_id
  WHERE i.sha1 = X'1111111111111111111111111111111111111111'")
[ "$by_sha" = "org.example|xml-kit|3.2.5|jar" ] || fail "lookup by sha1: $by_sha"
by_ga=$(sqlite3 a/java-db/trivy-java.db "SELECT i.version, hex(i.sha1) FROM indices i
  JOIN artifacts a ON a.id = i.artifact_id WHERE a.group_id = 'org.example'
  AND a.artifact_id = 'xml-kit' ORDER BY i.version")
[ "$by_ga" = "3.2.4|0A1B2C3D4E5F60718293A4B5C6D7E8F901234567
3.2.5|1111111111111111111111111111111111111111" ] || fail "lookup by group+artifact: $by_ga"
for d in db:2:application/vnd.aquasec.trivy.db.layer.v1.tar+gzip:db.tar.gz \
         java-db:1:application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip:javadb.tar.gz; do
  IFS=: read -r name tag mt title <<<"$d"
  lay="a/oci/$name"
  man=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$lay/index.json")
  m="$lay/blobs/sha256/${man#sha256:}"
  jq -e --arg mt "$mt" --arg title "$title" '.artifactType == "application/vnd.aquasec.trivy.config.v1+json"
    and .config.mediaType == "application/vnd.oci.empty.v1+json" and (.layers | length) == 1
    and .layers[0].mediaType == $mt
    and .layers[0].annotations["org.opencontainers.image.title"] == $title' "$m" >/dev/null ||
    fail "$name: OCI manifest"
  l=$(jq -r '.layers[0].digest' "$m")
  echo "${l#sha256:}  $lay/blobs/sha256/${l#sha256:}" | sha256sum -c --quiet || fail "$name layer"
done

# bad documents: each rejected by name, the good ones still built
mkdir bad && cp "$FIX"/ledger/osv/*.json "$FIX"/ledger/bad/osv-*.json bad/
sed 's/"npm"/"CPAN"/' "$FIX/ledger/osv/STELLA-NPM-0001.json" | sed 's/STELLA-NPM-0001/STELLA-X-1/' >bad/x1.json
jq '.id = "STELLA-X-2" | .affected[0].ranges[0].events = [{"fixed": "1.0"}, {"introduced": "0"}]' \
  "$FIX/ledger/osv/STELLA-GO-0004.json" >bad/x2.json
jq '.id = "STELLA-X-3" | .affected[0].ranges[0].events = [{"introduced": "0"}, {"last_affected": "1.2"}]' \
  "$FIX/ledger/osv/STELLA-DEB-0009.json" >bad/x3.json
jq '.id = "STELLA-X-4" | .affected[0].ranges[0].type = "GIT" | .affected[0].ranges[0].repo = "https://x.invalid/r"' \
  "$FIX/ledger/osv/STELLA-GO-0004.json" >bad/x4.json
"$STELLA" trivy build --input bad -o b >b.out 2>b.err && fail "rejects must give exit 1"
for f in x1.json:'unknown ecosystem "CPAN"' x2.json:'"fixed" without an open "introduced"' \
         x3.json:'last_affected cannot be a Trivy OS advisory' x4.json:'nothing Trivy could match' \
         osv-no-introduced.json:'no "introduced" event' osv-bad-range-type.json:'"CALVER"'; do
  grep -F "reject: bad/${f%%:*}: " b.err | grep -qF "${f#*:}" || fail "no reject for $f: $(cat b.err)"
done
./bboltcheck trivy b/trivy.db >b.dump
cmp -s a.dump b.dump || fail "rejected documents changed the DB"

# 2. determinism
"$STELLA" trivy build --input "$FIX/ledger/osv" -o c --java-index "$FIX/trivy/maven-index.csv" \
  >/dev/null 2>&1 || true
for f in trivy.db db.tar.gz metadata.json java-db/trivy-java.db java-db/javadb.tar.gz; do
  cmp -s "a/$f" "c/$f" || fail "$f differs between two builds"
done

# 3. empty input; 10,000 generated advisories with big values and spilled sort runs
mkdir empty
"$STELLA" trivy build --input empty -o e >/dev/null
./bboltcheck trivy e/trivy.db >e.dump
[ ! -s e.dump ] || fail "empty DB should hold only empty buckets: $(cat e.dump)"
jq -e '.UpdatedAt == "1970-01-01T00:00:00Z"' e/metadata.json >/dev/null || fail "empty metadata"
"$SRC/tests/bench/gen_ledger" --count 10000 --seed 7 --out gen >/dev/null
"$SRC/tests/bench/gen_ledger" --count 3 --seed big --big-details 20000 --out gen/big >/dev/null
"$STELLA" trivy build --input gen -o g1 >g1.out
"$STELLA" trivy build --input gen -o g2 --sort-mem 1 >g2.out
grep -q ' 0 sort runs' g1.out || fail "32 MiB should sort 10,000 in memory: $(cat g1.out)"
grep -Eq ' ([2-9]|[1-9][0-9]+) sort runs' g2.out || fail "1 MiB should spill runs: $(cat g2.out)"
cmp -s g1/trivy.db g2/trivy.db || fail "external merge and in-memory sort differ"
./bboltcheck trivy g1/trivy.db >g.dump || fail "bboltcheck: $(head g.dump)"
./bboltcheck check g1/trivy.db >g.check
[ "$(sed -n 's/^stats .*leafovf=\([0-9]*\).*/\1/p' g.check)" -gt 0 ] || fail "no value over a page"
# 10,003 documents; both seeds alias CVE-2099-00000 in their document 0: one row, the
# greater document id wins
[ "$(grep -c $'^vulnerability\t' g.dump)" -eq 10002 ] || fail "vulnerability rows"
grep $'^vulnerability\tCVE-2099-00000\t' g.dump | grep -q "Long details 0" || fail "CVE collision: the greater id must win"

# 4. schema version
"$STELLA" trivy build --input "$FIX/ledger/osv" -o v --schema-version 3 2>v.err && fail "v3 accepted"
grep -q 'schema-version 3: unsupported' v.err || fail "schema message: $(cat v.err)"
[ ! -e v ] || fail "a refused build wrote output"
echo "trivy_db: ok"
