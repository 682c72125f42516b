/* oci_registry_internal.h: the registry client's shared state and its one request
 * function (oci_registry_http.c), used by the operations (oci_registry.c,
 * oci_registry_push.c) and the authenticator (oci_registry_auth.c). */
#ifndef STELLA_OCI_REGISTRY_INTERNAL_H
#define STELLA_OCI_REGISTRY_INTERNAL_H

#include <curl/curl.h>
#include <stdint.h>

#include "stella/oci_registry.h"

#define ST__OCI_HDR_MAX 8192
#define ST__OCI_TOKENS 8

enum { ST__AUTH_NONE = 0, ST__AUTH_BASIC, ST__AUTH_BEARER };

typedef struct st__oci_token_s {
  char *scope;
  char *token;
} st__oci_token_t;

struct st_oci_client_s {
  CURL *h;
  char *origin;   /* scheme://host[:port] */
  char *hostport; /* host[:port], the docker config.json key */
  char *basic;    /* base64(user:pass), wiped on free; NULL = none */
  char *ca_file;
  int auth;       /* what the registry asked for */
  char *realm, *service;
  st__oci_token_t tokens[ST__OCI_TOKENS];
  unsigned next_token;
  st_oci_client_opts_t o; /* numbers resolved; strings not kept */
  int (*cancelled)(void *ud);
  void *cancel_ud;
  unsigned rng;
  st_oci_stats_t stats;
};

typedef struct st__oci_req_s {
  const char *method; /* GET HEAD PUT PATCH POST */
  const char *url;    /* absolute */
  const char *scope;  /* token scope(s), space-separated; NULL = none */
  const char *content_type, *accept, *content_range;
  const void *mem; /* body from memory ... */
  int fd;          /* ... or from fd via pread (fd >= 0) */
  uint64_t off, len;
  int no_retry; /* one attempt (auth challenges still answered) */
  int no_auth;  /* the token realm: basic only, no challenge handling */
  int basic_only;
} st__oci_req_t;

typedef struct st__oci_resp_s {
  long status;
  st_buf_t body, location, digest, www_auth, range, content_type, subject;
} st__oci_resp_t;

void st__oci_resp_init(st__oci_resp_t *r, size_t body_max);
void st__oci_resp_release(st__oci_resp_t *r);

/* One request with retries and auth. 0 with resp->status set (any status), or ST_ENET
 * after the last attempt failed in transport or with 408/429/5xx, ST_EPERM when a
 * challenge could not be answered, ST_ECANCELED. */
int st__oci_call(st_oci_client_t *c, const st__oci_req_t *req, st__oci_resp_t *resp,
                 st_error_t *err) ST_MUST_CHECK;
/* Map a final status to an error naming what was asked, with the registry's error code
 * and message from the body when it sent one. */
int st__oci_status_fail(const st__oci_resp_t *resp, st_error_t *err, const char *what);
/* Sleep the backoff for attempt n (0-based), polling cancel. */
int st__oci_backoff(st_oci_client_t *c, unsigned n, st_error_t *err) ST_MUST_CHECK;
/* Resolve a Location header against the origin; ST_EUNSAFE if it points elsewhere. */
int st__oci_location(st_oci_client_t *c, const st_buf_t *loc, st_buf_t *url, st_error_t *err)
    ST_MUST_CHECK;

/* Answer a 401's challenge: set c->auth and, for Bearer, fetch a token for scope. */
int st__oci_auth_challenge(st_oci_client_t *c, const char *www_auth, const char *scope,
                           st_error_t *err) ST_MUST_CHECK;
/* In Bearer mode, fetch a token for scope when none is cached (saves a 401 round trip). */
int st__oci_auth_prepare(st_oci_client_t *c, const char *scope, st_error_t *err) ST_MUST_CHECK;
/* The token cached for scope, or NULL. */
const char *st__oci_token_for(const st_oci_client_t *c, const char *scope);
/* Credentials from a docker config.json for hostport into c->basic (none found: 0). */
int st__oci_docker_config(st_oci_client_t *c, const char *path, st_error_t *err) ST_MUST_CHECK;

#endif
