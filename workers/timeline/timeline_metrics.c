/* timeline_metrics.c: registration and updates of the ingesters' series (see the header). */
#include "timeline/timeline_metrics.h"

#define INGESTED_HELP "Timeline events by source and outcome"

void st_tl_prom_init(st_tl_prom_t *p, const char *kind) {
  p->stored = st_metric_counter("stella_timeline_ingested_total", INGESTED_HELP, kind, "stored");
  p->duplicate =
      st_metric_counter("stella_timeline_ingested_total", INGESTED_HELP, kind, "duplicate");
  p->poison = st_metric_counter("stella_timeline_ingested_total", INGESTED_HELP, kind, "poison");
  p->retry = st_metric_counter("stella_timeline_ingested_total", INGESTED_HELP, kind, "retry");
  p->batches = st_metric_counter("stella_timeline_batches_total", "Timeline ingest batches",
                                 kind, NULL);
  p->batch_size = st_metric_gauge("stella_timeline_batch_size_events",
                                  "Events in the last timeline ingest batch", kind, NULL);
  p->dead_lettered =
      st_metric_counter("stella_timeline_dead_lettered_total",
                        "Poison timeline events copied to the dead-letter queue", kind, NULL);
  p->claimed = st_metric_counter("stella_timeline_claimed_total",
                                 "Timeline entries taken over from dead consumers", kind, NULL);
  p->lag = st_metric_gauge("stella_timeline_lag_events",
                           "Timeline events not yet delivered to the ingester (-1 unknown)",
                           kind, NULL);
  p->pending = st_metric_gauge("stella_timeline_pending_events",
                               "Timeline events delivered to the ingester, not yet acknowledged",
                               kind, NULL);
}

void st_tl_prom_batch(const st_tl_prom_t *p, const st_tl_result_t *res, size_t n,
                      size_t dead_lettered) {
  for (size_t i = 0; i < n; i++)
    st_metric_inc(res[i].outcome == ST_TL_STORED      ? p->stored
                  : res[i].outcome == ST_TL_DUPLICATE ? p->duplicate
                  : res[i].outcome == ST_TL_POISON    ? p->poison
                                                      : p->retry);
  st_metric_inc(p->batches);
  st_metric_set(p->batch_size, (double)n);
  st_metric_add(p->dead_lettered, (double)dead_lettered);
}

void st_tl_prom_backlog(const st_tl_prom_t *p, long long lag, long long pending) {
  st_metric_set(p->lag, (double)lag);
  st_metric_set(p->pending, (double)pending);
}
