# ops/demo.d/45-export.sh: Export Center runs through the API (sourced by ops/demo.sh after
# 40-ledger imported the fixtures into tenant demo): stellad (api + worker) with a fresh
# signing key; a json:raw and a json:policy profile; `stella export run --wait` (every
# state), download (SHA-256 = ETag), offline `stella export verify`, and the server's
# POST /exports/{id}/verify report.
step "Export Center: stellad (api, worker) and two profiles (json:raw, json:policy)"
EXP_TMP=$(mktemp -d)
EXP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EXP_SECRET=$(openssl rand -hex 32)
stella key generate --type ed25519 -o "$EXP_TMP/sign.pem" >/dev/null
openssl pkey -in "$EXP_TMP/sign.pem" -pubout -out "$EXP_TMP/sign.pub" 2>/dev/null
STELLA_API_LISTEN=127.0.0.1:$EXP_PORT STELLA_JWT_HS256_SECRET=$EXP_SECRET STELLA_OPS_LISTEN=127.0.0.1:0 \
  STELLA_SIGNING_KEY=$EXP_TMP/sign.pem STELLA_DATA_DIR=$EXP_TMP/data STELLA_EXPORT_TMP_DIR=$EXP_TMP \
  STELLA_SOURCE_DIR=$ROOT stellad --roles api,worker 2>"$EXP_TMP/stellad.log" &
EXP_PID=$!
export STELLA_API_URL=http://127.0.0.1:$EXP_PORT
for _ in $(seq 50); do curl -sf "$STELLA_API_URL/healthz" >/dev/null && break; sleep 0.1; done
export STELLA_TOKEN
STELLA_TOKEN=$(STELLA_JWT_HS256_SECRET=$EXP_SECRET stella token mint --alg HS256 --tenant demo \
  --scope "export:viewer export:operator" --ttl 10m --sub demo)
for body in '{"name":"demo-raw","kind":"json:raw","redaction":["id","modified","summary","affected","aliases"]}' \
            '{"name":"demo-policy","kind":"json:policy"}'; do
  curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $STELLA_TOKEN" \
    "$STELLA_API_URL/exports/profiles/$(echo "$body" | sed 's/.*"name":"\([^"]*\)".*/\1/')"
  curl -sf -H "Authorization: Bearer $STELLA_TOKEN" -H 'Content-Type: application/json' \
    --data "$body" "$STELLA_API_URL/exports/profiles"; echo
done

for prof in demo-raw demo-policy; do
  step "Export Center: stella export run $prof --wait, download, verify"
  stella export run "$prof" --tenant demo --wait | tee "$EXP_TMP/run.out"
  EXP_RUN=$(awk '/^run /{print $2}' "$EXP_TMP/run.out")
  stella export download "$EXP_RUN" --tenant demo -o "$EXP_TMP/$prof.tgz"
  stella export verify "$EXP_TMP/$prof.tgz" --key "$EXP_TMP/sign.pub" ${STELLA_TSA_CA:+--tsa-ca "$STELLA_TSA_CA"}
  tar -tzf "$EXP_TMP/$prof.tgz" | grep '^payload/'
  echo "POST /exports/$EXP_RUN/verify:"
  curl -sf -X POST -H "Authorization: Bearer $STELLA_TOKEN" "$STELLA_API_URL/exports/$EXP_RUN/verify" |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("ok", d["ok"], "sha256 match", d["sha256"]["match"], "signatures", d["signatures"]["detached_signature"], d["signatures"]["dsse"])'
done
echo "first finding of the json:policy export:"
tar -xzOf "$EXP_TMP/demo-policy.tgz" payload/findings.ndjson.gz | gzip -dc | head -1
kill "$EXP_PID"
wait "$EXP_PID" 2>/dev/null || true
unset STELLA_API_URL STELLA_TOKEN
rm -rf "$EXP_TMP"
