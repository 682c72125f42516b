#!/usr/bin/env bash
# bench_tgz.sh: pack ~1 GiB (4 x 200 MiB files + 10,000 small ones) with the st_tgz
# writer and with `tar -cf - | gzip -1` in the same run, plus libarchive's own gzip
# filter (the alternative the writer was measured against). Reports wall time, peak
# RSS (/usr/bin/time -v) and output size, and ratios against tar|gzip.
#
#   tests/bench/bench_tgz.sh [build-dir]     (default: build-rel; use a build without
#                                             sanitizers, e.g. cmake -B build-rel
#                                             -DCMAKE_BUILD_TYPE=Release)
# Needs /usr/bin/time (Debian package `time`, in ops/deps.sh), GNU tar, gzip, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-rel}
BIN=$BUILD/bin/bench_tgz
LEVEL=${BENCH_TGZ_LEVEL:-1}
[ -x "$BIN" ] || { echo "bench_tgz.sh: $BIN not built" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_tgz.sh: /usr/bin/time missing (ops/deps.sh)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/stella-bench-tgz-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/src

/usr/bin/python3 - "$SRC" <<'PY'
import os, random, sys
src = sys.argv[1]
rnd = random.Random(1)
words = ["sha256", "digest", "bundle", "tenant", "export", "evidence", "payload",
         "mediaType", "application/json", "size", "created", "kind", "subject"]
lines, n = [], 0
while n < 4 << 20:  # 4 MiB of JSON-ish log lines
    l = '{"ts":%d,"k":"%s","v":"%s","n":%d,"h":"%016x"}\n' % (
        1700000000 + n, rnd.choice(words), rnd.choice(words), rnd.randrange(10**6),
        rnd.getrandbits(64))
    lines.append(l); n += len(l)
text = "".join(lines).encode()[: 4 << 20]
os.makedirs(src + "/large")
for f in range(4):  # 4 x 200 MiB: 3/4 text-like, 1/4 random
    with open("%s/large/blob%d.bin" % (src, f), "wb") as out:
        for c in range(50):
            if c % 4 == 3:
                out.write(os.urandom(4 << 20))
            else:
                k = rnd.randrange(len(text))
                out.write(text[k:] + text[:k])
for i in range(10000):  # 10,000 files of 1..40 KiB
    d = "%s/small/d%02d" % (src, i % 100)
    os.makedirs(d, exist_ok=True)
    k, size = rnd.randrange(len(text) - 65536), rnd.randrange(1024, 40960)
    with open("%s/f%05d.json" % (d, i), "wb") as out:
        out.write(text[k:k + size])
PY
total=$(du -sb "$SRC" | cut -f1)
echo "input: $(( total / 1048576 )) MiB in $(find "$SRC" -type f | wc -l) files; gzip level $LEVEL"

min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b < a) ? b : a }'; }

# run <name> <command...>: one timed run; keeps the best (lowest) wall and CPU time of
# the repeats in BEST_<name>_{WALL,CPU}, and the last peak RSS and output size.
run() {
  local name=$1 out=$WORK/$1.tgz t; shift
  sync
  /usr/bin/time -v -o "$WORK/$name.time" "$@" || { echo "$name failed" >&2; exit 1; }
  t=$WORK/$name.time
  read -r wall cpu rss < <(awk -F': ' '
    /Elapsed/ {n=split($2,p,":"); w=0; for(i=1;i<=n;i++) w=w*60+p[i]}
    /User time/ {c+=$2} /System time/ {c+=$2} /Maximum resident/ {r=$2}
    END {print w, c, r}' "$t")
  printf '  %-16s %7.2f s wall %7.2f s cpu %7d KiB peak RSS %5d MiB out\n' \
    "$name" "$wall" "$cpu" "$rss" $(( $(stat -c %s "$out") / 1048576 ))
  local w=BEST_${name}_WALL c=BEST_${name}_CPU
  printf -v "$w" '%s' "$(min "${!w:-1e9}" "$wall")"
  printf -v "$c" '%s' "$(min "${!c:-1e9}" "$cpu")"
  printf -v "RSS_$name" '%s' "$rss"
  printf -v "SIZE_$name" '%s' "$(stat -c %s "$out")"
}

# Interleaved repeats; the machine is shared, so the best of each is reported.
for round in $(seq "${BENCH_TGZ_REPEAT:-2}"); do
  echo "round $round"
  run tar_gzip sh -c "tar -cf - -C '$SRC' . | gzip -$LEVEL > '$WORK/tar_gzip.tgz'"
  run stella "$BIN" stella "$SRC" "$WORK/stella.tgz" "$LEVEL"
  run libarchive_gzip "$BIN" libarchive "$SRC" "$WORK/libarchive_gzip.tgz" "$LEVEL"
done

# The writer's output must be what tar and gzip read back, and stay deterministic.
gzip -t "$WORK/stella.tgz"
[ "$(tar -tzf "$WORK/stella.tgz" | grep -vc '/$')" = "$(find "$SRC" -type f | wc -l)" ]
"$BIN" stella "$SRC" "$WORK/again.tgz" "$LEVEL"
cmp -s "$WORK/stella.tgz" "$WORK/again.tgz" || { echo "not deterministic" >&2; exit 1; }

awk -v sw="$BEST_stella_WALL" -v bw="$BEST_tar_gzip_WALL" -v lw="$BEST_libarchive_gzip_WALL" \
    -v sc="$BEST_stella_CPU" -v bc="$BEST_tar_gzip_CPU" -v lc="$BEST_libarchive_gzip_CPU" \
    -v sr="$RSS_stella" -v br="$RSS_tar_gzip" -v ss="$SIZE_stella" -v bs="$SIZE_tar_gzip" 'BEGIN {
  printf "best wall: tar|gzip %.2f s, stella %.2f s, libarchive gzip filter %.2f s\n", bw, sw, lw
  printf "best cpu:  tar|gzip %.2f s, stella %.2f s, libarchive gzip filter %.2f s\n", bc, sc, lc
  printf "stella / tar|gzip: wall %.2fx, cpu %.2fx, size %.3fx\n", sw / bw, sc / bc, ss / bs
  printf "libarchive gzip filter / stella: wall %.2fx, cpu %.2fx\n", lw / sw, lc / sc
  printf "stella peak RSS %.1f MiB (tar|gzip %.1f MiB)\n", sr / 1024, br / 1024 }'
[ "$RSS_stella" -lt $(( 64 * 1024 )) ] || { echo "peak RSS over 64 MiB" >&2; exit 1; }
