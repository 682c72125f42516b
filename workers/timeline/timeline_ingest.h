/* timeline_ingest.h: stellad's timeline ingester: a background thread that feeds the Redis
 * stream `stella:events` into the timeline tables.
 *
 * One dedicated thread with its own synchronous hiredis connection and its own one-session
 * Postgres pool (the libuv loop is never involved), like the outbox relay. It reads the
 * stream through the consumer group ST_TL_GROUP as consumer "timeline-<hostname>" (stable
 * across restarts, so a restarted process finds its own pending entries), in batches of at
 * most ST_TL_INGEST_COUNT entries waiting at most ST_TL_INGEST_BLOCK_MS, and settles each
 * batch after st_tl_ingest_batch returned (i.e. after the commit): STORED and DUPLICATE are
 * acked, POISON is dead-lettered to ST_DLQ_STREAM (copy + ack in one MULTI), RETRY is left
 * unacknowledged. On start, and after any batch with RETRY entries, it first re-reads its own
 * pending entries (XREADGROUP id 0) until none are left, then reads new ones (>).
 * Failures (Redis, Postgres) are retried inside the thread with a capped backoff.
 *
 * Ownership: st_tl_ingester_start copies its arguments; st_tl_ingester_stop joins the thread
 * (bounded: a blocked read returns within ST_TL_INGEST_BLOCK_MS, a batch is one transaction)
 * and frees everything. Call both from one thread (stellad's main).
 * Metrics: stella_timeline_ingested_total{outcome=stored|duplicate|poison|retry},
 * stella_timeline_batches_total.
 */
#ifndef STELLA_TIMELINE_INGEST_H
#define STELLA_TIMELINE_INGEST_H

#include "stella/err.h"

#define ST_TL_GROUP "stella-timeline"
#define ST_TL_INGEST_COUNT 500
#define ST_TL_INGEST_BLOCK_MS 1000

typedef struct st_tl_ingester_s st_tl_ingester_t;

/* Start the thread; connection failures are retried inside it, never reported here. */
int st_tl_ingester_start(const char *pg_url, const char *redis_url, st_tl_ingester_t **out,
                         st_error_t *err) ST_MUST_CHECK;
/* Stop and join; NULL is a no-op. */
void st_tl_ingester_stop(st_tl_ingester_t *t);

#endif
