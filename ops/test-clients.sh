#!/usr/bin/env bash
# ops/test-clients.sh: outside clients the e2e tests and benchmarks drive (npm packages
# nobody here wrote), installed into tests/e2e/node_modules from the lock file.
set -euo pipefail
cd "$(dirname "$0")/../tests/e2e"
[ -f package.json ] || exit 0
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
