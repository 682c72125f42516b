# ops/demo.d/30-api.sh: the API front (sourced by ops/demo.sh): stellad --roles api on a
# free port, a token minted with the configured key, /whoami, a 401 problem document and
# the OpenAPI ETag round trip.
step "API front: stellad --roles api, token mint, whoami, problem+json, OpenAPI ETag"
API_TMP=$(mktemp -d)
API_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API_SECRET=$(openssl rand -hex 32)
STELLA_API_LISTEN=127.0.0.1:$API_PORT STELLA_JWT_HS256_SECRET=$API_SECRET STELLA_SOURCE_DIR=$ROOT \
  stellad --roles api 2>"$API_TMP/stellad.log" &
API_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null && break; sleep 0.1; done
API_TOKEN=$(STELLA_JWT_HS256_SECRET=$API_SECRET stella token mint --tenant acme --scope "evidence:read audit:read" --ttl 10m --sub demo)
echo "GET /whoami:"
curl -sf -H "Authorization: Bearer $API_TOKEN" "http://127.0.0.1:$API_PORT/whoami"; echo
echo "GET /whoami without a token:"
curl -s "http://127.0.0.1:$API_PORT/whoami"; echo
API_ETAG=$(curl -sf -D - -o /dev/null "http://127.0.0.1:$API_PORT/.well-known/openapi" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
echo "OpenAPI ETag $API_ETAG; If-None-Match answers $(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $API_ETAG" "http://127.0.0.1:$API_PORT/.well-known/openapi")"
kill "$API_PID"
wait "$API_PID" 2>/dev/null || true
rm -rf "$API_TMP"
