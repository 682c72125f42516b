/* bench_jcs.c: canonical JSON encode throughput against jansson's own serialiser.
 *
 * Builds a manifest-like document in memory (an array of records with unsorted keys,
 * strings with non-ASCII text and escapes, integers, fractional numbers, nested objects
 * and arrays; deterministic), sized so that jansson's compact output is about TARGET MB,
 * then times, best of RUNS each, interleaved:
 *   st_jcs_encode                         (sorted keys, ECMAScript numbers, UTF-8 checks)
 *   json_dumps(JSON_COMPACT)              (baseline: insertion order, %.17g numbers)
 *   json_dumps(JSON_COMPACT|JSON_SORT_KEYS) (second baseline: also sorts keys)
 * and prints MB/s of each and the ratios.
 *   bench_jcs [target-MB] [runs]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stella/jcs.h"
#include "stella/mem.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;

static unsigned long long next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static json_t *record(unsigned long long i) {
  char path[64], hex[65], owner[32];
  static const char *types[] = {"application/json", "application/octet-stream",
                                "application/vnd.oci.image.layer.v1.tar+gzip"};
  for (int k = 0; k < 64; k++)
    hex[k] = "0123456789abcdef"[next() & 15];
  hex[64] = '\0';
  snprintf(path, sizeof(path), "blobs/%02llx/%06llu-r\xc3\xa9sum\xc3\xa9.bin", i & 0xff, i);
  snprintf(owner, sizeof(owner), "team-%llu \xe2\x82\xac", next() % 1000);
  return json_pack("{s:s,s:s,s:I,s:s,s:f,s:[s,s,i],s:{s:s,s:f,s:b,s:n,s:s}}",
                   "sha256", hex, "path", path,
                   "size", (json_int_t)(next() % 10000000000ULL),
                   "mediaType", types[next() % 3],
                   "mtime", 1.7e9 + (double)(next() % 1000000) / 1000.0,
                   "tags", "prod", "tab\there", (int)(next() % 100),
                   "meta", "owner", owner, "ratio", (double)(next() % 1000000) / 7.0,
                   "signed", (int)(next() & 1), "parent", "note",
                   "\"quoted\" \\ \xf0\x9f\x98\x82");
}

int main(int argc, char **argv) {
  double target = argc > 1 ? atof(argv[1]) : 100.0;
  int runs = argc > 2 ? atoi(argv[2]) : 3;
  json_t *doc = json_array();
  size_t sample, jlen = 0;
  double best[3] = {1e9, 1e9, 1e9};
  size_t out_len[3] = {0, 0, 0};
  char *s;

  /* Size from a sample of records. */
  for (unsigned long long i = 0; i < 1000; i++)
    json_array_append_new(doc, record(i));
  s = json_dumps(doc, JSON_COMPACT);
  sample = strlen(s);
  free(s);
  for (unsigned long long i = 1000; (double)i * (double)sample / 1000.0 < target * 1e6; i++)
    json_array_append_new(doc, record(i));

  for (int r = 0; r < runs; r++) {
    st_buf_t b;
    st_error_t err = ST_ERROR_INIT;
    double t0;

    st_buf_init(&b, (size_t)1 << 31);
    t0 = now();
    if (st_jcs_encode(doc, &b, &err)) {
      fprintf(stderr, "bench_jcs: %s\n", st_error_text(&err));
      return 1;
    }
    if (now() - t0 < best[0])
      best[0] = now() - t0;
    out_len[0] = b.len;
    st_buf_release(&b);

    t0 = now();
    s = json_dumps(doc, JSON_COMPACT);
    if (now() - t0 < best[1])
      best[1] = now() - t0;
    jlen = strlen(s);
    out_len[1] = jlen;
    free(s);

    t0 = now();
    s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (now() - t0 < best[2])
      best[2] = now() - t0;
    out_len[2] = strlen(s);
    free(s);
  }
  printf("document: %zu records, %.1f MB compact, best of %d\n", json_array_size(doc),
         (double)jlen / 1e6, runs);
  printf("st_jcs_encode:                      %7.1f MB/s (%.3f s, %.1f MB out)\n",
         (double)out_len[0] / 1e6 / best[0], best[0], (double)out_len[0] / 1e6);
  printf("json_dumps(COMPACT):                %7.1f MB/s (%.3f s)\n",
         (double)out_len[1] / 1e6 / best[1], best[1]);
  printf("json_dumps(COMPACT|SORT_KEYS):      %7.1f MB/s (%.3f s)\n",
         (double)out_len[2] / 1e6 / best[2], best[2]);
  printf("ratio time json_dumps(COMPACT)/st_jcs_encode: %.2f\n", best[1] / best[0]);
  printf("ratio time json_dumps(COMPACT|SORT_KEYS)/st_jcs_encode: %.2f\n", best[2] / best[0]);
  json_decref(doc);
  return 0;
}
