/* snapshot.c: the `snapshot` job type: one sealed evidence bundle from a payload listing
 * inputs and outputs (schemas/json/job-snapshot.schema.json; rules in evidence.h).
 *
 * The bundle id is the payload's bundle_id (POST /evidence/snapshot sets it) or derived
 * from the tenant and job id, so a reclaimed job (its worker killed mid-run) rebuilds the
 * same bundle, adopts an object the dead run stored, and upserts the same rows.
 *
 * The locker (Postgres pool, object store, signer, TSA) is opened once per process from
 * the configuration the environment gives (st_config_load with $STELLA_CONFIG and
 * STELLA_* variables): the job context carries neither a store nor a signer yet. A failure
 * to open it is transient (ST_ECONFIG is not: a bad key dead-letters the job). */
#include <pthread.h>
#include <string.h>

#include "registry.h"
#include "stella/config.h"
#include "stella/evidence.h"
#include "stella/log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static st_evidence_t *locker;

static int locker_get(st_evidence_t **out, st_error_t *err) {
  st_config_t *cfg = NULL;
  int rc = 0;

  pthread_mutex_lock(&lock);
  if (!locker && !(rc = st_config_load(&cfg, NULL, err)))
    rc = st_evidence_open(&locker, cfg, err);
  *out = locker;
  pthread_mutex_unlock(&lock);
  st_config_free(cfg);
  return rc;
}

static int snapshot_validate(const json_t *payload, st_error_t *err) {
  return st_evidence_payload_check(payload, err);
}

static int snapshot_run(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err) {
  const json_t *p = job->env->payload;
  const char *id = json_string_value(json_object_get(p, "bundle_id"));
  const char *actor = json_string_value(json_object_get(json_object_get(p, "run"), "actor"));
  st_evidence_who_t who = {job->env->tenant, actor, job->env->job_id, NULL, NULL};
  st_evidence_t *ev;
  st_buf_t derived = ST_BUF_INIT;
  int rc;

  if ((rc = locker_get(&ev, err)))
    goto done;
  if (!id) {
    if (st_evidence_derive_id(job->env->tenant, job->env->job_id, &derived)) {
      rc = st_fail(err, ST_ENOMEM, "snapshot: out of memory");
      goto done;
    }
    id = derived.data;
  }
  if (st_job_cancelled(ctx)) {
    rc = st_fail(err, ST_ECANCELED, "snapshot: cancelled before sealing");
    goto done;
  }
  if (ctx->progress)
    ctx->progress(ctx, 0.1, "sealing");
  if ((rc = st_evidence_snapshot(ev, &who, id, p, job->env->job_id, NULL, err)))
    goto done;
  if (ctx->progress)
    ctx->progress(ctx, 1.0, "sealed");
  st_logkv(ST_LOG_INFO, "evidence sealed", "bundle_id", id, NULL);
done:
  st_buf_release(&derived);
  return rc;
}

const st_worker_t st_worker_snapshot = {
    .name = "snapshot",
    .validate = snapshot_validate,
    .run = snapshot_run,
    .max_concurrency = 0,
    .max_attempts = 0,
};
