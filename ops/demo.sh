#!/usr/bin/env bash
# ops/demo.sh: the main job, from a fresh Debian 12 machine. Installs missing packages,
# builds (build/), starts the private services, and walks through what Stella does,
# printing each step. Exits 0 when every step succeeded. Services stay up afterwards
# (stop them with ops/services.sh down).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
step() { printf '\n== %s\n' "$*"; }

step "installing missing Debian packages"
bash ops/deps.sh

step "building (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
export PATH="$ROOT/build/bin:$PATH"
stella --version
stellad --version

step "starting private Postgres and Redis (var/)"
bash ops/services.sh up
eval "$(bash ops/services.sh env)"
bash ops/services.sh status

for part in ops/demo.d/*.sh; do
  [ -e "$part" ] || continue
  # shellcheck disable=SC1090
  . "$part"
done

step "demo finished"
