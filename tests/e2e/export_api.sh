#!/usr/bin/env bash
# export_api.sh: the Export Center end to end on the test Postgres and Redis with a real
# stellad (api + worker roles), driven by curl, the stella CLI, sha256sum, cmp and tar:
#   - profiles CRUD (a bad filter field is a 422 naming it; update; viewer may not write)
#   - json:raw and json:policy runs through the API: `stella export run --wait` sees every
#     state; the SSE stream lists every event in order (ids 1..n, no gaps), and a
#     reconnect with Last-Event-ID: 2 resumes at 3 with the same tail
#   - download: full (sha256sum = ETag), Range (206, the right bytes), If-None-Match (304);
#     two runs of one profile download byte-identical; stella export verify passes
#   - attestation and POST verify (digest, detached signature, DSSE, bundle report)
#   - cancel of a large run (tests/bench/gen_ledger) while it runs: cancelled, a second run
#     of the single-flight profile meanwhile is 409, nothing stored under the run's prefix
#   - unsatisfiable scope 422 with no run; another tenant gets 404 for runs and downloads;
#     a cross-tenant source is 403 and audited
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
# no TSA here: a timestamp token differs per run (everything else is byte-identical)
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

T=xe2e$$
T2=other$$
BIG=xbig$$
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stella" key generate --type ed25519 -o "$TMP/sign.pem" >/dev/null
cat >"$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$PORT
jwt_hs256_secret = export-e2e-secret-export-e2e-secret
pg_url = $STELLA_PG_URL
redis_url = $STELLA_REDIS_URL/13
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
"$BIN/stella" ledger import --tenant "$T" "$FX/osv" "$FX/vex" "$FX/policy" >/dev/null
"$SRC/tests/bench/gen_ledger" --count 20000 --seed e2e --out "$TMP/big" >/dev/null
"$BIN/stella" ledger import --tenant "$BIG" "$TMP/big" >/dev/null

"$BIN/stellad" --roles api,worker 2>"$TMP/stellad.log" &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || fail "stellad did not start"

mint() { "$BIN/stella" token mint --alg HS256 --tenant "$1" --scope "$2" --ttl 30m --sub e2e; }
OP=$(mint "$T" "export:viewer export:operator")
RO=$(mint "$T" "export:viewer")
OTHER=$(mint "$T2" "export:viewer export:operator")
BIGOP=$(mint "$BIG" "export:viewer export:operator")
api() { # TOKEN METHOD PATH [BODY] -> body in $TMP/b, prints the status
  local tok=$1 m=$2 p=$3
  shift 3
  curl -s -o "$TMP/b" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $tok" \
    -H 'Content-Type: application/json' ${1:+--data "$1"} "$URL$p"
}
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]));
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$TMP/b" "$1"; }

echo "== profiles"
[ "$(api "$OP" POST /exports/profiles '{"name":"raw","kind":"json:raw"}')" = 201 ] || fail "create raw"
[ "$(api "$OP" POST /exports/profiles '{"name":"pol","kind":"json:policy","project":"risk"}')" = 201 ] ||
  fail "create pol"
[ "$(api "$OP" POST /exports/profiles '{"name":"bad","kind":"json:raw","filters":{"colour":1}}')" = 422 ] ||
  fail "unknown filter field"
grep -q 'filters.colour' "$TMP/b" || fail "the 422 names the field: $(cat "$TMP/b")"
[ "$(api "$RO" POST /exports/profiles '{"name":"ro","kind":"json:raw"}')" = 403 ] || fail "viewer writes"
[ "$(api "$OP" POST /exports/profiles '{"name":"empty","kind":"json:raw","filters":{"ids":["NOPE-1"]}}')" = 201 ] ||
  fail "create empty"
[ "$(api "$OP" PUT /exports/profiles/empty '{"kind":"json:raw","filters":{"ids":["NOPE-2"]}}')" = 200 ] ||
  fail "update"
grep -q 'NOPE-2' "$TMP/b" || fail "update kept"
[ "$(api "$OP" GET /exports/profiles)" = 200 ] && grep -q '"pol"' "$TMP/b" || fail "list"

echo "== unsatisfiable scope: 422, no run"
[ "$(api "$OP" POST /exports/runs '{"profile":"empty"}')" = 422 ] || fail "empty scope"
grep -q 'scope is empty' "$TMP/b" || fail "empty scope detail"
[ "$(api "$OP" GET '/exports/runs?profile=empty')" = 200 ] && grep -q '"runs":\[\]' "$TMP/b" ||
  fail "a run was left behind"

echo "== json:raw through the CLI (--wait prints every state)"
export STELLA_API_URL=$URL STELLA_TOKEN=$OP
"$BIN/stella" export run raw --tenant "$T" --wait >"$TMP/run1.out" || fail "run --wait: $(cat "$TMP/run1.out")"
RUN1=$(awk '/^run /{print $2}' "$TMP/run1.out")
[ "$(grep '^state' "$TMP/run1.out" | tr '\n' ' ')" = \
  "state requested state planning state running state built state distributed " ] ||
  fail "states: $(cat "$TMP/run1.out")"
STELLA_TOKEN=$OTHER "$BIN/stella" export run raw --tenant "$T" >/dev/null 2>&1 && fail "wrong tenant token"

echo "== SSE: all events in order, resumable with Last-Event-ID"
curl -sN -H "Authorization: Bearer $OP" "$URL/exports/runs/$RUN1/events" >"$TMP/sse"
grep '^id:' "$TMP/sse" | awk '{print $2}' >"$TMP/ids"
N=$(wc -l <"$TMP/ids")
[ "$N" -ge 5 ] && [ "$(seq 1 "$N" | tr '\n' ' ')" = "$(tr '\n' ' ' <"$TMP/ids")" ] || fail "ids: $(cat "$TMP/ids")"
curl -sN -H "Authorization: Bearer $OP" -H 'Last-Event-ID: 2' "$URL/exports/runs/$RUN1/events" >"$TMP/sse2"
[ "$(grep '^id:' "$TMP/sse2" | awk '{print $2}' | tr '\n' ' ')" = "$(seq 3 "$N" | tr '\n' ' ')" ] ||
  fail "resume: $(grep '^id:' "$TMP/sse2" | tr '\n' ' ')"
diff <(awk '/^id: 3$/{p=1} p' "$TMP/sse") "$TMP/sse2" >/dev/null || fail "resumed tail differs"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OP" -H 'Last-Event-ID: x' \
  "$URL/exports/runs/$RUN1/events")
[ "$code" = 400 ] || fail "bad Last-Event-ID: $code"

echo "== download: ETag, Range, If-None-Match; deterministic across runs; offline verify"
"$BIN/stella" export download "$RUN1" --tenant "$T" -o "$TMP/r1.tgz" >/dev/null || fail download
ETAG=$(curl -sI -H "Authorization: Bearer $OP" "$URL/exports/runs/$RUN1/download" | tr -d '\r' |
  awk -F': ' 'tolower($1)=="etag"{print $2}')
[ "$ETAG" = "\"$(sha256sum "$TMP/r1.tgz" | cut -c1-64)\"" ] || fail "etag $ETAG"
code=$(curl -s -o "$TMP/part" -w '%{http_code}' -H "Authorization: Bearer $OP" -H 'Range: bytes=100-299' \
  "$URL/exports/runs/$RUN1/download")
[ "$code" = 206 ] && cmp -s "$TMP/part" <(tail -c +101 "$TMP/r1.tgz" | head -c 200) || fail "range $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OP" -H "If-None-Match: $ETAG" \
  "$URL/exports/runs/$RUN1/download")
[ "$code" = 304 ] || fail "if-none-match $code"
"$BIN/stella" export run raw --tenant "$T" --wait >"$TMP/run2.out" || fail "second run"
RUN2=$(awk '/^run /{print $2}' "$TMP/run2.out")
"$BIN/stella" export download "$RUN2" --tenant "$T" -o "$TMP/r2.tgz" >/dev/null || fail download2
cmp "$TMP/r1.tgz" "$TMP/r2.tgz" || fail "two runs of one profile differ"
openssl pkey -in "$TMP/sign.pem" -pubout -out "$TMP/sign.pub" 2>/dev/null
"$BIN/stella" export verify "$TMP/r1.tgz" --key "$TMP/sign.pub" >/dev/null || fail "export verify"
tar -xzf "$TMP/r1.tgz" -C "$TMP" payload/advisories.ndjson.gz
[ "$(gzip -dc "$TMP/payload/advisories.ndjson.gz" | wc -l)" = 10 ] || fail "10 advisories"
# the detached signature is over the .tgz's SHA-256 digest
OBJ=$(find "$TMP/data" -path "*exports/$RUN1/export.tgz.sig" -not -name '.*' | head -1)
[ -n "$OBJ" ] || fail "no detached .sig stored"
sha256sum "$TMP/r1.tgz" | cut -c1-64 | xxd -r -p >"$TMP/digest"
openssl pkeyutl -verify -pubin -inkey "$TMP/sign.pub" -rawin -in "$TMP/digest" -sigfile "$OBJ" \
  >/dev/null || fail "openssl: detached signature"

echo "== attestation and POST verify"
[ "$(api "$RO" GET "/exports/$RUN1/attestation")" = 200 ] || fail attestation
grep -q '"payloadType":"application/vnd.in-toto+json"' "$TMP/b" || fail "attestation envelope"
[ "$(api "$RO" POST "/exports/$RUN1/verify")" = 200 ] || fail "verify status"
[ "$(jget ok)" = True ] || fail "verify: $(cat "$TMP/b")"
[ "$(jget signatures.detached_signature)" = pass ] && [ "$(jget signatures.dsse)" = pass ] ||
  fail "verify signatures"

echo "== Evidence Locker: the run's manifest and transcript, Merkle root aligned"
EVT=$(mint "$T" "export:viewer evidence:read")
[ "$(api "$EVT" GET "/exports/runs/$RUN1")" = 200 ] || fail "run get"
EVID=$(jget evidence.bundle_id)
EVROOT=$(jget merkle_root)
MDIG=$(jget manifest_digest)
[ "$(api "$EVT" GET "/evidence/$EVID")" = 200 ] || fail "evidence get $EVID: $(cat "$TMP/b")"
[ "$(jget kind)" = export ] && [ "$(jget status)" = sealed ] || fail "evidence row: $(cat "$TMP/b")"
code=$(curl -s -o "$TMP/ev.tgz" -w '%{http_code}' -H "Authorization: Bearer $EVT" \
  "$URL/evidence/$EVID/download")
[ "$code" = 200 ] || fail "evidence download $code"
"$BIN/stella" verify "$TMP/ev.tgz" --key "$TMP/sign.pub" >/dev/null || fail "evidence verify"
mkdir -p "$TMP/ev" "$TMP/ex"
tar -xzf "$TMP/ev.tgz" -C "$TMP/ev" || fail "evidence untar"
tar -xzf "$TMP/r1.tgz" -C "$TMP/ex" manifest.json || fail "export untar"
EVMAN=$(find "$TMP/ev/payload" -path '*export/manifest.json')
cmp "$EVMAN" "$TMP/ex/manifest.json" || fail "the evidence holds another manifest"
[ "$(sha256sum "$EVMAN" | cut -c1-64)" = "$MDIG" ] || fail "manifest digest"
/usr/bin/python3 - "$TMP/ex/manifest.json" "$EVROOT" <<'PY' || fail "merkle root"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["merkle"]["root"] == sys.argv[2], (m["merkle"], sys.argv[2])
PY
grep -q "\"$RUN1\"" "$(find "$TMP/ev/payload" -path '*export/distribution.json')" || fail "transcript"
grep -q '"bundle_id":"'"$EVID"'"' "$(find "$TMP/ev/payload" -path '*export/distribution.json')" &&
  fail "the transcript names itself"
psql "$STELLA_PG_ADMIN_URL" -Atc "SELECT payload->'evidence'->1->>'bundle_id' FROM outbox WHERE event_id = 'export:$RUN1:distributed'" |
  grep -qx "$EVID" || fail "distributed event evidence ref"

echo "== json:policy"
"$BIN/stella" export run pol --tenant "$T" --wait >"$TMP/pol.out" || fail "policy run"
RUNP=$(awk '/^run /{print $2}' "$TMP/pol.out")
"$BIN/stella" export download "$RUNP" --tenant "$T" -o "$TMP/p.tgz" >/dev/null || fail "policy download"
tar -xzOf "$TMP/p.tgz" payload/findings.ndjson.gz | gzip -dc | grep -q '"verdict":"fail"' ||
  fail "findings"

echo "== tenant isolation"
[ "$(api "$OTHER" GET "/exports/runs/$RUN1")" = 404 ] || fail "other tenant reads a run"
[ "$(api "$OTHER" GET "/exports/runs/$RUN1/download")" = 404 ] || fail "other tenant downloads"
[ "$(api "$OTHER" POST "/exports/runs/$RUN1/cancel")" = 404 ] || fail "other tenant cancels"
[ "$(api "$OP" POST /exports/profiles "{\"name\":\"xt\",\"kind\":\"json:raw\",\"source_tenants\":[\"$T2\"]}")" = 201 ] ||
  fail "xt profile"
[ "$(api "$OP" POST /exports/runs '{"profile":"xt"}')" = 403 ] || fail "cross-tenant export not refused"
psql "$STELLA_PG_ADMIN_URL" -Atc "SELECT count(*) FROM audit_log WHERE tenant_id = '$T' AND action = 'export.cross_tenant' AND outcome = 'denied'" |
  grep -qx 1 || fail "cross-tenant refusal not audited"

echo "== cancel a large run; single-flight 409 meanwhile; nothing stored"
[ "$(api "$BIGOP" POST /exports/profiles '{"name":"big","kind":"json:raw","project":"bulk"}')" = 201 ] ||
  fail "big profile"
[ "$(api "$BIGOP" POST /exports/runs '{"profile":"big"}')" = 202 ] || fail "big run"
RUNB=$(jget run_id)
for _ in $(seq 300); do
  api "$BIGOP" GET "/exports/runs/$RUNB" >/dev/null
  [ "$(jget state)" = running ] && break
  sleep 0.05
done
[ "$(jget state)" = running ] || fail "big run never ran: $(jget state)"
[ "$(api "$BIGOP" POST /exports/runs '{"profile":"big"}')" = 409 ] || fail "single-flight"
grep -q 'single-flight' "$TMP/b" || fail "409 detail"
[ "$(api "$BIGOP" POST "/exports/runs/$RUNB/cancel")" = 200 ] || fail "cancel: $(cat "$TMP/b")"
[ "$(jget state)" = cancelled ] || fail "not cancelled"
curl -sN --max-time 20 -H "Authorization: Bearer $BIGOP" "$URL/exports/runs/$RUNB/events" |
  grep -q '"state":"cancelled"' || fail "no cancelled event"
sleep 2 # the worker notices within one poll of its documents
[ -z "$(find "$TMP/data" -path "*tenants/$BIG/*" -type f 2>/dev/null)" ] || fail "partial artifact stored"
[ -z "$(find "$TMP" -maxdepth 1 -name 'stella-export-*')" ] || fail "work files left behind"
[ "$(api "$BIGOP" POST "/exports/runs/$RUNB/cancel")" = 409 ] || fail "second cancel"

echo "== kill -9 mid-run: the reclaimed job sweeps the dead worker's scratch and finishes"
[ "$(api "$BIGOP" POST /exports/runs '{"profile":"big"}')" = 202 ] || fail "big run 2"
RUNK=$(jget run_id)
for _ in $(seq 600); do
  api "$BIGOP" GET "/exports/runs/$RUNK" >/dev/null
  [ "$(jget state)" = running ] && [ -n "$(find "$TMP" -maxdepth 1 -name "stella-export-$PID-*")" ] && break
  sleep 0.02
done
[ "$(jget state)" = running ] || fail "run 2 not running at the kill: $(jget state)"
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
STALE=$(find "$TMP" -maxdepth 1 -name "stella-export-$PID-*")
[ -n "$STALE" ] || fail "no scratch directory of the killed worker"
STELLA_JOB_LEASE_MS=4000 "$BIN/stellad" --roles api,worker 2>>"$TMP/stellad.log" &
PID=$!
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 600); do
  api "$BIGOP" GET "/exports/runs/$RUNK" >/dev/null
  case "$(jget state)" in distributed | failed | cancelled) break ;; esac
  sleep 0.2
done
[ "$(jget state)" = distributed ] || fail "run 2 after the restart: $(cat "$TMP/b")"
jget evidence.bundle_id >/dev/null || fail "run 2 has no evidence"
[ ! -e "$STALE" ] || fail "the killed worker's $STALE is still there"
grep -q 'which is gone' "$TMP/stellad.log" || fail "no sweep logged"
sleep 1
LEFT=$(find "$TMP" -maxdepth 1 -name "stella-export-*")
[ -z "$LEFT" ] || fail "scratch left after the run: $LEFT"

psql "$STELLA_PG_ADMIN_URL" -qc "DELETE FROM export_runs WHERE tenant_id IN ('$T','$BIG');
  DELETE FROM export_profiles WHERE tenant_id IN ('$T','$BIG');
  DELETE FROM ledger_advisories WHERE tenant_id IN ('$T','$BIG');" >/dev/null || true
echo "export_api: ok"
