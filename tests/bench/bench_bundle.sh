#!/usr/bin/env bash
# bench_bundle.sh: sealing and verifying ~1 GiB (a few large files + 10,000 small ones)
# with stella against the coreutils pipeline doing the comparable work, in the same run:
#   seal:   stella bundle seal   vs  tar -cf - | gzip -1 > x.tgz ; sha256sum of the inputs
#   verify: stella verify        vs  sha256sum -c of the inputs
# Wall time and peak RSS from /usr/bin/time. The page cache is warm for both sides (the
# inputs are read once first). Large files are random (incompressible, like most
# artifacts); small files are 4 KiB of text.
#   tests/bench/bench_bundle.sh [build-dir] [large-MiB-total] [small-count]
set -euo pipefail
BUILD=${1:-build-bench}
LARGE_MIB=${2:-984}
SMALL=${3:-10000}
STELLA="$BUILD/bin/stella"
if [ ! -x "$STELLA" ]; then
  echo "build first: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release &&" \
    "cmake --build $BUILD --target stella" >&2
  exit 2
fi
STELLA=$(cd "$(dirname "$STELLA")" && pwd)/stella
T=$(mktemp -d "${TMPDIR:-/tmp}/st_bench_bundle.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"

mkdir -p data/large data/small
for i in 1 2 3 4; do head -c "$(((LARGE_MIB << 20) / 4))" /dev/urandom >"data/large/part$i.bin"; done
seq 1 400 | sed 's/^/line of evidence text /' | head -c 4096 >small.tmpl
for i in $(seq 1 "$SMALL"); do
  d=data/small/$((i % 100))
  [ -d "$d" ] || mkdir -p "$d"
  { printf '%d\n' "$i"; cat small.tmpl; } >"$d/f$i.txt"
done
total_mib=$(du -sm data | cut -f1)
cat $(find data -type f) >/dev/null 2>&1 || find data -type f -exec cat {} + >/dev/null
"$STELLA" key generate --type ed25519 -o k.pem >/dev/null

# run NAME CMD...: prints "NAME wall_s peak_rss_kib"
run() {
  local name=$1
  shift
  /usr/bin/time -f '%e %M' -o time.txt "$@" >/dev/null 2>run.err || {
    echo "$name failed: $(cat run.err)" >&2
    exit 1
  }
  echo "$name $(cat time.txt)"
}

rm -f x.tgz b.tgz sums
run pipeline_seal sh -c 'tar -cf - data | gzip -1 >x.tgz && find data -type f -exec sha256sum {} + >sums' >res.txt
run stella_seal "$STELLA" bundle seal --kind generic --key k.pem --created 2025-01-01T00:00:00Z \
  -o b.tgz data >>res.txt
run sha256sum_verify sha256sum --quiet -c sums >>res.txt
run stella_verify "$STELLA" verify b.tgz --key k.pub.pem >>res.txt

printf 'inputs: %d MiB (%d small files + 4 large), bundle %d MiB, gzip -1 %d MiB\n' \
  "$total_mib" "$SMALL" "$(($(stat -c %s b.tgz) >> 20))" "$(($(stat -c %s x.tgz) >> 20))"
awk '{ t[$1] = $2; r[$1] = $3 }
END {
  printf "%-18s %8s %10s\n", "", "wall s", "peak RSS"
  n = split("pipeline_seal stella_seal sha256sum_verify stella_verify", k, " ")
  for (i = 1; i <= n; i++) printf "%-18s %8.2f %7.1f MiB\n", k[i], t[k[i]], r[k[i]] / 1024
  printf "seal:   stella/pipeline wall %.2f (goal <= 1.00), peak RSS %.1f MiB (goal < 64)\n",
    t["stella_seal"] / t["pipeline_seal"], r["stella_seal"] / 1024
  printf "verify: stella/sha256sum wall %.2f (goal <= 1.20), peak RSS %.1f MiB (goal < 64)\n",
    t["stella_verify"] / t["sha256sum_verify"], r["stella_verify"] / 1024
}' res.txt
