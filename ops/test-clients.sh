#!/usr/bin/env bash
# ops/test-clients.sh: outside clients the e2e tests and benchmarks drive (npm packages
# nobody here wrote), installed into tests/e2e/node_modules from the lock file.
# Many e2e tests call this at once: one installs under a lock while the others wait, and
# npm's own record of a finished install (node_modules/.package-lock.json), not the
# directory, says whether the install is current (an interrupted `npm ci` leaves the
# directory behind).
set -euo pipefail
cd "$(dirname "$0")/../tests/e2e"
[ -f package.json ] || exit 0
current() { [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; }
current && exit 0
exec 9<package.json
flock 9
current || npm ci --no-audit --no-fund --loglevel=error
