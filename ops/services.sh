#!/usr/bin/env bash
# ops/services.sh up|down|env|status: private Postgres 15, Redis 7, NATS with JetStream (when
# nats-server is installed), a test RFC 3161 TSA (stella-test-tsa) and an OCI registry (Debian docker-registry) for development, tests and the demo. Everything lives under var/ of this checkout (data, sockets, logs,
# chosen ports); nothing touches a system-wide instance or a standard port.
#   up      start what is not running (idempotent), create the database
#   down    stop everything and delete var/pg, var/redis
#   env     print `export STELLA_...=` lines for the binaries and tests (with a dev HS256 JWT
#           secret made once in var/jwt.secret, mode 0600, kept by `down`)
#   status  say what runs where
# The TSA is a binary of this checkout (build/bin or build-ci/bin): when neither is built yet,
# `up` says so and skips it (ops/test.sh builds first, then runs `up`). Its test CA and
# signing certificate are made once under var/tsa/ and kept by `down`.
# The registry (distribution 2.8) listens on loopback over plain http (no TLS: loopback only,
# and clients then need no CA), with htpasswd (bcrypt) auth for user `stella` and a random
# password made once in var/registry/; `down` stops it and deletes its storage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VAR="$ROOT/var"
PGBIN=/usr/lib/postgresql/15/bin
PGDATA="$VAR/pg"
PGRUN="$VAR/run"
REDISDIR="$VAR/redis"
PORTS="$VAR/ports.env"
TSADIR="$VAR/tsa"
REGDIR="$VAR/registry"
PGUSER_OS=postgres # initdb refuses root; the cluster runs as the Debian postgres user

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() { # a free port in 20000-59999, different per checkout and per service
  local p=$(( ( $(cksum <<<"$ROOT$1" | cut -d' ' -f1) % 40000 ) + 20000 ))
  while ! port_free "$p"; do p=$(( p + 1 )); done
  echo "$p"
}

load_ports() {
  mkdir -p "$VAR"
  if [ ! -f "$PORTS" ]; then
    { echo "PG_PORT=$(pick_port pg)"; echo "REDIS_PORT=$(pick_port redis)"; } >"$PORTS"
  fi
  # shellcheck disable=SC1090
  . "$PORTS"
  if [ -z "${TSA_PORT:-}" ]; then TSA_PORT=$(pick_port tsa); echo "TSA_PORT=$TSA_PORT" >>"$PORTS"; fi
  if [ -z "${REG_PORT:-}" ]; then REG_PORT=$(pick_port registry); echo "REG_PORT=$REG_PORT" >>"$PORTS"; fi
  if [ -z "${NATS_PORT:-}" ]; then NATS_PORT=$(pick_port nats); echo "NATS_PORT=$NATS_PORT" >>"$PORTS"; fi
}

nats_running() { [ -f "$VAR/nats.pid" ] && kill -0 "$(cat "$VAR/nats.pid")" 2>/dev/null; }

nats_up() { # JetStream on, store under var/nats; skipped when the package is missing
  nats_running && return 0
  command -v nats-server >/dev/null || { echo "services: nats-server not installed; NATS skipped" >&2; return 0; }
  port_free "$NATS_PORT" || { echo "services: port $NATS_PORT taken; delete $PORTS" >&2; exit 1; }
  mkdir -p "$VAR/nats"
  nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$VAR/nats" >>"$VAR/nats.log" 2>&1 </dev/null &
  echo $! >"$VAR/nats.pid"
  for _ in $(seq 50); do port_free "$NATS_PORT" || return 0; sleep 0.1; done
  echo "services: nats-server did not start, see $VAR/nats.log" >&2; exit 1
}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi; }

pg_running() { [ -f "$PGDATA/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

pg_up() {
  mkdir -p "$PGRUN"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$PGUSER_OS" "$PGRUN"
    # the postgres user must be able to reach var/ through the checkout's parents
    d="$VAR"; while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"; [ "$(id -u)" -eq 0 ] && chown "$PGUSER_OS" "$PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  fi
  if ! pg_running; then
    if port_free "$PG_PORT"; then :; else
      echo "services: port $PG_PORT taken; delete $PORTS to pick another" >&2; exit 1; fi
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGRUN/pg.log" -w -t 60 \
      -o "-p $PG_PORT -k $PGRUN -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  fi
  if ! as_pg psql -h "$PGRUN" -p "$PG_PORT" -U postgres -Atc "select 1 from pg_database where datname='stella'" postgres | grep -q 1; then
    as_pg psql -h "$PGRUN" -p "$PG_PORT" -U postgres -qc "create database stella" postgres
  fi
}

redis_running() { [ -f "$VAR/redis.pid" ] && kill -0 "$(cat "$VAR/redis.pid")" 2>/dev/null; }

redis_up() {
  mkdir -p "$REDISDIR"
  redis_running && return 0
  port_free "$REDIS_PORT" || { echo "services: port $REDIS_PORT taken; delete $PORTS" >&2; exit 1; }
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDISDIR" --appendonly yes \
    --appendfsync everysec --save "" --daemonize yes --pidfile "$VAR/redis.pid" \
    --logfile "$VAR/redis.log" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "services: redis did not start, see $VAR/redis.log" >&2; exit 1
}

tsa_bin() {
  local d
  for d in build build-ci; do
    [ -x "$ROOT/$d/bin/stella-test-tsa" ] && { echo "$ROOT/$d/bin/stella-test-tsa"; return 0; }
  done
  return 1
}

tsa_running() { [ -f "$VAR/tsa.pid" ] && kill -0 "$(cat "$VAR/tsa.pid")" 2>/dev/null; }

tsa_up() {
  local bin
  tsa_running && return 0
  if ! bin=$(tsa_bin); then
    echo "services: no stella-test-tsa in build/bin or build-ci/bin yet; TSA skipped (build first)" >&2
    return 0
  fi
  port_free "$TSA_PORT" || { echo "services: port $TSA_PORT taken; delete $PORTS" >&2; exit 1; }
  bash "$ROOT/ops/tsa/gen-test-pki.sh" "$TSADIR" >/dev/null
  "$bin" --port "$TSA_PORT" --cert "$TSADIR/tsa.pem" --key "$TSADIR/tsa.key" \
    --chain "$TSADIR/ca.pem" >>"$VAR/tsa.log" 2>&1 </dev/null &
  echo $! >"$VAR/tsa.pid"
  for _ in $(seq 50); do port_free "$TSA_PORT" || return 0; sleep 0.1; done
  echo "services: stella-test-tsa did not start, see $VAR/tsa.log" >&2; exit 1
}

reg_running() { [ -f "$VAR/registry.pid" ] && kill -0 "$(cat "$VAR/registry.pid")" 2>/dev/null; }

reg_up() {
  reg_running && return 0
  if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
    echo "services: docker-registry or htpasswd missing (ops/deps.sh); registry skipped" >&2
    return 0
  fi
  port_free "$REG_PORT" || { echo "services: port $REG_PORT taken; delete $PORTS" >&2; exit 1; }
  mkdir -p "$REGDIR/data"
  if [ ! -f "$REGDIR/pass" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$REGDIR/pass")
    htpasswd -Bbc "$REGDIR/htpasswd" stella "$(cat "$REGDIR/pass")" 2>/dev/null
  fi
  cat >"$REGDIR/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REGDIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REG_PORT
  secret: $(cat "$REGDIR/pass")-upload-state
auth:
  htpasswd:
    realm: stella-registry
    path: $REGDIR/htpasswd
YML
  docker-registry serve "$REGDIR/config.yml" >>"$VAR/registry.log" 2>&1 </dev/null &
  echo $! >"$VAR/registry.pid"
  for _ in $(seq 50); do port_free "$REG_PORT" || return 0; sleep 0.1; done
  echo "services: docker-registry did not start, see $VAR/registry.log" >&2; exit 1
}

down() {
  if reg_running; then
    kill "$(cat "$VAR/registry.pid")" 2>/dev/null || true
    for _ in $(seq 50); do reg_running || break; sleep 0.1; done
  fi
  rm -rf "$VAR/registry.pid" "$REGDIR/data"

  if tsa_running; then
    kill "$(cat "$VAR/tsa.pid")" 2>/dev/null || true
    for _ in $(seq 50); do tsa_running || break; sleep 0.1; done
  fi
  rm -f "$VAR/tsa.pid"
  if nats_running; then
    kill "$(cat "$VAR/nats.pid")" 2>/dev/null || true
    for _ in $(seq 50); do nats_running || break; sleep 0.1; done
  fi
  rm -rf "$VAR/nats.pid" "$VAR/nats"

  if [ -f "$PGDATA/PG_VERSION" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if redis_running; then
    kill "$(cat "$VAR/redis.pid")" 2>/dev/null || true
    for _ in $(seq 50); do redis_running || break; sleep 0.1; done
  fi
  rm -rf "$PGDATA" "$REDISDIR" "$PGRUN" "$VAR/redis.pid" "$PORTS"
}

jwt_secret() {
  [ -s "$VAR/jwt.secret" ] || (umask 077; openssl rand -hex 32 >"$VAR/jwt.secret")
  cat "$VAR/jwt.secret"
}

print_env() {
  cat <<ENV
export STELLA_PG_URL='postgresql://stella_app@127.0.0.1:$PG_PORT/stella'
export STELLA_PG_MAINT_URL='postgresql://stella_maint@127.0.0.1:$PG_PORT/stella'
export STELLA_PG_ADMIN_URL='postgresql://postgres@127.0.0.1:$PG_PORT/stella'
export STELLA_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
export STELLA_DATA_DIR='$VAR/data'
export STELLA_JWT_HS256_SECRET='$(jwt_secret)'
ENV
  if nats_running; then echo "export STELLA_NATS_URL='nats://127.0.0.1:$NATS_PORT'"; fi
  if tsa_running; then
    echo "export STELLA_TSA_URL='http://127.0.0.1:$TSA_PORT/'"
    echo "export STELLA_TSA_CA='$TSADIR/ca.pem'"
  fi
  if reg_running; then
    echo "export STELLA_REGISTRY_URL='http://127.0.0.1:$REG_PORT'"
    echo "export STELLA_REGISTRY_USER='stella'"
    echo "export STELLA_REGISTRY_PASS='$(cat "$REGDIR/pass")'"
  fi
}

cmd=${1:-}
case "$cmd" in
  up) load_ports; pg_up; redis_up; nats_up; tsa_up; reg_up
    echo "services: postgres :$PG_PORT, redis :$REDIS_PORT$(nats_running && echo ", nats :$NATS_PORT")$(tsa_running && echo ", tsa :$TSA_PORT")$(reg_running && echo ", registry :$REG_PORT") (var/)" >&2 ;;
  down) [ -f "$PORTS" ] && load_ports; down; echo "services: stopped" >&2 ;;
  env) load_ports; print_env ;;
  status) load_ports
    pg_running && echo "postgres: running on 127.0.0.1:$PG_PORT" || echo "postgres: stopped"
    redis_running && echo "redis: running on 127.0.0.1:$REDIS_PORT" || echo "redis: stopped"
    nats_running && echo "nats: running on 127.0.0.1:$NATS_PORT" || echo "nats: stopped"
    tsa_running && echo "tsa: running on 127.0.0.1:$TSA_PORT" || echo "tsa: stopped"
    reg_running && echo "registry: running on 127.0.0.1:$REG_PORT" || echo "registry: stopped" ;;
  *) echo "usage: ops/services.sh up|down|env|status" >&2; exit 2 ;;
esac
