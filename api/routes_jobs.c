/* routes_jobs.c: POST /jobs, the API's way to submit work to the job queue.
 *
 * Body {"type": "<worker>", "payload": {...}}; the worker's own validate() checks the
 * payload. One tenant transaction inserts the queued jobs row (the Idempotency-Key, when
 * given, also goes into jobs.idempotency_key, so a retry after a crash that lost the
 * stored reply still finds the job instead of creating a second one), the job.queued
 * outbox event and the audit row, and XADDs the envelope (with the request's traceparent)
 * as its last step before COMMIT: a failed XADD rolls everything back (503), and a lost
 * COMMIT after a good XADD leaves an entry whose job_id the workers' Postgres sink turns
 * into the row (an entry XADDed twice by a retried transaction is deduplicated on pickup
 * by job_id). Redis is reached with a short-lived blocking hiredis connection (st_queue_xadd) on the
 * server thread: one per request, no shared state. */
#include <stdio.h>
#include <string.h>
#include <time.h>


#include "api_internal.h"
#include "envelope.h"
#include "registry.h"
#include "sink.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/sha256.h"
#include "submit.h"
#include "transport.h"

typedef struct submit_s {
  st_api_req_t *req;
  const st_envelope_t *env;
  const char *payload_json;
  const st_buf_t *bytes;
  char *existing; /* job id already holding the idempotency key */
} submit_t;

static int xadd(const st_api_t *api, const char *type, const st_buf_t *bytes,
                st_error_t *err) {
  return st_queue_xadd(api->redis_url, type, bytes->data, bytes->len, err);
}

static int outbox_queued(PGconn *c, const st_envelope_t *env, st_error_t *err) {
  struct timespec now;
  char id[ST_SHA256_HEX_LEN + 1];
  char *text = NULL;
  st_job_event_t ev = {env, 1, "queued", "queued", "job.queued", 0, NULL};
  int rc;

  clock_gettime(CLOCK_REALTIME, &now);
  ev.at_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
  if ((rc = st_job_event_make(&ev, id, &text, err)) == 0) {
    const char *p[4] = {id, env->tenant, "job.queued", text};
    rc = st_db_exec(c,
                    "INSERT INTO outbox (event_id, tenant_id, type, payload)"
                    " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                    4, p, NULL, err);
  }
  free(text);
  return rc;
}

static int submit_tx(PGconn *c, void *arg, st_error_t *err) {
  submit_t *s = arg;
  const st_envelope_t *env = s->env;
  const char *p[5] = {env->tenant, env->job_id, env->type, env->idempotency_key,
                      s->payload_json};
  char resource[160];
  PGresult *res = NULL;
  long long n = 0;
  int rc;

  st_free(s->existing);
  s->existing = NULL;
  if ((rc = st_db_exec_count(c,
                             "INSERT INTO jobs (tenant_id, job_id, type, idempotency_key, payload)"
                             " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
                             5, p, &n, err)))
    return rc;
  if (!n) { /* the job id is fresh: the key is held by an earlier job */
    if ((rc = st_db_exec(c,
                         "SELECT job_id FROM jobs WHERE tenant_id = $1 AND type = $3"
                         " AND idempotency_key = $4",
                         4, p, &res, err)))
      return rc;
    if (PQntuples(res) != 1)
      rc = st_fail(err, ST_ECONFLICT, "jobs: job %s exists", env->job_id);
    else if (!(s->existing = st_strdup(PQgetvalue(res, 0, 0))))
      rc = st_fail(err, ST_ENOMEM, "jobs: out of memory");
    PQclear(res);
    if (rc)
      return rc;
    snprintf(resource, sizeof(resource), "jobs/%s", s->existing);
    return st_api_audit(s->req, c, "job.submit.existing", resource, "ok");
  }
  snprintf(resource, sizeof(resource), "jobs/%s", env->job_id);
  if ((rc = outbox_queued(c, env, err)) ||
      (rc = st_api_audit(s->req, c, "job.submit", resource, "ok")))
    return rc;
  return xadd(s->req->api, env->type, s->bytes, err); /* last: nothing after can fail */
}

static int bad(st_api_req_t *req, const char *detail) {
  return st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "%s", detail);
}

static int jobs_create(st_api_req_t *req, void *arg) {
  json_t *in = st_api_req_json(req), *payload, *out = NULL;
  const char *idem = st_api_req_header(req, "Idempotency-Key");
  const st_worker_t *w;
  const char *type, *k;
  st_envelope_t env;
  st_buf_t bytes = ST_BUF_INIT;
  submit_t s = {req, &env, NULL, &bytes, NULL};
  st_error_t err = ST_ERROR_INIT;
  json_t *v;
  int rc = 0;

  st_envelope_init(&env);
  if (st_api_idempotency_begin(req))
    return 0;
  if (!json_is_object(in)) {
    rc = bad(req, "body: expected a JSON object");
    goto done;
  }
  json_object_foreach(in, k, v) {
    if (strcmp(k, "type") && strcmp(k, "payload")) {
      rc = st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "%s: unknown key", k);
      goto done;
    }
  }
  type = json_string_value(json_object_get(in, "type"));
  payload = json_object_get(in, "payload");
  if (!type) {
    rc = bad(req, "type: required string");
    goto done;
  }
  if (payload && !json_is_object(payload)) {
    rc = bad(req, "payload: expected an object");
    goto done;
  }
  if (idem && strlen(idem) > ST_ENVELOPE_MAX_ID) {
    rc = bad(req, "Idempotency-Key: at most 128 characters for jobs");
    goto done;
  }
  if (!(w = st_worker_find(type))) {
    rc = st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "type: unknown job type");
    goto done;
  }
  env.payload = payload ? json_deep_copy(payload) : json_object();
  if (!env.payload) {
    rc = ST_ENOMEM;
    goto done;
  }
  if (w->validate && w->validate(env.payload, &err)) {
    rc = st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "payload: %s", st_error_text(&err));
    goto done;
  }
  env.attempt = 1;
  if (!(env.type = st_strdup(type)) || !(env.tenant = st_strdup(st_api_req_auth(req)->tenant)) ||
      !(env.trace = st_strdup(st_api_req_traceparent(req))) ||
      (idem && !(env.idempotency_key = st_strdup(idem))) ||
      !(s.payload_json = json_dumps(env.payload, JSON_COMPACT))) {
    rc = ST_ENOMEM;
    goto done;
  }
  if ((rc = st_envelope_new_id(&env, &err)) ||
      (rc = st_envelope_encode(&env, req->api->envelope_max, &bytes, &err))) {
    if (rc == ST_ETOOBIG)
      rc = st_api_reply_problem(req, ST_API_P_PAYLOAD_TOO_LARGE, "the job envelope is too large");
    else if (rc == ST_EINVAL)
      rc = st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "%s", st_error_text(&err));
    goto done;
  }
  if ((rc = st_api_tx(req, 0, submit_tx, &s, &err))) {
    st_logkv(ST_LOG_ERROR, "job submit failed", "error", st_error_text(&err), NULL);
    goto done;
  }
  out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "job_id", s.existing ? s.existing : env.job_id,
                  "tenant", env.tenant, "type", env.type, "state", "queued", "traceparent",
                  env.trace);
  rc = out ? st_api_reply_json(req, s.existing ? 200 : 202, out) : ST_ENOMEM;
done:
  json_decref(out);
  free((char *)s.payload_json);
  st_free(s.existing);
  st_buf_release(&bytes);
  st_envelope_release(&env);
  return rc;
}

int st__jobs_routes(st_api_t *api, const st_config_t *cfg, st_error_t *err) {
  const st_api_route_t routes[] = {
      {"POST", "/jobs", "export:operator", 0, ST_API_BODY_JSON, 0, jobs_create, NULL, api},
  };
  api->envelope_max = (size_t)st_config_int(cfg, "max_envelope_bytes");
  if (!(api->redis_url = st_strdup(st_config_str(cfg, "redis_url"))))
    return st_fail(err, ST_ENOMEM, "api: out of memory");
  return st_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]), err);
}
