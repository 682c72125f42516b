#!/usr/bin/env bash
# mirror_api.sh: mirror profiles through the export run machinery with a real stellad
# (api + worker roles) on the test Postgres and Redis:
#   - `stella export run` of a mirror:full profile goes requested -> ... -> distributed
#     (the API queues job type `mirror`); the download verifies (`stella export verify` is
#     for kind export, so `stella verify` here) and imports into an empty tree;
#   - after one more advisory in the ledger, a mirror:delta run finds the full run as its
#     base by itself, ships one blob, and imports onto the tree; `stella mirror verify`;
#   - a `mirror` job with {"profile": ...} (what a cron schedule submits) starts and
#     finishes a run of that profile;
#   - the delta imported again is refused (wrong base).
set -euo pipefail
BIN=${STELLA_BIN_DIR:?}/bin
SRC=${STELLA_SOURCE_DIR:?}
for v in STELLA_PG_URL STELLA_PG_ADMIN_URL STELLA_REDIS_URL; do
  if [ -z "${!v:-}" ]; then
    if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
      echo "$v is not set" >&2
      exit 1
    fi
    echo "skipping: $v not set (run through ops/test.sh)" >&2
    exit 77
  fi
done
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

T=mirr$$
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stella" key generate --type ed25519 -o "$TMP/sign.pem" >/dev/null
cat >"$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$PORT
jwt_hs256_secret = mirror-e2e-secret-mirror-e2e-secret
pg_url = $STELLA_PG_URL
redis_url = $STELLA_REDIS_URL/4
signing_key = $TMP/sign.pem
data_dir = $TMP/data
export_tmp_dir = $TMP
api_rate_per_s = 0
worker_threads = 2
CONF
export STELLA_CONFIG=$TMP/stella.conf
unset STELLA_PG_URL STELLA_REDIS_URL
"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null || fail migrate
FX=$SRC/tests/fixtures/ledger
"$BIN/stella" ledger import --tenant "$T" "$FX/osv/STELLA-NPM-0001.json" "$FX/osv/STELLA-GO-0004.json" \
  "$FX/vex" "$FX/policy" >/dev/null
"$BIN/stella" export profile create --tenant "$T" --name mfull --kind mirror:full >/dev/null || fail "profile"
"$BIN/stella" export profile create --tenant "$T" --name mdelta --kind mirror:delta >/dev/null || fail "profile"

"$BIN/stellad" --roles api,worker 2>"$TMP/stellad.log" &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || fail "stellad did not start"
export STELLA_API_URL=$URL
STELLA_TOKEN=$("$BIN/stella" token mint --alg HS256 --tenant "$T" --scope "export:viewer export:operator" --ttl 30m --sub e2e)
export STELLA_TOKEN

echo "== mirror:full through the API"
"$BIN/stella" export run mfull --tenant "$T" --wait >"$TMP/run1.out" || fail "full run: $(cat "$TMP/run1.out")"
RUN1=$(awk '/^run /{print $2}' "$TMP/run1.out")
grep -q '^state distributed' "$TMP/run1.out" || fail "full run states: $(cat "$TMP/run1.out")"
"$BIN/stella" export download "$RUN1" --tenant "$T" -o "$TMP/full.tgz" >/dev/null || fail download
"$BIN/stella" verify "$TMP/full.tgz" --key "$TMP/sign.pub.pem" >"$TMP/v.out" || fail "verify: $(cat "$TMP/v.out")"
grep -Eq '^pass +kind +kind mirror' "$TMP/v.out" || fail "kind: $(cat "$TMP/v.out")"
"$BIN/stella" mirror import "$TMP/full.tgz" --into "$TMP/tree" --key "$TMP/sign.pub.pem" >"$TMP/i.out" ||
  fail "import full: $(cat "$TMP/i.out")"
grep -q '2 advisories' "$TMP/i.out" || fail "full import: $(cat "$TMP/i.out")"

echo "== mirror:delta: base found, one blob shipped, applied"
"$BIN/stella" ledger import --tenant "$T" "$FX/osv/STELLA-GO-0010.json" >/dev/null
"$BIN/stella" export run mdelta --tenant "$T" --wait >"$TMP/run2.out" || fail "delta run: $(cat "$TMP/run2.out")"
RUN2=$(awk '/^run /{print $2}' "$TMP/run2.out")
"$BIN/stella" export download "$RUN2" --tenant "$T" -o "$TMP/delta.tgz" >/dev/null || fail download
"$BIN/stella" mirror import "$TMP/delta.tgz" --into "$TMP/tree" --key "$TMP/sign.pub.pem" >"$TMP/i.out" ||
  fail "import delta: $(cat "$TMP/i.out")"
grep -q 'imported delta bundle.*3 advisories.*+1 ~0 -0; 1 blobs written' "$TMP/i.out" || fail "delta import: $(cat "$TMP/i.out")"
"$BIN/stella" mirror verify "$TMP/tree" --key "$TMP/sign.pub.pem" >/dev/null || fail "mirror verify"
"$BIN/stella" mirror import "$TMP/delta.tgz" --into "$TMP/tree" --key "$TMP/sign.pub.pem" >/dev/null 2>"$TMP/e.out" &&
  fail "a delta applied twice"
grep -q 'wrong base' "$TMP/e.out" || fail "second delta: $(cat "$TMP/e.out")"

echo "== a mirror job by profile (what a schedule submits) runs the profile"
"$BIN/stella" job submit --type mirror --tenant "$T" --payload '{"profile":"mfull"}' >/dev/null || fail "submit"
n=0
for _ in $(seq 300); do
  n=$(curl -sf -H "Authorization: Bearer $STELLA_TOKEN" "$URL/exports/runs?profile=mfull" |
    grep -o '"state":"distributed"' | wc -l)
  [ "$n" -ge 2 ] && break
  sleep 0.1
done
[ "$n" -ge 2 ] || fail "no second distributed mfull run"
echo "ok: mirror profiles through the export run machinery"
