/* timeline_worker.h: the timeline ingester as the supervisor sees it: a batch of raw events
 * in, one outcome per event out.
 *
 * stellad's ingester threads (or `stella timeline ingest`) read a bounded batch from an
 * event source (Redis stream `stella:events`, NATS JetStream), hand it to st_tl_ingest_batch,
 * then settle each entry by its outcome: STORED and DUPLICATE are acknowledged;
 * POISON is dead-lettered with its reason, then acknowledged; RETRY is left unacknowledged so
 * the source redelivers it (Redis: pending re-read, XAUTOCLAIM; NATS: ack wait). Acks happen
 * only after this call returns, i.e. after the commit.
 *
 * Metrics: a caller's struct of atomic counters (the CLI prints them); stellad's ingester
 * threads publish the process series of timeline_metrics.h from the per-event results.
 *
 * Threads: st_tl_ingest_batch blocks (Postgres); worker threads only. Several may run at
 * once with one pool and one metrics struct.
 */
#ifndef STELLA_TIMELINE_WORKER_H
#define STELLA_TIMELINE_WORKER_H

#include <stdatomic.h>
#include <stddef.h>

#include "stella/db.h"
#include "timeline/timeline_event.h"
#include "timeline/timeline_store.h"

#define ST_TL_BATCH_MAX 1000 /* events per call: bounds memory and transaction size */

typedef struct st_tl_metrics_s {
  atomic_ullong batches;      /* calls */
  atomic_ullong events;       /* events seen */
  atomic_ullong stored;       /* new rows */
  atomic_ullong duplicates;   /* dropped as already stored */
  atomic_ullong poison;       /* to dead-letter */
  atomic_ullong retried;      /* left for redelivery */
  atomic_ullong batch_max;    /* largest batch seen */
} st_tl_metrics_t;

typedef struct st_tl_result_s {
  st_tl_outcome outcome;
  char *reason; /* POISON and RETRY: why (st_tl_results_release frees); else NULL */
} st_tl_result_t;

/* Decode, validate and store raw[0..n) (n <= ST_TL_BATCH_MAX); results[0..n) is
 * caller-allocated and receives one outcome each (release with st_tl_results_release). A
 * poison event never stops the others. metrics may be NULL. Returns 0 when every event was
 * settled (stored/duplicate/poison), the transient code when some are RETRY, ST_EINVAL for
 * n out of range (then no result is set). */
int st_tl_ingest_batch(st_db_pool_t *pool, const st_tl_raw_t *raw, size_t n,
                       st_tl_result_t *results, st_tl_metrics_t *metrics, st_error_t *err)
    ST_MUST_CHECK;
void st_tl_results_release(st_tl_result_t *results, size_t n);

/* The ingester's descriptor (the supervisor's table of event consumers). */
typedef struct st_tl_consumer_s {
  const char *name;   /* "timeline" */
  size_t batch_max;   /* ST_TL_BATCH_MAX */
  int (*ingest)(st_db_pool_t *pool, const st_tl_raw_t *raw, size_t n,
                st_tl_result_t *results, st_tl_metrics_t *metrics, st_error_t *err);
} st_tl_consumer_t;

extern const st_tl_consumer_t st_timeline_consumer;

#endif
