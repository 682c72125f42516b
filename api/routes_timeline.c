/* routes_timeline.c: the Timeline Indexer's query API (scope timeline:read), a thin HTTP
 * skin over workers/timeline/timeline_query.h:
 *   GET /timeline                 filters as query parameters -> {items, next_cursor}
 *   GET /timeline/{id}            one event with its payload
 *   GET /timeline/{id}/evidence   {event_id, evidence: [{digest, bundle_id, manifest_ref,
 *                                  legal_hold}]}
 * The tenant is always the token's: the query functions run in that tenant's read-only
 * transaction (RLS) and filter on it, so another tenant's event is a plain 404. Every call
 * is audited (action timeline.query|get|evidence, outcome ok|bad_request|not_found|error) in
 * an audit transaction of its own: reads have no effect to commit it with.
 *
 * Cursors are HMAC-signed with timeline_cursor_key; without one (or one shorter than
 * ST_TL_CURSOR_KEY_MIN) the server draws a random key at start and warns: cursors then
 * only work against this process. A cursor that does not verify, or was issued for other
 * filters or another tenant, is a 400 bad-request. */
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "api_store.h"
#include "routes_timeline.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "timeline/timeline_query.h"

#define KEY_RANDOM_BYTES 32

struct st__timeline_api_s {
  unsigned char *key;
  size_t key_len;
};

static void put(json_t *o, const char *k, const char *v) {
  json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static const char *outcome_of(int rc) {
  return !rc                 ? "ok"
         : rc == ST_EINVAL   ? "bad_request"
         : rc == ST_EVERIFY  ? "bad_request"
         : rc == ST_ENOENT   ? "not_found"
                             : "error";
}

/* Audit, then reply for a failed query call: 400 with the module's message for a bad
 * filter or cursor (they name the caller's input), 404, or the code's problem. */
static int finish(st_api_req_t *req, const char *action, const char *resource, int rc,
                  const st_error_t *err) {
  int arc = st_api_audit(req, NULL, action, resource, outcome_of(rc));
  if (arc)
    return arc;
  if (rc == ST_EINVAL || rc == ST_EVERIFY)
    return st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "%s", err->msg);
  if (rc == ST_ENOENT)
    return st_api_reply_problem(req, ST_API_P_NOT_FOUND, "no such timeline event");
  st_logkv(ST_LOG_ERROR, "timeline api", "error", st_error_text(err), NULL);
  return st_api_reply_error(req, rc, NULL);
}

/* limit: absent = the module default; else 1..ST_TL_LIMIT_MAX digits. */
static int parse_limit(const char *s, size_t *out) {
  size_t n = s ? strlen(s) : 0;
  if (!s) {
    *out = 0;
    return 0;
  }
  if (n < 1 || n > 3)
    return ST_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return ST_EINVAL;
  *out = (size_t)atoi(s);
  return *out >= 1 && *out <= ST_TL_LIMIT_MAX ? 0 : ST_EINVAL;
}

static int tl_list(st_api_req_t *req, void *arg) {
  st__timeline_api_t *tl = arg;
  st_tl_cursor_key_t key = {tl->key, tl->key_len};
  st_tl_filter_t f;
  st_tl_page_t page = {0};
  st_error_t err = ST_ERROR_INIT;
  const char *cursor = st_api_req_query(req, "cursor");
  json_t *items = NULL, *out = NULL;
  int rc;

  memset(&f, 0, sizeof(f));
  f.type = st_api_req_query(req, "type");
  f.since = st_api_req_query(req, "since");
  f.until = st_api_req_query(req, "until");
  f.subject = st_api_req_query(req, "subject");
  f.digest = st_api_req_query(req, "digest");
  f.trace_id = st_api_req_query(req, "trace_id");
  f.actor = st_api_req_query(req, "actor");
  f.correlation_id = st_api_req_query(req, "correlation_id");
  if (parse_limit(st_api_req_query(req, "limit"), &f.limit)) {
    st_fail(&err, ST_EINVAL, "limit: an integer in 1..%d", ST_TL_LIMIT_MAX);
    return finish(req, "timeline.query", "timeline", ST_EINVAL, &err);
  }
  if (cursor && (!*cursor || strlen(cursor) > ST_TL_CURSOR_MAX)) {
    st_fail(&err, ST_EVERIFY, "cursor: malformed");
    return finish(req, "timeline.query", "timeline", ST_EVERIFY, &err);
  }
  if ((rc = st_tl_query(st_api_db(req->api), st_api_req_auth(req)->tenant, &f, cursor, &key,
                        &page, &err)))
    return finish(req, "timeline.query", "timeline", rc, &err);
  rc = ST_ENOMEM;
  if (!(items = json_array()))
    goto done;
  for (size_t i = 0; i < page.n; i++)
    if (json_array_append_new(items, st_tl_row_json(&page.rows[i])))
      goto done;
  if (!(out = json_pack("{s:O, s:o}", "items", items, "next_cursor",
                        page.next_cursor ? json_string(page.next_cursor) : json_null())))
    goto done;
  if ((rc = st_api_audit(req, NULL, "timeline.query", "timeline", "ok")))
    goto done;
  rc = st_api_reply_json(req, 200, out);
done:
  json_decref(items);
  json_decref(out);
  st_tl_page_release(&page);
  return rc;
}

/* "timeline/<id>[suffix]" for the audit row (ids are 1..128 bytes). */
static char *resource_of(const char *id, const char *suffix) {
  size_t n = strlen("timeline/") + strlen(id) + strlen(suffix) + 1;
  char *r = st_malloc(n);
  if (r) {
    strcpy(r, "timeline/");
    strcat(r, id);
    strcat(r, suffix);
  }
  return r;
}

static int tl_get(st_api_req_t *req, void *arg) {
  const char *id = st_api_req_param(req, "id");
  st_tl_row_t row;
  char *payload = NULL, *res = resource_of(id, "");
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL, *pj;
  int rc;

  (void)arg;
  memset(&row, 0, sizeof(row));
  if (!res)
    return ST_ENOMEM;
  if ((rc = st_tl_get(st_api_db(req->api), st_api_req_auth(req)->tenant, id, &row, &payload,
                      &err))) {
    rc = finish(req, "timeline.get", res, rc, &err);
    st_free(res);
    return rc;
  }
  rc = ST_ENOMEM;
  if (!(out = st_tl_row_json(&row)) || !(pj = json_loads(payload, 0, NULL)) ||
      json_object_set_new(out, "payload", pj))
    goto done;
  if ((rc = st_api_audit(req, NULL, "timeline.get", res, "ok")))
    goto done;
  rc = st_api_reply_json(req, 200, out);
done:
  json_decref(out);
  st_tl_row_release(&row);
  st_free(payload);
  st_free(res);
  return rc;
}

static int tl_evidence(st_api_req_t *req, void *arg) {
  const char *id = st_api_req_param(req, "id");
  st_tl_link_t *links = NULL;
  size_t n = 0;
  char *res = resource_of(id, "/evidence");
  st_error_t err = ST_ERROR_INIT;
  json_t *arr = NULL, *out = NULL;
  int rc;

  (void)arg;
  if (!res)
    return ST_ENOMEM;
  if ((rc = st_tl_evidence(st_api_db(req->api), st_api_req_auth(req)->tenant, id, &links, &n,
                           &err))) {
    rc = finish(req, "timeline.evidence", res, rc, &err);
    st_free(res);
    return rc;
  }
  rc = ST_ENOMEM;
  if (!(arr = json_array()))
    goto done;
  for (size_t i = 0; i < n; i++) {
    json_t *l = json_object();
    if (!l || json_array_append_new(arr, l))
      goto done;
    put(l, "digest", links[i].digest);
    put(l, "bundle_id", links[i].bundle_id);
    put(l, "manifest_ref", links[i].manifest_ref);
    json_object_set_new(l, "legal_hold", json_boolean(links[i].legal_hold));
  }
  if (!(out = json_pack("{s:s, s:O}", "event_id", id, "evidence", arr)))
    goto done;
  if ((rc = st_api_audit(req, NULL, "timeline.evidence", res, "ok")))
    goto done;
  rc = st_api_reply_json(req, 200, out);
done:
  json_decref(arr);
  json_decref(out);
  st_tl_links_free(links, n);
  st_free(res);
  return rc;
}

int st__timeline_routes(st_api_t *api, const st_config_t *cfg, st__timeline_api_t **out,
                        st_error_t *err) {
  const char *k = st_config_str(cfg, "timeline_cursor_key");
  st__timeline_api_t *tl = st_calloc(1, sizeof(*tl));
  int rc = ST_ENOMEM;

  *out = NULL;
  if (!tl)
    goto fail;
  if (k && strlen(k) >= ST_TL_CURSOR_KEY_MIN) {
    tl->key_len = strlen(k);
    if (!(tl->key = st_malloc(tl->key_len)))
      goto fail;
    memcpy(tl->key, k, tl->key_len);
  } else {
    st_warn("api: timeline_cursor_key unset or shorter than %d bytes: timeline cursors use a "
            "random per-process key",
            ST_TL_CURSOR_KEY_MIN);
    tl->key_len = 2 * KEY_RANDOM_BYTES;
    if (!(tl->key = st_malloc(tl->key_len + 1)))
      goto fail;
    st__rand_hex((char *)tl->key, KEY_RANDOM_BYTES);
  }
  {
    const st_api_route_t routes[] = {
        {"GET", "/timeline", "timeline:read", 0, ST_API_BODY_NONE, 0, tl_list, NULL, tl},
        {"GET", "/timeline/{id}", "timeline:read", 0, ST_API_BODY_NONE, 0, tl_get, NULL, tl},
        {"GET", "/timeline/{id}/evidence", "timeline:read", 0, ST_API_BODY_NONE, 0,
         tl_evidence, NULL, tl},
    };
    if ((rc = st_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]), err)))
      goto fail;
  }
  *out = tl;
  return 0;
fail:
  if (rc == ST_ENOMEM)
    st_fail(err, ST_ENOMEM, "api: timeline routes: out of memory");
  st__timeline_routes_free(tl);
  return rc;
}

void st__timeline_routes_free(st__timeline_api_t *tl) {
  if (!tl)
    return;
  if (tl->key)
    st_memzero(tl->key, tl->key_len);
  st_free(tl->key);
  st_free(tl);
}
