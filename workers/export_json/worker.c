/* worker.c: the `export_json` job descriptor. Payload {"run_id": uuid} (other keys of
 * st_export_plan_payload are accepted and ignored: the run row is the truth). The job's
 * tenant is the run's. Per job st_export_job (export/adapter.h) opens the object store and
 * the signer the configuration names (signing_key is required: an export is always
 * signed) and runs st_export_json_run. A permanent failure, a transient one on the last attempt, or the
 * job timeout marks the run failed with the reason; a user cancel leaves it cancelled (the
 * API set it); a shutdown leaves it running for the job's next delivery, which rebuilds it
 * (the recorded plan must still match). */
#include "export_json_int.h"
#include "worker.h"

#define MAX_ATTEMPTS 3

static int run_json(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err) {
  return st_export_job(job, ctx, MAX_ATTEMPTS, st_export_json_run, err);
}

const st_worker_t st_worker_export_json = {"export_json", st_export_payload_validate, run_json, 0,
                                           MAX_ATTEMPTS};
