/* sink.h: the job state sink, the seam where durable job state plugs in.
 *
 * The supervisor reports every transition of a job to one sink. Today the sink is the
 * logging sink (one JSON line per transition, st_state_sink_log); the Postgres sink
 * (jobs table + lifecycle outbox row in one transaction, deduplicated on tenant and
 * job_id + attempt + state) replaces it without touching the transport.
 *
 * Ordering contract: for a terminal transition (succeeded, retry_scheduled,
 * dead_lettered, cancelled) record() is called, and must have committed, BEFORE the
 * supervisor acknowledges the stream entry; if it fails, the entry is not acknowledged
 * (released) and another delivery repeats the transition, so record() must be
 * idempotent. After a crash the same transition may be recorded twice.
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
#include "stella/err.h"

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

#endif
