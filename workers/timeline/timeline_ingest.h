/* timeline_ingest.h: stellad's timeline ingester: a background thread that feeds the Redis
 * stream `stella:events` into the timeline tables.
 *
 * One dedicated thread with its own synchronous hiredis connection and its own one-session
 * Postgres pool (the libuv loop is never involved), like the outbox relay. It reads the
 * stream through the consumer group ST_TL_GROUP as consumer "timeline-<hostname>" (stable
 * across restarts, so a restarted process finds its own pending entries), in batches of at
 * most ST_TL_INGEST_COUNT entries waiting at most ST_TL_INGEST_BLOCK_MS, and settles each
 * batch after it committed (timeline_redis.h): STORED and DUPLICATE are acked, POISON is
 * dead-lettered, RETRY is left unacknowledged. On start, and after any batch with RETRY
 * entries, it first re-reads its own pending entries (XREADGROUP id 0) until none are left,
 * then reads new ones (>).
 *
 * Dead consumers: an ingester that died mid-batch (another host, a crash) leaves its entries
 * pending under its own name. Every claim_idle_ms / 2 the thread runs XAUTOCLAIM over the
 * group's pending entries idle for claim_idle_ms and ingests what it took over like any
 * batch (already committed ones come back as duplicates, so nothing is stored twice).
 * Failures (Redis, Postgres) are retried inside the thread with a capped backoff.
 *
 * Ownership: st_tl_ingester_start copies its options; st_tl_ingester_stop joins the thread
 * (bounded: a blocked read returns within ST_TL_INGEST_BLOCK_MS, a batch is one transaction)
 * and frees everything. Call both from one thread (stellad's main).
 * Metrics: timeline_metrics.h with type="redis" (lag and pending from XINFO GROUPS after
 * every read).
 */
#ifndef STELLA_TIMELINE_INGEST_H
#define STELLA_TIMELINE_INGEST_H

#include "stella/err.h"

#define ST_TL_GROUP "stella-timeline"
#define ST_TL_INGEST_COUNT 500
#define ST_TL_INGEST_BLOCK_MS 1000
#define ST_TL_CLAIM_IDLE_MS 60000

typedef struct st_tl_ingester_s st_tl_ingester_t;

typedef struct st_tl_ingest_opts_s {
  const char *pg_url, *redis_url; /* required */
  const char *stream;   /* NULL = ST_EVENTS_STREAM */
  const char *group;    /* NULL = ST_TL_GROUP */
  const char *dlq;      /* NULL = ST_DLQ_STREAM */
  const char *consumer; /* NULL = "timeline-<hostname>" */
  long long claim_idle_ms; /* 0 = ST_TL_CLAIM_IDLE_MS */
} st_tl_ingest_opts_t;

/* Start the thread; connection failures are retried inside it, never reported here. */
int st_tl_ingester_start(const st_tl_ingest_opts_t *opts, st_tl_ingester_t **out,
                         st_error_t *err) ST_MUST_CHECK;
/* Stop and join; NULL is a no-op. */
void st_tl_ingester_stop(st_tl_ingester_t *t);

/* Internal, shared by both ingester threads: until bg stops, call connect then step; a
 * negative result is logged, handed to drop (to close what it broke) and followed by a
 * capped exponential backoff (100 ms .. 5 s), reset by the next success. */
struct st__bg_s;
void st__tl_run(struct st__bg_s *bg, int (*connect)(void *, st_error_t *),
                int (*step)(void *, st_error_t *), void (*drop)(void *, int), void *arg);

#endif
