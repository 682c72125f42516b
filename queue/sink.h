/* sink.h: the job state sink, the seam where durable job state plugs in.
 *
 * The supervisor reports every transition of a job to one sink: the logging sink (one
 * JSON line per transition, st_state_sink_log) or the Postgres sink (st_state_sink_pg:
 * jobs row + lifecycle outbox row in one tenant transaction, deduplicated on tenant and
 * job_id, events on job_id + attempt + state; it logs each transition too).
 *
 * Ordering contract: for a terminal transition (succeeded, retry_scheduled,
 * dead_lettered, cancelled) record() is called, and must have committed, BEFORE the
 * supervisor acknowledges the stream entry; if it fails, the entry is not acknowledged
 * (released) and another delivery repeats the transition, so record() must be
 * idempotent. After a crash the same transition may be recorded twice.
 *
 * STARTED verdicts: record(STARTED) may answer ST_EEXIST (the job already reached a final
 * state, e.g. a redelivery after its acknowledgement was lost: acknowledge it without
 * running) or ST_ECANCELED (a cancel was requested before it ran: record it cancelled
 * without running). Any other STARTED failure is logged and the job runs anyway (its
 * terminal record decides).
 *
 * Threads: record() is called from supervisor worker threads, concurrently; never from
 * the libuv loop (it may block on I/O). `env` is NULL for an envelope that did not decode
 * (then raw/raw_len hold the entry's bytes). Pointers are valid only during the call.
 */
#ifndef STELLA_QUEUE_SINK_H
#define STELLA_QUEUE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "retry.h"
#include "stella/db.h"
#include "stella/err.h"
#include "stella/sha256.h"

typedef enum st_job_state {
  ST_STATE_STARTED = 0,
  ST_STATE_PROGRESS,
  ST_STATE_SUCCEEDED,
  ST_STATE_RETRY_SCHEDULED,
  ST_STATE_DEAD_LETTERED,
  ST_STATE_CANCELLED,
  ST_STATE_RELEASED,
} st_job_state;

typedef struct st_job_transition_s {
  st_job_state state;
  const st_envelope_t *env; /* NULL when the envelope is malformed */
  const char *type;         /* the stream's job type (trustworthy even if env is NULL) */
  const char *stream, *entry_id, *consumer;
  st_job_outcome outcome;   /* for terminal states */
  const char *reason;       /* failure text; NULL on success */
  uint64_t at_ms;           /* unix ms */
  uint64_t duration_ms;     /* run time, terminal states */
  uint64_t next_due_ms;     /* RETRY_SCHEDULED: when attempt+1 becomes due */
  double progress;          /* PROGRESS: 0..1 */
  const void *raw;          /* malformed only */
  size_t raw_len;
} st_job_transition_t;

typedef struct st_state_sink_s {
  /* 0 or a negative ST_E* (ST_EDBRETRY for a transient store failure). */
  int (*record)(void *ud, const st_job_transition_t *t, st_error_t *err);
  void (*free)(void *ud); /* NULL allowed */
  void *ud;
} st_state_sink_t;

/* "started", "progress", "succeeded", "retry_scheduled", "dead_lettered", "cancelled",
 * "released". */
const char *st_job_state_name(st_job_state s);

/* The logging sink: one st_logkv line per transition, msg "job.transition", fields
 * state, type, stream, entry_id, consumer, attempt, outcome, reason, duration_ms,
 * next_due_ms, plus the log context (tenant, job_id, trace_id). Never fails. */
void st_state_sink_log(st_state_sink_t *out);

/* The Postgres sink (sink_pg.c) on a borrowed pool that must outlive the sink. Transient
 * database failures come back as ST_EDBRETRY (the entry is then released and redelivered);
 * a malformed envelope (no tenant) and RELEASED are only logged. */
void st_state_sink_pg(st_state_sink_t *out, st_db_pool_t *pool);

/* The outbox event of a job transition (job_event.c). Every job event, from the sink or
 * from the API's submission, is made here: the id is the lower-case hex SHA-256 of
 * "job\n" job_id "\n" attempt "\n" transition (stable: recording the same transition again
 * gives the same id, and the outbox's UNIQUE (tenant_id, event_id) drops it), the JSON a
 * stella.event/v1 envelope (schemas/json/event-v1.schema.json) with subject "job/<job_id>",
 * trace_id from the envelope's traceparent, occurred_at at_ms, and payload {job_id,
 * job_type, attempt, state} plus the members of extra. *json is jansson-allocated (free()).
 * Any thread. ST_ENOMEM only. */
typedef struct st_job_event_s {
  const st_envelope_t *env;
  uint32_t attempt;
  const char *transition; /* part of the id: st_job_state_name(), or "queued" */
  const char *state;      /* jobs.state after the transition */
  const char *type;       /* job.queued, job.succeeded, job.dead_lettered, job.cancelled */
  uint64_t at_ms;
  const json_t *extra;    /* more payload members (borrowed), NULL for none */
} st_job_event_t;

int st_job_event_make(const st_job_event_t *ev, char id[ST_SHA256_HEX_LEN + 1], char **json,
                      st_error_t *err) ST_MUST_CHECK;

#endif
