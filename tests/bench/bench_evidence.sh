#!/usr/bin/env bash
# bench_evidence.sh: the Evidence Locker's service overhead around the sealing library,
# against `stella bundle seal` of the same inputs in the same run (Ed25519, no TSA):
#   small: N snapshots of 10 artifacts of 10 KiB each through the API (stellad api+worker,
#          2 worker threads; artifacts uploaded first, then N POST /evidence/snapshot from
#          4 concurrent clients, timed until the last row is sealed), against N `stella
#          bundle seal` runs of the same 10 files, 2 at a time (as many as the workers);
#   large: one artifact of MIB MiB: PUT /evidence/artifacts + snapshot until sealed,
#          against `stella bundle seal` of the same file.
#   eval "$(ops/services.sh env)"; tests/bench/bench_evidence.sh [build-dir] [N] [MIB]
set -euo pipefail
BUILD=${1:-build-bench}
N=${2:-200}
MIB=${3:-1024}
BIN=$(cd "$BUILD/bin" 2>/dev/null && pwd) || true
if [ ! -x "${BIN:-}/stellad" ]; then
  echo "build first: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release &&" \
    "cmake --build $BUILD --target stella stellad" >&2
  exit 2
fi
: "${STELLA_PG_URL:?eval \"\$(ops/services.sh env)\" first}"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/st_bench_evidence.XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
TEN=bench$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n') # fresh per run
ADMIN=$STELLA_PG_ADMIN_URL
sql() { psql -qtAX -v ON_ERROR_STOP=1 "$ADMIN" -c "$1"; }
now() { date +%s.%N; }
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/stella" key generate --type ed25519 -o k.pem >/dev/null
cat >stella.conf <<CONF
api_listen = 127.0.0.1:$PORT
ops_listen = 127.0.0.1:0
jwt_hs256_secret = bench-evidence-secret-bench-evidence
pg_url = $STELLA_PG_URL
redis_url = $STELLA_REDIS_URL/7
signing_key = $T/k.pem
data_dir = $T/data
api_tmp_dir = $T
api_rate_per_s = 0
max_body_bytes = 2147483648
worker_threads = 2
log_level = warn
CONF
export STELLA_CONFIG=$T/stella.conf STELLA_SOURCE_DIR=$SRC
"$BIN/stella" migrate --dir "$SRC/schemas/postgres" >/dev/null
redis-cli -u "$STELLA_REDIS_URL/7" FLUSHDB >/dev/null
"$BIN/stellad" --roles api,worker 2>stellad.log &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || { tail -5 stellad.log >&2; exit 1; }
TOK=$("$BIN/stella" token mint --alg HS256 --tenant "$TEN" --scope "evidence:read evidence:write" --ttl 60m --sub bench)
export TOK URL

mkdir small
for i in $(seq 10); do head -c 10240 /dev/urandom >"small/a$i.bin"; done
inputs=$(for i in $(seq 10); do
  sha=$(curl -sf -H "Authorization: Bearer $TOK" -X PUT --data-binary @"small/a$i.bin" "$URL/evidence/artifacts" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
  printf '{"path":"a%s.bin","sha256":"%s"},' "$i" "$sha"
done)
inputs="[${inputs%,}]"
for i in $(seq "$N"); do
  printf '{"bundle_id":"small-%s","kind":"evaluation","created":"2026-05-06T07:08:09Z","run":{"run_id":"r%s","actor":"bench"},"inputs":%s}\n' \
    "$i" "$i" "$inputs" >"small/p$i.json"
done
wait_sealed() { # COUNT
  while [ "$(sql "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '$TEN' AND status = 'sealed'")" -lt "$1" ]; do
    sleep 0.05
  done
}
t0=$(now)
seq "$N" | xargs -P 4 -I{} sh -c 'curl -sf -o /dev/null -H "Authorization: Bearer $TOK" \
  -H "Content-Type: application/json" --data @small/p{}.json "$URL/evidence/snapshot"'
wait_sealed "$N"
t1=$(now)
api_small=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
t0=$(now)
seq "$N" | xargs -P 2 -I{} "$BIN/stella" bundle seal --kind evidence --key k.pem --id small-{} \
  --tenant "$TEN" --created 2026-05-06T07:08:09Z -o small/s{}.tgz small/a1.bin small/a2.bin \
  small/a3.bin small/a4.bin small/a5.bin small/a6.bin small/a7.bin small/a8.bin small/a9.bin \
  small/a10.bin >/dev/null
t1=$(now)
cli_small=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

head -c $((MIB << 20)) /dev/urandom >big.bin
cat big.bin >/dev/null
t0=$(now)
sha=$(curl -sf -H "Authorization: Bearer $TOK" -T big.bin "$URL/evidence/artifacts" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sha256"])')
t1=$(now)
curl -sf -o /dev/null -H "Authorization: Bearer $TOK" -H "Content-Type: application/json" \
  --data "{\"bundle_id\":\"big\",\"kind\":\"job\",\"created\":\"2026-05-06T07:08:09Z\",\"run\":{\"run_id\":\"big\",\"actor\":\"bench\"},\"inputs\":[{\"path\":\"big.bin\",\"sha256\":\"$sha\"}]}" \
  "$URL/evidence/snapshot"
wait_sealed $((N + 1))
t2=$(now)
t3=$(now)
"$BIN/stella" bundle seal --kind evidence --key k.pem --id big --tenant "$TEN" \
  --created 2026-05-06T07:08:09Z -o big.tgz big.bin >/dev/null
t4=$(now)
awk -v n="$N" -v as="$api_small" -v cs="$cli_small" -v mib="$MIB" -v t0="$t0" -v t1="$t1" \
  -v t2="$t2" -v t3="$t3" -v t4="$t4" 'BEGIN {
  up = t1 - t0; snap = t2 - t1; api = t2 - t0; cli = t4 - t3
  printf "small: %d snapshots of 10 x 10 KiB\n", n
  printf "  API (4 clients, 2 workers)     %7.2f s  %7.1f snapshots/s\n", as, n / as
  printf "  stella bundle seal (2 at once)  %7.2f s  %7.1f bundles/s\n", cs, n / cs
  printf "  ratio API / seal                %7.2fx the time\n", as / cs
  printf "large: one artifact of %d MiB\n", mib
  printf "  API upload %.2f s + snapshot %.2f s = %.2f s  %7.1f MB/s\n", up, snap, api, mib * 1.048576 / api
  printf "  stella bundle seal              %7.2f s  %7.1f MB/s\n", cli, mib * 1.048576 / cli
  printf "  ratio API / seal                %7.2fx the time\n", api / cli
}'
