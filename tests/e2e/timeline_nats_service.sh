#!/usr/bin/env bash
# timeline_nats_service.sh: stellad's NATS JetStream timeline ingester, driven from outside:
# stellad (worker role, pg_url, nats_url of the nats-server ops/services.sh runs) creates the
# stream and its durable pull consumer; events published over the plain NATS protocol
# (nats_pub.py, JetStream acks) are stored once (the same event published twice is a
# duplicate), a malformed one is dead-lettered (published to the DLQ subject, terminated)
# and ingest goes on; nothing stays pending on the server; /metrics passes promtool with the
# NATS series; after kill -9 and a restart the durable consumer resumes with what was
# published meanwhile, and nothing already acknowledged comes back.
set -euo pipefail
for v in STELLA_PG_URL STELLA_REDIS_URL STELLA_NATS_URL; do
  if [ -z "${!v:-}" ]; then
    if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
      echo "$v not set" >&2; exit 1; fi
    echo "skipping: $v not set (ops/services.sh up with nats-server)" >&2; exit 77
  fi
done
for t in jq curl promtool; do
  command -v $t >/dev/null || { echo "skipping: $t not installed" >&2; exit 77; }
done
unset STELLA_API_LISTEN STELLA_OPS_LISTEN
BIN=${STELLA_BIN_DIR:?}/bin
SRC=${STELLA_SOURCE_DIR:?}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
PID=
NPORT=${STELLA_NATS_URL##*:}
STREAM="E2E_TL_$$"
SUBJ="e2etl.$$.events"
DLQ="e2etldlq.$$"
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  /usr/bin/python3 "$HERE/nats_pub.py" "$NPORT" api "\$JS.API.STREAM.DELETE.$STREAM" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -20 "$TMP/stellad.log" >&2 || true; exit 1; }
api() { /usr/bin/python3 "$HERE/nats_pub.py" "$NPORT" api "\$JS.API.$1"; }
pub() { # pub BODY [HEADER=VALUE ...]
  local body=$1; shift
  printf '%s' "$body" | /usr/bin/python3 "$HERE/nats_pub.py" "$NPORT" pub "$SUBJ" "$@" >/dev/null ||
    fail "publish"
}

"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null 2>&1 || fail "migrate"
REDIS="$STELLA_REDIS_URL/15"
redis-cli -u "$REDIS" FLUSHDB >/dev/null
cat > "$TMP/stella.conf" <<CONF
ops_listen = 127.0.0.1:0
pg_url = $STELLA_PG_URL
redis_url = $REDIS
nats_url = $STELLA_NATS_URL
nats_stream = $STREAM
nats_subject = e2etl.$$.>
nats_durable = timeline
nats_dlq_subject = $DLQ
nats_ack_wait_ms = 2000
CONF
export STELLA_CONFIG=$TMP/stella.conf STELLA_REDIS_URL=$REDIS
start() {
  "$BIN/stellad" --roles worker 2>>"$TMP/stellad.log" &
  PID=$!
  for _ in $(seq 100); do api "STREAM.INFO.$STREAM" >/dev/null 2>&1 && break; sleep 0.1; done
  api "CONSUMER.INFO.$STREAM.timeline" >/dev/null 2>&1 || {
    sleep 1; api "CONSUMER.INFO.$STREAM.timeline" >/dev/null || fail "no durable consumer"; }
  OPS=$(grep -o 'ops http listening on 127.0.0.1:[0-9]*' "$TMP/stellad.log" | tail -1 | cut -d: -f2)
}
T="tln-e2e-$$-$RANDOM"
ev() { printf '{"event_id":"%s","tenant":"%s","type":"e2e.nats","occurred_at":"2026-08-01T00:00:0%sZ"}' "$1" "$T" "$2"; }
stored() { "$BIN/stella" timeline query --tenant "$T" --type e2e.nats --json | jq '.items | length'; }
wait_stored() {
  for _ in $(seq 150); do [ "$(stored)" = "$1" ] && return 0; sleep 0.1; done
  fail "expected $1 stored events, have $(stored)"
}
settled() { # nothing undelivered, nothing un-acked on the server
  for _ in $(seq 100); do
    api "CONSUMER.INFO.$STREAM.timeline" >"$TMP/ci"
    [ "$(jq '.num_pending + .num_ack_pending' "$TMP/ci")" = 0 ] && return 0
    sleep 0.1
  done
  fail "consumer not settled: $(cat "$TMP/ci")"
}
metric() { curl -fsS "http://127.0.0.1:$OPS/metrics" | grep -F "$1 " | awk '{print $2}'; }

start
echo "== publish: e-1 twice, a malformed event, e-2"
pub "$(ev e-1 1)" "Stella-Tenant=$T"
pub "$(ev e-1 1)"
pub '{"event_id": not json'
pub "$(ev e-2 2)"
wait_stored 2
settled
curl -fsS "http://127.0.0.1:$OPS/metrics" >"$TMP/metrics"
promtool check metrics <"$TMP/metrics" || fail "promtool"
[ "$(metric 'stella_timeline_ingested_total{type="nats",outcome="stored"}')" = 2 ] || fail "stored metric"
[ "$(metric 'stella_timeline_ingested_total{type="nats",outcome="duplicate"}')" = 1 ] || fail "duplicate metric"
[ "$(metric 'stella_timeline_dead_lettered_total{type="nats"}')" = 1 ] || fail "dead-letter metric"
grep -q '"timeline nats: message not stored".*"outcome":"poison"' "$TMP/stellad.log" || fail "poison not logged"
echo "ok: stored once, duplicate dropped, poison dead-lettered, ingest went on"

echo "== kill -9, publish e-3 while down, restart: the durable resumes"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
pub "$(ev e-3 3)"
start
wait_stored 3
settled
[ "$(metric 'stella_timeline_ingested_total{type="nats",outcome="stored"}')" = 1 ] || fail "restart stored"
[ "$(metric 'stella_timeline_ingested_total{type="nats",outcome="duplicate"}')" = 0 ] ||
  fail "acknowledged events came back after the restart"
[ "$(metric 'stella_timeline_lag_events{type="nats"}')" = 0 ] || fail "lag metric"
"$BIN/stella" timeline query --tenant "$T" --type e2e.nats --json |
  jq -e '[.items[].event_id] == ["e-1","e-2","e-3"] and all(.items[]; .source == "nats:'"$STREAM"'")' >/dev/null ||
  fail "events or their source"
echo "timeline_nats_service: ok"
