/* routes_export.c: Export Center profiles and runs (scopes export:viewer to read,
 * export:operator to change; every change writes its audit row in the transaction of the
 * change, through st_export_hook_t).
 *
 *   GET    /exports/profiles               list
 *   POST   /exports/profiles               create (201)
 *   GET    /exports/profiles/{name}        read
 *   PUT    /exports/profiles/{name}        replace (the body's name, if any, must match)
 *   DELETE /exports/profiles/{name}        delete (409 while a run is active)
 *   POST   /exports/runs                   {"profile": N}: plan, create, enqueue (202)
 *   GET    /exports/runs[?profile=&limit=] newest first
 *   GET    /exports/runs/{id}              one run
 *   POST   /exports/runs/{id}/cancel       cancel (409 once final)
 *
 * POST /exports/runs plans first, so an unsatisfiable scope (422) or a refused
 * cross-tenant source (403, audited by the planner) creates nothing; then the run row
 * (409 for a second active run of a single-flight profile or past export_max_active),
 * its plan, and the job on the queue (st_export_job_type: export_json, trivy_db,
 * trivy_java_db, mirror). If the job cannot be queued the run is
 * marked failed and the answer is 503. Idempotency-Key replays the first answer (api
 * store) and also names the run (export_runs.idempotency_key), so a retry after a lost
 * reply finds the same run. Other tenants' profiles and runs answer 404. */
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "export/adapter.h"
#include "routes_export.h"
#include "api_store.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "submit.h"

typedef struct audit_s {
  st_api_req_t *req;
  const char *action;
  char resource[160];
} audit_t;

static int audit_fn(PGconn *c, void *arg, st_error_t *err) {
  audit_t *a = arg;
  int rc = st_api_audit(a->req, c, a->action, a->resource, "ok");
  return rc ? st_fail(err, rc, "audit: cannot record %s", a->action) : 0;
}

/* Reply for a failed export call: the module's message where it names the caller's
 * input, the problem's title otherwise (and the detail in the log). */
static int fail(st_api_req_t *req, int rc, const st_error_t *err) {
  switch (rc) {
  case ST_EINVAL:
    return st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "%s", err->msg);
  case ST_ENOENT:
  case ST_EEXIST:
  case ST_ECONFLICT:
  case ST_EPERM:
  case ST_EUNSUPPORTED:
    return st_api_reply_error(req, rc, err->msg);
  default:
    st_logkv(ST_LOG_ERROR, "export api", "error", st_error_text(err), NULL);
    return st_api_reply_error(req, rc, NULL);
  }
}

static const char *tenant_of(st_api_req_t *req) { return st_api_req_auth(req)->tenant; }

static int profiles_list(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  json_t *list = NULL, *body;
  int rc = st_export_profile_list(x->db, tenant_of(req), &list, &err);
  if (rc)
    return fail(req, rc, &err);
  body = json_pack("{s:o}", "profiles", list);
  rc = st_api_reply_json(req, 200, body);
  json_decref(body);
  return rc;
}

static int reply_profile(st_api_req_t *req, st__export_api_t *x, const char *name,
                         unsigned status) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  json_t *j = NULL;
  int rc;
  st_export_profile_init(&p);
  if ((rc = st_export_profile_get(x->db, tenant_of(req), name, &p, &err)) ||
      (rc = st_export_profile_to_json(&p, &j, &err)))
    rc = fail(req, rc, &err);
  else
    rc = st_api_reply_json(req, status, j);
  json_decref(j);
  st_export_profile_release(&p);
  return rc;
}

static int profile_get(st_api_req_t *req, void *arg) {
  return reply_profile(req, arg, st_api_req_param(req, "name"), 200);
}

/* create (name from the body) or update (name from the path) */
static int profile_write(st_api_req_t *req, st__export_api_t *x, const char *path_name) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  json_t *body = st_api_req_json(req), *j = NULL;
  audit_t a = {req, path_name ? "export.profile.update" : "export.profile.create", ""};
  st_export_hook_t hook = {audit_fn, &a};
  int rc;

  st_export_profile_init(&p);
  if (!json_is_object(body)) {
    rc = st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "expected a profile object");
    goto done;
  }
  if (path_name) {
    const json_t *n = json_object_get(body, "name");
    if (n && (!json_is_string(n) || strcmp(json_string_value(n), path_name))) {
      rc = st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "name: must match the path");
      goto done;
    }
    if (!(j = json_deep_copy(body)) || json_object_set_new(j, "name", json_string(path_name))) {
      rc = st_api_reply_error(req, ST_ENOMEM, NULL);
      goto done;
    }
    body = j;
  }
  if ((rc = st_export_profile_from_json(body, &p, &err))) {
    rc = fail(req, rc, &err);
    goto done;
  }
  snprintf(a.resource, sizeof(a.resource), "export_profiles/%s", p.name);
  rc = path_name ? st_export_profile_update(x->db, tenant_of(req), &p, &hook, &err)
                 : st_export_profile_create(x->db, tenant_of(req), &p, &hook, &err);
  rc = rc ? fail(req, rc, &err) : reply_profile(req, x, p.name, path_name ? 200 : 201);
done:
  json_decref(j);
  st_export_profile_release(&p);
  return rc;
}

static int profile_create(st_api_req_t *req, void *arg) { return profile_write(req, arg, NULL); }

static int profile_update(st_api_req_t *req, void *arg) {
  return profile_write(req, arg, st_api_req_param(req, "name"));
}

static int profile_delete(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  audit_t a = {req, "export.profile.delete", ""};
  st_export_hook_t hook = {audit_fn, &a};
  const char *name = st_api_req_param(req, "name");
  int rc;
  snprintf(a.resource, sizeof(a.resource), "export_profiles/%.100s", name);
  if ((rc = st_export_profile_delete(x->db, tenant_of(req), name, &hook, &err)))
    return fail(req, rc, &err);
  return st_api_reply_bytes(req, 204, NULL, NULL, 0);
}

static int reply_run(st_api_req_t *req, st__export_api_t *x, const char *run_id,
                     unsigned status) {
  st_error_t err = ST_ERROR_INIT;
  json_t *run = NULL;
  int rc = st_export_run_get(x->db, tenant_of(req), run_id, &run, &err);
  if (rc)
    return fail(req, rc, &err);
  json_object_del(run, "settings");
  rc = st_api_reply_json(req, status, run);
  json_decref(run);
  return rc;
}

/* Queue the job of a planned run (export_json, or trivy_db / trivy_java_db / mirror by kind). */
static int enqueue(st_api_req_t *req, st__export_api_t *x, const char *run_id, const char *kind,
                   st_error_t *err) {
  st_envelope_t env;
  char job_id[64];
  int rc;
  st_envelope_init(&env);
  snprintf(job_id, sizeof(job_id), "export-%s", run_id);
  env.job_id = st_strdup(job_id);
  env.tenant = st_strdup(tenant_of(req));
  env.type = st_strdup(st_export_job_type(kind));
  env.trace = st_strdup(st_api_req_traceparent(req));
  env.attempt = 1;
  env.payload = json_pack("{s:s}", "run_id", run_id);
  if (!env.job_id || !env.tenant || !env.type || !env.trace || !env.payload)
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
  else
    rc = st_queue_submit(x->redis_url, &env, x->max_envelope, err);
  st_envelope_release(&env);
  return rc;
}

static int run_create(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  st_export_profile_t p;
  st_export_plan_t plan;
  json_t *body = st_api_req_json(req), *run = NULL;
  const char *name = json_string_value(json_object_get(body, "profile"));
  const char *idem = st_api_req_header(req, "Idempotency-Key");
  audit_t a = {req, "export.run.create", ""};
  st_export_hook_t hook = {audit_fn, &a};
  char run_id[ST_EXPORT_RUN_ID_LEN + 1], loc[96];
  int rc;

  memset(&plan, 0, sizeof(plan));
  st_export_profile_init(&p);
  if (!json_is_object(body) || !name || json_object_size(body) != 1) {
    rc = st_api_reply_problem(req, ST_API_P_UNPROCESSABLE,
                              "expected {\"profile\": \"<name>\"} and nothing else");
    goto done;
  }
  if (st_api_idempotency_begin(req)) {
    rc = 0;
    goto done;
  }
  if ((rc = st_export_profile_get(x->db, tenant_of(req), name, &p, &err)) ||
      (rc = st_export_plan_build(x->db, tenant_of(req), &p, &plan, &err))) {
    rc = rc == ST_ENOENT && strstr(err.msg, "scope is empty")
             ? st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "%s", err.msg)
             : fail(req, rc, &err);
    goto done;
  }
  snprintf(a.resource, sizeof(a.resource), "export_profiles/%s", p.name);
  if ((rc = st_export_run_start(x->db, tenant_of(req), &p, idem, x->max_active, &hook, run_id,
                                &err)) ||
      (rc = st_export_run_get(x->db, tenant_of(req), run_id, &run, &err))) {
    rc = fail(req, rc, &err);
    goto done;
  }
  if (!strcmp(json_string_value(json_object_get(run, "state")), "requested")) {
    if ((rc = st_export_plan_record(x->db, tenant_of(req), run_id, &plan, &err)) ||
        (rc = enqueue(req, x, run_id, p.kind, &err))) {
      st_error_t e2 = ST_ERROR_INIT;
      st_logkv(ST_LOG_ERROR, "export run not started", "run_id", run_id, "error",
               st_error_text(&err), NULL);
      if (st_export_run_set_state(x->db, tenant_of(req), run_id, "failed", st_error_text(&err),
                                  &e2))
        st_logkv(ST_LOG_ERROR, "export run not marked failed", "run_id", run_id, NULL);
      rc = st_api_reply_problem(req, ST_API_P_UNAVAILABLE, "the export job could not be "
                                "queued; run %s is failed, retry with a new request", run_id);
      goto done;
    }
  }
  snprintf(loc, sizeof(loc), "/exports/runs/%s", run_id);
  if ((rc = st_api_add_header(req, "Location", loc)))
    goto done;
  rc = reply_run(req, x, run_id, 202);
done:
  json_decref(run);
  st_export_plan_release(&plan);
  st_export_profile_release(&p);
  return rc;
}

static int runs_list(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  const char *lim = st_api_req_query(req, "limit");
  char *end = NULL;
  long n = lim ? strtol(lim, &end, 10) : 50;
  json_t *list = NULL, *body;
  int rc;
  if (lim && (end == lim || *end || n < 1 || n > 500))
    return st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "limit: expected 1..500");
  if ((rc = st_export_run_list(x->db, tenant_of(req), st_api_req_query(req, "profile"), (int)n,
                               &list, &err)))
    return fail(req, rc, &err);
  body = json_pack("{s:o}", "runs", list);
  rc = st_api_reply_json(req, 200, body);
  json_decref(body);
  return rc;
}

static int run_get(st_api_req_t *req, void *arg) {
  return reply_run(req, arg, st_api_req_param(req, "id"), 200);
}

static int run_cancel(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  const char *id = st_api_req_param(req, "id");
  audit_t a = {req, "export.run.cancel", ""};
  st_export_hook_t hook = {audit_fn, &a};
  int rc;
  snprintf(a.resource, sizeof(a.resource), "exports/runs/%.40s", id);
  if ((rc = st_export_run_cancel(x->db, tenant_of(req), id, &hook, &err)))
    return fail(req, rc, &err);
  return reply_run(req, x, id, 200);
}

#define V "export:viewer"
#define O "export:operator"

int st__export_routes(st_api_t *api, const st_config_t *cfg, st_db_pool_t *db,
                      st__export_api_t **out, st_error_t *err) {
  st__export_api_t *x = NULL;
  const char *key = st_config_str(cfg, "signing_key");
  const char *tmp = st_config_str(cfg, "export_tmp_dir");
  int rc;

  *out = NULL;
  if (!(x = st_calloc(1, sizeof(*x))))
    return st_fail(err, ST_ENOMEM, "export api: out of memory");
  pthread_mutex_init(&x->lock, NULL);
  pthread_cond_init(&x->cond, NULL);
  x->max_active = (int)st_config_int(cfg, "export_max_active");
  x->max_envelope = (size_t)st_config_int(cfg, "max_envelope_bytes");
  if (!(x->redis_url = st_strdup(st_config_str(cfg, "redis_url"))) ||
      !(x->tmp_dir = st_strdup(tmp ? tmp : "/tmp"))) {
    rc = st_fail(err, ST_ENOMEM, "export api: out of memory");
    goto done;
  }
  x->db = db;
  if ((rc = st_objstore_open(&x->store, cfg, err)) ||
      (key && (rc = st_signer_open(&x->signer, key, err))))
    goto done;
  {
    const st_api_route_t routes[] = {
        {"GET", "/exports/profiles", V, 0, ST_API_BODY_NONE, 0, profiles_list, NULL, x},
        {"POST", "/exports/profiles", O, 0, ST_API_BODY_JSON, 0, profile_create, NULL, x},
        {"GET", "/exports/profiles/{name}", V, 0, ST_API_BODY_NONE, 0, profile_get, NULL, x},
        {"PUT", "/exports/profiles/{name}", O, 0, ST_API_BODY_JSON, 0, profile_update, NULL, x},
        {"DELETE", "/exports/profiles/{name}", O, 0, ST_API_BODY_NONE, 0, profile_delete, NULL,
         x},
        {"POST", "/exports/runs", O, 0, ST_API_BODY_JSON, 0, run_create, NULL, x},
        {"GET", "/exports/runs", V, 0, ST_API_BODY_NONE, 0, runs_list, NULL, x},
        {"GET", "/exports/runs/{id}", V, 0, ST_API_BODY_NONE, 0, run_get, NULL, x},
        {"POST", "/exports/runs/{id}/cancel", O, 0, ST_API_BODY_NONE, 0, run_cancel, NULL, x},
        {"GET", "/exports/runs/{id}/download", V, 0, ST_API_BODY_NONE, 0, st__export_download,
         NULL, x},
        {"GET", "/exports/runs/{id}/events", V, 0, ST_API_BODY_NONE, 0, st__export_events, NULL,
         x},
        {"GET", "/exports/{id}/attestation", V, 0, ST_API_BODY_NONE, 0, st__export_attestation,
         NULL, x},
        {"POST", "/exports/{id}/verify", V, 0, ST_API_BODY_NONE, 0, st__export_verify, NULL, x},
    };
    rc = st_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]), err);
  }
done:
  if (rc)
    st__export_routes_free(x);
  else
    *out = x;
  return rc;
}

void st__export_routes_free(st__export_api_t *x) {
  if (!x)
    return;
  pthread_mutex_lock(&x->lock);
  x->stopping = 1;
  while (x->streams > 0)
    pthread_cond_wait(&x->cond, &x->lock);
  pthread_mutex_unlock(&x->lock);
  pthread_mutex_destroy(&x->lock);
  pthread_cond_destroy(&x->cond);
  st_objstore_free(x->store);
  st_signer_free(x->signer);
  st_free(x->redis_url);
  st_free(x->tmp_dir);
  st_free(x);
}
