# ops/demo.d/75-evidence-port.sh: a portable evidence export through the API, checked as
# on an air-gapped machine and imported into another tenant (docs/airgap/evidence.md;
# sourced by ops/demo.sh after 70-evidence). Its own stellad, key and store.
step "Evidence export: seal one snapshot, POST /evidence/{id}/export"
EP_TMP=$(mktemp -d)
EP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EP_SECRET=$(openssl rand -hex 32)
stella key generate --type ed25519 -o "$EP_TMP/sign.pem" >/dev/null
openssl pkey -in "$EP_TMP/sign.pem" -pubout -out "$EP_TMP/sign.pub" 2>/dev/null
export STELLA_SIGNING_KEY=$EP_TMP/sign.pem STELLA_DATA_DIR=$EP_TMP/data
STELLA_API_LISTEN=127.0.0.1:$EP_PORT STELLA_JWT_HS256_SECRET=$EP_SECRET STELLA_OPS_LISTEN=127.0.0.1:0 \
  STELLA_API_TMP_DIR=$EP_TMP STELLA_SOURCE_DIR=$ROOT stellad --roles api,worker 2>"$EP_TMP/stellad.log" &
EP_PID=$!
EP_URL=http://127.0.0.1:$EP_PORT
for _ in $(seq 50); do curl -sf "$EP_URL/healthz" >/dev/null && break; sleep 0.1; done
EP_TOKEN=$(STELLA_JWT_HS256_SECRET=$EP_SECRET stella token mint --alg HS256 --tenant demo-src \
  --scope "evidence:read evidence:write" --ttl 10m --sub demo)
EP_ID=$(curl -sf -H "Authorization: Bearer $EP_TOKEN" -H 'Content-Type: application/json' \
  --data '{"kind":"job","created":"2026-01-02T03:04:05Z","run":{"run_id":"demo-export","actor":"operator-7"},
           "outputs":[{"path":"verdict.json","json":{"pass":true}}]}' "$EP_URL/evidence/snapshot" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["bundle_id"])')
for _ in $(seq 100); do
  curl -sf -H "Authorization: Bearer $EP_TOKEN" "$EP_URL/evidence/$EP_ID" | grep -q '"status":"sealed"' && break
  sleep 0.2
done
curl -sf -X POST -H "Authorization: Bearer $EP_TOKEN" -o "$EP_TMP/$EP_ID.export.tgz" \
  "$EP_URL/evidence/$EP_ID/export"
sha256sum "$EP_TMP/$EP_ID.export.tgz"
tar -xzf "$EP_TMP/$EP_ID.export.tgz" -O manifest.json | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin)["metadata"]; print("run:", m["run"], "redacted:", m["export"]["redacted"], "custody:", [c["record"]["event"] for c in m["export"]["custody"]])'

step "Evidence export: verify offline, import into tenant demo-dst (twice: idempotent)"
stella verify "$EP_TMP/$EP_ID.export.tgz" --key "$EP_TMP/sign.pub" ${STELLA_TSA_CA:+--tsa-ca "$STELLA_TSA_CA"} | tail -1
mkdir "$EP_TMP/x" && tar -xzf "$EP_TMP/$EP_ID.export.tgz" -C "$EP_TMP/x"
(cd "$EP_TMP/x" && sha256sum --strict -c SHA256SUMS | tail -1)
sh "$EP_TMP/x/verify.sh" "$EP_TMP/sign.pub" "${STELLA_TSA_CA:-}" | tail -1
stella evidence import "$EP_TMP/$EP_ID.export.tgz" --tenant demo-dst --key "$EP_TMP/sign.pub" | tail -1
stella evidence import "$EP_TMP/$EP_ID.export.tgz" --tenant demo-dst --key "$EP_TMP/sign.pub" | tail -1
kill "$EP_PID"
wait "$EP_PID" 2>/dev/null || true
unset STELLA_SIGNING_KEY STELLA_DATA_DIR
rm -rf "$EP_TMP"
