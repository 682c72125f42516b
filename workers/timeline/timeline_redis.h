/* timeline_redis.h: one batch of a Redis events stream through the timeline, settled:
 * entries -> raw events (source "redis:<stream>", position = the entry id) ->
 * st_tl_ingest_batch (one commit) -> STORED and DUPLICATE acknowledged in one XACK, POISON
 * dead-lettered (copy + ack in one MULTI), RETRY left pending for redelivery. Shared by
 * stellad's ingester thread (timeline_ingest.h) and `stella timeline ingest --once`.
 *
 * Ownership: res is caller-allocated with b->n slots and filled here (release with
 * st_tl_results_release). Threads: blocking (Redis, Postgres); worker threads and the CLI.
 * Errors: the return value is about settling (ST_EREDIS: reconnect; ST_ENOMEM; ST_EINVAL
 * for a batch over ST_TL_BATCH_MAX or a stream name over ST_TL_SOURCE_MAX); *ierr receives
 * the ingest's own result (code 0, or the transient code when entries were left RETRY).
 */
#ifndef STELLA_TIMELINE_REDIS_H
#define STELLA_TIMELINE_REDIS_H

#include "events_source.h"
#include "timeline/timeline_worker.h"

typedef struct st_tl_redis_dest_s {
  const char *stream; /* the events stream */
  const char *group;  /* the consumer group */
  const char *dlq;    /* where poison goes (ST_DLQ_STREAM) */
} st_tl_redis_dest_t;

int st_tl_redis_ingest(redisContext *c, st_db_pool_t *pool, const st_tl_redis_dest_t *d,
                       const st_events_batch_t *b, st_tl_result_t *res,
                       st_tl_metrics_t *metrics, size_t *dead_lettered, st_error_t *ierr,
                       st_error_t *err) ST_MUST_CHECK;

#endif
