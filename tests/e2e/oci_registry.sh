#!/usr/bin/env bash
# oci_registry.sh: OCI layouts and registry pushes checked with clients nobody here wrote
# (skopeo, umoci, Debian's docker-registry), against ops/services.sh's registry
# ($STELLA_REGISTRY_URL, http + htpasswd) and tests/e2e/fault_proxy.js.
#  1. `stella oci artifact` archives are byte-identical across runs; skopeo and umoci read
#     them; a tampered blob is refused by `stella oci verify`.
#  2. A Trivy-DB-shaped artifact pushed with basic auth has exactly one layer of Trivy's
#     media type with the title annotation and the empty config; a re-push uploads
#     nothing; wrong credentials exit 1 with a clear message; `skopeo copy` back out gives
#     the same manifest digest.
#  3. Through the fault proxy (503s on POST/HEAD/PUT, resets mid-PATCH and on PUT),
#     chunked pushes complete and each blob reaches the registry exactly once; a re-push
#     through it sends no POST/PATCH/PUT.
#  4. Bearer: the proxy stands in for a token server (the Debian registry does token auth
#     only with an external server); good credentials push, wrong ones exit 1.
#  5. Referrers: an artifact with a subject is found through the tag-schema fallback
#     (distribution 2.8 has no referrers API).
set -euo pipefail

if [ -z "${STELLA_REGISTRY_URL:-}" ]; then
  if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    echo "STELLA_REGISTRY_URL not set" >&2; exit 1; fi
  echo "skipping: STELLA_REGISTRY_URL not set (run through ops/test.sh)" >&2; exit 77
fi
for t in skopeo umoci node jq; do
  command -v "$t" >/dev/null || { echo "skipping: $t missing (ops/deps.sh)" >&2; exit 77; }
done
STELLA="${STELLA_BIN_DIR:?}/bin/stella"
SRC="${STELLA_SOURCE_DIR:?}"
REG="$STELLA_REGISTRY_URL"
HOSTPORT=${REG#http://}
REG_USER="$STELLA_REGISTRY_USER"
CREDS="$REG_USER:$STELLA_REGISTRY_PASS"
unset STELLA_REGISTRY_USER STELLA_REGISTRY_PASS # every push below names its credentials
tmp=$(mktemp -d)
proxy_pid=
cleanup() { [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
run_id=$(date +%s%N)

start_proxy() { # extra args...
  rm -f proxy.port proxy.log
  node "$SRC/tests/e2e/fault_proxy.js" --upstream "$REG" --log proxy.log --port-file proxy.port "$@" &
  proxy_pid=$!
  for _ in $(seq 50); do [ -s proxy.port ] && break; sleep 0.1; done
  [ -s proxy.port ] || fail "fault proxy did not start"
  PROXY="http://127.0.0.1:$(cat proxy.port)"
}
stop_proxy() { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; proxy_pid=; }

# 1. layouts
head -c 200000 /dev/urandom >db.tar.gz
trivy=(db.tar.gz --artifact-type application/vnd.aquasec.trivy.config.v1+json
       --layer-type application/vnd.aquasec.trivy.db.layer.v1.tar+gzip --tag 2 --mtime 1700000000)
"$STELLA" oci artifact "${trivy[@]}" --archive a1.tar >d1
"$STELLA" oci artifact "${trivy[@]}" --archive a2.tar >d2
cmp -s a1.tar a2.tar || fail "oci-archive bytes differ between two runs"
"$STELLA" oci artifact "${trivy[@]}" -o layout >/dev/null
skopeo inspect --raw oci-archive:a1.tar:2 >raw.json || fail "skopeo cannot read the oci-archive"
[ "sha256:$(sha256sum <raw.json | cut -d' ' -f1)" = "$(cat d1)" ] || fail "skopeo sees another manifest"
umoci ls --layout layout | grep -qx 2 || fail "umoci does not list tag 2"
tar -tf a1.tar >listing || fail "tar cannot list the oci-archive"
head -3 listing | grep -qx 'blobs/' || fail "archive does not start with blobs/"
"$STELLA" oci verify a1.tar >/dev/null || fail "verify refused a good archive"
cp -r layout bad && blob=$(jq -r '.layers[0].digest' raw.json | cut -d: -f2)
printf 'X' | dd of="bad/blobs/sha256/$blob" bs=1 seek=100 conv=notrunc 2>/dev/null
if "$STELLA" oci verify bad 2>err.txt; then fail "verify accepted a tampered blob"; fi
grep -q 'holds sha256:' err.txt || fail "tampered blob message: $(cat err.txt)"

# 2. push with basic auth, Trivy shape, idempotence, wrong credentials, skopeo copy back
repo="e2e/trivy-db-$run_id"
"$STELLA" oci push a1.tar "$REG/$repo:2" --creds "$CREDS" >push1.txt || fail "push failed"
grep -q 'blobs: 2 uploaded' push1.txt || fail "first push: $(cat push1.txt)"
"$STELLA" oci push a1.tar "$REG/$repo:2" --creds "$CREDS" >push2.txt || fail "re-push failed"
grep -q 'blobs: 0 uploaded (0 bytes), 2 already present' push2.txt || fail "re-push: $(cat push2.txt)"
grep -q 'manifests: 0 pushed' push2.txt || fail "re-push pushed a manifest: $(cat push2.txt)"
skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HOSTPORT/$repo:2" >reg.json
[ "$(jq '.layers | length' reg.json)" = 1 ] || fail "not exactly one layer"
[ "$(jq -r '.layers[0].mediaType' reg.json)" = application/vnd.aquasec.trivy.db.layer.v1.tar+gzip ] ||
  fail "layer media type"
[ "$(jq -r '.layers[0].annotations["org.opencontainers.image.title"]' reg.json)" = db.tar.gz ] ||
  fail "title annotation"
[ "$(jq -r '.config.mediaType' reg.json)" = application/vnd.oci.empty.v1+json ] || fail "config type"
[ "$(jq -r '.artifactType' reg.json)" = application/vnd.aquasec.trivy.config.v1+json ] ||
  fail "artifactType"
set +e
"$STELLA" oci push a1.tar "$REG/$repo:3" --creds "$REG_USER:wrong" >/dev/null 2>bad.txt
rc=$?
set -e
[ $rc = 1 ] || fail "wrong credentials exit $rc, want 1"
grep -q 'HTTP 401 (credentials missing or refused)' bad.txt || fail "wrong credentials: $(cat bad.txt)"
skopeo copy -q --src-tls-verify=false --src-creds "$CREDS" "docker://$HOSTPORT/$repo:2" \
  oci-archive:back.tar:2 || fail "skopeo copy out of the registry failed"
[ "$(skopeo inspect --raw oci-archive:back.tar:2 | sha256sum | cut -d' ' -f1)" = "$(cut -d: -f2 d1)" ] ||
  fail "skopeo copy back gives another manifest digest"

# 3. faults: 503s and connection resets, chunked uploads, nothing stored twice
head -c 3000000 /dev/urandom >big.bin
"$STELLA" oci artifact big.bin --artifact-type application/vnd.stella.test.v1 --tag 1 --archive big.tar >/dev/null
start_proxy --fault HEAD:2:503,POST:1:503,PATCH:2:reset,PATCH:4:503,PUT:1:reset,PUT:3:503
frepo="e2e/faulty-$run_id"
"$STELLA" oci push big.tar "$PROXY/$frepo:1" --creds "$CREDS" --chunk-size 1000000 \
  --backoff-ms 5 >fault1.txt || fail "push through faults failed: $(cat fault1.txt)"
grep -q 'blobs: 2 uploaded' fault1.txt || fail "fault push: $(cat fault1.txt)"
grep -Eq 'resumed [1-9]' fault1.txt || fail "no upload was resumed: $(cat fault1.txt)"
[ "$(jq -s '[.[] | select(.fault != null)] | length' proxy.log)" -ge 5 ] || fail "faults not injected"
stored=$(jq -s '[.[] | select(.method=="PUT" and .status==201 and (.url|contains("/blobs/uploads/")))] | length' proxy.log)
[ "$stored" = 2 ] || fail "blob uploads completed $stored times, want 2 (one per blob)"
: >proxy.log
"$STELLA" oci push big.tar "$PROXY/$frepo:1" --creds "$CREDS" --backoff-ms 5 >fault2.txt ||
  fail "re-push through the proxy failed"
[ "$(jq -s '[.[] | select(.method=="POST" or .method=="PATCH" or .method=="PUT")] | length' proxy.log)" = 0 ] ||
  fail "re-push sent uploads or manifests"
stop_proxy

# 4. bearer token flow (the proxy is the token server and gates the registry)
start_proxy --bearer tokuser:tokpass --upstream-auth "$CREDS"
"$STELLA" oci push a1.tar "$PROXY/e2e/bearer-$run_id:2" --creds tokuser:tokpass >bearer.txt ||
  fail "bearer push failed"
grep -q 'blobs: 2 uploaded' bearer.txt || fail "bearer push: $(cat bearer.txt)"
jq -s -e '[.[] | select(.url|startswith("/token"))] | length >= 1' proxy.log >/dev/null ||
  fail "no token was requested"
set +e
"$STELLA" oci push a1.tar "$PROXY/e2e/bearer-$run_id:3" --creds tokuser:nope >/dev/null 2>bbad.txt
rc=$?
set -e
[ $rc = 1 ] || fail "wrong bearer credentials exit $rc, want 1"
grep -q 'token request: HTTP 401' bbad.txt || fail "wrong bearer credentials: $(cat bbad.txt)"
stop_proxy

# 5. referrers through the tag-schema fallback
subject=$(cat d1)
size=$(stat -c %s "layout/blobs/sha256/${subject#sha256:}")
printf '{"payloadType":"x","payload":"","signatures":[]}' >att.json
"$STELLA" oci artifact att.json --artifact-type application/vnd.dsse.envelope.v1+json \
  --layer-type application/vnd.dsse.envelope.v1+json --subject "$subject" --subject-size "$size" \
  --archive att.tar >att.digest
"$STELLA" oci push att.tar "$REG/$repo" --creds "$CREDS" >/dev/null || fail "referrer push failed"
"$STELLA" oci referrers "$REG/$repo@$subject" --creds "$CREDS" >refs.json
[ "$(jq -r '.manifests[0].digest' refs.json)" = "$(cat att.digest)" ] || fail "referrer not listed"
[ "$(jq -r '.manifests[0].artifactType' refs.json)" = application/vnd.dsse.envelope.v1+json ] ||
  fail "referrer artifactType"
skopeo inspect --raw --tls-verify=false --creds "$CREDS" \
  "docker://$HOSTPORT/$repo:sha256-${subject#sha256:}" | jq -e '.manifests | length == 1' >/dev/null ||
  fail "fallback tag index missing"
echo "ok: oci layouts, registry pushes, faults, bearer, referrers"
