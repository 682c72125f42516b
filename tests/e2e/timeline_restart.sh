#!/usr/bin/env bash
# timeline_restart.sh: `stella timeline ingest --once` across Postgres outages: nothing lost,
# nothing doubled, un-acked entries redelivered.
#  A private Postgres cluster (initdb with the binaries ops/services.sh uses, on a free port,
#  so stopping it cannot disturb other tests) and the shared Redis with a stream of its own.
#  300 entries: 285 distinct events, 10 republished duplicates, 5 poison.
#  1. one batch of 100 is stored and acked;
#  2. Postgres stopped: the next batch is read (delivered to the consumer) but not stored:
#     exit 1, 100 entries pending; Postgres started: the next run re-reads those pending ones;
#  3. Postgres restarted while ingest runs in a loop; the loop then drains the stream;
#  4. exactly 285 rows, 285 distinct ids, 5 dead-lettered entries, nothing pending.
set -euo pipefail

if [ -z "${STELLA_REDIS_URL:-}" ]; then
  if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    echo "STELLA_REDIS_URL not set" >&2; exit 1; fi
  echo "skipping: STELLA_REDIS_URL not set (run through ops/test.sh)" >&2; exit 77
fi
STELLA="${STELLA_BIN_DIR:?}/bin/stella"
SRC="${STELLA_SOURCE_DIR:?}"
PGBIN=/usr/lib/postgresql/15/bin
tmp=$(mktemp -d /tmp/stella-tl-e2e.XXXXXX)
chmod 755 "$tmp"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGOPTS="" # set once the port is chosen; every start and restart passes it
pgctl() { as_pg "$PGBIN/pg_ctl" -D "$tmp/pg" -l "$tmp/run/pg.log" -w -t 60 -o "$PGOPTS" "$@" >/dev/null; }
STREAM="test:tl-e2e:$$"
rcli() { redis-cli -u "$STELLA_REDIS_URL" "$@"; }
cleanup() {
  pgctl -m immediate stop 2>/dev/null || true
  rcli DEL "$STREAM" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -5 "$tmp/run/pg.log" >&2 || true; exit 1; }

port=$(( 30000 + RANDOM % 20000 ))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
mkdir -p "$tmp/pg" "$tmp/run"
[ "$(id -u)" -eq 0 ] && chown postgres "$tmp/pg" "$tmp/run"
as_pg "$PGBIN/initdb" -D "$tmp/pg" -U postgres -A trust -E UTF8 --no-locale >/dev/null
PGOPTS="-p $port -k $tmp/run -c listen_addresses=127.0.0.1 -c fsync=off"
pgctl start
as_pg psql -h "$tmp/run" -p "$port" -U postgres -qc "create database stella" postgres
export STELLA_PG_ADMIN_URL="postgresql://postgres@127.0.0.1:$port/stella"
export STELLA_PG_URL="postgresql://stella_app@127.0.0.1:$port/stella?connect_timeout=3"
"$STELLA" migrate >/dev/null
TENANT="e2e-$$"

# 300 entries: ids 0..284 once, 0..9 republished, 5 poison (bad JSON, no tenant).
{
  for i in $(seq 0 284); do
    printf 'XADD %s * event "{\\"event_id\\":\\"ev-%d\\",\\"tenant\\":\\"%s\\",\\"type\\":\\"e2e.test\\",\\"occurred_at\\":\\"2026-06-01T00:00:00Z\\"}"\n' "$STREAM" "$i" "$TENANT"
    if [ "$i" -lt 10 ]; then
      printf 'XADD %s * event "{\\"event_id\\":\\"ev-%d\\",\\"tenant\\":\\"%s\\",\\"type\\":\\"e2e.test\\",\\"occurred_at\\":\\"2026-06-01T00:00:00Z\\"}"\n' "$STREAM" "$i" "$TENANT"
    fi
    if [ $((i % 60)) -eq 30 ]; then
      printf 'XADD %s * event "{\\"event_id\\":\\"bad-%d\\",\\"type\\":\\"e2e.test\\"}"\n' "$STREAM" "$i"
    fi
  done
} | rcli >/dev/null
[ "$(rcli XLEN "$STREAM")" = 300 ] || fail "expected 300 entries, got $(rcli XLEN "$STREAM")"
ingest() { "$STELLA" timeline ingest --once --stream "$STREAM" --count "$1"; }
pending() { rcli XPENDING "$STREAM" timeline | head -1; }
rows() { psql "$STELLA_PG_ADMIN_URL" -Atc "select count(*), count(distinct event_id) from timeline_events where tenant_id = '$TENANT'"; }

# 1.
out=$(ingest 100) || fail "first batch failed: $out"
echo "$out" | grep -q '"read":100' || fail "first batch: $out"

# 2.
pgctl -m fast stop
if ingest 100 >"$tmp/down.txt" 2>&1; then fail "ingest succeeded with Postgres down"; fi
[ "$(pending)" = 100 ] || fail "expected 100 pending entries, got $(pending)"
pgctl start
out=$(ingest 100) || fail "re-read after restart failed: $out"
echo "$out" | grep -q '"read":100' || fail "pending entries not redelivered: $out"
[ "$(pending)" = 0 ] || fail "entries still pending after the re-read"

# 3.
( for _ in $(seq 30); do ingest 10 >/dev/null 2>&1 || true; done ) &
loop=$!
pgctl -m fast restart
wait "$loop"
for _ in $(seq 30); do
  out=$(ingest 100 2>/dev/null) || continue
  echo "$out" | grep -q '"read":0' && [ "$(pending)" = 0 ] && break
done

# 4.
[ "$(rows)" = "285|285" ] || fail "rows (count|distinct): $(rows), want 285|285"
[ "$(pending)" = 0 ] || fail "$(pending) entries left pending"
dlq=$(rcli XRANGE stella:dlq - + | grep -cx "$STREAM" || true)
[ "$dlq" = 5 ] || fail "dead-lettered $dlq entries, want 5"
echo "timeline restart: 285 stored once, 10 duplicates dropped, 5 dead-lettered, 0 pending"
