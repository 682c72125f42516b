#!/usr/bin/env bash
# ops/test.sh: the whole test suite, from a fresh Debian 12 machine.
# Installs missing packages, builds with -Werror and ASan+UBSan (build-ci/), builds the
# libFuzzer targets with clang (build-fuzz/), starts private Postgres and Redis, runs
# every test through CTest, stops the services, and exits non-zero on any failure.
# Extra arguments go to ctest (e.g. ops/test.sh -L unit, ops/test.sh -R bundle).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=$(nproc)

bash ops/deps.sh
bash ops/test-clients.sh

cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=Debug -DSTELLA_WERROR=ON -DSTELLA_SANITIZE=ON >/dev/null
cmake --build build-ci -j "$JOBS"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSTELLA_FUZZ=ON \
  -DSTELLA_SANITIZE=ON -DSTELLA_TESTS=ON >/dev/null
cmake --build build-fuzz -j "$JOBS"

# Tests start from empty private services: a database left by ops/demo.sh may hold
# migrations applied before newer files landed.
bash ops/services.sh down
trap 'bash ops/services.sh down' EXIT
bash ops/services.sh up
eval "$(bash ops/services.sh env)"
export STELLA_TEST_REQUIRE_SERVICES=1 PATH="$ROOT/build-ci/bin:$PATH"

# Fuzz smoke runs first so the suite's own ctest summary is the closing report.
rc=0
(cd build-fuzz && ctest --output-on-failure -L fuzz "$@") || rc=$?
(cd build-ci && ctest --output-on-failure -j "$JOBS" "$@") || rc=$?
exit $rc
