/* transport.h: Redis Streams transport of the job queue (hiredis async on the libuv loop).
 *
 * Streams `stella:jobs:<type>`, one consumer group "stellad" per stream, created at id 0
 * with MKSTREAM so entries XADDed before the group existed are still delivered.
 * Two connections: one only for the blocking XREADGROUP (head-of-line blocking would
 * stall everything else), one for commands. Each reconnects on its own with capped
 * exponential backoff (100 ms .. 5 s); hiredis 0.14 has no auto-reconnect, so a new
 * context is made from a uv_timer.
 *
 * Claiming: XREADGROUP ... COUNT n BLOCK min(lease/2, 2 s) with n never above the free
 * worker slots the callbacks report (COUNT applies per stream, so the sum over the streams
 * read is kept within the pool's free slots); every lease/2, between two reads on the
 * same connection, XAUTOCLAIM (Redis 7 reply shape) takes entries idle past the lease
 * from dead consumers, same bound; a Lua script adds each reclaimed entry's delivery count
 * (XPENDING) so the supervisor can dead-letter one that keeps crashing its consumers.
 *
 * Settling (all idempotent Lua scripts, so a resend after a lost reply is harmless; each
 * does its side effect only if its XACK removed the entry from the pending list):
 *   ack          XACK + XDEL
 *   retry        ZADD stella:delayed (score due ms, member "<stream>\n<envelope>") + XACK
 *                + XDEL; a 200 ms timer moves due members back with XADD + ZREM in one
 *                script, so a crash neither loses nor doubles a retry
 *   dead_letter  XADD stella:dlq {reason, class, stream, entry_id, type, job_id, tenant,
 *                envelope} + XACK + XDEL
 * Settle operations are queued and resent after a reconnect until Redis answers. Entries
 * delivered and not yet settled are remembered, so a reclaim after an outage (when our
 * own leases have lapsed) never hands this process a job it is still running or settling.
 * Leases: st_transport_touch re-claims an in-flight entry for this consumer (XCLAIM
 * JUSTID, only if this consumer still owns it) so a live job is never reclaimed.
 *
 * Ownership: deliveries passed to on_delivery belong to the callee (st_delivery_free).
 * Thread rules: everything here runs on the loop thread only.
 */
#ifndef STELLA_QUEUE_TRANSPORT_H
#define STELLA_QUEUE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "stella/err.h"

#define ST_GROUP "stellad"
#define ST_DELAYED_KEY "stella:delayed"
#define ST_DLQ_STREAM "stella:dlq"

typedef struct st_transport_s st_transport_t;

typedef struct st_delivery_s {
  int type_index;   /* into opts.types */
  const char *type; /* opts.types[type_index] */
  char *stream;
  char *entry_id;
  char *data;       /* field "e" (the envelope); NULL if the entry has none */
  size_t len;
  unsigned deliveries; /* times delivered, this one included (XPENDING; 1 for new entries) */
} st_delivery_t;

void st_delivery_free(st_delivery_t *d);

typedef struct st_transport_cbs_s {
  /* Free worker slots for a type (its own limit and the pool's), and for the pool. */
  unsigned (*free_slots)(void *ud, int type_index);
  unsigned (*free_total)(void *ud);
  /* A claimed entry; the callee owns d. */
  void (*on_delivery)(void *ud, st_delivery_t *d);
  /* Readiness changes: connected and groups present (1) or not (0, with a reason). */
  void (*on_ready)(void *ud, int ready, const char *reason);
  void *ud;
} st_transport_cbs_t;

typedef struct st_transport_opts_s {
  const char *redis_url;    /* redis://host:port[/db] */
  const char *const *types; /* NULL-terminated job types to consume */
  const char *consumer;     /* unique consumer name of this process */
  uint64_t lease_ms;        /* reclaim entries idle longer */
} st_transport_opts_t;

/* Allocate and start connecting (the connections come up asynchronously).
 * Strings in opts are copied. */
int st_transport_new(st_transport_t **out, uv_loop_t *loop, const st_transport_opts_t *opts,
                     const st_transport_cbs_t *cbs, st_error_t *err) ST_MUST_CHECK;

/* Slots were freed: issue a read if none is outstanding. */
void st_transport_poke(st_transport_t *t);

/* Settle an entry. Copies every argument. */
void st_transport_ack(st_transport_t *t, const char *stream, const char *entry_id);
void st_transport_retry(st_transport_t *t, const char *stream, const char *entry_id,
                        const void *envelope, size_t len, uint64_t due_ms);
void st_transport_dead_letter(st_transport_t *t, const char *stream, const char *entry_id,
                              const char *type, const char *job_id, const char *tenant,
                              const char *reason, const char *klass, const void *envelope,
                              size_t len);
/* The entry will not be settled by this process (released on shutdown, or dropped): forget
 * it, so a later reclaim may deliver it again. */
void st_transport_release(st_transport_t *t, const char *stream, const char *entry_id);
/* Keep the lease of an in-flight entry (heartbeat). Fire and forget. */
void st_transport_touch(st_transport_t *t, const char *stream, const char *entry_id);

/* Settle operations not yet confirmed by Redis. */
size_t st_transport_unsettled(const st_transport_t *t);

/* Stop reading and reclaiming (the blocking connection is dropped at once). */
void st_transport_stop_claiming(st_transport_t *t);

/* Disconnect and close every handle; done(ud) runs once all are closed, after which
 * st_transport_free may be called. */
void st_transport_close(st_transport_t *t, void (*done)(void *ud), void *ud);
void st_transport_free(st_transport_t *t);

/* Parse redis://host[:port][/db] (port 6379, db 0 by default). *host is st_malloc'ed. */
int st_redis_url_parse(const char *url, char **host, int *port, int *db, st_error_t *err)
    ST_MUST_CHECK;

#endif
