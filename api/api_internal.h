/* api_internal.h: the structures shared by the api/ sources (server, router, auth,
 * replies, SSE, quotas, OpenAPI). Not for service modules: they use api.h. Unit tests
 * include it to reach the router and the token bucket. */
#ifndef STELLA_API_INTERNAL_H
#define STELLA_API_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "api.h"
#include "api_store.h"
#include "stella/buf.h"
#include "stella/jwt.h"

#define ST__MAX_PARAMS 8
#define ST__MAX_SEGMENTS 32
#define ST__REQ_ID_MAX 128

/* ---- router ---- */

typedef struct st__route_s {
  st_api_route_t r;  /* method/pattern/scope point into the copies below */
  char *method;
  char *pattern;
  char *scope;
  char *segs[ST__MAX_SEGMENTS]; /* split copy of the pattern; "{x}" kept as is */
  int nsegs;
  int literals;
} st__route_t;

typedef struct st__router_s {
  st__route_t *routes;
  size_t n, cap;
} st__router_t;

typedef struct st__match_s {
  const st__route_t *route;
  char *buf; /* split copy of the path; values point into it */
  const char *names[ST__MAX_PARAMS];
  size_t name_lens[ST__MAX_PARAMS];
  const char *values[ST__MAX_PARAMS];
  int nparams;
  char allow[128]; /* on 405: methods of the matching path, comma-separated */
} st__match_t;

void st__router_init(st__router_t *r);
void st__router_release(st__router_t *r);
int st__router_add(st__router_t *r, const st_api_route_t *route, st_error_t *err);
/* 0 matched, ST_ENOENT no route for the path, ST_EPERM path known but not the method
 * (m->allow filled), ST_ENOMEM. */
int st__router_match(const st__router_t *r, const char *method, const char *path,
                     st__match_t *m);
void st__match_release(st__match_t *m);

/* ---- per-tenant token bucket ---- */

typedef struct st__bucket_s {
  double tokens;
  int64_t last_ms;
} st__bucket_t;

/* Take one token at now_ms; 0 when granted, else the seconds to wait (>= 1). */
long st__bucket_take(st__bucket_t *b, int64_t now_ms, double rate, double burst);

typedef struct st__quota_s st__quota_t;
int st__quota_new(st__quota_t **out, double rate, double burst);
void st__quota_free(st__quota_t *q);
/* 0 granted, else Retry-After seconds. rate 0 disables. */
long st__quota_take(st__quota_t *q, const char *tenant, int64_t now_ms);

/* ---- the server ---- */

struct st_api_s {
  struct MHD_Daemon *daemon;
  st__router_t router;
  st_jwt_keys_t *keys;
  st__quota_t *quota;
  st_api_store_t store;
  int has_store;
  st_db_pool_t *db;     /* borrowed (st_api_set_db) unless own_db */
  st_db_pool_t *own_db; /* opened by st_api_start from pg_url */
  unsigned long long storage_quota; /* api_storage_quota_bytes */
  char *redis_url;                  /* POST /jobs: where envelopes go */
  size_t envelope_max;              /* max_envelope_bytes */
  st_api_sse_t *sse_head; /* open SSE streams, under server_sse.c's list lock */
  char *listen_host;
  unsigned port;
  unsigned threads, max_conns, max_conns_per_ip, conn_timeout_s;
  unsigned long long json_max, body_max;
  long long jwt_leeway;
  char *tmp_dir;
  /* the OpenAPI document, read at start */
  char *spec;
  size_t spec_len;
  char spec_etag[72];
  char *spec_version;
  struct st__export_api_s *exports; /* routes_export.c; NULL without pg_url */
  struct st__timeline_api_s *timeline; /* routes_timeline.c; NULL without pg_url */
  struct st__evidence_api_s *evidence; /* routes_evidence.c; NULL without pg_url */
};

typedef struct st__hdr_s {
  char *name, *value;
  struct st__hdr_s *next;
} st__hdr_t;

struct st_api_req_s {
  st_api_t *api;
  struct MHD_Connection *conn;
  const char *method;
  char *path;
  st__match_t match;
  const st_api_route_t *route;
  char id[ST__REQ_ID_MAX + 1];
  st_api_trace_t trace;
  char traceparent[56];
  st_jwt_claims_t claims;
  st_api_auth_t auth;
  int authed;
  unsigned long long body_len;
  st_buf_t body;
  json_t *json;
  int body_fd;
  int body_err;                 /* first failure while storing the body */
  unsigned long long discarded; /* bytes thrown away after body_err */
  int replied; /* a response was queued */
  int begun;   /* routing, auth and body checks done */
  int handled; /* the handler ran */
  unsigned status;
  st__hdr_t *headers;
  void *user;
  void (*user_free)(void *);
  char *idem_key;   /* set while this request holds a claimed key */
  char *idem_route; /* "<METHOD> <pattern>" of the claimed key */
  struct timespec start;
};

/* 0 granted (req->auth filled); otherwise a 401/403 problem was queued. */
int st__auth_check(st_api_req_t *req);
/* Fill req->id from X-Request-Id (when safe) or a new random id, and req->trace. */
void st__req_ids(st_api_req_t *req);
/* Random lower-case hex of nbytes bytes into out (2*nbytes+1). */
void st__rand_hex(char *out, size_t nbytes);
int64_t st__now_ms(void);

/* Queue resp with the request's common headers; records an idempotent reply. */
int st__queue(st_api_req_t *req, unsigned status, struct MHD_Response *resp,
              const char *body, size_t body_len, const char *content_type);
/* Store or release the claimed idempotency key for a reply (idempotency.c). */
void st__idem_on_reply(st_api_req_t *req, unsigned status, const char *content_type,
                       const char *body, size_t len);
void st__idem_on_drop(st_api_req_t *req);
/* "<METHOD> <pattern>" (st_malloc'ed), the route part of an idempotency key. */
char *st__route_name(const char *method, const char *pattern);

/* Routes of the API's own resources, registered by st_api_start when a pool is set:
 * POST /jobs (routes_jobs.c), GET /audit (routes_audit.c). */
int st__jobs_routes(st_api_t *api, const st_config_t *cfg, st_error_t *err);
int st__audit_routes(st_api_t *api, st_error_t *err);
/* routes_evidence.c: the Evidence Locker routes; its state is freed with the API. */
int st__evidence_routes(st_api_t *api, const st_config_t *cfg, struct st__evidence_api_s **out,
                        st_error_t *err);
void st__evidence_routes_free(struct st__evidence_api_s *x);
/* The locker the evidence routes opened (routes_evidence.c), shared with routes_incident.c. */
struct st_evidence_s *st__evidence_locker(struct st__evidence_api_s *x);
/* routes_incident.c: POST|DELETE|GET /incident on the evidence routes' locker. */
int st__incident_routes(st_api_t *api, struct st__evidence_api_s *ev, st_error_t *err);

/* OpenAPI document (openapi.c). */
int st__openapi_load(st_api_t *api, const st_config_t *cfg, st_error_t *err);
/* Built-in routes (routes_builtin.c). */
int st__builtin_routes(st_api_t *api, st_error_t *err);
/* Weak If-None-Match comparison against a strong etag. */
int st__etag_match(const char *if_none_match, const char *etag);

/* SSE (server_sse.c): close every open stream before stopping the daemon. */
void st__sse_shutdown(st_api_t *api);

#endif
