#!/usr/bin/env bash
# bench_queue.sh: end-to-end job throughput and submit-to-start latency at half load,
# stellad (probe jobs; state and outbox committed in Postgres; outbox relay running)
# against BullMQ (no-op jobs, Node 20) on the same Redis with the same concurrency, in one
# run (tests/bench/bench_queue.mjs does the measuring).
#
#   tests/bench/bench_queue.sh [build-dir]    (default: build-rel; use a build without
#                                             sanitizers: cmake -B build-rel
#                                             -DCMAKE_BUILD_TYPE=Release)
# Env: N (jobs, 5000), CONC (worker threads = BullMQ concurrency, 4), LAT_SECONDS (6),
# BENCH_REDIS_DB (13; flushed). Uses the private services (ops/services.sh up) and the npm
# clients (ops/test-clients.sh); applies the migrations first.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-rel}
[ -x "$BUILD/bin/stellad" ] || { echo "bench_queue.sh: $BUILD/bin/stellad not built" >&2; exit 2; }
eval "$("$ROOT/ops/services.sh" env)"
bash "$ROOT/ops/test-clients.sh"
STELLA_SOURCE_DIR=$ROOT "$BUILD/bin/stella" migrate >/dev/null
REDIS_URL="$STELLA_REDIS_URL/${BENCH_REDIS_DB:-13}" PG_URL=$STELLA_PG_URL \
  PG_ADMIN_URL=$STELLA_PG_ADMIN_URL STELLAD=$BUILD/bin/stellad \
  node "$ROOT/tests/bench/bench_queue.mjs"
