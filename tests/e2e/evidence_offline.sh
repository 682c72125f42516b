#!/usr/bin/env bash
# evidence_offline.sh: evidence bundles verify offline with tools nobody here wrote, and
# the air-gap procedure of docs/airgap/evidence.md works as written. With a real stellad
# (api + worker, the private TSA) on the test Postgres and Redis:
#   - a bundle made through the API (PUT /evidence/artifacts, POST /evidence/snapshot,
#     GET .../download) verifies with stella verify, its verify.sh, sha256sum -c and
#     openssl ts -verify;
#   - the `sh` blocks of docs/airgap/evidence.md, extracted and run in order: export
#     through POST /evidence/{id}/export, the same four checks on the portable bundle,
#     import into another locker (another database, its own object store), idempotent;
#   - `stella evidence export` (the CLI path) of the same bundle verifies, keeps the Merkle
#     root and imports into a second tenant of the source database;
#   - the export is redacted (no run.actor) and the source chain has evidence.exported;
#   - tampering: a flipped byte in the .tgz fails stella verify and the import (nothing
#     stored); a flipped payload byte fails sha256sum -c and verify.sh; a flipped byte in
#     the signature fails openssl ts -verify; another tenant's export is a 404.
set -euo pipefail
BIN=${STELLA_BIN_DIR:?}/bin
SRC=${STELLA_SOURCE_DIR:?}
for v in STELLA_PG_URL STELLA_PG_ADMIN_URL STELLA_REDIS_URL STELLA_TSA_URL STELLA_TSA_CA; do
  if [ -z "${!v:-}" ]; then
    if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
      echo "$v is not set" >&2
      exit 1
    fi
    echo "skipping: $v not set (run through ops/test.sh)" >&2
    exit 77
  fi
done
TSA_CA=$STELLA_TSA_CA
ADMIN=$STELLA_PG_ADMIN_URL
unset STELLA_JWT_HS256_SECRET STELLA_API_LISTEN STELLA_TOKEN STELLA_API_URL STELLA_SIGNING_KEY \
  STELLA_DATA_DIR STELLA_API_TMP_DIR STELLA_OBJSTORE STELLA_TSA_CA
TMP=$(mktemp -d)
PID=
DEST_DB=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "$DEST_DB" ] && psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DEST_DB" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/stellad.log" ] && tail -20 "$TMP/stellad.log" >&2
  exit 1
}
must_fail() { # LABEL CMD...: the command must exit non-zero
  local label=$1
  shift
  if "$@" >"$TMP/mf.out" 2>&1; then fail "$label passed on a tampered input"; fi
  echo "ok: $label refused"
}

T=evo$$
DEST_TENANT=evdest$$
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stella" key generate --type ed25519 -o "$TMP/sign.pem" >/dev/null
openssl pkey -in "$TMP/sign.pem" -pubout -out "$TMP/sign.pub" 2>/dev/null
cat >"$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$PORT
jwt_hs256_secret = evidence-e2e-secret-evidence-e2e-secret
pg_url = $STELLA_PG_URL
redis_url = $STELLA_REDIS_URL/5
signing_key = $TMP/sign.pem
tsa_url = $STELLA_TSA_URL
tsa_ca = $TSA_CA
data_dir = $TMP/data
api_tmp_dir = $TMP
api_rate_per_s = 0
ops_listen = 127.0.0.1:0
worker_threads = 2
CONF
# the receiving locker: another database, its own object store, no signing key
psql "$ADMIN" -qc "CREATE DATABASE evdest$$" >/dev/null || fail "create database"
DEST_DB=evdest$$
DEST_ADMIN=${ADMIN%/*}/$DEST_DB
STELLA_PG_ADMIN_URL=$DEST_ADMIN "$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null 2>&1 ||
  fail "migrate $DEST_DB"
cat >"$TMP/dest.conf" <<CONF
pg_url = ${STELLA_PG_URL%/*}/$DEST_DB
data_dir = $TMP/dest-data
api_tmp_dir = $TMP
CONF
export STELLA_CONFIG=$TMP/stella.conf
PG_URL=$STELLA_PG_URL
unset STELLA_PG_URL STELLA_REDIS_URL STELLA_TSA_URL
"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null || fail migrate
"$BIN/stellad" --roles api,worker 2>"$TMP/stellad.log" &
PID=$!
STELLA_URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$STELLA_URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$STELLA_URL/healthz" >/dev/null || fail "stellad did not start"
mint() { "$BIN/stella" token mint --alg HS256 --tenant "$1" --scope "$2" --ttl 30m --sub e2e-user; }
TOKEN=$(mint "$T" "evidence:read evidence:write")
OTHER=$(mint "other$$" "evidence:read evidence:write")
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== a bundle through the API"
printf '{"sbom":"e2e","packages":2}\n' >"$TMP/sbom.json"
printf 'scan: 0 critical\n' >"$TMP/scan.txt"
SBOM=$(curl -sf -H "Authorization: Bearer $TOKEN" -X PUT --data-binary @"$TMP/sbom.json" \
  "$STELLA_URL/evidence/artifacts" | json 'd["sha256"]') || fail "upload"
[ "$SBOM" = "$(sha256sum <"$TMP/sbom.json" | cut -c1-64)" ] || fail "upload digest"
SCAN=$(curl -sf -H "Authorization: Bearer $TOKEN" -X PUT --data-binary @"$TMP/scan.txt" \
  "$STELLA_URL/evidence/artifacts" | json 'd["sha256"]') || fail "upload"
ID=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data "{\"kind\":\"evaluation\",\"created\":\"2026-03-04T05:06:07Z\",
           \"run\":{\"run_id\":\"e2e-run\",\"actor\":\"secret-operator\"},
           \"inputs\":[{\"path\":\"sbom.json\",\"sha256\":\"$SBOM\"},
                       {\"path\":\"policy.json\",\"json\":{\"max_critical\":0}}],
           \"outputs\":[{\"path\":\"scan.txt\",\"sha256\":\"$SCAN\"}],
           \"environment\":{\"scanner\":\"trivy 0.50\"}}" \
  "$STELLA_URL/evidence/snapshot" | json 'd["bundle_id"]') || fail "snapshot"
for _ in $(seq 150); do
  curl -sf -H "Authorization: Bearer $TOKEN" "$STELLA_URL/evidence/$ID" >"$TMP/get.json" &&
    grep -q '"status":"sealed"' "$TMP/get.json" && break
  sleep 0.2
done
grep -q '"status":"sealed"' "$TMP/get.json" || fail "bundle $ID not sealed"
curl -sf -H "Authorization: Bearer $TOKEN" -o "$TMP/ev.tgz" "$STELLA_URL/evidence/$ID/download" ||
  fail "download"

echo "== the API bundle offline: stella verify, sha256sum -c, verify.sh, openssl ts -verify"
"$BIN/stella" verify "$TMP/ev.tgz" --key "$TMP/sign.pub" --tsa-ca "$TSA_CA" >/dev/null ||
  fail "stella verify (API bundle)"
mkdir "$TMP/evx" && tar -xzf "$TMP/ev.tgz" -C "$TMP/evx"
(cd "$TMP/evx" && sha256sum --strict -c SHA256SUMS >/dev/null) || fail "sha256sum -c (API bundle)"
sh "$TMP/evx/verify.sh" "$TMP/sign.pub" "$TSA_CA" >/dev/null || fail "verify.sh (API bundle)"
/usr/bin/python3 -c 'import json,sys,base64; sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))["signatures"][0]["sig"]))' \
  "$TMP/evx/manifest.dsse.json" >"$TMP/ev.sig"
openssl ts -verify -data "$TMP/ev.sig" -in "$TMP/evx/manifest.tsr" -CAfile "$TSA_CA" \
  -untrusted "$TMP/evx/keys/tsa-chain.pem" >/dev/null 2>&1 || fail "openssl ts -verify (API bundle)"

echo "== tampering the API bundle"
cp -r "$TMP/evx" "$TMP/evt"
/usr/bin/python3 - "$TMP/evt/payload/inputs/sbom.json" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[3] ^= 1; open(p, 'wb').write(b)
PY
must_fail "sha256sum -c (payload byte)" sh -c "cd '$TMP/evt' && sha256sum --strict -c SHA256SUMS"
must_fail "verify.sh (payload byte)" sh "$TMP/evt/verify.sh" "$TMP/sign.pub" "$TSA_CA"
cp "$TMP/ev.sig" "$TMP/ev.bad.sig"
printf '\001' | dd of="$TMP/ev.bad.sig" bs=1 seek=5 conv=notrunc 2>/dev/null
cmp -s "$TMP/ev.sig" "$TMP/ev.bad.sig" && fail "signature not changed"
must_fail "openssl ts -verify (signature byte)" openssl ts -verify -data "$TMP/ev.bad.sig" \
  -in "$TMP/evx/manifest.tsr" -CAfile "$TSA_CA" -untrusted "$TMP/evx/keys/tsa-chain.pem"
cp "$TMP/ev.tgz" "$TMP/ev.bad.tgz"
SIZE=$(stat -c %s "$TMP/ev.tgz")
/usr/bin/python3 - "$TMP/ev.bad.tgz" "$((SIZE / 2))" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[int(sys.argv[2])] ^= 1; open(p, 'wb').write(b)
PY
must_fail "stella verify (tgz byte)" "$BIN/stella" verify "$TMP/ev.bad.tgz" --key "$TMP/sign.pub" --tsa-ca "$TSA_CA"

echo "== docs/airgap/evidence.md, step by step"
awk '/^```sh$/ {on = 1; next} /^```$/ {on = 0} on' "$SRC/docs/airgap/evidence.md" >"$TMP/steps.sh"
[ "$(grep -c 'stella evidence import' "$TMP/steps.sh")" -ge 2 ] || fail "doc blocks not found"
SIGNER_PUB=$TMP/sign.pub
DEST_CONFIG=$TMP/dest.conf
export PATH="$BIN:$PATH" STELLA_URL TOKEN ID SIGNER_PUB TSA_CA DEST_TENANT DEST_CONFIG
(cd "$TMP" && set -e && . ./steps.sh) || fail "the documented procedure"
X=$TMP/$ID.export.tgz
[ -s "$X" ] || fail "no export file"

echo "== the export: redacted, custody carried, evidence.exported recorded, imported once"
tar -xzf "$X" -O manifest.json >"$TMP/xm.json"
json '"actor" in d["metadata"]["run"]' <"$TMP/xm.json" | grep -qx False || fail "run.actor kept"
json 'd["metadata"]["export"]["redacted"]' <"$TMP/xm.json" | grep -q "run.actor" || fail "redacted list"
json 'd["metadata"]["run"]["run_id"]' <"$TMP/xm.json" | grep -qx "e2e-run" || fail "run_id kept"
[ "$(json 'd["merkle"]["root"]' <"$TMP/xm.json")" = "$(json 'd["merkle_root"]' <"$TMP/get.json")" ] ||
  fail "the export's Merkle root is not the source's"
json '" ".join(c["record"]["event"] for c in d["metadata"]["export"]["custody"])' <"$TMP/xm.json" |
  grep -q "evidence.sealed" || fail "custody segment"
q() { psql "$ADMIN" -Atqc "$1"; }
qd() { psql "$DEST_ADMIN" -Atqc "$1"; }
[ "$(q "SELECT count(*) FROM evidence_custody WHERE tenant_id = '$T' AND bundle_id = '$ID' AND event = 'evidence.exported'")" = 1 ] ||
  fail "evidence.exported not recorded once"
[ "$(qd "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '$DEST_TENANT' AND bundle_id = '$ID' AND status = 'sealed'")" = 1 ] ||
  fail "not imported into $DEST_TENANT"
[ "$(q "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '$DEST_TENANT'")" = 0 ] ||
  fail "the import went to the source database"
[ "$(qd "SELECT count(*) FROM evidence_custody WHERE tenant_id = '$DEST_TENANT' AND event = 'evidence.imported'")" = 1 ] ||
  fail "evidence.imported not recorded once"
ls "$TMP/dest-data/tenants/$DEST_TENANT/evidence/imported/" | grep -q '\.tgz$' ||
  fail "object not in the receiving store"

echo "== tampering the export: every checker refuses, the import stores nothing"
cp "$X" "$TMP/x.bad.tgz"
SIZE=$(stat -c %s "$X")
/usr/bin/python3 - "$TMP/x.bad.tgz" "$((SIZE / 2))" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[int(sys.argv[2])] ^= 1; open(p, 'wb').write(b)
PY
must_fail "sha256sum -c (export byte)" sh -c "cd '$TMP' && sed 's#$ID.export.tgz#x.bad.tgz#' '$ID.export.tgz.sha256' | sha256sum -c"
must_fail "stella verify (export byte)" "$BIN/stella" verify "$TMP/x.bad.tgz" --key "$SIGNER_PUB" --tsa-ca "$TSA_CA"
ROWS=$(qd "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'fresh$$'")
set +e
"$BIN/stella" evidence import "$TMP/x.bad.tgz" --tenant "fresh$$" --key "$SIGNER_PUB" \
  --tsa-ca "$TSA_CA" --config "$DEST_CONFIG" >"$TMP/imp.out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "import of a tampered export: exit $rc"
grep -q 'refused' "$TMP/imp.out" || fail "import refusal not named"
[ "$(qd "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'fresh$$'")" = "$ROWS" ] ||
  fail "a refused import stored rows"
[ ! -e "$TMP/dest-data/tenants/fresh$$" ] || fail "a refused import stored objects"
"$BIN/stella" key generate --type ed25519 -o "$TMP/other.pem" >/dev/null
openssl pkey -in "$TMP/other.pem" -pubout -out "$TMP/other.pub" 2>/dev/null
must_fail "import with another key" "$BIN/stella" evidence import "$X" --tenant "fresh$$" \
  --key "$TMP/other.pub" --config "$DEST_CONFIG"
grep -q 'signature check failed' "$TMP/mf.out" || fail "another key: $(cat "$TMP/mf.out")"
rm -rf "$TMP/xt" && mkdir "$TMP/xt" && tar -xzf "$X" -C "$TMP/xt"
/usr/bin/python3 - "$TMP/xt/payload/outputs/scan.txt" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[0] ^= 1; open(p, 'wb').write(b)
PY
must_fail "sha256sum -c (export payload byte)" sh -c "cd '$TMP/xt' && sha256sum --strict -c SHA256SUMS"
must_fail "verify.sh (export payload byte)" sh "$TMP/xt/verify.sh" "$SIGNER_PUB" "$TSA_CA"

echo "== the CLI path: stella evidence export, import into another tenant of the same database"
"$BIN/stella" evidence export "$ID" -o "$TMP/cli.tgz" --tenant "$T" --json >"$TMP/cli.json" ||
  fail "stella evidence export"
[ "$(json 'd["merkle_root"]' <"$TMP/cli.json")" = "$(json 'd["merkle_root"]' <"$TMP/get.json")" ] ||
  fail "CLI export Merkle root"
[ "$(json 'd["sha256"]' <"$TMP/cli.json")" = "$(sha256sum <"$TMP/cli.tgz" | cut -c1-64)" ] ||
  fail "CLI export digest"
"$BIN/stella" verify "$TMP/cli.tgz" --key "$SIGNER_PUB" --tsa-ca "$TSA_CA" >/dev/null ||
  fail "stella verify (CLI export)"
"$BIN/stella" evidence import "$TMP/cli.tgz" --tenant "same$$" --key "$SIGNER_PUB" >/dev/null ||
  fail "import into same$$"
[ "$(q "SELECT count(*) FROM evidence_bundles WHERE tenant_id = 'same$$' AND bundle_id = '$ID'")" = 1 ] ||
  fail "not imported into same$$"
[ "$(q "SELECT count(*) FROM evidence_custody WHERE tenant_id = '$T' AND bundle_id = '$ID' AND event = 'evidence.exported'")" = 2 ] ||
  fail "the CLI export was not recorded"
set +e
"$BIN/stella" evidence export "$ID" -o "$TMP/no.tgz" --tenant "other$$" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && [ ! -e "$TMP/no.tgz" ] || fail "CLI export of another tenant's id: exit $rc"

echo "== another tenant's id: 404"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $OTHER" \
  "$STELLA_URL/evidence/$ID/export")
[ "$code" = 404 ] || fail "cross-tenant export answered $code"
echo "PASS evidence_offline"
