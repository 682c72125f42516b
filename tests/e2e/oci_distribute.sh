#!/usr/bin/env bash
# oci_distribute.sh: the `oci_distribute` worker run by a real stellad (worker role) from
# Redis, checked with skopeo, sha256sum, psql and the fault proxy:
#  1. A sealed bundle pushed as an OCI artifact: `skopeo copy docker://… oci-archive:` back
#     gives the same manifest digest, the layer is the bundle byte for byte with its title;
#     the bundle's manifest.dsse.json is a referrer (subject = that manifest) listed by
#     `stella oci referrers`; the same bundle also lands in the S3 object store (s3_fake).
#  2. export_distributions rows carry digests and retain_until; one export.distributed
#     outbox event per target. A second identical job uploads nothing (every HEAD hits),
#     adds no event and does not count an attempt.
#  3. A layout (oci-archive) pushed through the fault proxy (503s, resets mid-upload)
#     completes, each blob stored once.
#  4. Bad payloads are refused at submit/validate: userinfo in a target, a source outside
#     oci_source_dir (the job fails permanently, nothing pushed).
set -euo pipefail

for v in STELLA_REGISTRY_URL STELLA_PG_URL STELLA_REDIS_URL STELLA_PG_ADMIN_URL; do
  if [ -z "${!v:-}" ]; then
    if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
      echo "$v not set" >&2; exit 1; fi
    echo "skipping: $v not set (run through ops/test.sh)" >&2; exit 77
  fi
done
for t in skopeo node jq psql; do
  command -v "$t" >/dev/null || { echo "skipping: $t missing (ops/deps.sh)" >&2; exit 77; }
done
BIN="${STELLA_BIN_DIR:?}/bin"
SRC="${STELLA_SOURCE_DIR:?}"
[ -d "$SRC/tests/e2e/node_modules" ] || { echo "skipping: ops/test-clients.sh not run" >&2; exit 77; }
REG="$STELLA_REGISTRY_URL"
HOSTPORT=${REG#http://}
CREDS="$STELLA_REGISTRY_USER:$STELLA_REGISTRY_PASS"
ADMIN="$STELLA_PG_ADMIN_URL"
unset STELLA_REGISTRY_USER STELLA_REGISTRY_PASS STELLA_SIGNING_KEY STELLA_DATA_DIR STELLA_OBJSTORE
TMP=$(mktemp -d)
PID= PROXY_PID= S3_PID=
cleanup() {
  for p in $PID $PROXY_PID $S3_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/stellad.log" ] && tail -20 "$TMP/stellad.log" >&2
  exit 1
}
cd "$TMP"
T=ocid$$
RUN=$(/usr/bin/python3 -c 'import uuid; print(uuid.uuid4())')
repo="e2e/dist-$(date +%s%N)"

# S3-compatible object store (s3rver behind AWS's signer)
node "$SRC/tests/e2e/s3_fake.js" "$TMP/s3" "$TMP/s3.log" >s3.port &
S3_PID=$!
for _ in $(seq 100); do [ -s s3.port ] && break; sleep 0.1; done
S3PORT=$(jq -r .port s3.port) || fail "s3_fake did not start"

# registry credentials only in a docker config.json the configuration names
printf '{"auths":{"%s":{"auth":"%s"}}}' "$HOSTPORT" "$(printf %s "$CREDS" | base64 -w0)" >auth.json
chmod 600 auth.json
mkdir src
"$BIN/stella" key generate --type ed25519 -o sign.pem >/dev/null
openssl pkey -in sign.pem -pubout -out sign.pub 2>/dev/null || fail "public key"
cat >stella.conf <<CONF
pg_url = $STELLA_PG_URL
redis_url = $STELLA_REDIS_URL/3
worker_threads = 2
export_tmp_dir = $TMP
oci_source_dir = $TMP/src
oci_docker_config = $TMP/auth.json
oci_trusted_key = $TMP/sign.pub
objstore = s3
s3_endpoint = http://127.0.0.1:$S3PORT
s3_bucket = stella
s3_access_key = S3RVER
s3_secret_key = S3RVER
CONF
export STELLA_CONFIG=$TMP/stella.conf
unset STELLA_PG_URL STELLA_REDIS_URL
"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null 2>&1 || fail migrate
psql -q "$ADMIN" -c "INSERT INTO export_runs (tenant_id, run_id, profile_name, kind)
  VALUES ('$T', '$RUN', 'oci-e2e', 'json:raw')" || fail "cannot create the export run"

STELLA_OPS_LISTEN=127.0.0.1:0 STELLA_JOB_BACKOFF_BASE_MS=100 "$BIN/stellad" --roles worker 2>stellad.log &
PID=$!
for _ in $(seq 100); do grep -q "claim connection up" stellad.log && break; sleep 0.1; done

submit() { "$BIN/stella" job submit --type oci_distribute --tenant "$T" --payload "$1"; }
wait_job() { # ID -> exit status of watch
  timeout 120 "$BIN/stella" job watch "$1" --tenant "$T" >"watch.$1" 2>&1
}
sql() { psql -qAt "$ADMIN" -c "$1"; }

# 1. a sealed bundle to the registry and to S3
mkdir in && echo '{"advisory":"CVE-2026-0001"}' >in/a.json && head -c 300000 /dev/urandom >in/blob.bin
"$BIN/stella" bundle seal --kind export --key sign.pem -o src/export.tgz in >/dev/null
payload=$(jq -nc --arg b "$TMP/src/export.tgz" --arg r "$RUN" --arg t "oci+http://$HOSTPORT/$repo:run1" \
  '{bundle:$b, run_id:$r, retain_days:30, targets:[$t, "s3://exports/export.tgz"]}')
id=$(submit "$payload")
wait_job "$id" || fail "job $id: $(cat "watch.$id")"
grep -q 'oci_distribute result' stellad.log || fail "no result log line"
grep -qF -e "${CREDS#*:}" -e "$(printf %s "$CREDS" | base64 -w0)" stellad.log && fail "credentials in the log"
skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HOSTPORT/$repo:run1" >man.json
digest="sha256:$(sha256sum <man.json | cut -d' ' -f1)"
[ "$(jq -r .artifactType man.json)" = application/vnd.stella.bundle.v1+tar+gzip ] || fail "artifactType"
[ "$(jq '.layers | length' man.json)" = 1 ] || fail "not one layer"
[ "$(jq -r '.layers[0].annotations["org.opencontainers.image.title"]' man.json)" = export.tgz ] ||
  fail "title annotation"
[ "$(jq -r '.layers[0].digest' man.json)" = "sha256:$(sha256sum <src/export.tgz | cut -d' ' -f1)" ] ||
  fail "layer is not the bundle"
skopeo copy -q --src-tls-verify=false --src-creds "$CREDS" "docker://$HOSTPORT/$repo:run1" \
  oci-archive:back.tar:run1 || fail "skopeo copy back"
[ "sha256:$(skopeo inspect --raw oci-archive:back.tar:run1 | sha256sum | cut -d' ' -f1)" = "$digest" ] ||
  fail "skopeo copy back gives another digest"
mkdir back && tar -xf back.tar -C back
cmp -s "back/blobs/sha256/$(jq -r '.layers[0].digest' man.json | cut -d: -f2)" src/export.tgz ||
  fail "copied-back layer differs from the bundle"
"$BIN/stella" oci referrers "$REG/$repo@$digest" --creds "$CREDS" >refs.json
[ "$(jq -r '.manifests[0].artifactType' refs.json)" = application/vnd.dsse.envelope.v1+json ] ||
  fail "DSSE referrer not listed: $(cat refs.json)"
ref=$(jq -r '.manifests[0].digest' refs.json)
skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HOSTPORT/$repo@$ref" >ref.json
[ "$(jq -r .subject.digest ref.json)" = "$digest" ] || fail "referrer subject"
tar -xzOf src/export.tgz manifest.dsse.json | sha256sum | cut -d' ' -f1 >dsse.sha
[ "$(jq -r '.layers[0].digest' ref.json)" = "sha256:$(cat dsse.sha)" ] || fail "referrer is not manifest.dsse.json"
find "$TMP/s3" -type f -name '*export.tgz*' | grep -q . || ls -R "$TMP/s3" | grep -q export.tgz ||
  fail "no object in the S3 store"
grep -q '"PUT"' s3.log || fail "s3 target saw no PUT"

# 2. rows, events, idempotent re-run
rows=$(sql "SELECT target, digest, state, attempts, retain_until > now() + interval '29 days'
            FROM export_distributions WHERE tenant_id = '$T' AND run_id = '$RUN' ORDER BY target")
echo "$rows" | grep -qx "oci+http://$HOSTPORT/$repo:run1|$digest|pushed|1|t" || fail "registry row: $rows"
echo "$rows" | grep -qx "s3://exports/export.tgz|sha256:$(sha256sum <src/export.tgz | cut -d' ' -f1)|pushed|1|t" ||
  fail "s3 row: $rows"
[ "$(sql "SELECT count(*) FROM outbox WHERE tenant_id = '$T' AND type = 'export.distributed'")" = 2 ] ||
  fail "want 2 export.distributed events"
sql "SELECT payload FROM outbox WHERE tenant_id = '$T' AND payload->'payload'->>'digest' = '$digest'" |
  jq -e --arg d "$digest" --arg r "$RUN" '.schema == "stella.event/v1" and .subject == "export/\($r)"
        and .evidence[0].digest == $d and (.payload.referrer | startswith("sha256:"))' >/dev/null ||
  fail "event envelope"
before=$(wc -l <stellad.log)
id2=$(submit "$payload")
wait_job "$id2" || fail "re-run $id2: $(cat "watch.$id2")"
tail -n +"$((before + 1))" stellad.log | grep 'oci_distribute result' >rerun.log
[ "$(grep -o 'blobs_uploaded[^0-9]*[0-9]*' rerun.log | grep -c '[^0-9]0$')" = 2 ] &&
  ! grep -q 'blobs_uploaded[^0-9]*[1-9]' rerun.log || fail "re-run uploaded something: $(cat rerun.log)"
[ "$(sql "SELECT count(*) FROM outbox WHERE tenant_id = '$T' AND type = 'export.distributed'")" = 2 ] ||
  fail "re-run added an event"
[ "$(sql "SELECT sum(attempts) FROM export_distributions WHERE tenant_id = '$T'")" = 2 ] ||
  fail "re-run counted attempts"

# 3. a layout (oci-archive) through the fault proxy
head -c 2500000 /dev/urandom >db.tar.gz
"$BIN/stella" oci artifact db.tar.gz --artifact-type application/vnd.aquasec.trivy.config.v1+json \
  --layer-type application/vnd.aquasec.trivy.db.layer.v1.tar+gzip --tag 2 --archive src/trivy.tar >trivy.digest
rm -f proxy.port
node "$SRC/tests/e2e/fault_proxy.js" --upstream "$REG" --log proxy.log --port-file proxy.port \
  --fault HEAD:2:503,POST:1:503,PUT:1:reset,PUT:3:503 &
PROXY_PID=$!
for _ in $(seq 50); do [ -s proxy.port ] && break; sleep 0.1; done
jq --arg h "127.0.0.1:$(cat proxy.port)" '.auths[$h] = .auths[.auths | keys[0]]' auth.json >a2 && mv a2 auth.json
payload=$(jq -nc --arg l "$TMP/src/trivy.tar" --arg t "oci+http://127.0.0.1:$(cat proxy.port)/$repo-trivy:2" \
  '{layout:$l, ref:"2", targets:[$t]}')
id3=$(submit "$payload")
wait_job "$id3" || fail "layout job through faults: $(cat "watch.$id3")"
[ "$(jq -s '[.[] | select(.fault != null)] | length' proxy.log)" -ge 3 ] || fail "faults not injected"
[ "$(jq -s '[.[] | select(.method=="PUT" and .status==201 and (.url|contains("/blobs/uploads/")))] | length' proxy.log)" = 2 ] ||
  fail "blobs stored more than once"
[ "sha256:$(skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HOSTPORT/$repo-trivy:2" | sha256sum | cut -d' ' -f1)" = "$(cat trivy.digest)" ] ||
  fail "trivy layout digest changed"

# 4. refused payloads
if submit '{"bundle":"/x.tgz","targets":["oci://user:pw@reg.example/r:1"]}' >/dev/null 2>bad1.txt; then
  fail "a target with credentials was accepted"
fi
ln -s /etc/hostname src/escape.tgz
id4=$(submit "$(jq -nc --arg b "$TMP/src/escape.tgz" --arg t "oci+http://$HOSTPORT/$repo-x:1" '{bundle:$b, targets:[$t]}')")
if wait_job "$id4"; then fail "a source outside oci_source_dir was pushed"; fi
"$BIN/stella" job get "$id4" --tenant "$T" | grep -q 'outside oci_source_dir' || fail "escape: $(cat "watch.$id4")"
# 5. a tampered bundle (one payload file changed, re-packed with tar) is refused before any
#    push: the job fails naming the failed check, the tag never appears in the registry
mkdir tam && tar -xzf src/export.tgz -C tam || fail "untar"
f=$(find tam/payload -name a.json) && echo '{"advisory":"CVE-2026-9999"}' >"$f"
(cd tam && tar -czf "$TMP/src/tampered.tgz" .) || fail "repack"
id5=$(submit "$(jq -nc --arg b "$TMP/src/tampered.tgz" --arg t "oci+http://$HOSTPORT/$repo-tam:1" '{bundle:$b, targets:[$t]}')")
if wait_job "$id5"; then fail "a tampered bundle was pushed"; fi
"$BIN/stella" job get "$id5" --tenant "$T" | grep -q 'does not verify' || fail "tamper: $(cat "watch.$id5")"
skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HOSTPORT/$repo-tam:1" >/dev/null 2>&1 &&
  fail "the tampered bundle's tag exists"
# a bundle sealed by another key is refused the same way
"$BIN/stella" key generate --type ed25519 -o other.pem >/dev/null
"$BIN/stella" bundle seal --kind export --key other.pem -o src/foreign.tgz in >/dev/null
id6=$(submit "$(jq -nc --arg b "$TMP/src/foreign.tgz" --arg t "oci+http://$HOSTPORT/$repo-tam:2" '{bundle:$b, targets:[$t]}')")
if wait_job "$id6"; then fail "a bundle of another key was pushed"; fi
"$BIN/stella" job get "$id6" --tenant "$T" | grep -q 'does not verify' || fail "foreign: $(cat "watch.$id6")"
echo "ok: oci_distribute through stellad: bundle + DSSE referrer, S3 copy, rows/events, idempotent, faults, tampered and foreign bundles refused"
