/* worker.c: the `export_json` job descriptor. Payload {"run_id": uuid} (other keys of
 * st_export_plan_payload are accepted and ignored: the run row is the truth). The job's
 * tenant is the run's. Per job it opens the object store and the signer the
 * configuration names (signing_key is required: an export is always signed) and runs
 * st_export_json_run. A permanent failure, or a transient one on the last attempt, marks
 * the run failed with the reason; a cancel leaves it cancelled (the API set it). */
#include <string.h>

#include "export_json_int.h"
#include "worker.h"
#include "stella/log.h"

#define MAX_ATTEMPTS 3

static int validate(const json_t *payload, st_error_t *err) {
  const char *key;
  json_t *v;
  static const char *const known[] = {"run_id", "profile", "kind", "plan_digest", "tenant",
                                      "inputs", NULL};
  if (!st_export_run_id_valid(json_string_value(json_object_get(payload, "run_id"))))
    return st_fail(err, ST_EINVAL, "run_id: expected an export run id (UUID)");
  json_object_foreach((json_t *)payload, key, v) {
    int ok = 0;
    (void)v;
    for (const char *const *k = known; *k; k++)
      ok |= !strcmp(*k, key);
    if (!ok)
      return st_fail(err, ST_EINVAL, "%s: unknown key", key);
  }
  return 0;
}

static void progress(void *ud, double fraction, const char *note) {
  st_job_ctx_t *ctx = ud;
  if (ctx->progress)
    ctx->progress(ctx, fraction, note);
}

static int run(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err) {
  const char *tenant = job->env->tenant;
  const char *run_id = json_string_value(json_object_get(job->env->payload, "run_id"));
  st_export_json_env_t env;
  st_objstore_t *store = NULL;
  st_signer_t *signer = NULL;
  st_tsa_opts_t tsa;
  const char *key, *url;
  int rc;

  memset(&env, 0, sizeof(env));
  memset(&tsa, 0, sizeof(tsa));
  if (!ctx->cfg || !ctx->db)
    return st_fail(err, ST_ECONFIG, "export_json: needs pg_url (a Postgres pool)");
  if (!(key = st_config_str(ctx->cfg, "signing_key")))
    return st_fail(err, ST_ECONFIG, "signing_key: not set; exports are always signed");
  if ((rc = st_objstore_open(&store, ctx->cfg, err)) || (rc = st_signer_open(&signer, key, err)))
    goto done;
  if ((url = st_config_str(ctx->cfg, "tsa_url"))) {
    tsa.url = url;
    env.tsa = &tsa;
  }
  env.db = ctx->db;
  env.store = store;
  env.signer = signer;
  env.tmp_dir = st_config_str(ctx->cfg, "export_tmp_dir");
  env.cancel = &ctx->cancel;
  env.progress = progress;
  env.ud = ctx;
  rc = st_export_json_run(&env, tenant, run_id, err);
done:
  if (rc && rc != ST_ECANCELED &&
      (st_err_classify(rc) != ST_ERRCLASS_TRANSIENT || job->env->attempt >= MAX_ATTEMPTS)) {
    st_error_t e2 = ST_ERROR_INIT;
    if (st_export_run_set_state(ctx->db, tenant, run_id, "failed", st_error_text(err), &e2))
      st_warn("export run %s: cannot mark it failed: %s", run_id, st_error_text(&e2));
  }
  st_signer_free(signer);
  st_objstore_free(store);
  return rc;
}

const st_worker_t st_worker_export_json = {"export_json", validate, run, 0, MAX_ATTEMPTS};
