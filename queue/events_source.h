/* events_source.h: the Redis side of event ingestion: entries of the `stella:events` stream
 * read through a consumer group, acknowledged only after their batch committed.
 *
 * Two layers. st_events_parse turns an XREADGROUP/XAUTOCLAIM reply into owned entries (id,
 * the `event` field's bytes, and the routing fields event_id/tenant/type), binary-safe and
 * bounded, so the supervisor's async loop can use it from a reply callback (the reply is
 * freed after the callback; the entries are copies). The synchronous helpers below (connect,
 * group create, read, ack, dead-letter) use blocking hiredis: worker threads and the CLI
 * (`stella timeline ingest --once`) only, never the libuv loop.
 *
 * Dead-lettering: the entry is copied to the DLQ stream (ST_DLQ_STREAM, with the job
 * transport's field names: reason, class, stream, entry_id, type, tenant, plus event) and
 * acknowledged in one MULTI/EXEC, so it is never acked without its copy. Entries are not
 * XDELed: other consumer groups may still read the events stream.
 *
 * Errors: ST_EREDIS (server or connection; transient), ST_EPARSE (reply shape), ST_EINVAL.
 */
#ifndef STELLA_QUEUE_EVENTS_SOURCE_H
#define STELLA_QUEUE_EVENTS_SOURCE_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "stella/err.h"

#define ST_EVENTS_STREAM "stella:events"
#define ST_EVENTS_FIELD_MAX ((size_t)1 << 20) /* bytes of one field value kept */

typedef struct st_events_entry_s {
  char *id;            /* "<ms>-<seq>" */
  char *event;         /* `event` field bytes (NUL-terminated copy), NULL if absent */
  size_t event_len;
  char *event_id, *tenant, *type; /* routing fields, NULL if absent */
  int oversized;       /* a field exceeded ST_EVENTS_FIELD_MAX: not copied, poison */
} st_events_entry_t;

typedef struct st_events_batch_s {
  st_events_entry_t *entries;
  size_t n;
} st_events_batch_t;

/* Parse the entries of one stream from an XREADGROUP reply (array of [stream, entries]) or an
 * entries array directly. out must be zeroed; release with st_events_batch_release. A nil
 * reply (timeout) gives n = 0. */
int st_events_parse(const redisReply *reply, st_events_batch_t *out, st_error_t *err)
    ST_MUST_CHECK;
void st_events_batch_release(st_events_batch_t *b);

/* Connect to "redis://host[:port][/db]" (blocking, 5 s connect timeout). Free with
 * redisFree. */
int st_events_connect(const char *url, redisContext **out, st_error_t *err) ST_MUST_CHECK;
/* XGROUP CREATE stream group 0 MKSTREAM; an existing group is fine. */
int st_events_group_create(redisContext *c, const char *stream, const char *group,
                           st_error_t *err) ST_MUST_CHECK;
/* XREADGROUP up to count entries: pending != 0 re-reads this consumer's delivered but
 * unacknowledged entries (id 0), else new ones (>), waiting up to block_ms (0 = no wait). */
int st_events_read(redisContext *c, const char *stream, const char *group,
                   const char *consumer, size_t count, int block_ms, int pending,
                   st_events_batch_t *out, st_error_t *err) ST_MUST_CHECK;
/* XAUTOCLAIM stream group consumer min_idle_ms cursor COUNT count: take over up to count
 * entries other consumers were delivered but did not acknowledge for min_idle_ms (a dead
 * consumer's batch). cursor (at least 48 bytes, "0-0" to start) is updated to where the next
 * call resumes ("0-0" once the scan wrapped). Entries deleted from the stream while pending
 * are dropped from the group by Redis and not returned. Redis >= 7 reply shape. */
#define ST_EVENTS_CURSOR_MAX 48
int st_events_claim(redisContext *c, const char *stream, const char *group,
                    const char *consumer, long long min_idle_ms, size_t count, char *cursor,
                    st_events_batch_t *out, st_error_t *err) ST_MUST_CHECK;
/* The group's backlog from XINFO GROUPS: *lag = entries not yet delivered to the group (-1
 * when Redis cannot tell, e.g. after deletions), *pending = delivered, not acknowledged.
 * ST_ENOENT when the group does not exist. */
int st_events_group_lag(redisContext *c, const char *stream, const char *group,
                        long long *lag, long long *pending, st_error_t *err) ST_MUST_CHECK;
/* XACK the given ids (n >= 1). */
int st_events_ack(redisContext *c, const char *stream, const char *group,
                  const char *const *ids, size_t n, st_error_t *err) ST_MUST_CHECK;
/* MULTI; XADD dlq * reason .. class permanent stream .. entry_id .. [type ..] [tenant ..]
 * [event <bytes>]; XACK; EXEC. */
int st_events_dead_letter(redisContext *c, const char *dlq, const char *stream,
                          const char *group, const st_events_entry_t *e, const char *reason,
                          st_error_t *err) ST_MUST_CHECK;

#endif
