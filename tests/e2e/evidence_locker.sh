#!/usr/bin/env bash
# evidence_locker.sh: the Evidence Locker's done-when cases end to end on the test
# Postgres and Redis with a real stellad (api, worker, scheduler), driven by curl, psql,
# redis-cli, tar and the stella CLI:
#   - cross-tenant: every evidence route answers another tenant's ids with the same 404
#     problem as an id nobody has; a snapshot naming another tenant's artifact never seals
#   - quota: an upload larger than the quota is a 413, one that does not fit a 429, both
#     problem+json; nothing of them is stored (no upload row, usage unchanged, no object)
#   - incident mode: POST /incident 201 then 200, GET, scopes; incident.activated and
#     .deactivated on stella:events and stella:notify; a snapshot meanwhile carries
#     run/debug/ artifacts; DELETE twice is 200 then 404; stella incident on|status|off
#   - retention: the scheduler role prunes an expired job bundle (kind window job=0)
#     leaving a signed disposition; custody: stella evidence custody verify passes, then
#     fails once a record is deleted as superuser
#   - reindex: the tenant's rows wiped, stella evidence reindex brings back the same facts
set -euo pipefail
BIN=${STELLA_BIN_DIR:?}/bin
SRC=${STELLA_SOURCE_DIR:?}
for v in STELLA_PG_URL STELLA_PG_ADMIN_URL STELLA_PG_MAINT_URL STELLA_REDIS_URL; do
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
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$TMP/stellad.log" ] && tail -20 "$TMP/stellad.log" >&2
  exit 1
}

# fresh tenants per run (a recycled pid would find an earlier run's rows)
R=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
A=eva$R
B=evb$R
Q=evq$R
C=evc$R
ADMIN=$STELLA_PG_ADMIN_URL
REDIS=$STELLA_REDIS_URL/6
sql() { psql -qtAX -v ON_ERROR_STOP=1 "$ADMIN" -c "$1"; }
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stella" key generate --type ed25519 -o "$TMP/sign.pem" >/dev/null
openssl pkey -in "$TMP/sign.pem" -pubout -out "$TMP/sign.pub" 2>/dev/null
cat >"$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$PORT
jwt_hs256_secret = evidence-e2e-secret-evidence-e2e
pg_url = $STELLA_PG_URL
pg_maint_url = $STELLA_PG_MAINT_URL
redis_url = $REDIS
signing_key = $TMP/sign.pem
data_dir = $TMP/data
api_tmp_dir = $TMP
api_rate_per_s = 0
ops_listen = 127.0.0.1:0
worker_threads = 2
evidence_retention_kinds = job=0
evidence_incident_extension_days = 7
evidence_maint_interval_s = 1
outbox_poll_ms = 50
CONF
export STELLA_CONFIG=$TMP/stella.conf
unset STELLA_PG_URL STELLA_REDIS_URL STELLA_PG_MAINT_URL
"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null || fail migrate
redis-cli -u "$REDIS" FLUSHDB >/dev/null

"$BIN/stellad" --roles api,worker,scheduler 2>"$TMP/stellad.log" &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || fail "stellad did not start"

mint() { "$BIN/stella" token mint --alg HS256 --tenant "$1" --scope "$2" --ttl 30m --sub "e2e-$1"; }
ALL="evidence:read evidence:write evidence:hold"
TA=$(mint "$A" "$ALL")
TB=$(mint "$B" "$ALL")
TQ=$(mint "$Q" "$ALL")
TRO=$(mint "$A" "evidence:read")
api() { # TOKEN METHOD PATH [curl args...] -> body in $TMP/b, prints the status
  local tok=$1 m=$2 p=$3
  shift 3
  curl -s -o "$TMP/b" -D "$TMP/h" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $tok" "$@" \
    "$URL$p"
}
json() { api "$1" "$2" "$3" -H 'Content-Type: application/json' --data "$4"; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[int(k)] if isinstance(d, list) else d[k]
print(d)' "$TMP/b" "$1"; }
upload() { # TOKEN FILE -> sha256
  [ "$(api "$1" PUT /evidence/artifacts --data-binary @"$2")" = 201 ] || fail "upload $2: $(cat "$TMP/b")"
  jget sha256
}
snapshot() { # TOKEN KIND SHA -> bundle id
  [ "$(json "$1" POST /evidence/snapshot "{\"kind\":\"$2\",\"created\":\"2026-03-04T05:06:07Z\",
    \"run\":{\"run_id\":\"run-$2\",\"actor\":\"e2e\"},\"inputs\":[{\"path\":\"a.txt\",\"sha256\":\"$3\"}],
    \"outputs\":[{\"path\":\"verdict.json\",\"json\":{\"pass\":true}}]}")" = 202 ] ||
    fail "snapshot: $(cat "$TMP/b")"
  jget bundle_id
}
wait_sealed() { # TOKEN ID
  for _ in $(seq 150); do
    [ "$(api "$1" GET "/evidence/$2")" = 200 ] && [ "$(jget status)" = sealed ] && return 0
    sleep 0.2
  done
  fail "bundle $2 never sealed: $(cat "$TMP/b")"
}
problem() { # STATUS: the reply is problem+json with that status
  grep -qi '^content-type: application/problem+json' "$TMP/h" || fail "not problem+json: $(cat "$TMP/h")"
  [ "$(jget status)" = "$1" ] || fail "problem status $(jget status), want $1"
}

echo "== seal one bundle for $A, hold it"
printf 'artifact of %s\n' "$A" >"$TMP/a.txt"
SHA_A=$(upload "$TA" "$TMP/a.txt")
ID=$(snapshot "$TA" evaluation "$SHA_A")
wait_sealed "$TA" "$ID"
MERKLE=$(jget merkle_root)
[ "$(json "$TA" POST "/evidence/hold/case-$A" "{\"reason\":\"e2e\",\"bundle_ids\":[\"$ID\"]}")" = 201 ] ||
  fail "hold: $(cat "$TMP/b")"

echo "== cross-tenant: every route is a 404, indistinguishable from a missing id"
norm() { /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["type"], d["title"], d["status"], d.get("detail"))' "$TMP/b"; }
for route in "GET /evidence/$ID" "GET /evidence/$ID/download" "POST /evidence/verify?id=$ID" \
  "GET /evidence/hold/case-$A" "DELETE /evidence/hold/case-$A"; do
  set -- $route
  missing=$(echo "$2" | sed "s/$ID/ev-nobody-has-this/; s/case-$A/case-nobody/")
  [ "$(api "$TA" "$1" "$missing")" = 404 ] || fail "$1 $missing for $A: $(cat "$TMP/b")"
  want=$(norm)
  [ "$(api "$TB" "$1" "$2")" = 404 ] || fail "$B got $1 $2: $(cat "$TMP/b")"
  problem 404
  [ "$(norm)" = "$want" ] || fail "$1 $2: the 404 differs from a missing id's: $(norm) vs $want"
done
[ "$(json "$TB" POST "/evidence/hold/case-$B" "{\"reason\":\"x\",\"bundle_ids\":[\"$ID\"]}")" = 404 ] ||
  fail "$B held $A's bundle: $(cat "$TMP/b")"
BAD=$(snapshot "$TB" evaluation "$SHA_A")
for _ in $(seq 100); do
  st=$(sql "SELECT state FROM jobs WHERE tenant_id = '$B' AND payload->>'bundle_id' = '$BAD'")
  case "$st" in failed | dead) break ;; esac
  sleep 0.2
done
case "$st" in failed | dead) ;; *) fail "snapshot with $A's artifact for $B: job $st" ;; esac
[ "$(api "$TB" GET "/evidence/$BAD")" = 200 ] && [ "$(jget status)" != sealed ] ||
  fail "$B's snapshot of $A's artifact: $(cat "$TMP/b")"
[ -z "$(find "$TMP/data/tenants/$B" -name "$SHA_A" 2>/dev/null)" ] || fail "$A's artifact copied to $B"
[ "$(api "$TA" GET "/evidence/$ID")" = 200 ] || fail "$A lost its bundle"

echo "== quota: 413 and 429 with a problem body, nothing partial stored"
sql "INSERT INTO tenant_quotas (tenant_id, storage_bytes_max) VALUES ('$Q', 1000)"
head -c 2000 /dev/urandom >"$TMP/big"
head -c 800 /dev/urandom >"$TMP/fits"
head -c 800 /dev/urandom >"$TMP/second"
[ "$(api "$TQ" PUT /evidence/artifacts --data-binary @"$TMP/big")" = 413 ] || fail "over quota: $(cat "$TMP/b")"
problem 413
[ "$(api "$TQ" PUT /evidence/artifacts --data-binary @"$TMP/fits")" = 201 ] || fail "fits: $(cat "$TMP/b")"
[ "$(api "$TQ" PUT /evidence/artifacts --data-binary @"$TMP/second")" = 429 ] || fail "full: $(cat "$TMP/b")"
problem 429
[ "$(sql "SELECT storage_bytes_used FROM tenant_quotas WHERE tenant_id = '$Q'")" = 800 ] || fail "usage"
[ "$(sql "SELECT count(*) FROM evidence_uploads WHERE tenant_id = '$Q'")" = 1 ] || fail "upload rows"
n=$(find "$TMP/data/tenants/$Q" -type f ! -name '.*' | wc -l)
[ "$n" = 1 ] || fail "$n objects for $Q: $(find "$TMP/data/tenants/$Q" -type f)"
[ -z "$(find "$TMP/data/tenants/$Q" -name '.*.tmp.*')" ] || fail "temp files left for $Q"

echo "== incident mode through the API"
[ "$(json "$TRO" POST /incident '{"reason":"x"}')" = 403 ] || fail "read scope activated"
[ "$(json "$TA" POST /incident '{"reason":"x","colour":1}')" = 422 ] || fail "unknown key"
[ "$(json "$TA" POST /incident '{"reason":"breach","extension_days":14}')" = 201 ] ||
  fail "activate: $(cat "$TMP/b")"
[ "$(jget active)" = True ] && [ "$(jget incident.extension_days)" = 14 ] || fail "status $(cat "$TMP/b")"
[ "$(json "$TA" POST /incident '{"reason":"again"}')" = 200 ] && [ "$(jget incident.reason)" = breach ] ||
  fail "second activation: $(cat "$TMP/b")"
[ "$(api "$TRO" GET /incident)" = 200 ] && [ "$(jget active)" = True ] || fail "GET /incident"
[ "$(api "$TB" GET /incident)" = 200 ] && [ "$(jget active)" = False ] || fail "$B sees $A's incident"
printf 'during the incident\n' >"$TMP/i.txt"
ID2=$(snapshot "$TA" evaluation "$(upload "$TA" "$TMP/i.txt")")
wait_sealed "$TA" "$ID2"
curl -sf -H "Authorization: Bearer $TA" -o "$TMP/i.tgz" "$URL/evidence/$ID2/download"
# (outputs go to files first: under pipefail, grep -q closing a pipe early fails the writer)
tar -tzf "$TMP/i.tgz" >"$TMP/list"
grep -q '^payload/run/debug/job-log.json$' "$TMP/list" || fail "no job log in $ID2"
tar -xzOf "$TMP/i.tgz" payload/run/debug/config.json >"$TMP/config.json"
tar -xzOf "$TMP/i.tgz" payload/run/debug/job-log.json >"$TMP/job-log.json"
grep -q '"jwt_hs256_secret":"\[redacted\]"' "$TMP/config.json" ||
  fail "config not redacted"
grep -q '"to":"running"' "$TMP/job-log.json" || fail "job log"
"$BIN/stella" verify "$TMP/i.tgz" --key "$TMP/sign.pub" >/dev/null || fail "incident bundle verify"
[ "$(api "$TA" DELETE /incident)" = 200 ] && [ "$(jget active)" = False ] || fail "deactivate"
[ "$(api "$TA" DELETE /incident)" = 404 ] || fail "second deactivate: $(cat "$TMP/b")"
problem 404
for ev in incident.activated incident.deactivated; do
  for stream in stella:events stella:notify; do
    ok=
    for _ in $(seq 50); do
      redis-cli -u "$REDIS" XRANGE "$stream" - + >"$TMP/xr"
      grep -q "^$ev\$" "$TMP/xr" && ok=1 && break
      sleep 0.1
    done
    [ -n "$ok" ] || fail "$ev not on $stream"
  done
done
redis-cli -u "$REDIS" XRANGE stella:notify - + >"$TMP/notify"
redis-cli -u "$REDIS" XRANGE stella:events - + >"$TMP/events"
[ "$(grep -c '^evidence\.' "$TMP/notify")" = 0 ] ||
  fail "evidence events on stella:notify"
grep -q '^evidence.sealed$' "$TMP/events" ||
  fail "evidence.sealed not on stella:events"
grep '"type": *"evidence.downloaded"' "$TMP/events" |
  grep '"correlation_id": *"[0-9a-f]' | grep -c '"digest": *"sha256:' >/dev/null ||
  fail "evidence.downloaded without request id or bundle digest"

echo "== incident mode from the CLI"
"$BIN/stella" incident on --tenant "$C" --reason "cli drill" --extension-days 3 >"$TMP/on" ||
  fail "stella incident on"
grep -q '"active":true' "$TMP/on" || fail "on: $(cat "$TMP/on")"
"$BIN/stella" incident status --tenant "$C" >"$TMP/status" || fail "incident status"
grep -q '"extension_days":3' "$TMP/status" || fail "status"
"$BIN/stella" incident off --tenant "$C" >/dev/null || fail "off"
set +e
"$BIN/stella" incident off --tenant "$C" 2>/dev/null
rc=$?
"$BIN/stella" incident on --tenant "$C" 2>/dev/null
rc2=$?
set -e
[ "$rc" = 1 ] && [ "$rc2" = 2 ] || fail "off without incident: $rc, on without reason: $rc2"

echo "== the scheduler prunes an expired job bundle, leaving a signed disposition"
printf 'short-lived\n' >"$TMP/j.txt"
ID3=$(snapshot "$TA" job "$(upload "$TA" "$TMP/j.txt")")
for _ in $(seq 100); do
  [ "$(sql "SELECT count(*) FROM evidence_dispositions WHERE tenant_id = '$A' AND bundle_id = '$ID3'")" = 1 ] &&
    break
  sleep 0.2
done
[ "$(api "$TA" GET "/evidence/$ID3")" = 404 ] || fail "$ID3 not pruned: $(cat "$TMP/b")"
[ ! -e "$TMP/data/tenants/$A/evidence/$ID3.tgz" ] || fail "$ID3's object left"
[ "$(api "$TA" GET "/evidence/$ID")" = 200 ] || fail "the held live bundle was pruned"
sql "SELECT record_text FROM evidence_dispositions WHERE tenant_id = '$A' AND bundle_id = '$ID3'" >"$TMP/disp"
grep -q '"rule":"retention expired, no active hold"' "$TMP/disp" || fail "disposition record"
[ "$(sql "SELECT count(*) FROM audit_log WHERE tenant_id = '$A' AND actor = 'stella_maint'")" -ge 1 ] ||
  fail "pruner not audited"

echo "== custody verify (CLI), then a deleted record is caught"
"$BIN/stella" evidence custody verify --tenant "$A" --key "$TMP/sign.pub" || fail "custody verify"
kill "$PID" && wait "$PID" 2>/dev/null || true
PID=
! grep -q 'Sanitizer\|runtime error' "$TMP/stellad.log" || fail "sanitizer report in stellad.log"
sql "BEGIN; ALTER TABLE evidence_custody DISABLE TRIGGER evidence_custody_append_only;
     DELETE FROM evidence_custody WHERE tenant_id = '$A' AND seq = 2;
     ALTER TABLE evidence_custody ENABLE TRIGGER evidence_custody_append_only; COMMIT"
set +e
"$BIN/stella" evidence custody verify --tenant "$A" 2>"$TMP/cv"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q 'record 2 missing' "$TMP/cv" || fail "tampered custody: $rc $(cat "$TMP/cv")"

echo "== reindex: rows wiped, rebuilt from the object store"
facts() { sql "SELECT bundle_id, kind, status, merkle_root, manifest_sha256, object_sha256, object_size,
  keyid, created, (SELECT count(*) FROM evidence_artifacts a WHERE a.tenant_id = b.tenant_id
  AND a.bundle_id = b.bundle_id) FROM evidence_bundles b WHERE tenant_id = '$A' AND status = 'sealed'
  ORDER BY bundle_id"; }
facts >"$TMP/before"
[ "$(wc -l <"$TMP/before")" = 2 ] || fail "want 2 sealed bundles: $(cat "$TMP/before")"
sql "DELETE FROM evidence_bundles WHERE tenant_id = '$A'"
"$BIN/stella" evidence reindex --tenant "$A" >"$TMP/ri" || fail "reindex: $(cat "$TMP/ri")"
grep -q '2 restored' "$TMP/ri" || fail "reindex: $(cat "$TMP/ri")"
facts >"$TMP/after"
cmp -s "$TMP/before" "$TMP/after" || fail "facts differ: $(diff "$TMP/before" "$TMP/after")"
grep -q "$MERKLE" "$TMP/after" || fail "merkle root"
echo "evidence_locker: ok"
