#!/usr/bin/env bash
# bench_oci.sh: pushing 1 GiB in 5 blobs to ops/services.sh's registry (docker-registry,
# http + htpasswd) with `stella oci push` against `skopeo copy oci-archive:… docker://…`
# of the same oci-archive, in the same run; then a re-push of each (every blob already
# in the repository: both HEAD and skip). Fresh repository names per run, so the first
# push of each tool uploads all 5 blobs and the empty config. The archive is in
# the page cache for both (wall time: date before and after). Both unpack the oci-archive to a temporary directory first.
#   eval "$(ops/services.sh env)"; tests/bench/bench_oci.sh [build-dir] [MiB-total]
set -euo pipefail
BUILD=${1:-build-bench}
MIB=${2:-1024}
STELLA="$BUILD/bin/stella"
if [ ! -x "$STELLA" ]; then
  echo "build first: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release &&" \
    "cmake --build $BUILD --target stella" >&2
  exit 2
fi
: "${STELLA_REGISTRY_URL:?eval \"\$(ops/services.sh env)\" first}"
STELLA=$(cd "$(dirname "$STELLA")" && pwd)/stella
HOSTPORT=${STELLA_REGISTRY_URL#http://}
CREDS="$STELLA_REGISTRY_USER:$STELLA_REGISTRY_PASS"
T=$(mktemp -d "${TMPDIR:-/tmp}/st_bench_oci.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
run_id=$(date +%s%N)

for i in 1 2 3 4 5; do head -c "$(((MIB << 20) / 5))" /dev/urandom >"blob$i.bin"; done
"$STELLA" oci artifact blob1.bin blob2.bin blob3.bin blob4.bin blob5.bin \
  --artifact-type application/vnd.stella.bench.v1 --tag 1 --archive bench.tar >/dev/null
rm -f blob*.bin
cat bench.tar >/dev/null

# timed NAME CMD...: prints "NAME wall_s"
timed() {
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$@" >out.txt 2>&1 || { cat out.txt >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >"$name.t"
  printf '%-16s %8.2f s\n' "$name" "$(cat "$name.t")"
}
push_stella() { "$STELLA" oci push bench.tar "$STELLA_REGISTRY_URL/bench/stella-$run_id:1" --creds "$CREDS"; }
push_skopeo() {
  skopeo copy -q --dest-tls-verify=false --dest-creds "$CREDS" oci-archive:bench.tar:1 \
    "docker://$HOSTPORT/bench/skopeo-$run_id:1"
}

echo "push of $(du -m bench.tar | cut -f1) MiB in 5 blobs to $STELLA_REGISTRY_URL"
timed stella-push push_stella
grep -q 'blobs: 6 uploaded' out.txt || { echo "stella first push: $(cat out.txt)" >&2; exit 1; }
timed skopeo-push push_skopeo
timed stella-repush push_stella
grep -q 'blobs: 0 uploaded (0 bytes), 6 already present' out.txt || { echo "stella re-push: $(cat out.txt)" >&2; exit 1; }
timed skopeo-repush push_skopeo
# the re-push from the layout directory: no archive to unpack (and hash) first
mkdir dir && tar -xf bench.tar -C dir
timed stella-repush-dir "$STELLA" oci push dir "$STELLA_REGISTRY_URL/bench/stella-$run_id:1" --creds "$CREDS"
awk -v a="$(cat stella-push.t)" -v b="$(cat skopeo-push.t)" -v c="$(cat stella-repush.t)" \
  -v d="$(cat skopeo-repush.t)" -v e="$(cat stella-repush-dir.t)" 'BEGIN {
  printf "push:    stella/skopeo wall = %.2f\n", (b > 0 ? a / b : 0);
  printf "re-push: stella/skopeo wall = %.2f\n", (d > 0 ? c / d : 0);
  printf "re-push from the layout dir: stella/skopeo wall = %.2f\n", (d > 0 ? e / d : 0) }'
