/* routes_incident.c: incident mode per tenant (docs/evidence.md, evidence.h):
 *   POST   /incident   evidence:hold  {"reason", "extension_days"?} activates: 201, or 200
 *                                     with the active incident unchanged
 *   DELETE /incident   evidence:hold  deactivates: 200, 404 when none is active
 *   GET    /incident   evidence:read  {"tenant", "active", "incident"}
 * The change, its incident.* custody record (outbox: stella:events and stella:notify) and
 * the audit row commit in one tenant transaction (who.in_tx). The locker is the evidence
 * routes' own (st__evidence_locker). */
#include <string.h>

#include "api_internal.h"
#include "stella/evidence.h"
#include "stella/log.h"

typedef struct aud_s {
  st_api_req_t *req;
  const char *action;
} aud_t;

static int audit_tx(PGconn *c, void *arg, st_error_t *err) {
  aud_t *a = arg;
  int rc = st_api_audit(a->req, c, a->action, "incident", "ok");
  return rc ? st_fail(err, rc, "audit: cannot record %s", a->action) : 0;
}

static st_evidence_who_t who_of(st_api_req_t *req, aud_t *a) {
  st_evidence_who_t w = {st_api_req_auth(req)->tenant, st_api_req_auth(req)->actor,
                         st_api_req_id(req), audit_tx, a};
  return w;
}

static int reply(st_api_req_t *req, int rc, const st_error_t *err, unsigned status,
                 json_t *out) {
  if (rc == ST_EINVAL)
    rc = st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "%s", err->msg);
  else if (rc == ST_ENOENT)
    rc = st_api_reply_problem(req, ST_API_P_NOT_FOUND, "no active incident");
  else if (rc) {
    st_logkv(ST_LOG_ERROR, "incident", "error", st_error_text(err), NULL);
    rc = st_api_reply_error(req, rc, NULL);
  } else {
    rc = st_api_reply_json(req, status, out);
  }
  json_decref(out);
  return rc;
}

static int incident_post(st_api_req_t *req, void *arg) {
  json_t *in = st_api_req_json(req), *days, *out = NULL;
  aud_t a = {req, "incident.activate"};
  st_evidence_who_t w = who_of(req, &a);
  st_error_t err = ST_ERROR_INIT;
  const char *k;
  json_t *v;
  int created = 0, rc, ext = -1;

  if (!json_is_object(in))
    return st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "body: expected an object");
  json_object_foreach(in, k, v) {
    if (strcmp(k, "reason") && strcmp(k, "extension_days"))
      return st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "%.64s: unknown key", k);
  }
  if ((days = json_object_get(in, "extension_days"))) {
    if (!json_is_integer(days) || json_integer_value(days) < 0 ||
        json_integer_value(days) > 36500)
      return st_api_reply_problem(req, ST_API_P_UNPROCESSABLE,
                                  "extension_days: want an integer 0..36500");
    ext = (int)json_integer_value(days);
  }
  rc = st_evidence_incident_on(st__evidence_locker(arg), &w,
                               json_string_value(json_object_get(in, "reason")), ext, &created,
                               &out, &err);
  return reply(req, rc, &err, created ? 201 : 200, out);
}

static int incident_delete(st_api_req_t *req, void *arg) {
  aud_t a = {req, "incident.deactivate"};
  st_evidence_who_t w = who_of(req, &a);
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  int rc = st_evidence_incident_off(st__evidence_locker(arg), &w, &out, &err);
  return reply(req, rc, &err, 200, out);
}

static int incident_get(st_api_req_t *req, void *arg) {
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  int rc = st_evidence_incident_status(st__evidence_locker(arg), st_api_req_auth(req)->tenant,
                                       &out, &err);
  return reply(req, rc, &err, 200, out);
}

int st__incident_routes(st_api_t *api, struct st__evidence_api_s *ev, st_error_t *err) {
  const st_api_route_t routes[] = {
      {"POST", "/incident", "evidence:hold", 0, ST_API_BODY_JSON, 0, incident_post, NULL, ev},
      {"DELETE", "/incident", "evidence:hold", 0, ST_API_BODY_NONE, 0, incident_delete, NULL,
       ev},
      {"GET", "/incident", "evidence:read", 0, ST_API_BODY_NONE, 0, incident_get, NULL, ev},
  };
  return st_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]), err);
}
