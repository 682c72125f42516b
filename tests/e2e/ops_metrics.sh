#!/usr/bin/env bash
# ops_metrics.sh: stellad's ops listener checked with outside tools: curl for /healthz
# and /readyz, Prometheus' own promtool for the /metrics exposition format, after real
# probe jobs ran (so counters and histograms have series).
set -euo pipefail
command -v promtool >/dev/null || { echo "skipping: promtool not installed"; exit 77; }
command -v curl >/dev/null || { echo "skipping: curl not installed"; exit 77; }
[ -n "${STELLA_REDIS_URL:-}" ] || { echo "skipping: STELLA_REDIS_URL not set"; exit 77; }
BIN="$STELLA_BIN_DIR/bin"
export STELLA_REDIS_URL="$STELLA_REDIS_URL/10" STELLA_OPS_LISTEN=127.0.0.1:0 \
  STELLA_JOB_BACKOFF_BASE_MS=20
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
redis-cli -u "$STELLA_REDIS_URL" FLUSHDB >/dev/null
# The Postgres sink needs the schema; never rely on another test having migrated first.
"$BIN/stella" migrate --dir "$STELLA_SOURCE_DIR/schemas/postgres" >/dev/null

"$BIN/stellad" --roles worker 2>"$work/log" &
pid=$!
for _ in $(seq 100); do grep -q "claim connection up" "$work/log" && break; sleep 0.1; done
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/log" | cut -d: -f2)
"$BIN/stella" job submit --type probe --tenant acme --payload '{"sleep_ms":10}' >/dev/null
"$BIN/stella" job submit --type probe --tenant acme --payload '{"fail":"transient","fail_times":1}' >/dev/null
"$BIN/stella" job submit --type probe --tenant acme --payload '{"fail":"permanent"}' >/dev/null
for _ in $(seq 200); do
  [ "$(grep -c '"state":"succeeded"\|"state":"dead_lettered"' "$work/log")" -ge 3 ] && break
  sleep 0.1
done

[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")" = 404 ]
curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics"
promtool check metrics <"$work/metrics"
grep -q '^stella_jobs_succeeded_total{type="probe"} 2$' "$work/metrics"
grep -q '^stella_jobs_retried_total{type="probe"} 1$' "$work/metrics"
grep -q '^stella_jobs_dead_lettered_total{type="probe",outcome="permanent"} 1$' "$work/metrics"
grep -q '^stella_job_duration_seconds_count{type="probe",outcome="succeeded"} 2$' "$work/metrics"
# The timeline ingesters' series (stellad runs them with pg_url; NATS with nats_url).
if [ -n "${STELLA_PG_URL:-}" ]; then
  for m in 'stella_timeline_ingested_total{type="redis",outcome="stored"}' \
           'stella_timeline_batches_total{type="redis"}' \
           'stella_timeline_batch_size_events{type="redis"}' \
           'stella_timeline_dead_lettered_total{type="redis"}' \
           'stella_timeline_claimed_total{type="redis"}' \
           'stella_timeline_lag_events{type="redis"}' \
           'stella_timeline_pending_events{type="redis"}'; do
    grep -qF "$m " "$work/metrics" || { echo "missing $m" >&2; exit 1; }
  done
  if [ -n "${STELLA_NATS_URL:-}" ]; then
    grep -qF 'stella_timeline_lag_events{type="nats"} ' "$work/metrics" ||
      { echo "missing the NATS ingester's lag" >&2; exit 1; }
  fi
fi
if grep -q tenant "$work/metrics"; then echo "tenant label in metrics" >&2; exit 1; fi

kill -TERM "$pid"
wait "$pid"
pid=
echo "ops_metrics: ok"
