/* retry.h: failure classes of a job run and what each one leads to.
 *
 * A run ends in one outcome. Transient and timeout failures are retried with
 * exponential backoff and full jitter (delay drawn uniformly from [0, min(cap,
 * base * 2^(attempt-1))], AWS "full jitter") until the type's max attempts, then
 * dead-lettered; a permanent failure is dead-lettered at once; a cancelled job is
 * acknowledged and recorded, never retried. A job cancelled because this process is
 * shutting down is "released": not acknowledged, so another process reclaims it.
 *
 * Pure functions, any thread.
 */
#ifndef STELLA_QUEUE_RETRY_H
#define STELLA_QUEUE_RETRY_H

#include <stdint.h>

typedef enum st_job_outcome {
  ST_JOB_SUCCEEDED = 0,
  ST_JOB_TRANSIENT,
  ST_JOB_PERMANENT,
  ST_JOB_TIMEOUT,
  ST_JOB_CANCELLED,
  ST_JOB_RELEASED,
} st_job_outcome;

typedef enum st_job_action {
  ST_ACTION_ACK = 0,     /* done (succeeded or cancelled): acknowledge */
  ST_ACTION_RETRY,       /* schedule attempt+1 after a backoff, acknowledge this one */
  ST_ACTION_DEAD_LETTER, /* to stella:dlq, acknowledge */
  ST_ACTION_RELEASE,     /* leave pending for reclaim */
} st_job_action;

/* "succeeded", "transient", "permanent", "timeout", "cancelled", "released". */
const char *st_job_outcome_name(st_job_outcome o);

/* What to do after attempt `attempt` (1-based) ended in `o`, given max_attempts. */
st_job_action st_job_decide(st_job_outcome o, uint32_t attempt, uint32_t max_attempts);

/* Backoff before attempt+1: uniform in [0, min(cap_ms, base_ms * 2^(attempt-1))], using
 * `rnd` (any 64-bit random value) for the draw. Never overflows. */
uint64_t st_backoff_ms(uint32_t attempt, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd);

#endif
