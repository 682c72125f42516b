#!/usr/bin/env bash
# timeline_service.sh: the Timeline Indexer wired into the running service, driven from
# outside with curl and jq: stellad (roles api,worker, pg_url, redis) runs two probe jobs,
# one submitted with `stella job submit` (straight to Redis: its only event is
# job.succeeded from the worker's sink) and one with POST /jobs (job.queued from the API,
# then job.succeeded). The events go outbox -> relay -> stella:events -> the ingester
# thread (group stella-timeline) -> GET /timeline, where they show up in order. Another tenant's token sees
# none of them (list empty, the event itself 404); a tampered cursor is a 400 problem; the
# ingester acked everything it read (nothing pending in its group).
set -euo pipefail
for v in STELLA_PG_URL STELLA_PG_ADMIN_URL STELLA_REDIS_URL; do
  if [ -z "${!v:-}" ]; then
    if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
      echo "$v not set" >&2; exit 1; fi
    echo "skipping: $v not set (run through ops/test.sh)" >&2; exit 77
  fi
done
command -v jq >/dev/null || { echo "skipping: jq not installed" >&2; exit 77; }
unset STELLA_API_LISTEN STELLA_OPS_LISTEN
BIN=${STELLA_BIN_DIR:?}/bin
SRC=${STELLA_SOURCE_DIR:?}
TMP=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$TMP/stellad.log" >&2 || true; exit 1; }

"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null 2>&1 || fail "migrate"
REDIS="$STELLA_REDIS_URL/14"
redis-cli -u "$REDIS" FLUSHDB >/dev/null
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$PORT
ops_listen = 127.0.0.1:0
pg_url = $STELLA_PG_URL
redis_url = $REDIS
timeline_cursor_key = e2e-timeline-cursor-key-0123456789
outbox_poll_ms = 50
CONF
export STELLA_CONFIG=$TMP/stella.conf STELLA_REDIS_URL=$REDIS
"$BIN/stellad" --roles api,worker 2>"$TMP/stellad.log" &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || fail "stellad did not start"
grep -q 'timeline ingest: started' "$TMP/stellad.log" || fail "no ingester thread"

T="tl-e2e-$$-$RANDOM"
TOKEN=$("$BIN/stella" token mint --tenant "$T" --scope "timeline:read export:operator" --ttl 10m --sub e2e)
OTHER=$("$BIN/stella" token mint --tenant "$T-other" --scope timeline:read --ttl 10m)
NOSCOPE=$("$BIN/stella" token mint --tenant "$T" --scope audit:read --ttl 10m)
get() { curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $1" "$URL$2"; }

JOB=$("$BIN/stella" job submit --type probe --tenant "$T" --payload '{"sleep_ms":10}' |
  grep -o '[0-9a-f-]\{8,\}' | head -1)
[ -n "$JOB" ] || fail "job submit printed no id"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"type":"probe","payload":{"sleep_ms":10}}' "$URL/jobs")
[ "$code" = 202 ] || [ "$code" = 201 ] || fail "POST /jobs: $code $(cat "$TMP/body")"
JOB2=$(jq -r .job_id "$TMP/body")

# wait until subject $1 has a job.succeeded event; its page is left in $TMP/body
wait_done() {
  for _ in $(seq 150); do
    code=$(get "$TOKEN" "/timeline?subject=job/$1")
    [ "$code" = 200 ] || fail "GET /timeline: $code $(cat "$TMP/body")"
    jq -e '[.items[].type] | index("job.succeeded")' "$TMP/body" >/dev/null && return 0
    sleep 0.2
  done
  fail "no job.succeeded event for job/$1: $(cat "$TMP/body")"
}

echo "== the jobs' events reach GET /timeline, in order"
wait_done "$JOB"
jq -e --arg s "job/$JOB" '.items | length == 1 and .[0].subject == $s' "$TMP/body" >/dev/null ||
  fail "stella job submit's job: $(cat "$TMP/body")"
wait_done "$JOB2"
types=$(jq -r '[.items[].type] | join(",")' "$TMP/body")
[ "$types" = "job.queued,job.succeeded" ] || fail "POST /jobs job: events $types"
jq -e --arg s "job/$JOB2" 'all(.items[]; .subject == $s)' "$TMP/body" >/dev/null || fail "subject filter"
jq -e '[.items[] | [.occurred_at, .source_seq, .source_seq_minor]] as $k | $k == ($k | sort)' \
  "$TMP/body" >/dev/null || fail "items out of order"
[ "$(get "$TOKEN" "/timeline?type=job.succeeded&limit=500")" = 200 ] || fail "type filter"
jq -e --arg a "job/$JOB" --arg b "job/$JOB2" '[.items[].subject] | index($a) and index($b)' \
  "$TMP/body" >/dev/null || fail "type filter misses a job: $(cat "$TMP/body")"
get "$TOKEN" "/timeline?subject=job/$JOB2" >/dev/null
ID=$(jq -r '.items[-1].event_id' "$TMP/body")
N=$(jq '.items | length' "$TMP/body")

echo "== one event, its evidence"
[ "$(get "$TOKEN" "/timeline/$ID")" = 200 ] || fail "GET /timeline/{id}: $(cat "$TMP/body")"
jq -e --arg id "$ID" --arg j "$JOB2" '.event_id == $id and .payload.job_id == $j' "$TMP/body" \
  >/dev/null || fail "event body: $(cat "$TMP/body")"
[ "$(get "$TOKEN" "/timeline/$ID/evidence")" = 200 ] || fail "evidence: $(cat "$TMP/body")"
jq -e --arg id "$ID" '.event_id == $id and (.evidence | type == "array")' "$TMP/body" \
  >/dev/null || fail "evidence body: $(cat "$TMP/body")"
[ "$(get "$TOKEN" "/timeline/no-such-event")" = 404 ] || fail "unknown id"

echo "== another tenant sees nothing"
[ "$(get "$OTHER" "/timeline")" = 200 ] || fail "other tenant list"
jq -e '.items == [] and .next_cursor == null' "$TMP/body" >/dev/null || fail "leak: $(cat "$TMP/body")"
[ "$(get "$OTHER" "/timeline/$ID")" = 404 ] || fail "other tenant's event not 404"
[ "$(get "$OTHER" "/timeline/$ID/evidence")" = 404 ] || fail "other tenant's evidence not 404"
[ "$(get "$NOSCOPE" "/timeline")" = 403 ] || fail "token without timeline:read"

echo "== pagination and cursors"
[ "$(get "$TOKEN" "/timeline?subject=job/$JOB2&limit=1")" = 200 ] || fail "limit=1"
jq -e '.items[0].type == "job.queued"' "$TMP/body" >/dev/null || fail "page 1: $(cat "$TMP/body")"
CUR=$(jq -r '.next_cursor' "$TMP/body")
[ "$CUR" != null ] || fail "no next_cursor with limit=1 and $N events"
[ "$(get "$TOKEN" "/timeline?subject=job/$JOB2&limit=1&cursor=$CUR")" = 200 ] || fail "page 2"
jq -e '.items[0].type == "job.succeeded" and .next_cursor == null' "$TMP/body" >/dev/null ||
  fail "page 2: $(cat "$TMP/body")"
[ "$(get "$TOKEN" "/timeline?subject=job/$JOB&limit=1&cursor=$CUR")" = 400 ] || fail "cursor with other filter"
[ "$(get "$OTHER" "/timeline?subject=job/$JOB2&limit=1&cursor=$CUR")" = 400 ] || fail "cursor of another tenant"
[ "$(get "$TOKEN" "/timeline?cursor=eyJ2IjoxfQ.AAAA")" = 400 ] || fail "forged cursor"
grep -q '"type":"https://stella.dev/problems/bad-request"' "$TMP/body" || fail "problem type"
[ "$(get "$TOKEN" "/timeline?limit=0")" = 400 ] || fail "limit=0"
[ "$(get "$TOKEN" "/timeline?since=yesterday")" = 400 ] || fail "bad since"

echo "== audited, and nothing left pending in the ingester's group"
n=$(psql "$STELLA_PG_ADMIN_URL" -Atc "select count(*) from audit_log where tenant_id = '$T' and action like 'timeline.%'")
[ "$n" -ge 5 ] || fail "expected timeline audit rows, got $n"
pend=$(redis-cli -u "$REDIS" XPENDING stella:events stella-timeline | head -1)
[ "$pend" = 0 ] || fail "$pend entries pending in stella-timeline"

echo "== clean shutdown"
kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "stellad did not stop within 10 s"
wait "$PID" || fail "stellad exit status $?"
PID=
echo OK
