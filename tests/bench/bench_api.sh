#!/usr/bin/env bash
# bench_api.sh: HTTP front throughput and tail latency with wrk on loopback, against a
# private nginx (Debian nginx-light) serving static files of the same sizes in the same
# run. Two cases:
#   304: GET /.well-known/openapi with If-None-Match (nginx: the same-size file with its
#        own ETag, also 304)
#   auth: GET /whoami with an HS256 bearer token, verified on every request (nginx: a
#        static file the size of the /whoami reply, 200)
# stellad and nginx each get 2 worker threads/processes; wrk runs 2 threads, 32
# connections, DURATION seconds per case (default 10). Needs a Release build:
# STELLA_BENCH_BUILD (default build-bench/, configured and built here when missing).
# Prints req/s and p99 for each and the ratios stella/nginx.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${STELLA_BENCH_BUILD:-$ROOT/build-bench}
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
if [ ! -x "$BUILD/bin/stellad" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSTELLA_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j2 --target stellad stella >/dev/null
fi
TMP=$(mktemp -d)
chmod 755 "$TMP"
SPID= NPID=
cleanup() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
  [ -n "$NPID" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SP=$(free_port)
NP=$(free_port)
SECRET=bench-secret-bench-secret-bench-secret
cat >"$TMP/stella.conf" <<CONF
api_listen = 127.0.0.1:$SP
api_threads = 2
jwt_hs256_secret = $SECRET
api_rate_per_s = 0
log_level = warn
CONF
STELLA_CONFIG=$TMP/stella.conf STELLA_SOURCE_DIR=$ROOT "$BUILD/bin/stellad" --roles api \
  2>"$TMP/stellad.log" &
SPID=$!
TOKEN=$(STELLA_CONFIG=$TMP/stella.conf "$BUILD/bin/stella" token mint --tenant bench \
  --scope "evidence:read" --ttl 1h --sub bench)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$SP/healthz" >/dev/null && break; sleep 0.1; done

# static files of the same sizes as the two stella replies
mkdir -p "$TMP/www"
cp "$ROOT/schemas/openapi/stella.yaml" "$TMP/www/openapi.yaml"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SP/whoami" >"$TMP/www/whoami.json"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/cb;
  proxy_temp_path $TMP/px;
  fastcgi_temp_path $TMP/fc;
  uwsgi_temp_path $TMP/uw;
  scgi_temp_path $TMP/sc;
  default_type application/octet-stream;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NP;
    root $TMP/www;
  }
}
CONF
nginx -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' &
NPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NP/whoami.json" >/dev/null && break; sleep 0.1; done

S_ETAG=$(curl -sf -D - -o /dev/null "http://127.0.0.1:$SP/.well-known/openapi" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
N_ETAG=$(curl -sf -D - -o /dev/null "http://127.0.0.1:$NP/openapi.yaml" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
for u in "http://127.0.0.1:$SP/.well-known/openapi|$S_ETAG" "http://127.0.0.1:$NP/openapi.yaml|$N_ETAG"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: ${u#*|}" "${u%%|*}")
  [ "$code" = 304 ] || { echo "expected 304 from ${u%%|*}, got $code" >&2; exit 1; }
done

# run URL HEADER -> "req/s p99_ms"
run() {
  local out rps p99
  out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "$2" "$1")
  if echo "$out" | grep -q 'Non-2xx or 3xx'; then echo "errors from $1" >&2; echo "$out" >&2; exit 1; fi
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}')
  echo "$rps $p99"
}

read -r s304 s304p <<<"$(run "http://127.0.0.1:$SP/.well-known/openapi" "If-None-Match: $S_ETAG")"
read -r n304 n304p <<<"$(run "http://127.0.0.1:$NP/openapi.yaml" "If-None-Match: $N_ETAG")"
read -r sauth sauthp <<<"$(run "http://127.0.0.1:$SP/whoami" "Authorization: Bearer $TOKEN")"
read -r nauth nauthp <<<"$(run "http://127.0.0.1:$NP/whoami.json" "Authorization: Bearer $TOKEN")"

printf '%-34s %12s %10s\n' case "req/s" "p99 ms"
printf '%-34s %12.0f %10.2f\n' "stella /.well-known/openapi 304" "$s304" "$s304p"
printf '%-34s %12.0f %10.2f\n' "nginx static file 304" "$n304" "$n304p"
printf '%-34s %12.0f %10.2f\n' "stella GET /whoami (JWT HS256)" "$sauth" "$sauthp"
printf '%-34s %12.0f %10.2f\n' "nginx static file 200 (same size)" "$nauth" "$nauthp"
awk -v a="$s304" -v b="$n304" -v c="$s304p" -v d="$n304p" \
  'BEGIN {printf "ratio 304:  throughput stella/nginx %.2f, p99 stella/nginx %.2f\n", a/b, c/d}'
awk -v a="$sauth" -v b="$nauth" -v c="$sauthp" -v d="$nauthp" \
  'BEGIN {printf "ratio auth: throughput stella/nginx %.2f, p99 stella/nginx %.2f\n", a/b, c/d}'
