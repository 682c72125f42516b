#!/usr/bin/env bash
# bench_timeline.sh: timeline ingest throughput against a raw COPY baseline, and query
# latency on a large table. Needs the private services (ops/services.sh up).
#   N=200000 QN=2000000 ITER=300 tests/bench/bench_timeline.sh
# 1. N events (JSON envelopes) XADDed to a fresh Redis stream; bench_timeline ingest reads,
#    decodes, stores (dedupe, details, evidence) and acks them in batches of 1000.
# 2. Same run, same rows: `\copy` into an unindexed table (baseline), and the staging
#    alternative: `\copy` into a temp table + INSERT .. SELECT .. ON CONFLICT DO NOTHING
#    into a table with the timeline_events indexes.
# 3. QN synthetic events for one tenant (INSERT .. SELECT generate_series as admin), then
#    ITER queries per typical filter through st_tl_query: p50/p99.
# Built without sanitizers in build-bench/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
N=${N:-200000}
QN=${QN:-2000000}
ITER=${ITER:-300}
BATCH=${BATCH:-1000}

eval "$(bash ops/services.sh env)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j2 --target bench_timeline stella >/dev/null
STELLA_SOURCE_DIR=$ROOT build-bench/bin/stella migrate >/dev/null 2>&1
BIN=build-bench/bin/bench_timeline
admin() { psql "$STELLA_PG_ADMIN_URL" -qAt "$@"; }
rcli() { redis-cli -u "$STELLA_REDIS_URL" "$@"; }
T="bench-$$"
QT="benchq-$$"
STREAM="bench:tl:$$"
tmp=$(mktemp -d)
chmod 755 "$tmp"
cleanup() {
  rcli DEL "$STREAM" >/dev/null || true
  admin -c "DELETE FROM timeline_events WHERE tenant_id IN ('$T', '$QT')" \
        -c "DROP TABLE IF EXISTS bench_tl_copy, bench_tl_stage" >/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ms() { date +%s%N | cut -c1-13; }

echo "== generating $N events into $STREAM"
# One RESP command per event: XADD stream * event <json>.
awk -v n="$N" -v t="$T" -v s="$STREAM" 'BEGIN {
  for (i = 0; i < n; i++) {
    ev = sprintf("{\"event_id\":\"ev-%d\",\"tenant\":\"%s\",\"type\":\"type-%d\",\"occurred_at\":\"2026-01-%02dT%02d:%02d:%02dZ\",\"subject\":\"subject-%d\",\"actor\":\"actor-%d\",\"trace_id\":\"trace-%d\",\"payload\":{\"n\":%d}%s}",
      i, t, i % 10, i % 28 + 1, i % 24, i % 60, i % 60, i % 10000, i % 100, i / 10, i,
      (i % 20 == 0) ? sprintf(",\"evidence\":[{\"digest\":\"sha256:%064d\",\"bundle_id\":\"b-%d\"}]", i, i) : "")
    printf "*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$5\r\nevent\r\n$%d\r\n%s\r\n", length(s), s, length(ev), ev
  }
}' | rcli --pipe >/dev/null
[ "$(rcli XLEN "$STREAM")" = "$N" ] || { echo "XADD count mismatch" >&2; exit 1; }

echo "== ingest (Redis -> decode -> Postgres with dedupe -> XACK), batch $BATCH"
out=$(STELLA_PG_URL=$STELLA_PG_URL "$BIN" ingest "$STREAM" "$BATCH")
echo "$out"
ing=$(echo "$out" | sed 's/.*events_per_s=//')

echo "== baseline: \\copy of the same rows into an unindexed table"
admin -c "\\copy (SELECT tenant_id, event_id, source, source_seq, source_seq_minor, type, occurred_at, subject, actor, trace_id, correlation_id, ingested_at FROM timeline_events WHERE tenant_id = '$T') TO '$tmp/rows.csv' CSV"
admin -c "DROP TABLE IF EXISTS bench_tl_copy, bench_tl_stage" \
      -c "CREATE TABLE bench_tl_copy AS SELECT tenant_id, event_id, source, source_seq, source_seq_minor, type, occurred_at, subject, actor, trace_id, correlation_id, ingested_at FROM timeline_events WITH NO DATA" \
      -c "CREATE TABLE bench_tl_stage (LIKE timeline_events INCLUDING ALL)"
t0=$(ms); admin -c "\\copy bench_tl_copy FROM '$tmp/rows.csv' CSV"; t1=$(ms)
copy=$(awk -v n="$N" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1000) }')
echo "copy rows=$N ms=$((t1 - t0)) rows_per_s=$copy"
t0=$(ms)
admin -c "BEGIN" -c "CREATE TEMP TABLE s (LIKE bench_tl_stage) ON COMMIT DROP" \
      -c "\\copy s FROM '$tmp/rows.csv' CSV" \
      -c "INSERT INTO bench_tl_stage SELECT * FROM s ON CONFLICT DO NOTHING" -c "COMMIT"
t1=$(ms)
stage=$(awk -v n="$N" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1000) }')
echo "stage+insert rows=$N ms=$((t1 - t0)) rows_per_s=$stage (events table only, one transaction)"
awk -v a="$ing" -v b="$copy" -v c="$stage" 'BEGIN {
  printf "RATIO ingest/copy = %.3f   stage/copy = %.3f   ingest/stage = %.3f\n", a / b, c / b, a / c }'

echo "== query latency on $QN events of one tenant"
t0=$(ms)
admin -c "INSERT INTO timeline_events (tenant_id, event_id, source, source_seq, type, occurred_at, subject, actor, trace_id, correlation_id)
  SELECT '$QT', 'q-' || i, 'redis:stella:events', i, (ARRAY['export.built','evidence.sealed','export.requested','export.failed','incident.opened','evidence.hold.placed','export.distributed','job.started','job.finished','audit.read'])[i % 10 + 1],
         timestamptz '2026-01-01' + (i::float8 / $QN) * interval '28 days', 'subject-' || (i % 10000), 'actor-' || (i % 100), 'trace-' || (i / 10 % 100000), 'corr-' || (i % 50000)
  FROM generate_series(0, $QN - 1) i" \
  -c "INSERT INTO timeline_event_digests (tenant_id, event_id, digest) SELECT '$QT', 'q-' || i, 'sha256:' || lpad(to_hex(i / 40), 64, '0') FROM generate_series(0, $QN - 1, 40) i" \
  -c "ANALYZE timeline_events" -c "ANALYZE timeline_event_digests"
t1=$(ms)
echo "loaded $QN rows in $(( (t1 - t0) / 1000 )) s"
STELLA_PG_URL=$STELLA_PG_URL "$BIN" query "$QT" "$ITER"
