#!/usr/bin/env bash
# ops/deps.sh: install the Debian 12 packages Stella needs to build, test and demo.
# Idempotent: installs only what dpkg does not already have. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libuv1-dev libhiredis-dev libpq-dev libssl-dev libmsgpack-dev libarchive-dev
  libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev libcmocka-dev libsqlite3-dev zlib1g-dev
  libnats-dev nats-server libzstd-dev zstd
  postgresql-15 postgresql-client-15 redis-server
  clang libclang-rt-14-dev
  openssl python3 python3-securesystemslib python3-jsonschema softhsm2 opensc age xxd
  openssh-client libp11-kit-dev
  golang-go golang-github-coreos-bbolt-dev
  nodejs npm wrk nginx-light hyperfine procps iproute2 time
  prometheus
  docker-registry apache2-utils skopeo umoci
  rsync
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian's packages (a preinstalled Node): accept it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  echo "ops/deps.sh: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
