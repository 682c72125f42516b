# ops/demo.d/70-evidence.sh: the Evidence Locker through the API (sourced by ops/demo.sh):
# stellad (api + worker) with a fresh signing key and the private TSA; two artifacts
# uploaded (PUT /evidence/artifacts), a snapshot (POST /evidence/snapshot, sealed by the
# snapshot worker), the bundle downloaded and verified offline with stella verify,
# verify.sh, sha256sum -c and openssl ts -verify; a legal hold placed and released.
step "Evidence Locker: stellad (api, worker), upload two artifacts"
EV_TMP=$(mktemp -d)
EV_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EV_SECRET=$(openssl rand -hex 32)
stella key generate --type ed25519 -o "$EV_TMP/sign.pem" >/dev/null
openssl pkey -in "$EV_TMP/sign.pem" -pubout -out "$EV_TMP/sign.pub" 2>/dev/null
STELLA_API_LISTEN=127.0.0.1:$EV_PORT STELLA_JWT_HS256_SECRET=$EV_SECRET STELLA_OPS_LISTEN=127.0.0.1:0 \
  STELLA_SIGNING_KEY=$EV_TMP/sign.pem STELLA_DATA_DIR=$EV_TMP/data STELLA_API_TMP_DIR=$EV_TMP \
  STELLA_SOURCE_DIR=$ROOT stellad --roles api,worker 2>"$EV_TMP/stellad.log" &
EV_PID=$!
EV_URL=http://127.0.0.1:$EV_PORT
for _ in $(seq 50); do curl -sf "$EV_URL/healthz" >/dev/null && break; sleep 0.1; done
EV_TOKEN=$(STELLA_JWT_HS256_SECRET=$EV_SECRET stella token mint --alg HS256 --tenant demo \
  --scope "evidence:read evidence:write evidence:hold" --ttl 10m --sub demo)
ev_curl() { curl -sf -H "Authorization: Bearer $EV_TOKEN" "$@"; }
printf '{"sbom":"demo","packages":3}\n' >"$EV_TMP/sbom.json"
printf 'scan finished: 0 critical\n' >"$EV_TMP/scan.txt"
EV_SBOM=$(ev_curl -X PUT --data-binary @"$EV_TMP/sbom.json" "$EV_URL/evidence/artifacts" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
EV_SCAN=$(ev_curl -X PUT --data-binary @"$EV_TMP/scan.txt" "$EV_URL/evidence/artifacts" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
echo "sbom.json sha256:$EV_SBOM (sha256sum: $(sha256sum <"$EV_TMP/sbom.json" | cut -c1-64))"

step "Evidence Locker: POST /evidence/snapshot, wait for the seal"
ev_curl -H 'Content-Type: application/json' -H "Idempotency-Key: demo-$EV_PORT" \
  --data "{\"kind\":\"evaluation\",\"created\":\"2026-01-02T03:04:05Z\",
           \"run\":{\"run_id\":\"demo-run\",\"actor\":\"demo\"},
           \"inputs\":[{\"path\":\"sbom.json\",\"sha256\":\"$EV_SBOM\"},
                       {\"path\":\"policy.json\",\"json\":{\"max_critical\":0}}],
           \"outputs\":[{\"path\":\"scan.txt\",\"sha256\":\"$EV_SCAN\"}],
           \"environment\":{\"scanner\":\"trivy 0.50\"}}" \
  "$EV_URL/evidence/snapshot" | tee "$EV_TMP/snap.json"; echo
EV_ID=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bundle_id"])' "$EV_TMP/snap.json")
for _ in $(seq 100); do
  ev_curl "$EV_URL/evidence/$EV_ID" >"$EV_TMP/get.json" && grep -q '"status":"sealed"' "$EV_TMP/get.json" && break
  sleep 0.2
done
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["id"], d["status"], "merkle", d["merkle_root"][:16], "keyid", d["signature"]["keyid"], "tsa", d["timestamp"]["gen_time"])' "$EV_TMP/get.json"

step "Evidence Locker: download (ETag = SHA-256), verify offline four ways"
ev_curl -D "$EV_TMP/headers" -o "$EV_TMP/ev.tgz" "$EV_URL/evidence/$EV_ID/download"
grep -i '^etag' "$EV_TMP/headers"; sha256sum "$EV_TMP/ev.tgz"
stella verify "$EV_TMP/ev.tgz" --key "$EV_TMP/sign.pub" ${STELLA_TSA_CA:+--tsa-ca "$STELLA_TSA_CA"}
mkdir "$EV_TMP/x" && tar -xzf "$EV_TMP/ev.tgz" -C "$EV_TMP/x"
(cd "$EV_TMP/x" && sha256sum --strict -c SHA256SUMS | tail -3)
sh "$EV_TMP/x/verify.sh" "$EV_TMP/sign.pub" "${STELLA_TSA_CA:-}"
if [ -n "${STELLA_TSA_CA:-}" ]; then
  /usr/bin/python3 -c 'import json,sys,base64; sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))["signatures"][0]["sig"]))' \
    "$EV_TMP/x/manifest.dsse.json" >"$EV_TMP/sig.bin"
  openssl ts -verify -data "$EV_TMP/sig.bin" -in "$EV_TMP/x/manifest.tsr" -CAfile "$STELLA_TSA_CA" \
    -untrusted "$EV_TMP/x/keys/tsa-chain.pem"
fi
echo "POST /evidence/verify?id=$EV_ID:"
ev_curl -X POST "$EV_URL/evidence/verify?id=$EV_ID" |
  /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("ok", d["ok"], [c["name"]+":"+c["status"] for c in d["checks"]])'

step "Evidence Locker: legal hold placed, listed, released"
ev_curl -H 'Content-Type: application/json' --data "{\"reason\":\"demo litigation\",\"bundle_ids\":[\"$EV_ID\"]}" \
  "$EV_URL/evidence/hold/case-demo-$EV_PORT"; echo
ev_curl "$EV_URL/evidence/$EV_ID" | /usr/bin/python3 -c 'import json,sys; print("holds:", json.load(sys.stdin)["holds"])'
ev_curl -X DELETE "$EV_URL/evidence/hold/case-demo-$EV_PORT"; echo
kill "$EV_PID"
wait "$EV_PID" 2>/dev/null || true
unset -f ev_curl
rm -rf "$EV_TMP"
