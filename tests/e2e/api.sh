#!/usr/bin/env bash
# api.sh: stellad --roles api against outside clients. curl and bash's /dev/tcp drive the
# HTTP edge cases (401 without/expired/forged token, 413 for a 2 GB Content-Length answered
# at once, a slow-loris client dropped by the idle timeout while another client is
# served, 304 on If-None-Match); openssl makes the ES256 keys; `npx @redocly/cli lint`
# checks the spec; api_contract.mjs validates real responses against it and proves JWT
# interop with node's crypto. With the test services' STELLA_PG_URL and STELLA_REDIS_URL
# set, stellad gets pg_url (migrated first) and the contract covers POST /jobs and GET /audit.
set -euo pipefail
# this test's own key and port, not a developer's (ops/services.sh env exports a secret)
unset STELLA_JWT_HS256_SECRET STELLA_API_LISTEN
BIN=${STELLA_BIN_DIR:?}/bin
SRC=${STELLA_SOURCE_DIR:?}
E2E=$SRC/tests/e2e
cd "$E2E"
if ! bash "$SRC/ops/test-clients.sh" >/dev/null 2>&1 || [ ! -x node_modules/.bin/redocly ]; then
  if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    echo "npm clients missing (ops/test-clients.sh failed)" >&2
    exit 1
  fi
  echo "skipping: npm clients not installed (ops/test-clients.sh)" >&2
  exit 77
fi

TMP=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== redocly lint"
npx --no-install redocly lint --format=stylish "$SRC/schemas/openapi/stella.yaml" 2>&1 |
  grep -v -e '^ *[║╔╚]' -e '^$' || fail "redocly lint"
npx --no-install redocly bundle "$SRC/schemas/openapi/stella.yaml" --dereferenced --ext json \
  -o "$TMP/spec.json" >/dev/null 2>&1 || fail "redocly bundle"

openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
  openssl pkcs8 -topk8 -nocrypt -out "$TMP/es.key"
openssl pkey -in "$TMP/es.key" -pubout -out "$TMP/es.pub"
SECRET=e2e-secret-e2e-secret-e2e-secret-e2e
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$PORT
jwt_hs256_secret = $SECRET
jwt_es256_public_key = $TMP/es.pub
jwt_es256_private_key = $TMP/es.key
api_connection_timeout_s = 2
api_rate_per_s = 1
api_rate_burst = 20
CONF
WITH_PG=
if [ -n "${STELLA_PG_URL:-}" ] && [ -n "${STELLA_REDIS_URL:-}" ] && [ -n "${STELLA_PG_ADMIN_URL:-}" ]; then
  "$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null || fail "migrate"
  printf 'pg_url = %s\nredis_url = %s/12\ndata_dir = %s/data\n' "$STELLA_PG_URL" "$STELLA_REDIS_URL" "$TMP" >>"$TMP/stella.conf"
  unset STELLA_PG_URL STELLA_REDIS_URL
  WITH_PG=pg
fi
export STELLA_CONFIG=$TMP/stella.conf
"$BIN/stellad" --roles api 2>"$TMP/stellad.log" &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 50); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || { cat "$TMP/stellad.log"; fail "stellad did not start"; }

TOKEN=$("$BIN/stella" token mint --tenant acme --scope "evidence:read audit:read" --ttl 10m --sub e2e)
HS_TOKEN=$("$BIN/stella" token mint --tenant acme --alg HS256)

echo "== whoami with tokens minted by stella"
curl -sf -H "Authorization: Bearer $TOKEN" "$URL/whoami" | grep -q '"tenant":"acme"' || fail "ES256 whoami"
curl -sf -H "Authorization: Bearer $HS_TOKEN" "$URL/whoami" | grep -q '"tenant":"acme"' || fail "HS256 whoami"

echo "== 401: missing and forged"
code=$(curl -s -o "$TMP/body" -w '%{http_code} %{content_type}' "$URL/whoami")
[ "$code" = "401 application/problem+json" ] || fail "missing token: $code"
grep -q '"type":"https://stella.dev/problems/unauthorized"' "$TMP/body" || fail "problem type"
FORGED=${TOKEN%?}A
[ "${FORGED: -1}" = "${TOKEN: -1}" ] && FORGED=${TOKEN%?}B
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $FORGED" "$URL/whoami")
[ "$code" = 401 ] || fail "forged token: $code"
if "$BIN/stella" token mint --tenant 'a/b' >/dev/null 2>&1; then fail "mint accepted a bad tenant"; fi

echo "== 413 for a 2 GB Content-Length (GET /whoami takes no body), answered without reading it"
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /whoami HTTP/1.1\r\nHost: e2e\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 2147483648\r\n\r\nabcd' "$TOKEN" >&3
timeout 10 cat <&3 >"$TMP/413" || fail "413: connection not closed by the server"
exec 3<&-
head -1 "$TMP/413" | grep -q '^HTTP/1.1 413' || fail "413: $(head -1 "$TMP/413")"
grep -q 'payload-too-large' "$TMP/413" || fail "413 problem body"

echo "== slow-loris client dropped while another is served"
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /healthz HTTP/1.1\r\nHost: e2e\r\nX-Slow: ' >&4
curl -sf "$URL/healthz" >/dev/null || fail "healthz while a slow client hangs"
timeout 20 cat <&4 >"$TMP/slow" || fail "slow client not dropped by the idle timeout"
exec 4<&-
[ ! -s "$TMP/slow" ] || fail "slow client got a response: $(cat "$TMP/slow")"

echo "== 304 on If-None-Match"
ETAG=$(curl -sf -D - -o "$TMP/spec.yaml" "$URL/.well-known/openapi" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
[ "$ETAG" = "\"$(sha256sum "$TMP/spec.yaml" | cut -d' ' -f1)\"" ] || fail "ETag is not sha256sum of the body"
cmp -s "$TMP/spec.yaml" "$SRC/schemas/openapi/stella.yaml" || fail "served spec differs from the file"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$URL/.well-known/openapi")
[ "$code" = 304 ] || fail "If-None-Match: $code"

if [ -n "$WITH_PG" ]; then
  echo "== timeline events for the contract (stella:events -> stella timeline ingest --once)"
  R=$(sed -n 's/^redis_url = //p' "$TMP/stella.conf")
  for i in 1 2; do
    redis-cli -u "$R" XADD stella:events '*' event "{\"event_id\":\"contract-$$-$i\",\"tenant\":\"contract-pg\",\"type\":\"contract.timeline\",\"occurred_at\":\"2026-01-05T09:30:1${i}Z\",\"subject\":\"contract/$$\",\"evidence\":[{\"digest\":\"sha256:$(printf %s "$i" | sha256sum | cut -d' ' -f1)\",\"bundle_id\":\"b-$$\",\"manifest_ref\":\"exports/b-$$/manifest.dsse.json\"}]}" >/dev/null
  done
  "$BIN/stella" timeline ingest --once --group "contract-$$" >/dev/null || fail "timeline ingest"
fi

echo "== contract and JWT interop (node)"
node api_contract.mjs "$URL" "$TMP/spec.json" "$TMP/es.key" "$TMP/es.pub" "$SECRET" "$TOKEN" $WITH_PG ||
  fail "contract"

grep -q '"trace_id"' "$TMP/stellad.log" || fail "no trace ids in the access log"
echo "api e2e: ok"
