/* routes_builtin.c: the routes the API front itself owns: liveness, OpenAPI discovery
 * and /whoami (the first authenticated route: who the token says the caller is). */
#include <string.h>

#include "api_internal.h"
#include "stella/version.h"

static int healthz(st_api_req_t *req, void *arg) {
  json_t *j = json_pack("{s:s, s:s}", "status", "ok", "version", st_version());
  int rc = j ? st_api_reply_json(req, 200, j) : ST_ENOMEM;
  json_decref(j);
  return rc;
}

static int openapi(st_api_req_t *req, void *arg) {
  st_api_t *api = req->api;
  const char *inm = st_api_req_header(req, "If-None-Match");
  int rc;

  if ((rc = st_api_add_header(req, "ETag", api->spec_etag)) ||
      (rc = st_api_add_header(req, "X-API-Version", api->spec_version)) ||
      (rc = st_api_add_header(req, "X-Stella-Version", st_version())) ||
      (rc = st_api_add_header(req, "Cache-Control", "no-cache")))
    return rc;
  if (inm && st__etag_match(inm, api->spec_etag))
    return st_api_reply_bytes(req, 304, NULL, "", 0);
  return st_api_reply_bytes(req, 200, "application/yaml", api->spec, api->spec_len);
}

static int whoami(st_api_req_t *req, void *arg) {
  const st_api_auth_t *a = st_api_req_auth(req);
  json_t *scopes = json_array(), *j = NULL;
  const char *p = a->scope;
  int rc = ST_ENOMEM;

  while (scopes && *p) {
    size_t n;
    while (*p == ' ')
      p++;
    if (!(n = strcspn(p, " ")))
      break;
    if (json_array_append_new(scopes, json_stringn(p, n)))
      goto done;
    p += n;
  }
  if (!scopes || !(j = json_pack("{s:s, s:s, s:O, s:I}", "tenant", a->tenant, "subject",
                                 a->actor, "scopes", scopes, "expires",
                                 (json_int_t)a->expires)))
    goto done;
  rc = st_api_reply_json(req, 200, j);
done:
  json_decref(scopes);
  json_decref(j);
  return rc;
}

int st__builtin_routes(st_api_t *api, st_error_t *err) {
  static const st_api_route_t routes[] = {
      {"GET", "/healthz", NULL, ST_API_PUBLIC, ST_API_BODY_NONE, 0, healthz, NULL, NULL},
      {"GET", "/.well-known/openapi", NULL, ST_API_PUBLIC, ST_API_BODY_NONE, 0, openapi,
       NULL, NULL},
      {"GET", "/whoami", NULL, 0, ST_API_BODY_NONE, 0, whoami, NULL, NULL},
  };
  return st_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]), err);
}
