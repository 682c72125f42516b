/* nats_source.h: NATS JetStream as an event source: a durable pull consumer, bounded fetches,
 * explicit acknowledgement after the batch committed, redelivery of what was not acked.
 *
 * The consumer is durable (it survives this process; a restarted ingester resumes where the
 * acks stopped) with AckPolicy explicit: a message fetched but not acknowledged within
 * ack_wait is redelivered, to this or another ingester. st_nats_fetch returns at most `max`
 * messages and waits at most timeout_ms; max_ack_pending bounds the messages in flight
 * (backpressure: the server stops delivering past it).
 *
 * A message's routing fields come from headers Stella-Event-Id, Stella-Tenant and
 * Stella-Type (optional; when present they must match the body, see timeline_event.h). The
 * body is the event envelope (JSON or msgpack). Its position is the stream sequence.
 *
 * Ownership: a batch owns its messages until st_nats_batch_release; data pointers are valid
 * until then. Threads: every call blocks (network); worker threads only, never the libuv
 * loop. One source, one thread at a time; libnats runs its own I/O threads.
 *
 * Errors: ST_ENET (connection, server, timeouts other than an empty fetch; transient),
 * ST_EINVAL (options), ST_ENOMEM.
 */
#ifndef STELLA_QUEUE_NATS_SOURCE_H
#define STELLA_QUEUE_NATS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"

#define ST_NATS_FETCH_MAX 1000

typedef struct st_nats_source_s st_nats_source_t;

typedef struct st_nats_source_opts_s {
  const char *url;      /* "nats://127.0.0.1:4222" */
  const char *stream;   /* JetStream stream, e.g. "STELLA_EVENTS" */
  const char *subject;  /* subject filter, e.g. "stella.events.>" */
  const char *durable;  /* durable consumer name, e.g. "timeline" */
  const char *dlq_subject; /* where poison is published; NULL = "stella.dlq.timeline" */
  int64_t ack_wait_ms;  /* redelivery delay of un-acked messages; 0 = 30000 */
  int64_t max_ack_pending; /* in-flight bound; 0 = 10000 */
  int create_stream;    /* create the stream (file storage) when it does not exist */
} st_nats_source_opts_t;

typedef struct st_nats_msg_s {
  uint64_t stream_seq; /* position in the stream */
  uint64_t delivered;  /* 1 on first delivery, more after redeliveries */
  const void *data;
  size_t len;
  const char *event_id, *tenant, *type; /* headers, NULL when absent */
} st_nats_msg_t;

typedef struct st_nats_batch_s {
  st_nats_msg_t *msgs;
  size_t n;
  void *priv; /* the library's message list */
} st_nats_batch_t;

/* Connect, bind or create the durable pull consumer. Free with st_nats_source_close. */
int st_nats_source_open(const st_nats_source_opts_t *opts, st_nats_source_t **out,
                        st_error_t *err) ST_MUST_CHECK;
/* Disconnect; the durable consumer and its un-acked messages stay on the server. */
void st_nats_source_close(st_nats_source_t *src);
/* "nats:<stream>", the source name stored with each event. */
const char *st_nats_source_name(const st_nats_source_t *src);

/* Fetch 1..max (<= ST_NATS_FETCH_MAX) messages, waiting up to timeout_ms; none arriving in
 * time is not an error (n = 0). out is zeroed first. */
int st_nats_fetch(st_nats_source_t *src, size_t max, int timeout_ms, st_nats_batch_t *out,
                  st_error_t *err) ST_MUST_CHECK;
/* Acknowledge message i and wait for the server's confirmation. */
int st_nats_ack(st_nats_batch_t *b, size_t i, st_error_t *err) ST_MUST_CHECK;
/* Ask for message i to be redelivered now (a transient failure). */
int st_nats_nak(st_nats_batch_t *b, size_t i, st_error_t *err) ST_MUST_CHECK;
/* Publish message i with a Stella-Dlq-Reason header to the DLQ subject, then terminate it
 * (never redelivered). */
int st_nats_dead_letter(st_nats_source_t *src, st_nats_batch_t *b, size_t i,
                        const char *reason, st_error_t *err) ST_MUST_CHECK;
void st_nats_batch_release(st_nats_batch_t *b);
/* Release the NATS library's process-wide state (threads, caches) at exit, after every
 * source is closed; a no-op when NATS was never used. */
void st_nats_shutdown(void);
/* The durable consumer's backlog from the server: *pending = messages of the filter not yet
 * delivered (num_pending), *ack_pending = delivered, not yet acknowledged. */
int st_nats_backlog(st_nats_source_t *src, long long *pending, long long *ack_pending,
                    st_error_t *err) ST_MUST_CHECK;

#endif
