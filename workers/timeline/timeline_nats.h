/* timeline_nats.h: stellad's NATS JetStream timeline ingester: a background thread beside
 * the Redis one (timeline_ingest.h), started when nats_url is configured.
 *
 * It binds (or creates) the durable pull consumer of nats_source.h with AckPolicy explicit,
 * fetches bounded batches (at most ST_TL_INGEST_COUNT messages, waiting at most
 * ST_TL_INGEST_BLOCK_MS), ingests each batch in one commit (st_tl_ingest_batch, source
 * "nats:<stream>", position = the stream sequence) and only then settles every message:
 * STORED and DUPLICATE are acknowledged (AckSync), POISON is published to the DLQ subject
 * with its reason and terminated (never redelivered), RETRY is left unacknowledged and
 * comes back after ack_wait, to this or another ingester bound to the same durable. A crash
 * between the commit and the acks only makes the server redeliver: those events come back
 * as duplicates. max_ack_pending bounds what is in flight (backpressure).
 *
 * Failures (NATS, Postgres) are retried inside the thread with a capped backoff; a NATS
 * failure drops the connection and reopens the consumer.
 *
 * Ownership: st_tl_nats_ingester_start copies its options; st_tl_nats_ingester_stop joins
 * the thread (bounded by one fetch wait plus one batch) and frees everything; the process
 * then calls st_nats_shutdown once before exit. Call both from one thread.
 * Metrics: timeline_metrics.h with type="nats" (lag = num_pending, pending =
 * num_ack_pending, from the consumer info after every fetch).
 */
#ifndef STELLA_TIMELINE_NATS_H
#define STELLA_TIMELINE_NATS_H

#include "nats_source.h"
#include "stella/err.h"

typedef struct st_tl_nats_ingester_s st_tl_nats_ingester_t;

/* pg_url and o->url, stream, subject, durable are required (o->dlq_subject may be NULL). */
int st_tl_nats_ingester_start(const char *pg_url, const st_nats_source_opts_t *o,
                              st_tl_nats_ingester_t **out, st_error_t *err) ST_MUST_CHECK;
/* Stop and join; NULL is a no-op. */
void st_tl_nats_ingester_stop(st_tl_nats_ingester_t *t);

#endif
