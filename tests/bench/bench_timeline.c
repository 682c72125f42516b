/* bench_timeline.c: the timeline ingester and query engine under load (driven by
 * tests/bench/bench_timeline.sh, which also measures the COPY baseline).
 *
 *   bench_timeline ingest STREAM BATCH   read STREAM through group "timeline" in batches,
 *                                        store, ack, until empty; print events/s
 *   bench_timeline query TENANT N        N queries per typical filter; print p50/p99 ms
 *
 * Environment: STELLA_PG_URL, STELLA_REDIS_URL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events_source.h"
#include "stella/mem.h"
#include "timeline/timeline_query.h"
#include "timeline/timeline_worker.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what, const st_error_t *err) {
  fprintf(stderr, "bench_timeline: %s: %s\n", what, st_error_text(err));
  return 1;
}

static int ingest(st_db_pool_t *pool, const char *stream, size_t batch) {
  redisContext *c = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_tl_metrics_t m = {0};
  char source[160];
  size_t total = 0;
  double t0;

  snprintf(source, sizeof(source), "redis:%s", stream);
  if (st_events_connect(getenv("STELLA_REDIS_URL"), &c, &err) ||
      st_events_group_create(c, stream, "timeline", &err))
    return die("redis", &err);
  t0 = now();
  for (;;) {
    st_events_batch_t b = {0};
    st_tl_raw_t *raw;
    st_tl_result_t *res;
    const char **ids;
    size_t nack = 0;
    if (st_events_read(c, stream, "timeline", "bench", batch, 0, 0, &b, &err))
      return die("read", &err);
    if (!b.n)
      break;
    raw = st_calloc(b.n, sizeof(*raw));
    res = st_calloc(b.n, sizeof(*res));
    ids = st_calloc(b.n, sizeof(*ids));
    for (size_t i = 0; i < b.n; i++) {
      raw[i].source = source;
      if (st_tl_stream_id_parse(b.entries[i].id, &raw[i].seq, &raw[i].seq_minor))
        return fprintf(stderr, "bad id\n"), 1;
      raw[i].body = b.entries[i].event;
      raw[i].body_len = b.entries[i].event_len;
    }
    if (st_tl_ingest_batch(pool, raw, b.n, res, &m, &err))
      return die("ingest", &err);
    for (size_t i = 0; i < b.n; i++)
      if (res[i].outcome == ST_TL_STORED || res[i].outcome == ST_TL_DUPLICATE)
        ids[nack++] = b.entries[i].id;
    if (st_events_ack(c, stream, "timeline", ids, nack, &err))
      return die("ack", &err);
    total += b.n;
    st_tl_results_release(res, b.n);
    st_free(res);
    st_free(raw);
    st_free(ids);
    st_events_batch_release(&b);
  }
  double dt = now() - t0;
  printf("ingest events=%zu stored=%llu duplicates=%llu poison=%llu seconds=%.2f "
         "events_per_s=%.0f\n",
         total, (unsigned long long)m.stored, (unsigned long long)m.duplicates,
         (unsigned long long)m.poison, dt, (double)total / dt);
  redisFree(c);
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int query(st_db_pool_t *pool, const char *tenant, int n) {
  static const st_tl_cursor_key_t key = {(const unsigned char *)"bench-cursor-key-0123456789", 27};
  static const char *names[] = {"type+time",  "time range", "subject", "trace",
                                "actor+time", "digest",     "page 2 (cursor)"};
  double *lat = calloc((size_t)n, sizeof(double));
  char a[64], b[64], s[96];
  st_error_t err = ST_ERROR_INIT;

  srand(42);
  for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
    for (int i = 0; i < n; i++) {
      int day = rand() % 28 + 1, h = rand() % 24, r = rand();
      st_tl_filter_t f = {.limit = 50};
      st_tl_page_t p;
      char *cur = NULL;
      snprintf(a, sizeof(a), "2026-01-%02dT%02d:00:00Z", day, h);
      snprintf(b, sizeof(b), "2026-01-%02dT%02d:00:00Z", day, h < 23 ? h + 1 : 23);
      switch (k) {
      case 0: f.type = r % 2 ? "export.built" : "evidence.sealed", f.since = a; break;
      case 1: f.since = a, f.until = b; break;
      case 2: snprintf(s, sizeof(s), "subject-%d", r % 10000), f.subject = s; break;
      case 3: snprintf(s, sizeof(s), "trace-%d", r % 100000), f.trace_id = s; break;
      case 4: snprintf(s, sizeof(s), "actor-%d", r % 100), f.actor = s, f.since = a; break;
      case 5:
        snprintf(s, sizeof(s), "sha256:%064x", (unsigned)(r % 50000));
        f.digest = s;
        break;
      default: f.since = a; break;
      }
      if (k == 6) { /* the cursor of page 1, then time page 2 */
        if (st_tl_query(pool, tenant, &f, NULL, &key, &p, &err))
          return die("query", &err);
        cur = p.next_cursor ? st_strdup(p.next_cursor) : NULL;
        st_tl_page_release(&p);
      }
      double t0 = now();
      if (st_tl_query(pool, tenant, &f, cur, &key, &p, &err))
        return die(names[k], &err);
      lat[i] = (now() - t0) * 1000;
      st_tl_page_release(&p);
      st_free(cur);
    }
    qsort(lat, (size_t)n, sizeof(double), cmp);
    printf("query %-16s n=%d p50_ms=%.2f p99_ms=%.2f\n", names[k], n, lat[n / 2],
           lat[(n * 99) / 100]);
  }
  free(lat);
  return 0;
}

int main(int argc, char **argv) {
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  int rc;

  if (argc != 4 || (strcmp(argv[1], "ingest") && strcmp(argv[1], "query")))
    return fprintf(stderr, "usage: bench_timeline ingest STREAM BATCH | query TENANT N\n"), 2;
  if (st_db_pool_new(getenv("STELLA_PG_URL"), 2, &pool, &err))
    return die("postgres", &err);
  rc = !strcmp(argv[1], "ingest") ? ingest(pool, argv[2], (size_t)atol(argv[3]))
                                  : query(pool, argv[2], atoi(argv[3]));
  st_db_pool_free(pool);
  return rc;
}
