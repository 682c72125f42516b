/* auth.c: Authorization: Bearer <JWT> for routes that are not public. 401 with
 * WWW-Authenticate (RFC 6750) when the token is missing or invalid; 403 when it is
 * valid but lacks the route's scope. The client learns only which of those it is; the
 * log gets the reason (expired, bad signature, alg, claim). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_internal.h"
#include "stella/log.h"

static int deny(st_api_req_t *req, st_api_problem kind, const char *challenge,
                const char *detail) {
  int rc = st_api_add_header(req, "WWW-Authenticate", challenge);
  if (!rc)
    rc = st_api_reply_problem(req, kind, "%s", detail);
  return rc ? rc : ST_EPERM;
}

/* A refused mutation is audited (outcome "denied", in its own transaction) when a store is
 * installed: the tenant is known from the valid token. Reads are not. */
static void audit_denied(st_api_req_t *req) {
  char action[300];
  if (!req->api->has_store || !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD"))
    return;
  snprintf(action, sizeof(action), "%s %s", req->method, req->route->pattern);
  if (st_api_audit(req, NULL, action, req->path, "denied"))
    st_logkv(ST_LOG_WARN, "denied request not audited", "request_id", req->id, NULL);
}

int st__auth_check(st_api_req_t *req) {
  const char *h = st_api_req_header(req, "Authorization");
  const st_api_route_t *route = req->route;
  st_error_t err = ST_ERROR_INIT;
  char challenge[192];
  size_t n;

  if (!h || strncasecmp(h, "Bearer ", 7) != 0)
    return deny(req, ST_API_P_UNAUTHORIZED, "Bearer realm=\"stella\"",
                "a bearer token is required");
  h += 7;
  while (*h == ' ')
    h++;
  n = strlen(h);
  if (st_jwt_verify(req->api->keys, h, n, (long long)time(NULL), req->api->jwt_leeway,
                    &req->claims, &err)) {
    st_logkv(ST_LOG_INFO, "token rejected", "reason", st_error_text(&err), "request_id",
             req->id, NULL);
    return deny(req, ST_API_P_UNAUTHORIZED, "Bearer realm=\"stella\", error=\"invalid_token\"",
                "the bearer token is invalid or expired");
  }
  req->authed = 1;
  req->auth.tenant = req->claims.tenant;
  req->auth.actor = req->claims.sub ? req->claims.sub : "unknown";
  req->auth.scope = req->claims.scope;
  req->auth.expires = req->claims.exp;
  if (route->scope && !st_jwt_scope_has(req->claims.scope, route->scope)) {
    snprintf(challenge, sizeof(challenge),
             "Bearer realm=\"stella\", error=\"insufficient_scope\", scope=\"%s\"",
             route->scope);
    audit_denied(req);
    return deny(req, ST_API_P_FORBIDDEN, challenge, "the token lacks the required scope");
  }
  return 0;
}

const st_api_auth_t *st_api_req_auth(const st_api_req_t *req) {
  return req->authed ? &req->auth : NULL;
}

int st_api_tenant_check(st_api_req_t *req, const char *resource_tenant) {
  if (req->authed && resource_tenant && strcmp(req->auth.tenant, resource_tenant) == 0)
    return 0;
  st_api_reply_problem(req, ST_API_P_NOT_FOUND, NULL);
  return ST_ENOENT;
}
