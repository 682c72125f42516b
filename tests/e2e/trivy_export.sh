#!/usr/bin/env bash
# trivy_export.sh: the trivy:db and trivy:java-db Export Center profiles end to end on the
# test Postgres and Redis with a real stellad (api + worker roles; job types trivy_db and
# trivy_java_db), checked with tools Stella did not write:
#   - `stella ledger import` loads the OSV fixtures, one advisory Trivy has no bucket for
#     (ecosystem CPAN) and the Maven index fixture (its 3 bad rows rejected by line, exit 1);
#   - `stella export run --wait` passes requested..distributed; export.built outbox events;
#   - `stella export verify` passes; the detached .sig verifies with openssl; two runs
#     download byte-identical; the payload is an OCI layout whose one layer (Trivy's media
#     type, title db.tar.gz) unpacks to trivy.db, which Debian's bbolt (tests/bbolt/check.go
#     `trivy` mode) dumps equal to tests/fixtures/trivy/osv.dump (the CPAN advisory is
#     listed in rejects.ndjson and absent);
#   - the stored oci-archive is read by skopeo (tag 2, same manifest digest) and, with a
#     registry (STELLA_REGISTRY_URL), pushed by stellad's oci_distribute worker: skopeo
#     reads tag 2 back with the same digest; an export_distributions row records it;
#   - trivy:java-db: sqlite3 PRAGMA integrity_check and trivy-java-db's sha1 lookup.
set -euo pipefail
BIN=${STELLA_BIN_DIR:?}/bin
SRC=${STELLA_SOURCE_DIR:?}
for v in STELLA_PG_URL STELLA_PG_ADMIN_URL STELLA_REDIS_URL; do
  if [ -z "${!v:-}" ]; then
    if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
      echo "$v is not set" >&2; exit 1; fi
    echo "skipping: $v not set (run through ops/test.sh)" >&2; exit 77
  fi
done
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/go.etcd.io/bbolt ] ||
   ! command -v sqlite3 >/dev/null || ! command -v jq >/dev/null || ! command -v skopeo >/dev/null; then
  echo "skipping: golang-go, golang-github-coreos-bbolt-dev, sqlite3, jq or skopeo missing" >&2; exit 77
fi
REG=${STELLA_REGISTRY_URL:-}
CREDS="${STELLA_REGISTRY_USER:-}:${STELLA_REGISTRY_PASS:-}"
unset STELLA_REGISTRY_USER STELLA_REGISTRY_PASS
unset STELLA_JWT_HS256_SECRET STELLA_API_LISTEN STELLA_TOKEN STELLA_API_URL STELLA_SIGNING_KEY \
  STELLA_DATA_DIR STELLA_EXPORT_TMP_DIR STELLA_OBJSTORE STELLA_TSA_URL STELLA_TSA_CA
TMP=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/stellad.log" ] && tail -20 "$TMP/stellad.log" >&2
  exit 1
}
cd "$TMP"
export GO111MODULE=off GOPATH="$TMP/gopath:/usr/share/gocode" GOPROXY=off GOFLAGS=
export GOCACHE="$STELLA_BIN_DIR/go-cache" GOTOOLCHAIN=local
go build -o bboltcheck "$SRC/tests/bbolt/check.go"
T=trv$$
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stella" key generate --type ed25519 -o sign.pem >/dev/null
openssl pkey -in sign.pem -pubout -out sign.pub 2>/dev/null
cat >stella.conf <<CONF
api_listen = 127.0.0.1:$PORT
ops_listen = 127.0.0.1:0
jwt_hs256_secret = trivy-e2e-secret-trivy-e2e-secret
pg_url = $STELLA_PG_URL
redis_url = $STELLA_REDIS_URL/2
signing_key = $TMP/sign.pem
data_dir = $TMP/data
export_tmp_dir = $TMP
api_rate_per_s = 0
worker_threads = 2
oci_source_dir = $TMP/data
oci_docker_config = $TMP/auth.json
CONF
printf '{"auths":{"%s":{"auth":"%s"}}}' "${REG#http://}" "$(printf %s "$CREDS" | base64 -w0)" >auth.json
chmod 600 auth.json
export STELLA_CONFIG=$TMP/stella.conf
ADMIN=$STELLA_PG_ADMIN_URL
unset STELLA_PG_URL STELLA_REDIS_URL
"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null || fail migrate
FX=$SRC/tests/fixtures
mkdir osv && cp "$FX"/ledger/osv/*.json osv/
jq '.id = "STELLA-CPAN-0001" | .affected[0].package.ecosystem = "CPAN"' \
  "$FX/ledger/osv/STELLA-NPM-0001.json" >osv/cpan.json
"$BIN/stella" ledger import --tenant "$T" osv >/dev/null || fail "ledger import (osv)"
if "$BIN/stella" ledger import --tenant "$T" "$FX/trivy/maven-index.csv" >imp.out 2>imp.err; then
  fail "bad Maven rows should make the exit code 1"
fi
[ "$(grep -c '^reject: .*maven-index.csv:[0-9]*: ' imp.err)" = 3 ] || fail "3 row rejects: $(cat imp.err)"
grep -q '^maven_artifact *[1-9][0-9]* added' imp.out || fail "Maven rows added: $(cat imp.out)"

"$BIN/stellad" --roles api,worker 2>stellad.log &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 300); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || fail "stellad did not start"
export STELLA_API_URL=$URL
STELLA_TOKEN=$("$BIN/stella" token mint --alg HS256 --tenant "$T" --scope "export:viewer export:operator" --ttl 30m --sub e2e)
export STELLA_TOKEN
api() { curl -s -o b.json -w '%{http_code}' -X "$1" -H "Authorization: Bearer $STELLA_TOKEN" \
  -H 'Content-Type: application/json' ${3:+--data "$3"} "$URL$2"; }
[ "$(api POST /exports/profiles '{"name":"tdb","kind":"trivy:db"}')" = 201 ] || fail "create tdb: $(cat b.json)"
[ "$(api POST /exports/profiles '{"name":"tjava","kind":"trivy:java-db"}')" = 201 ] || fail "create tjava"

echo "== trivy:db through stellad"
"$BIN/stella" export run tdb --tenant "$T" --wait >run1.out || fail "run: $(cat run1.out)"
RUN1=$(awk '/^run /{print $2}' run1.out)
[ "$(grep '^state' run1.out | tr '\n' ' ')" = \
  "state requested state planning state running state built state distributed " ] || fail "states: $(cat run1.out)"
[ "$(psql -qAt "$ADMIN" -c "SELECT count(*) FROM outbox WHERE tenant_id = '$T' AND
   event_id = 'export:$RUN1:built'")" = 1 ] || fail "no export.built event"
"$BIN/stella" export download "$RUN1" --tenant "$T" -o r1.tgz >/dev/null || fail download
"$BIN/stella" export verify r1.tgz --key sign.pub >/dev/null || fail "stella export verify"
OBJ=$(find data -path "*exports/$RUN1/export.tgz.sig" -not -name '.*' | head -1)
[ -n "$OBJ" ] || fail "no detached .sig"
sha256sum r1.tgz | cut -c1-64 | xxd -r -p >digest
openssl pkeyutl -verify -pubin -inkey sign.pub -rawin -in digest -sigfile "$OBJ" >/dev/null ||
  fail "openssl: detached signature"
"$BIN/stella" export run tdb --tenant "$T" --wait >run2.out || fail "second run"
RUN2=$(awk '/^run /{print $2}' run2.out)
"$BIN/stella" export download "$RUN2" --tenant "$T" -o r2.tgz >/dev/null || fail download2
cmp r1.tgz r2.tgz || fail "two runs of one ledger state differ"

mkdir b && tar -xzf r1.tgz -C b
jq -e '.kind == "export" and .metadata.export_kind == "trivy:db" and .metadata.format == "oci-layout"
  and .metadata.counts.rejected == 1' b/manifest.json >/dev/null || fail "manifest metadata"
jq -e 'select(.id == "STELLA-CPAN-0001") | .reason | test("CPAN")' b/payload/rejects.ndjson >/dev/null ||
  fail "rejects.ndjson: $(cat b/payload/rejects.ndjson)"
lay=b/payload/oci
man=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "2") | .digest' "$lay/index.json")
m="$lay/blobs/sha256/${man#sha256:}"
jq -e '.artifactType == "application/vnd.aquasec.trivy.config.v1+json" and (.layers | length) == 1
  and .layers[0].mediaType == "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
  and .layers[0].annotations["org.opencontainers.image.title"] == "db.tar.gz"' "$m" >/dev/null ||
  fail "OCI manifest: $(cat "$m")"
l=$(jq -r '.layers[0].digest' "$m")
mkdir db && tar -xzf "$lay/blobs/sha256/${l#sha256:}" -C db
./bboltcheck trivy db/trivy.db >db.dump || fail "bboltcheck: $(cat db.dump)"
diff -u "$FX/trivy/osv.dump" db.dump >&2 || fail "dump differs from tests/fixtures/trivy/osv.dump"
jq -e '.Version == 2 and .UpdatedAt == "2024-04-11T07:15:00Z"' db/metadata.json >/dev/null || fail metadata.json
ARC=$(find data -path "*exports/$RUN1/trivy-db.oci.tar" -not -name '.*' | head -1)
[ -n "$ARC" ] || fail "no oci-archive stored beside the bundle"
[ "sha256:$(skopeo inspect --raw "oci-archive:$ARC:2" | sha256sum | cut -c1-64)" = "$man" ] ||
  fail "oci-archive manifest differs from the bundle's"

if [ -n "$REG" ]; then
  echo "== the oci-archive pushed by the OCI distributor (oci_distribute through stellad)"
  HP=${REG#http://}
  repo="e2e/trivy-db-$$"
  payload=$(jq -nc --arg l "$TMP/$ARC" --arg r "$RUN1" --arg t "oci+http://$HP/$repo:2" \
    '{layout:$l, ref:"2", run_id:$r, targets:[$t]}')
  id=$("$BIN/stella" job submit --type oci_distribute --tenant "$T" --payload "$payload") || fail "submit"
  timeout 120 "$BIN/stella" job watch "$id" --tenant "$T" >watch.out 2>&1 || fail "oci_distribute: $(cat watch.out)"
  [ "sha256:$(skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HP/$repo:2" |
    sha256sum | cut -c1-64)" = "$man" ] || fail "pushed manifest differs from the bundle's"
  [ "$(psql -qAt "$ADMIN" -c "SELECT digest FROM export_distributions WHERE tenant_id = '$T'
     AND run_id = '$RUN1' AND target LIKE 'oci+http://%'")" = "$man" ] || fail "no export_distributions row"
fi

echo "== trivy:java-db through stellad"
"$BIN/stella" export run tjava --tenant "$T" --wait >run3.out || fail "java run: $(cat run3.out)"
RUN3=$(awk '/^run /{print $2}' run3.out)
"$BIN/stella" export download "$RUN3" --tenant "$T" -o j.tgz >/dev/null || fail "java download"
"$BIN/stella" export verify j.tgz --key sign.pub >/dev/null || fail "java verify"
mkdir j && tar -xzf j.tgz -C j
jman=$(jq -r '.manifests[0].digest' j/payload/oci/index.json)
jl=$(jq -r '.layers[0] | select(.mediaType == "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip") | .digest' \
  "j/payload/oci/blobs/sha256/${jman#sha256:}")
[ -n "$jl" ] || fail "java layer media type"
mkdir jdb && tar -xzf "j/payload/oci/blobs/sha256/${jl#sha256:}" -C jdb
[ "$(sqlite3 jdb/trivy-java.db 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
by_sha=$(sqlite3 jdb/trivy-java.db "SELECT a.group_id, a.artifact_id, i.version, i.archive_type
  FROM indices i JOIN artifacts a ON a.id = i.artifact_id
  WHERE i.sha1 = X'1111111111111111111111111111111111111111'")
[ "$by_sha" = "org.example|xml-kit|3.2.5|jar" ] || fail "lookup by sha1: $by_sha"
jq -e '.Version == 1' jdb/metadata.json >/dev/null || fail "java metadata.json"
JARC=$(find data -path "*exports/$RUN3/trivy-java-db.oci.tar" -not -name '.*' | head -1)
[ -n "$JARC" ] || fail "no Java DB oci-archive stored"
[ "sha256:$(skopeo inspect --raw "oci-archive:$JARC:1" | sha256sum | cut -c1-64)" = "$jman" ] ||
  fail "Java DB oci-archive manifest differs from the bundle's"
echo "ok: trivy:db and trivy:java-db exports through stellad (verify, bbolt, sqlite3, skopeo, determinism)"
