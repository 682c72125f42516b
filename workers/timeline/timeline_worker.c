/* timeline_worker.c: decode -> validate -> store for one batch, with per-event outcomes. */
#include "timeline/timeline_worker.h"

#include <string.h>

#include "stella/mem.h"

const st_tl_consumer_t st_timeline_consumer = {"timeline", ST_TL_BATCH_MAX,
                                               st_tl_ingest_batch};

void st_tl_results_release(st_tl_result_t *results, size_t n) {
  for (size_t i = 0; i < n; i++) {
    st_free(results[i].reason);
    results[i].reason = NULL;
  }
}

int st_tl_ingest_batch(st_db_pool_t *pool, const st_tl_raw_t *raw, size_t n,
                       st_tl_result_t *results, st_tl_metrics_t *metrics, st_error_t *err) {
  st_tl_event_t *ev = NULL;
  st_tl_outcome *out = NULL;
  char **reason = NULL;
  int rc = 0;

  if (n == 0 || n > ST_TL_BATCH_MAX)
    return st_fail(err, ST_EINVAL, "timeline: batch of %zu events (1..%d allowed)", n,
                   ST_TL_BATCH_MAX);
  memset(results, 0, n * sizeof(*results));
  if (!(ev = st_calloc(n, sizeof(*ev))) || !(out = st_calloc(n, sizeof(*out))) ||
      !(reason = st_calloc(n, sizeof(*reason)))) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    for (size_t i = 0; i < n; i++)
      results[i].outcome = ST_TL_RETRY;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    st_error_t e = ST_ERROR_INIT;
    st_tl_event_init(&ev[i]);
    if (st_tl_event_decode(&raw[i], &ev[i], &e)) {
      out[i] = e.code == ST_ENOMEM ? ST_TL_RETRY : ST_TL_POISON;
      reason[i] = st_strdup(st_error_text(&e));
    }
  }
  rc = st_tl_store_batch(pool, ev, n, out, reason, err);
  for (size_t i = 0; i < n; i++) {
    results[i].outcome = out[i];
    results[i].reason = reason[i];
  }
  if (!rc)
    for (size_t i = 0; i < n && !rc; i++)
      if (out[i] == ST_TL_RETRY)
        rc = st_fail(err, ST_ENOMEM, "timeline: out of memory decoding event %zu", i);
done:
  if (metrics && out) {
    unsigned long long cnt[5] = {0}, prev;
    for (size_t i = 0; i < n; i++)
      cnt[out[i]]++;
    atomic_fetch_add(&metrics->batches, 1);
    atomic_fetch_add(&metrics->events, n);
    atomic_fetch_add(&metrics->stored, cnt[ST_TL_STORED]);
    atomic_fetch_add(&metrics->duplicates, cnt[ST_TL_DUPLICATE]);
    atomic_fetch_add(&metrics->poison, cnt[ST_TL_POISON]);
    atomic_fetch_add(&metrics->retried, cnt[ST_TL_RETRY]);
    prev = atomic_load(&metrics->batch_max);
    while (prev < n && !atomic_compare_exchange_weak(&metrics->batch_max, &prev, n))
      ;
  }
  if (ev)
    for (size_t i = 0; i < n; i++)
      st_tl_event_release(&ev[i]);
  st_free(ev);
  st_free(out);
  st_free(reason);
  return rc;
}
