/* timeline_metrics.h: the ingesters' Prometheus series (stella/metrics.h), one set per
 * source kind (label type="redis" | "nats"):
 *   stella_timeline_ingested_total{type,outcome=stored|duplicate|poison|retry}  events; the
 *       rate of outcome="stored" is the ingest rate, outcome="duplicate" the duplicates
 *       dropped
 *   stella_timeline_batches_total{type}            batches ingested
 *   stella_timeline_batch_size_events{type}        events in the last batch (gauge)
 *   stella_timeline_dead_lettered_total{type}      poison events copied to the DLQ
 *   stella_timeline_claimed_total{type}            entries taken over from dead consumers
 *   stella_timeline_lag_events{type}               not yet delivered to the ingester (Redis
 *       XINFO GROUPS lag, NATS num_pending; -1 when the source cannot tell)
 *   stella_timeline_pending_events{type}           delivered, not yet acknowledged (Redis
 *       group PEL, NATS num_ack_pending)
 * Series live for the process (the registry's rule); st_tl_prom_init returns the same ones
 * on every call, so a test reads the values an ingester thread wrote. Thread rules: any.
 */
#ifndef STELLA_TIMELINE_METRICS_H
#define STELLA_TIMELINE_METRICS_H

#include <stddef.h>

#include "stella/metrics.h"
#include "timeline/timeline_worker.h"

typedef struct st_tl_prom_s {
  st_metric_t *stored, *duplicate, *poison, *retry;
  st_metric_t *batches, *batch_size, *dead_lettered, *claimed, *lag, *pending;
} st_tl_prom_t;

/* kind: "redis" or "nats" (a static string). */
void st_tl_prom_init(st_tl_prom_t *p, const char *kind);
/* One settled batch: outcomes of res[0..n) and how many poison events were dead-lettered. */
void st_tl_prom_batch(const st_tl_prom_t *p, const st_tl_result_t *res, size_t n,
                      size_t dead_lettered);
/* The backlog as the source reported it (-1 = unknown). */
void st_tl_prom_backlog(const st_tl_prom_t *p, long long lag, long long pending);

#endif
