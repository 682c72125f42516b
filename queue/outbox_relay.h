/* outbox_relay.h: the outbox relay: publishes the lifecycle events of the outbox table
 * (0003_outbox.sql) to the Redis stream `stella:events`.
 *
 * One dedicated thread per process with its own Postgres session and its own synchronous
 * hiredis connection (the libuv loop is never involved). Single leader across processes:
 * the thread holds a session advisory lock (pg_try_advisory_lock) on that same session and
 * relays only while it holds it; if the session dies the server drops the lock and another
 * process's relay, retrying every second, takes over. Leading and relaying share one
 * session on purpose: a relay that lost its session cannot go on relaying.
 *
 * A batch: BEGIN; stella_outbox_claim(100) (SECURITY DEFINER, rows locked SKIP LOCKED);
 * XADD each row to stella:events with fields event_id, tenant, type, event (the row's
 * payload: a stella.event/v1 envelope, schemas/json/event-v1.schema.json, which the
 * timeline ingester reads), and each incident.* event also to stella:notify;
 * stella_outbox_mark_published(ids); COMMIT. A failure after some XADDs rolls
 * back, so those events are published again: delivery is at least once, and consumers
 * dedupe on (tenant, event_id), which is stable. NATS JetStream publishing is not part of
 * this relay yet.
 *
 * Ownership: st_outbox_relay_start copies its arguments; st_outbox_relay_stop joins the
 * thread and frees everything. Call both from one thread (stellad's main).
 */
#ifndef STELLA_QUEUE_OUTBOX_RELAY_H
#define STELLA_QUEUE_OUTBOX_RELAY_H

#include <stdint.h>

#include "stella/err.h"

#define ST_EVENTS_STREAM "stella:events"
/* incident.* events are also XADDed here (same fields), in the same pipeline, for
 * notifiers (pagers, chat bridges) that want only what needs a human. */
#define ST_NOTIFY_STREAM "stella:notify"
#define ST_OUTBOX_BATCH 100

typedef struct st_outbox_relay_s st_outbox_relay_t;

/* Start the relay thread; pg_url is the service role's conninfo, poll_ms the wait when
 * the outbox is empty. Connection failures are retried inside the thread, never here. */
int st_outbox_relay_start(const char *pg_url, const char *redis_url, uint64_t poll_ms,
                          st_outbox_relay_t **out, st_error_t *err) ST_MUST_CHECK;
/* Stop and join (at most one batch in flight finishes first); NULL is a no-op. */
void st_outbox_relay_stop(st_outbox_relay_t *r);

#endif
