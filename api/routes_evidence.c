/* routes_evidence.c: the Evidence Locker's REST routes (docs/api.md, evidence.h):
 *   PUT    /evidence/artifacts            evidence:write  body streamed to a spool file,
 *                                          hashed, quota charged, stored content-addressed
 *   POST   /evidence/snapshot             evidence:write  pending row + snapshot job (202)
 *   GET    /evidence/{id}                 evidence:read   description (custody: accessed)
 *   GET    /evidence/{id}/download        evidence:read   the .tgz, Range and ETag
 *   POST   /evidence/verify[?id=]         evidence:read   uploaded bundle or stored one
 *   POST|DELETE|GET /evidence/hold/{case_id}  evidence:hold
 * Every effect commits with its audit row and custody record in one tenant transaction
 * (st_api_tx); other tenants' ids answer 404 (RLS: their rows do not exist here). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"
#include "api_store.h"
#include "envelope.h"
#include "routes_evidence_export.h"
#include "stella/bundle.h"
#include "stella/evidence.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/sha256.h"
#include "submit.h"

typedef struct st__evidence_api_s {
  st_evidence_t *ev;
  st_signer_t *signer; /* the public half is the trusted key of /evidence/verify */
  char *redis_url;
  size_t max_envelope;
} evapi_t;

static const char *tenant_of(st_api_req_t *req) { return st_api_req_auth(req)->tenant; }

static st_evidence_who_t who_of(st_api_req_t *req) {
  st_evidence_who_t w = {tenant_of(req), st_api_req_auth(req)->actor, st_api_req_id(req), NULL,
                         NULL};
  return w;
}

static int fail(st_api_req_t *req, int rc, const st_error_t *err) {
  switch (rc) {
  case ST_EINVAL:
    return st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "%s", err->msg);
  case ST_ENOENT:
    return st_api_reply_problem(req, ST_API_P_NOT_FOUND, NULL);
  default:
    st_logkv(ST_LOG_ERROR, "evidence", "error", st_error_text(err), NULL);
    return st_api_reply_error(req, rc, NULL);
  }
}

/* ---- audit + custody in one transaction ---- */

typedef struct act_s {
  evapi_t *x;
  st_api_req_t *req;
  const char *action, *event, *bundle_id, *sha256;
  char resource[200];
} act_t;

static int act_tx(PGconn *c, void *arg, st_error_t *err) {
  act_t *a = arg;
  st_evidence_who_t w = who_of(a->req);
  int rc;
  if (a->event && (rc = st_evidence_custody_append(a->x->ev, c, &w, a->event, a->bundle_id,
                                                   a->sha256, NULL, err)))
    return rc;
  rc = st_api_audit(a->req, c, a->action, a->resource, "ok");
  return rc ? st_fail(err, rc, "audit: cannot record %s", a->action) : 0;
}

static int audit_only(PGconn *c, void *arg, st_error_t *err) {
  act_t *a = arg;
  int rc = st_api_audit(a->req, c, a->action, a->resource, "ok");
  return rc ? st_fail(err, rc, "audit: cannot record %s", a->action) : 0;
}

/* ---- PUT /evidence/artifacts ---- */

typedef struct up_s {
  evapi_t *x;
  st_api_req_t *req;
  char sha[ST_SHA256_HEX_LEN + 1];
  uint64_t size;
  int fd;
} up_t;

static ssize_t fd_read(void *ctx, void *buf, size_t len) {
  ssize_t n = read(*(int *)ctx, buf, len);
  return n < 0 ? ST_EIO : n;
}

static int upload_tx(PGconn *c, void *arg, st_error_t *err) {
  up_t *u = arg;
  st_evidence_who_t w = who_of(u->req);
  st_buf_t key = ST_BUF_INIT;
  char res[100];
  int is_new = 0, rc;

  snprintf(res, sizeof(res), "evidence/artifacts/sha256:%s", u->sha);
  if ((rc = st_evidence_upload_record(c, &w, u->sha, u->size, &is_new, err)) ||
      (is_new && (rc = st_api_quota_charge(u->req, c, u->size, err))))
    goto done;
  if ((rc = st_api_audit(u->req, c, "evidence.artifact.upload", res, "ok"))) {
    rc = st_fail(err, rc, "audit: cannot record the upload");
    goto done;
  }
  if ((rc = st_objstore_key(&key, w.tenant, u->sha, err)))
    goto done;
  /* last: a failed put rolls the row, charge and audit back */
  if (lseek(u->fd, 0, SEEK_SET) != 0) {
    rc = st_fail(err, ST_EIO, "evidence: cannot rewind the upload");
    goto done;
  }
  rc = st_objstore_put(st_evidence_store(u->x->ev), w.tenant, key.data, u->sha, u->size, fd_read,
                       &u->fd, NULL, err);
done:
  st_buf_release(&key);
  return rc;
}

static int artifacts_put(st_api_req_t *req, void *arg) {
  up_t u = {arg, req, "", 0, st_api_req_body_fd(req)};
  st_sha256_t h;
  uint8_t d[ST_SHA256_LEN];
  char buf[65536];
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  ssize_t n;
  int rc;

  if (u.fd < 0 || (rc = st_sha256_init(&h)))
    return ST_EIO;
  while ((n = read(u.fd, buf, sizeof(buf))) > 0) {
    u.size += (uint64_t)n;
    if ((rc = st_sha256_update(&h, buf, (size_t)n))) {
      st_sha256_release(&h);
      return rc;
    }
  }
  if (n < 0 || (rc = st_sha256_final(&h, d))) {
    st_sha256_release(&h);
    return ST_EIO;
  }
  st_sha256_release(&h);
  st_sha256_hex(d, u.sha);
  if ((rc = st_api_tx(req, 0, upload_tx, &u, &err))) {
    if (rc == ST_ETOOBIG)
      return st_api_reply_problem(req, ST_API_P_PAYLOAD_TOO_LARGE, "storage quota: %s",
                                  err.msg);
    if (rc == ST_EQUOTA)
      return st_api_reply_problem(req, ST_API_P_QUOTA_EXCEEDED, "storage quota: %s", err.msg);
    return fail(req, rc, &err);
  }
  out = json_pack("{s:s, s:I}", "sha256", u.sha, "size", (json_int_t)u.size);
  rc = out ? st_api_reply_json(req, 201, out) : ST_ENOMEM;
  json_decref(out);
  return rc;
}

/* ---- POST /evidence/snapshot ---- */

typedef struct snap_s {
  evapi_t *x;
  st_api_req_t *req;
  const char *bundle_id;
  const json_t *payload;
  const st_envelope_t *env;
  int created;
} snap_t;

static int snapshot_tx(PGconn *c, void *arg, st_error_t *err) {
  snap_t *s = arg;
  st_evidence_who_t w = who_of(s->req);
  char res[200];
  int rc;

  snprintf(res, sizeof(res), "evidence/%s", s->bundle_id);
  if ((rc = st_evidence_pending(s->x->ev, c, &w, s->bundle_id, s->payload, s->env->job_id,
                                &s->created, err)))
    return rc;
  if ((rc = st_api_audit(s->req, c, "evidence.snapshot", res, "ok")))
    return st_fail(err, rc, "audit: cannot record the snapshot");
  /* last: a failed XADD rolls the pending row back */
  return s->created ? st_queue_submit(s->x->redis_url, s->env, s->x->max_envelope, err) : 0;
}

static int snapshot_post(st_api_req_t *req, void *arg) {
  evapi_t *x = arg;
  json_t *in = st_api_req_json(req), *out = NULL;
  const char *idem = st_api_req_header(req, "Idempotency-Key");
  st_buf_t id = ST_BUF_INIT;
  st_envelope_t env;
  snap_t s = {x, req, NULL, NULL, &env, 0};
  st_error_t err = ST_ERROR_INIT;
  int rc;

  st_envelope_init(&env);
  if (st_api_idempotency_begin(req))
    return 0;
  if ((rc = st_evidence_payload_check(in, &err))) {
    rc = st_api_reply_problem(req, ST_API_P_UNPROCESSABLE, "%s", err.msg);
    goto done;
  }
  if (!(env.payload = json_deep_copy(in)) || !(env.type = st_strdup("snapshot")) ||
      !(env.tenant = st_strdup(tenant_of(req))) ||
      !(env.trace = st_strdup(st_api_req_traceparent(req)))) {
    rc = ST_ENOMEM;
    goto done;
  }
  env.attempt = 1;
  if ((rc = st_envelope_new_id(&env, &err)))
    goto done;
  /* the bundle id: the payload's, else from the Idempotency-Key (a retry names the same
   * bundle even when its stored reply was lost), else from the fresh job id */
  if (!json_object_get(in, "bundle_id")) {
    if (st_evidence_derive_id(env.tenant, idem ? idem : env.job_id, &id) ||
        json_object_set_new(env.payload, "bundle_id", json_string(id.data))) {
      rc = ST_ENOMEM;
      goto done;
    }
  }
  s.bundle_id = json_string_value(json_object_get(env.payload, "bundle_id"));
  s.payload = env.payload;
  if ((rc = st_api_tx(req, 0, snapshot_tx, &s, &err))) {
    rc = fail(req, rc, &err);
    goto done;
  }
  out = json_pack("{s:s, s:s, s:s}", "bundle_id", s.bundle_id, "job_id", env.job_id, "status",
                  s.created ? "pending" : "exists");
  rc = out ? st_api_reply_json(req, 202, out) : ST_ENOMEM;
done:
  json_decref(out);
  st_buf_release(&id);
  st_envelope_release(&env);
  return rc;
}

/* ---- GET /evidence/{id} and download ---- */

typedef struct read_s {
  act_t a;
  json_t *desc;
} read_t;

static int read_tx(PGconn *c, void *arg, st_error_t *err) {
  read_t *r = arg;
  int rc;
  json_decref(r->desc);
  r->desc = NULL;
  if ((rc = st_evidence_get(r->a.x->ev, c, tenant_of(r->a.req), r->a.bundle_id, &r->desc, err)))
    return rc;
  r->a.sha256 = json_string_value(json_object_get(json_object_get(r->desc, "object"), "sha256"));
  return act_tx(c, &r->a, err);
}

static int get_bundle(st_api_req_t *req, evapi_t *x, const char *id, const char *action,
                      const char *event, read_t *r) {
  st_error_t err = ST_ERROR_INIT;
  int rc;
  memset(r, 0, sizeof(*r));
  r->a.x = x;
  r->a.req = req;
  r->a.action = action;
  r->a.event = event;
  r->a.bundle_id = id;
  snprintf(r->a.resource, sizeof(r->a.resource), "evidence/%.128s", r->a.bundle_id);
  if ((rc = st_api_tx(req, 0, read_tx, r, &err))) {
    json_decref(r->desc);
    r->desc = NULL;
    return fail(req, rc, &err) ? -1 : 1;
  }
  return 0;
}

static int bundle_get(st_api_req_t *req, void *arg) {
  read_t r;
  int rc;
  if (get_bundle(req, arg, st_api_req_param(req, "id"), "evidence.get", "evidence.accessed", &r))
    return 0;
  rc = st_api_reply_json(req, 200, r.desc);
  json_decref(r.desc);
  return rc;
}

typedef struct dl_s {
  st_objstore_t *store;
  char *tenant, *key;
} dl_t;

typedef struct copy_s {
  char *buf;
  size_t n, max;
} copy_t;

static int copy_out(void *ctx, const void *data, size_t len) {
  copy_t *c = ctx;
  if (len > c->max - c->n)
    return ST_ETOOBIG;
  memcpy(c->buf + c->n, data, len);
  c->n += len;
  return 0;
}

static long dl_read(void *arg, unsigned long long pos, char *buf, size_t max) {
  dl_t *d = arg;
  st_error_t err = ST_ERROR_INIT;
  copy_t c = {buf, 0, max};
  int rc = st_objstore_get(d->store, d->tenant, d->key, pos, max, copy_out, &c, &err);
  if (rc) {
    st_logkv(ST_LOG_ERROR, "evidence download", "key", d->key, "error", st_error_text(&err),
             NULL);
    return rc;
  }
  return (long)c.n;
}

static void dl_free(void *arg) {
  dl_t *d = arg;
  st_free(d->tenant);
  st_free(d->key);
  st_free(d);
}

static int bundle_download(st_api_req_t *req, void *arg) {
  evapi_t *x = arg;
  read_t r;
  json_t *obj;
  dl_t *d = NULL;
  char etag[ST_SHA256_HEX_LEN + 3];
  const char *inm = st_api_req_header(req, "If-None-Match"), *key;
  int rc;

  if (get_bundle(req, x, st_api_req_param(req, "id"), "evidence.download", "evidence.downloaded", &r))
    return 0;
  obj = json_object_get(r.desc, "object");
  if (!(key = json_string_value(json_object_get(obj, "key")))) {
    rc = st_api_reply_problem(req, ST_API_P_CONFLICT, "the bundle is not sealed yet");
    goto done;
  }
  snprintf(etag, sizeof(etag), "\"%s\"", json_string_value(json_object_get(obj, "sha256")));
  if ((rc = st_api_add_header(req, "ETag", etag)))
    goto done;
  if (inm && st__etag_match(inm, etag)) {
    rc = st_api_reply_bytes(req, 304, NULL, NULL, 0);
    goto done;
  }
  if (!(d = st_calloc(1, sizeof(*d))) || !(d->tenant = st_strdup(tenant_of(req))) ||
      !(d->key = st_strdup(key))) {
    if (d)
      dl_free(d);
    rc = ST_ENOMEM;
    goto done;
  }
  d->store = st_evidence_store(x->ev);
  rc = st_api_reply_ranged(req, "application/gzip",
                           (unsigned long long)json_integer_value(json_object_get(obj, "size")),
                           dl_read, d, dl_free);
done:
  json_decref(r.desc);
  return rc;
}

/* ---- POST /evidence/verify ---- */

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

static int verify_post(st_api_req_t *req, void *arg) {
  evapi_t *x = arg;
  const char *id = st_api_req_query(req, "id");
  const st_pubkey_t *k = x->signer ? st_signer_pubkey(x->signer) : NULL;
  st_bundle_trust_t trust = {&k, k ? 1 : 0, NULL, 0, NULL};
  st_bundle_report_t rep;
  st_buf_t path = ST_BUF_INIT, json = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  read_t r = {0};
  int rc, vr;

  trust.tsa_ca_pem = st_evidence_tsa_ca(x->ev, &trust.tsa_ca_len);
  st_bundle_report_init(&rep);
  if (id) {
    FILE *f;
    if (get_bundle(req, x, id, "evidence.verify", "evidence.verified", &r)) {
      rc = 0;
      goto out;
    }
    if (!json_string_value(json_object_get(json_object_get(r.desc, "object"), "key"))) {
      rc = st_api_reply_problem(req, ST_API_P_CONFLICT, "the bundle is not sealed yet");
      goto done;
    }
    if (st_buf_addf(&path, "%s/stella-verify-XXXXXX", req->api->tmp_dir)) {
      rc = ST_ENOMEM;
      goto done;
    }
    {
      int fd = mkstemp(path.data);
      if (fd < 0 || !(f = fdopen(fd, "wb"))) {
        if (fd >= 0)
          close(fd);
        st_buf_reset(&path);
        rc = ST_EIO;
        goto done;
      }
    }
    rc = st_objstore_get(st_evidence_store(x->ev), tenant_of(req),
                         json_string_value(json_object_get(json_object_get(r.desc, "object"),
                                                           "key")),
                         0, ST_OBJSTORE_TO_END, to_file, f, &err);
    if (fclose(f) || rc) {
      rc = ST_EIO;
      goto done;
    }
    vr = st_bundle_verify(path.data, &trust, &rep, &err);
  } else {
    char fdpath[64];
    act_t a = {x, req, "evidence.verify.upload", NULL, NULL, NULL, "evidence/verify"};
    if (st_api_req_body_len(req) == 0) {
      rc = st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "send a bundle or ?id=");
      goto done;
    }
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", st_api_req_body_fd(req));
    vr = st_bundle_verify(fdpath, &trust, &rep, &err);
    if ((rc = st_api_tx(req, 0, audit_only, &a, &err))) {
      rc = fail(req, rc, &err);
      goto done;
    }
  }
  if (vr && vr != ST_EVERIFY) {
    rc = vr;
    goto done;
  }
  if ((rc = st_bundle_report_json(&rep, &json)))
    goto done;
  rc = st_api_reply_bytes(req, vr ? 422 : 200, "application/json", json.data, json.len);
done:
  if (path.len)
    unlink(path.data);
out:
  json_decref(r.desc);
  st_buf_release(&path);
  st_buf_release(&json);
  st_bundle_report_release(&rep);
  return rc;
}

/* ---- holds ---- */

static int hold_reply(st_api_req_t *req, int rc, json_t *out, const st_error_t *err,
                      unsigned status) {
  if (rc)
    return fail(req, rc, err);
  rc = st_api_reply_json(req, status, out);
  json_decref(out);
  return rc;
}

static int hold_post(st_api_req_t *req, void *arg) {
  evapi_t *x = arg;
  st_evidence_who_t w = who_of(req);
  act_t a = {x, req, "evidence.hold.place", NULL, NULL, NULL, ""};
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  snprintf(a.resource, sizeof(a.resource), "evidence/hold/%.128s", st_api_req_param(req, "case_id"));
  w.in_tx = audit_only;
  w.in_tx_arg = &a;
  /* rc first: an argument list does not order the call before reading out */
  int rc = st_evidence_hold_place(x->ev, &w, st_api_req_param(req, "case_id"),
                                  st_api_req_json(req), &out, &err);
  return hold_reply(req, rc, out, &err, 201);
}

static int hold_delete(st_api_req_t *req, void *arg) {
  evapi_t *x = arg;
  st_evidence_who_t w = who_of(req);
  act_t a = {x, req, "evidence.hold.release", NULL, NULL, NULL, ""};
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  snprintf(a.resource, sizeof(a.resource), "evidence/hold/%.128s", st_api_req_param(req, "case_id"));
  w.in_tx = audit_only;
  w.in_tx_arg = &a;
  int rc = st_evidence_hold_release(x->ev, &w, st_api_req_param(req, "case_id"), &out, &err);
  return hold_reply(req, rc, out, &err, 200);
}

static int hold_get(st_api_req_t *req, void *arg) {
  evapi_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  int rc = st_evidence_hold_get(x->ev, tenant_of(req), st_api_req_param(req, "case_id"), &out,
                                &err);
  return hold_reply(req, rc, out, &err, 200);
}

/* ---- registration ---- */

st_evidence_t *st__evidence_locker(struct st__evidence_api_s *x) { return x->ev; }

void st__evidence_routes_free(struct st__evidence_api_s *x) {
  if (!x)
    return;
  st_evidence_free(x->ev);
  st_free(x->redis_url);
  st_free(x);
}

int st__evidence_routes(st_api_t *api, const st_config_t *cfg, struct st__evidence_api_s **out,
                        st_error_t *err) {
  evapi_t *x = NULL;
  int rc;

  *out = NULL;
  if (!(x = st_calloc(1, sizeof(*x))) ||
      !(x->redis_url = st_strdup(st_config_str(cfg, "redis_url")))) {
    rc = st_fail(err, ST_ENOMEM, "api: out of memory");
    goto fail;
  }
  x->max_envelope = (size_t)st_config_int(cfg, "max_envelope_bytes");
  if ((rc = st_evidence_open(&x->ev, cfg, err)))
    goto fail;
  x->signer = st_evidence_signer(x->ev);
  {
    const char *R = "evidence:read", *W = "evidence:write", *H = "evidence:hold";
    const st_api_route_t routes[] = {
        {"PUT", "/evidence/artifacts", W, 0, ST_API_BODY_FILE, 0, artifacts_put, NULL, x},
        {"POST", "/evidence/snapshot", W, 0, ST_API_BODY_JSON, 0, snapshot_post, NULL, x},
        {"POST", "/evidence/verify", R, 0, ST_API_BODY_FILE, 0, verify_post, NULL, x},
        {"GET", "/evidence/{id}", R, 0, ST_API_BODY_NONE, 0, bundle_get, NULL, x},
        {"GET", "/evidence/{id}/download", R, 0, ST_API_BODY_NONE, 0, bundle_download, NULL, x},
        {"POST", "/evidence/hold/{case_id}", H, 0, ST_API_BODY_JSON, 0, hold_post, NULL, x},
        {"DELETE", "/evidence/hold/{case_id}", H, 0, ST_API_BODY_NONE, 0, hold_delete, NULL, x},
        {"GET", "/evidence/hold/{case_id}", H, 0, ST_API_BODY_NONE, 0, hold_get, NULL, x},
    };
    if ((rc = st_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]), err)) ||
        (rc = st__evidence_export_routes(api, x->ev, err)))
      goto fail;
  }
  *out = x;
  return 0;
fail:
  st__evidence_routes_free(x);
  return rc;
}
