/* idempotency.c: the handler side of audit, tenant transactions and Idempotency-Key
 * (see api_store.h). The request hash is SHA-256 over method, path and body, so a key
 * reused for another request is told apart from a retry. Claimed keys are finished from
 * the reply path (st__queue) and released when the reply is a 5xx or the request is
 * dropped. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "api_internal.h"
#include "stella/log.h"
#include "stella/mem.h"

void st_api_set_store(st_api_t *api, const st_api_store_t *store) {
  if (api->has_store && api->store.release)
    api->store.release(api->store.self);
  api->store = *store;
  api->has_store = 1;
}

void st_api_set_db(st_api_t *api, st_db_pool_t *pool) { api->db = pool; }
st_db_pool_t *st_api_db(const st_api_t *api) { return api->db; }

void st_api_idem_record_release(st_api_idem_record_t *rec) {
  st_free(rec->reply.content_type);
  st_free(rec->reply.body);
  json_decref(rec->reply.headers);
  memset(rec, 0, sizeof(*rec));
}

int st_api_tx(st_api_req_t *req, int flags, st_db_tx_fn fn, void *arg, st_error_t *err) {
  if (!req->api->db || !req->authed)
    return st_fail(err, ST_EUNSUPPORTED, "api: no database pool or no tenant for %s",
                   req->path);
  return st_db_tenant_txf(req->api->db, req->auth.tenant, flags, fn, arg, err);
}

int st_api_audit(st_api_req_t *req, PGconn *tx, const char *action, const char *resource,
                 const char *outcome) {
  st_api_t *api = req->api;
  st_error_t err = ST_ERROR_INIT;
  st_api_audit_t a;
  int rc;

  if (!api->has_store || !api->store.audit_record || !req->authed)
    return ST_EUNSUPPORTED;
  a.tenant = req->auth.tenant;
  a.actor = req->auth.actor;
  a.action = action;
  a.resource = resource;
  a.outcome = outcome;
  a.request_id = req->id;
  a.trace_id = req->trace.trace_id;
  if ((rc = api->store.audit_record(api->store.self, tx, &a, &err)))
    st_logkv(ST_LOG_ERROR, "audit record failed", "error", st_error_text(&err), NULL);
  return rc;
}

int st_api_quota_charge(st_api_req_t *req, PGconn *c, unsigned long long bytes,
                        st_error_t *err) {
  if (!req->authed)
    return st_fail(err, ST_EUNSUPPORTED, "api: storage quota on a public route");
  return st_api_storage_charge(c, req->auth.tenant, bytes, req->api->storage_quota, err);
}

static int key_ok(const char *k) {
  size_t n = strlen(k);
  if (n < 1 || n > ST_API_IDEM_KEY_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (k[i] < 0x21 || k[i] > 0x7e)
      return 0;
  return 1;
}

static int request_hash(const st_api_req_t *req, unsigned char out[32]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
           EVP_DigestUpdate(md, req->method, strlen(req->method) + 1) == 1 &&
           EVP_DigestUpdate(md, req->path, strlen(req->path) + 1) == 1 &&
           EVP_DigestUpdate(md, req->body.data, req->body.len) == 1 &&
           EVP_DigestFinal_ex(md, out, NULL) == 1;
  EVP_MD_CTX_free(md);
  return ok ? 0 : ST_ECRYPTO;
}

char *st__route_name(const char *method, const char *pattern) {
  size_t n = strlen(method) + strlen(pattern) + 2;
  char *s = st_malloc(n);
  if (s)
    snprintf(s, n, "%s %s", method, pattern);
  return s;
}

/* The stored reply again, with the handler headers it had. */
static void replay(st_api_req_t *req, const st_api_idem_reply_t *r) {
  const char *name;
  json_t *v;
  int rc = st_api_add_header(req, "Idempotent-Replayed", "true");
  json_object_foreach(r->headers, name, v) {
    if (!rc && json_is_string(v))
      rc = st_api_add_header(req, name, json_string_value(v));
  }
  if (rc)
    st_api_reply_error(req, rc, NULL);
  else
    st_api_reply_bytes(req, r->status, *r->content_type ? r->content_type : NULL, r->body,
                       r->body_len);
}

int st_api_idempotency_begin(st_api_req_t *req) {
  const char *key = st_api_req_header(req, "Idempotency-Key");
  st_api_t *api = req->api;
  st_api_idem_record_t rec;
  st_api_idem_key_t k;
  st_error_t err = ST_ERROR_INIT;
  unsigned char hash[32];
  int rc;

  memset(&rec, 0, sizeof(rec));
  if (!key)
    return 0;
  if (!req->authed || req->route->body != ST_API_BODY_JSON)
    return st_api_reply_problem(req, ST_API_P_BAD_REQUEST,
                                "Idempotency-Key is not supported on this route"),
           1;
  if (!key_ok(key))
    return st_api_reply_problem(req, ST_API_P_BAD_REQUEST,
                                "Idempotency-Key must be 1..%d visible ASCII characters",
                                ST_API_IDEM_KEY_MAX),
           1;
  if (!api->has_store)
    return st_api_reply_error(req, ST_EINTERNAL, NULL), 1;
  if (!req->idem_route &&
      !(req->idem_route = st__route_name(req->route->method, req->route->pattern)))
    return st_api_reply_error(req, ST_ENOMEM, NULL), 1;
  k.tenant = req->auth.tenant;
  k.key = key;
  k.route = req->idem_route;
  if ((rc = request_hash(req, hash)) ||
      (rc = api->store.idem_begin(api->store.self, &k, hash, &rec, &err))) {
    st_logkv(ST_LOG_ERROR, "idempotency begin failed", "error", st_error_text(&err), NULL);
    return st_api_reply_error(req, rc, NULL), 1;
  }
  if (rec.state == ST_API_IDEM_NEW) {
    if (!(req->idem_key = st_strdup(key))) {
      api->store.idem_abort(api->store.self, &k, &err);
      return st_api_reply_error(req, ST_ENOMEM, NULL), 1;
    }
    rc = 0;
  } else if (memcmp(rec.request_hash, hash, sizeof(hash)) != 0) {
    st_api_reply_problem(req, ST_API_P_IDEMPOTENCY_MISMATCH, NULL);
    rc = 1;
  } else if (rec.state == ST_API_IDEM_IN_FLIGHT) {
    st_api_reply_problem(req, ST_API_P_IDEMPOTENCY_IN_FLIGHT, NULL);
    rc = 1;
  } else {
    replay(req, &rec.reply);
    rc = 1;
  }
  st_api_idem_record_release(&rec);
  return rc;
}

static st_api_idem_key_t held_key(const st_api_req_t *req) {
  st_api_idem_key_t k = {req->auth.tenant, req->idem_key, req->idem_route};
  return k;
}

void st__idem_on_reply(st_api_req_t *req, unsigned status, const char *content_type,
                       const char *body, size_t len) {
  st_api_t *api = req->api;
  st_api_idem_key_t k = held_key(req);
  st_api_idem_reply_t r;
  st_error_t err = ST_ERROR_INIT;
  json_t *hdrs = NULL;
  int rc;

  if (status >= 500 || (!body && len == 0 && status != 204)) {
    rc = api->store.idem_abort(api->store.self, &k, &err);
  } else if (!(hdrs = json_object())) {
    rc = api->store.idem_abort(api->store.self, &k, &err);
  } else {
    for (const st__hdr_t *h = req->headers; h; h = h->next)
      json_object_set_new(hdrs, h->name, json_string(h->value));
    r.status = status;
    r.content_type = (char *)(content_type ? content_type : "");
    r.headers = hdrs;
    r.body = (char *)body;
    r.body_len = len;
    rc = api->store.idem_finish(api->store.self, &k, &r, &err);
  }
  if (rc)
    st_logkv(ST_LOG_ERROR, "idempotency finish failed", "error", st_error_text(&err), NULL);
  json_decref(hdrs);
  st_free(req->idem_key);
  req->idem_key = NULL;
}

void st__idem_on_drop(st_api_req_t *req) {
  st_api_idem_key_t k = held_key(req);
  st_error_t err = ST_ERROR_INIT;
  if (req->api->store.idem_abort(req->api->store.self, &k, &err))
    st_logkv(ST_LOG_ERROR, "idempotency release failed", "error", st_error_text(&err), NULL);
  st_free(req->idem_key);
  req->idem_key = NULL;
}
