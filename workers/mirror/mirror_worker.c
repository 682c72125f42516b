/* mirror_worker.c: the `mirror` job descriptor. Payload {"run_id": uuid, "base_run"?: uuid}
 * for a run the API (or `stella job submit`) created, or {"profile": NAME, "base_run"?}
 * (what a cron schedule submits: `stella schedule add --type mirror --payload
 * '{"profile":"nightly"}'`), which starts a run of that mirror profile first (the job id
 * is its idempotency key, so a redelivered job reuses the run). Failure handling is the
 * JSON adapters': permanent failures, the last transient attempt and timeouts mark the run
 * failed; a user cancel leaves it cancelled; a shutdown leaves it for the next delivery. */
#include <string.h>

#include "mirror_export.h"

#define MAX_ATTEMPTS 3

static int validate(const json_t *payload, st_error_t *err) {
  const char *key, *base = json_string_value(json_object_get(payload, "base_run"));
  const json_t *run = json_object_get(payload, "run_id"),
               *prof = json_object_get(payload, "profile");
  json_t *v;
  if (!run == !prof)
    return st_fail(err, ST_EINVAL, "run_id: give run_id (an export run) or profile, not both");
  if (run && !st_export_run_id_valid(json_string_value(run)))
    return st_fail(err, ST_EINVAL, "run_id: expected an export run id (UUID)");
  if (prof && (!json_is_string(prof) || !json_string_length(prof) || json_string_length(prof) > 64))
    return st_fail(err, ST_EINVAL, "profile: expected a profile name");
  if (json_object_get(payload, "base_run") && !st_export_run_id_valid(base))
    return st_fail(err, ST_EINVAL, "base_run: expected an export run id (UUID)");
  json_object_foreach((json_t *)payload, key, v) {
    (void)v;
    if (strcmp(key, "run_id") && strcmp(key, "profile") && strcmp(key, "base_run") &&
        strcmp(key, "kind") && strcmp(key, "plan_digest") && strcmp(key, "inputs") &&
        strcmp(key, "tenant"))
      return st_fail(err, ST_EINVAL, "%s: unknown key", key);
  }
  return 0;
}

/* {"profile": N}: start a run of that mirror profile (idempotent on the job id). */
static int start_run(st_job_t *job, st_job_ctx_t *ctx, const char *name,
                     char run_id[ST_EXPORT_RUN_ID_LEN + 1], st_error_t *err) {
  st_export_profile_t p;
  int rc;
  st_export_profile_init(&p);
  if (!(rc = st_export_profile_get(ctx->db, job->env->tenant, name, &p, err))) {
    if (strncmp(p.kind, "mirror:", 7))
      rc = st_fail(err, ST_EINVAL, "profile: %s is a %s profile, not a mirror", name, p.kind);
    else
      rc = st_export_run_start(ctx->db, job->env->tenant, &p, job->env->job_id,
                               ST_EXPORT_ACTIVE_DEFAULT, NULL, run_id, err);
  }
  st_export_profile_release(&p);
  return rc;
}

typedef struct args_s {
  st_mirror_opts_t ttl;
  const char *base_run;
} args_t;

static int adapter(const st_export_env_t *env, const char *tenant, const char *run_id, void *ud,
                   st_error_t *err) {
  const args_t *a = ud;
  return st_mirror_export_run(env, &a->ttl, tenant, run_id, a->base_run, err);
}

static int run(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err) {
  const json_t *pl = job->env->payload;
  const char *name = json_string_value(json_object_get(pl, "profile"));
  char run_id[ST_EXPORT_RUN_ID_LEN + 1] = "";
  args_t a;
  int rc;

  memset(&a, 0, sizeof(a));
  if (!ctx->cfg || !ctx->db)
    return st_fail(err, ST_ECONFIG, "mirror: needs pg_url (a Postgres pool)");
  if (name && (rc = start_run(job, ctx, name, run_id, err)))
    return rc;
  if (!name)
    snprintf(run_id, sizeof(run_id), "%s", json_string_value(json_object_get(pl, "run_id")));
  a.ttl.ttl_timestamp = st_config_int(ctx->cfg, "mirror_timestamp_ttl_s");
  a.ttl.ttl_metadata = st_config_int(ctx->cfg, "mirror_metadata_ttl_s");
  a.ttl.ttl_root = st_config_int(ctx->cfg, "mirror_root_ttl_s");
  a.base_run = json_string_value(json_object_get(pl, "base_run"));
  return st_export_job_run(job, ctx, MAX_ATTEMPTS, run_id, adapter, &a, err);
}

const st_worker_t st_worker_mirror = {"mirror", validate, run, 0, MAX_ATTEMPTS};
