/* bench_sha256.c: time st_sha256_file over one file; prints the digest, seconds and MiB/s
 * on one line (`<hex> <seconds> <MiB/s>`) for tests/bench/bench_sha256.sh to compare with
 * sha256sum. */
#include <stdio.h>
#include <time.h>

#include "stella/sha256.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  uint64_t size = 0;
  st_error_t err = ST_ERROR_INIT;
  double t0, t;

  if (argc != 2) {
    fprintf(stderr, "usage: bench_sha256 FILE\n");
    return 2;
  }
  t0 = now();
  if (st_sha256_file(argv[1], d, &size, &err)) {
    fprintf(stderr, "bench_sha256: %s\n", st_error_text(&err));
    return 1;
  }
  t = now() - t0;
  st_sha256_hex(d, hex);
  printf("%s %.3f %.1f\n", hex, t, (double)size / (1 << 20) / t);
  return 0;
}
