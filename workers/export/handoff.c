/* handoff.c: a built run of a profile with `distribution` targets hands its artifact to the
 * OCI distributor: one oci_distribute job {run_id, targets, retain_days?} with the stable
 * job id oci-<run_id>, queued from the export job (st_queue_submit) before the run moves to
 * distributed. The distributor fetches the run's stored bundle, verifies it against the
 * trusted key, pushes it and records export_distributions rows and export.distributed
 * events per target (workers/oci). A re-run after a crash may queue the job again: pushes
 * are idempotent (every blob and manifest is HEAD-checked) and the rows are upserts. */
#include <string.h>

#include "export/adapter.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "submit.h"

#define OCI_JOB_TYPE "oci_distribute"

int st_export_handoff(const st_export_env_t *env, const char *tenant, const char *run_id,
                      const json_t *run, st_error_t *err) {
  const json_t *dist = json_object_get(json_object_get(run, "settings"), "distribution");
  st_envelope_t e;
  st_buf_t id = ST_BUF_INIT;
  int rc;

  if (!dist || json_is_null(dist))
    return 0;
  if (!env->redis_url)
    return st_fail(err, ST_ECONFIG, "redis_url: needed to queue the distribution of export "
                   "run %s (its profile has distribution targets)", run_id);
  st_envelope_init(&e);
  if (st_buf_addf(&id, "oci-%s", run_id) || !(e.job_id = st_buf_detach(&id, NULL)) ||
      !(e.tenant = st_strdup(tenant)) || !(e.type = st_strdup(OCI_JOB_TYPE)) ||
      !(e.payload = json_deep_copy(dist)) ||
      json_object_set_new(e.payload, "run_id", json_string(run_id))) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  e.attempt = 1;
  if ((rc = st_queue_submit(env->redis_url, &e, env->max_envelope, err)))
    goto done;
  st_logkv(ST_LOG_INFO, "export distribution queued", "run_id", run_id, "job_id", e.job_id,
           NULL);
done:
  st_envelope_release(&e);
  st_buf_release(&id);
  return rc;
}
