/* worker.h: the contract between the supervisor and a typed worker.
 *
 * A worker is one descriptor (like nginx's ngx_module_t): a name equal to the job type,
 * a payload validator and a run function. Workers export only their st_worker_t; the
 * table of all of them is workers/registry.c. A worker never touches Redis.
 *
 * Threads: validate and run are called on a supervisor worker thread (never the libuv
 * loop), possibly concurrently for different jobs up to max_concurrency; they must not
 * keep pointers into the job or context after returning.
 *
 * Errors: run returns 0 on success or a negative ST_E* code with detail in err. The code
 * decides the failure class: ST_ECANCELED means the run stopped because ctx asked it to
 * (the supervisor then knows whether that was a timeout, a shutdown or a user cancel);
 * codes st_err_classify() calls transient (ST_EBUSY, ST_EIO, ST_ENET, ST_EDBRETRY, ...)
 * are retried with backoff; anything else is permanent and dead-lettered at once. A
 * validate failure is permanent.
 */
#ifndef STELLA_QUEUE_WORKER_H
#define STELLA_QUEUE_WORKER_H

#include <jansson.h>
#include <stdatomic.h>

#include "envelope.h"
#include "stella/db.h"
#include "stella/config.h"
#include "stella/err.h"

typedef enum st_cancel_reason {
  ST_CANCEL_NONE = 0,
  ST_CANCEL_TIMEOUT,  /* job_timeout_ms passed */
  ST_CANCEL_SHUTDOWN, /* drain timeout passed during SIGTERM: the job is released */
  ST_CANCEL_USER,     /* `stella job cancel` (cancel_requested_at in Postgres) */
} st_cancel_reason;

/* One job as a worker sees it. All pointers are owned by the supervisor. */
typedef struct st_job_s {
  const st_envelope_t *env; /* decoded and validated; env->payload passed validate */
  const char *stream;       /* stella:jobs:<type> */
  const char *entry_id;     /* Redis stream entry id */
} st_job_t;

typedef struct st_job_ctx_s st_job_ctx_t;
struct st_job_ctx_s {
  /* An st_cancel_reason, set by the supervisor from the loop; poll it with
   * st_job_cancelled() between steps and return ST_ECANCELED soon after. */
  atomic_int cancel;
  /* Report progress in [0, 1] with an optional note; also a heartbeat. Any time during run,
   * from the running thread. The note is copied. Recorded at most once a second per job
   * (counted from the start); reports in between are dropped. */
  void (*progress)(st_job_ctx_t *ctx, double fraction, const char *note);
  void *priv; /* the supervisor's */
  /* The process's Postgres pool (borrowed; NULL when pg_url is unset). Use it only through
   * st_db_tenant_tx with the job's tenant. The object store and signer join here later. */
  st_db_pool_t *db;
  /* The process's configuration (read-only, borrowed): workers open what it names
   * (signing_key, the object store, tsa_url). */
  const st_config_t *cfg;
};

static inline int st_job_cancelled(st_job_ctx_t *ctx) {
  return atomic_load(&ctx->cancel) != ST_CANCEL_NONE;
}

typedef struct st_worker_s {
  const char *name; /* job type: [a-z0-9_]{1,64} */
  /* Check the payload; name the offending key in err. NULL = any object. */
  int (*validate)(const json_t *payload, st_error_t *err);
  int (*run)(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err);
  int max_concurrency; /* jobs of this type at once in one process; 0 = worker_threads */
  int max_attempts;    /* 0 = config job_max_attempts */
} st_worker_t;

#endif
