#!/usr/bin/env bash
# evidence_crash.sh: a snapshot worker killed with SIGKILL in the middle of sealing, on the
# test Postgres and Redis with real stellad processes (one api, one worker, then another
# worker):
#   - a 64 MiB artifact makes the seal long enough to be caught in the act: the worker
#     process is killed once its scratch directory exists (inputs being fetched/sealed);
#   - the second worker reclaims the job after the lease (XAUTOCLAIM), and the job
#     succeeds on a later attempt;
#   - exactly one bundle results: one sealed row, one evidence.sealed custody record, one
#     visible object under tenants/<t>/evidence/ (the fs store's interrupted temp files
#     are dot files, never listed), and it verifies with stella verify and sha256sum.
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
  STELLA_DATA_DIR STELLA_OBJSTORE STELLA_TSA_URL STELLA_TSA_CA STELLA_API_TMP_DIR
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$TMP"/*.log; do echo "--- $f" >&2; tail -8 "$f" >&2; done
  exit 1
}

T=evcrash$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n') # fresh per run
ADMIN=$STELLA_PG_ADMIN_URL
REDIS=$STELLA_REDIS_URL/8
sql() { psql -qtAX -v ON_ERROR_STOP=1 "$ADMIN" -c "$1"; }
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stella" key generate --type ed25519 -o "$TMP/sign.pem" >/dev/null
openssl pkey -in "$TMP/sign.pem" -pubout -out "$TMP/sign.pub" 2>/dev/null
mkdir "$TMP/api" "$TMP/work"
cat >"$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$PORT
ops_listen = 127.0.0.1:0
jwt_hs256_secret = evidence-crash-secret-evidence-crash
pg_url = $STELLA_PG_URL
redis_url = $REDIS
signing_key = $TMP/sign.pem
data_dir = $TMP/data
api_rate_per_s = 0
worker_threads = 1
job_lease_ms = 2000
CONF
export STELLA_CONFIG=$TMP/stella.conf
unset STELLA_PG_URL STELLA_REDIS_URL
"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null || fail migrate
redis-cli -u "$REDIS" FLUSHDB >/dev/null

STELLA_API_TMP_DIR=$TMP/api "$BIN/stellad" --roles api 2>"$TMP/api.log" &
PIDS+=($!)
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || fail "api did not start"
TOK=$("$BIN/stella" token mint --alg HS256 --tenant "$T" --scope "evidence:read evidence:write" \
  --ttl 30m --sub crash)
auth=(-H "Authorization: Bearer $TOK")

head -c $((64 << 20)) /dev/urandom >"$TMP/big.bin"
SHA=$(curl -sf "${auth[@]}" -X PUT --data-binary @"$TMP/big.bin" "$URL/evidence/artifacts" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])') || fail upload
[ "$SHA" = "$(sha256sum "$TMP/big.bin" | cut -c1-64)" ] || fail "upload digest"
rm "$TMP/big.bin"

# the first worker; its scratch space is its own so the kill point is unambiguous
STELLA_API_TMP_DIR=$TMP/work "$BIN/stellad" --roles worker 2>"$TMP/worker1.log" &
W1=$!
PIDS+=($W1)
ID=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data "{\"kind\":\"job\",
  \"created\":\"2026-04-05T06:07:08Z\",\"run\":{\"run_id\":\"crash-run\",\"actor\":\"e2e\"},
  \"inputs\":[{\"path\":\"big.bin\",\"sha256\":\"$SHA\"}],\"outputs\":[{\"path\":\"v.json\",\"json\":{}}]}" \
  "$URL/evidence/snapshot" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["bundle_id"])') ||
  fail snapshot
caught=
for _ in $(seq 600); do
  if compgen -G "$TMP/work/stella-evidence-*" >/dev/null; then
    kill -9 "$W1"
    caught=1
    break
  fi
  sleep 0.01
done
[ -n "$caught" ] || fail "the worker was never caught sealing"
wait "$W1" 2>/dev/null || true
echo "killed the worker mid-snapshot ($(ls "$TMP/work" | tr '\n' ' '))"
[ "$(sql "SELECT status FROM evidence_bundles WHERE tenant_id = '$T' AND bundle_id = '$ID'")" = pending ] ||
  fail "the bundle is not pending after the kill"
[ "$(sql "SELECT state FROM jobs WHERE tenant_id = '$T'")" = running ] || fail "job state after kill"

STELLA_API_TMP_DIR=$TMP/work "$BIN/stellad" --roles worker 2>"$TMP/worker2.log" &
PIDS+=($!)
for _ in $(seq 300); do
  [ "$(sql "SELECT state FROM jobs WHERE tenant_id = '$T'")" = succeeded ] && break
  sleep 0.2
done
[ "$(sql "SELECT state FROM jobs WHERE tenant_id = '$T'")" = succeeded ] || fail "job not reclaimed"
grep -q "reclaimed 1 entries idle past the lease" "$TMP/worker2.log" || fail "not reclaimed"
grep -q "\"evidence sealed\".*$ID" "$TMP/worker2.log" || fail "the second worker did not seal it"
[ "$(sql "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '$T' AND status = 'sealed'")" = 1 ] ||
  fail "sealed bundles"
[ "$(sql "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '$T'")" = 1 ] || fail "bundle rows"
[ "$(sql "SELECT count(*) FROM evidence_custody WHERE tenant_id = '$T' AND event = 'evidence.sealed'")" = 1 ] ||
  fail "sealed custody records"
visible=$(find "$TMP/data/tenants/$T/evidence" -type f ! -name '.*' | sed "s|$TMP/data/||")
[ "$visible" = "tenants/$T/evidence/$ID.tgz" ] || fail "visible evidence objects: $visible"
[ "$(find "$TMP/data/tenants/$T" -type f ! -name '.*' | wc -l)" = 2 ] || fail "orphan objects"
curl -sf "${auth[@]}" -o "$TMP/b.tgz" "$URL/evidence/$ID/download" || fail download
"$BIN/stella" verify "$TMP/b.tgz" --key "$TMP/sign.pub" >/dev/null || fail "stella verify"
mkdir "$TMP/x" && tar -xzf "$TMP/b.tgz" -C "$TMP/x"
(cd "$TMP/x" && sha256sum --quiet --strict -c SHA256SUMS) || fail "sha256sum -c"
[ "$(sha256sum "$TMP/x/payload/inputs/big.bin" | cut -c1-64)" = "$SHA" ] || fail "artifact bytes"
echo "evidence_crash: ok"
