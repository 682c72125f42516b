/* routes_evidence_export.c: POST /evidence/{id}/export (evidence:read): the portable
 * sealed export of a stored bundle (evidence_port.h), answered as the .tgz itself
 * (application/gzip; ETag and X-Stella-Export-Sha256 = its SHA-256; Range honoured).
 * The export is sealed into a private temporary file, which is opened for the reply and
 * unlinked at once. The evidence.exported custody record and the audit row commit in one
 * tenant transaction before anything is sent; another tenant's id is a 404, a bundle not
 * sealed yet a 409, a locker without signing_key a 503. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"
#include "routes_evidence_export.h"
#include "stella/evidence_port.h"
#include "stella/log.h"

typedef struct audit_s {
  st_api_req_t *req;
  char resource[160];
} audit_t;

static int audit_tx(PGconn *c, void *arg, st_error_t *err) {
  audit_t *a = arg;
  int rc = st_api_audit(a->req, c, "evidence.export", a->resource, "ok");
  return rc ? st_fail(err, rc, "audit: cannot record the export") : 0;
}

static int export_post(st_api_req_t *req, void *arg) {
  st_evidence_t *ev = arg;
  const char *id = st_api_req_param(req, "id");
  const st_api_auth_t *auth = st_api_req_auth(req);
  audit_t a = {req, ""};
  st_evidence_who_t who = {auth->tenant, auth->actor, st_api_req_id(req), audit_tx, &a};
  st_error_t err = ST_ERROR_INIT;
  st_buf_t path = ST_BUF_INIT, disp = ST_BUF_INIT, etag = ST_BUF_INIT;
  json_t *facts = NULL;
  const char *sha;
  int rc, fd;

  snprintf(a.resource, sizeof(a.resource), "evidence/%.128s/export", id);
  if (st_buf_addf(&path, "%s/stella-export-XXXXXX", req->api->tmp_dir)) {
    rc = ST_ENOMEM;
    goto done;
  }
  if ((fd = mkstemp(path.data)) < 0) {
    st_buf_reset(&path);
    rc = ST_EIO;
    goto done;
  }
  close(fd);
  if ((rc = st_evidence_export(ev, &who, id, path.data, &facts, &err))) {
    if (rc == ST_ENOENT)
      rc = st_api_reply_problem(req, ST_API_P_NOT_FOUND, NULL);
    else if (rc == ST_ECONFLICT)
      rc = st_api_reply_problem(req, ST_API_P_CONFLICT, "the bundle is not sealed yet");
    else if (rc == ST_ECONFIG)
      rc = st_api_reply_problem(req, ST_API_P_UNAVAILABLE, "this locker has no signing key");
    else {
      st_logkv(ST_LOG_ERROR, "evidence export", "bundle_id", id, "error", st_error_text(&err),
               NULL);
      rc = st_api_reply_error(req, rc, NULL);
    }
    goto done;
  }
  sha = json_string_value(json_object_get(facts, "sha256"));
  if (st_buf_addf(&disp, "attachment; filename=\"%s.export.tgz\"", id) ||
      st_buf_addf(&etag, "\"%s\"", sha)) {
    rc = ST_ENOMEM;
    goto done;
  }
  if ((rc = st_api_add_header(req, "Content-Disposition", disp.data)) ||
      (rc = st_api_add_header(req, "ETag", etag.data)) ||
      (rc = st_api_add_header(req, "X-Stella-Export-Sha256", sha)))
    goto done;
  rc = st_api_reply_file(req, path.data, "application/gzip");
done:
  if (path.len)
    unlink(path.data); /* the reply holds its own descriptor */
  st_buf_release(&path);
  st_buf_release(&disp);
  st_buf_release(&etag);
  json_decref(facts);
  return rc;
}

int st__evidence_export_routes(st_api_t *api, st_evidence_t *ev, st_error_t *err) {
  const st_api_route_t routes[] = {
      {"POST", "/evidence/{id}/export", "evidence:read", 0, ST_API_BODY_NONE, 0, export_post, NULL,
       ev},
  };
  return st_api_add_routes(api, routes, 1, err);
}
