/* trivy_worker.c: the job descriptors `trivy_db` and `trivy_java_db`, the Trivy adapters
 * of the Export Center (one folder, two job types: the API queues runs of profile kind
 * trivy:db and trivy:java-db under them, st_export_job_type). Payload as export_json's:
 * {"run_id": uuid} (the plan payload's other keys accepted and ignored). st_export_job
 * opens the store and signer and marks the run failed on a permanent failure, the last
 * transient attempt or a timeout; st_trivy_export_run does the rest. */
#include "export/adapter.h"
#include "registry.h"
#include "trivy.h"

#define MAX_ATTEMPTS 3

static int run(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err) {
  return st_export_job(job, ctx, MAX_ATTEMPTS, st_trivy_export_run, err);
}

const st_worker_t st_worker_trivy_db = {"trivy_db", st_export_payload_validate, run, 0,
                                        MAX_ATTEMPTS};
const st_worker_t st_worker_trivy_java_db = {"trivy_java_db", st_export_payload_validate, run,
                                             0, MAX_ATTEMPTS};
