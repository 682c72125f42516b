/* api.h: the HTTP front every service module plugs its routes into.
 *
 * A server (st_api_t) is libmicrohttpd with a thread pool, keep-alive, connection limits
 * (total and per IP), an idle timeout against slow clients, and per-route body limits
 * enforced while the body streams in (413 is answered from the headers when
 * Content-Length is too large, and as soon as the count passes the limit otherwise).
 * Every request gets a request id (X-Request-Id in and out) and a W3C trace context
 * (traceparent validated, a new trace when absent or invalid) placed in the per-thread
 * log context while its code runs.
 *
 * A route is a table entry (st_api_route_t): method, pattern with `{name}` parameters,
 * access (public, any valid token, or a token holding a scope), body mode and limit,
 * handler. The router answers 404 for unknown paths and 405 with Allow for a known path
 * and another method; auth answers 401 (no/invalid token, WWW-Authenticate: Bearer) and
 * 403 (valid token without the route's scope); then the per-tenant rate limit (429 with
 * Retry-After). Only then is the body read and the handler run.
 *
 * Handlers run on a server thread, synchronously, after the whole body was delivered
 * (JSON buffered and parsed; SINK chunks handed to the route's sink; FILE written to an
 * unlinked temporary file). A handler replies with exactly one st_api_reply_* call and
 * returns its result; returning a negative ST_E* code without replying makes the server
 * answer the problem that code maps to (problem.c, the one mapping). Replies never carry
 * internal error text: `detail` is what the handler chose to say.
 *
 * Ownership: st_api_new/st_api_start allocate, st_api_free/st_api_stop stop and free.
 * Route tables are copied at registration. Everything returned by st_api_req_* is
 * borrowed and lives until the request completes. Reply functions copy their inputs
 * unless said otherwise.
 * Thread rules: register routes and the store before st_api_listen; after that only
 * handlers (on server threads) touch their request; st_api_sse_send/close may be called
 * from any thread.
 */
#ifndef STELLA_API_H
#define STELLA_API_H

#include <stddef.h>

#include <jansson.h>

#include "stella/config.h"
#include "stella/err.h"

typedef struct st_api_s st_api_t;
typedef struct st_api_req_s st_api_req_t;
typedef struct st_api_sse_s st_api_sse_t;

/* ---- routes ---- */

typedef enum st_api_body {
  ST_API_BODY_NONE = 0, /* any body byte answers 413 */
  ST_API_BODY_JSON,     /* buffered up to the limit, parsed; 415 unless application/json,
                           400 problem when malformed */
  ST_API_BODY_SINK,     /* each chunk handed to route->sink as it arrives */
  ST_API_BODY_FILE,     /* streamed to an unlinked temporary file (st_api_req_body_fd) */
} st_api_body;

/* Runs once per request after the body; replies with one st_api_reply_* call. */
typedef int (*st_api_handler_fn)(st_api_req_t *req, void *arg);
/* ST_API_BODY_SINK: one chunk of the body; a negative code aborts the request with the
 * problem that code maps to. */
typedef int (*st_api_sink_fn)(st_api_req_t *req, const char *data, size_t len, void *arg);

#define ST_API_PUBLIC 1u /* no token needed (otherwise a valid token is required) */

typedef struct st_api_route_s {
  const char *method;  /* "GET", "POST", ...; HEAD is served by GET routes */
  const char *pattern; /* "/evidence/{id}": literal segments and whole-segment params */
  const char *scope;   /* required scope, NULL = any valid token (ignored when PUBLIC) */
  unsigned flags;      /* ST_API_PUBLIC */
  st_api_body body;
  unsigned long long body_limit; /* 0 = api_json_body_max (JSON) or max_body_bytes */
  st_api_handler_fn handler;
  st_api_sink_fn sink; /* ST_API_BODY_SINK only */
  void *arg;           /* passed to handler and sink */
} st_api_route_t;

/* ---- server lifecycle ---- */

/* Create a server from config (api_* keys, jwt_* keys, the OpenAPI spec) with the
 * built-in routes (/healthz, /.well-known/openapi, /whoami) registered; not listening.
 * ST_ECONFIG names the key when keys or the spec cannot be loaded. */
int st_api_new(st_api_t **out, const st_config_t *cfg, st_error_t *err) ST_MUST_CHECK;
/* Add routes (copied). ST_EINVAL names a bad pattern or a duplicate method+pattern. */
int st_api_add_routes(st_api_t *api, const st_api_route_t *routes, size_t n,
                      st_error_t *err) ST_MUST_CHECK;
/* Start listening on api_listen ("host:port"; port 0 picks a free port). */
int st_api_listen(st_api_t *api, st_error_t *err) ST_MUST_CHECK;
/* The bound port once listening. */
unsigned st_api_port(const st_api_t *api);
/* Close open SSE streams, stop the daemon (in-flight handlers finish) and free. */
void st_api_free(st_api_t *api);

/* stellad's api role: st_api_new + every service module's routes + st_api_listen. */
int st_api_start(const st_config_t *cfg, st_api_t **out, st_error_t *err) ST_MUST_CHECK;
void st_api_stop(st_api_t *api);

/* ---- the request, for handlers ---- */

/* Who called: filled from the verified token. Strings borrowed from the request. */
typedef struct st_api_auth_s {
  const char *tenant; /* [A-Za-z0-9._-]{1,64} */
  const char *actor;  /* token `sub`, or "unknown" */
  const char *scope;  /* space-separated scopes */
  long long expires;  /* token exp, Unix seconds */
} st_api_auth_t;

/* W3C trace context of this request: the caller's trace (or a new one), the caller's span
 * as parent (empty when new) and this request's own span id. */
typedef struct st_api_trace_s {
  char trace_id[33];
  char parent_id[17];
  char span_id[17];
  unsigned char flags;
} st_api_trace_t;

const char *st_api_req_method(const st_api_req_t *req);
const char *st_api_req_path(const st_api_req_t *req);
/* Path parameter by name ("id" for {id}), NULL if the route has none by that name. */
const char *st_api_req_param(const st_api_req_t *req, const char *name);
/* Query argument (decoded), NULL when absent. */
const char *st_api_req_query(const st_api_req_t *req, const char *name);
/* Request header (case-insensitive name), NULL when absent. */
const char *st_api_req_header(const st_api_req_t *req, const char *name);
const char *st_api_req_id(const st_api_req_t *req);
const st_api_trace_t *st_api_req_trace(const st_api_req_t *req);
/* The traceparent to hand downstream (job envelopes): "00-<trace>-<this span>-<flags>". */
const char *st_api_req_traceparent(const st_api_req_t *req);
/* NULL on ST_API_PUBLIC routes. */
const st_api_auth_t *st_api_req_auth(const st_api_req_t *req);
/* ST_API_BODY_JSON: the parsed body (borrowed), NULL when the body was empty. */
json_t *st_api_req_json(const st_api_req_t *req);
/* ST_API_BODY_FILE: a read-only fd at offset 0 (closed by the server), else -1. */
int st_api_req_body_fd(const st_api_req_t *req);
unsigned long long st_api_req_body_len(const st_api_req_t *req);
/* The Last-Event-ID header of an SSE reconnect, NULL when absent. */
const char *st_api_req_last_event_id(const st_api_req_t *req);
/* Per-request state for sinks and handlers; free_fn runs when the request ends. */
void st_api_req_set_user(st_api_req_t *req, void *user, void (*free_fn)(void *));
void *st_api_req_user(const st_api_req_t *req);

/* Cross-tenant guard: 0 when resource_tenant is the caller's tenant; otherwise replies
 * 404 not-found (never 403: existence must not leak) and returns ST_ENOENT, which the
 * handler returns as is. */
int st_api_tenant_check(st_api_req_t *req, const char *resource_tenant);

/* ---- replies (exactly one per request) ---- */

/* Problem kinds with stable type URIs https://stella.dev/problems/<slug>. */
typedef enum st_api_problem {
  ST_API_P_BAD_REQUEST = 0,     /* 400 bad-request */
  ST_API_P_MALFORMED_JSON,      /* 400 malformed-json */
  ST_API_P_UNAUTHORIZED,        /* 401 unauthorized */
  ST_API_P_FORBIDDEN,           /* 403 forbidden */
  ST_API_P_NOT_FOUND,           /* 404 not-found */
  ST_API_P_METHOD_NOT_ALLOWED,  /* 405 method-not-allowed */
  ST_API_P_CONFLICT,            /* 409 conflict */
  ST_API_P_IDEMPOTENCY_IN_FLIGHT, /* 409 idempotency-in-flight */
  ST_API_P_PAYLOAD_TOO_LARGE,   /* 413 payload-too-large */
  ST_API_P_UNSUPPORTED_MEDIA_TYPE, /* 415 unsupported-media-type */
  ST_API_P_RANGE_NOT_SATISFIABLE, /* 416 range-not-satisfiable */
  ST_API_P_UNPROCESSABLE,       /* 422 unprocessable */
  ST_API_P_IDEMPOTENCY_MISMATCH, /* 422 idempotency-key-reused */
  ST_API_P_VERIFICATION_FAILED, /* 422 verification-failed */
  ST_API_P_RATE_LIMITED,        /* 429 rate-limited */
  ST_API_P_QUOTA_EXCEEDED,      /* 429 quota-exceeded (storage) */
  ST_API_P_INTERNAL,            /* 500 internal */
  ST_API_P_UNAVAILABLE,         /* 503 unavailable */
  ST_API_P_COUNT
} st_api_problem;

/* Add a response header to the reply this request sends next. */
int st_api_add_header(st_api_req_t *req, const char *name, const char *value) ST_MUST_CHECK;
/* JSON body (borrowed, serialised compactly). */
int st_api_reply_json(st_api_req_t *req, unsigned status, const json_t *body);
int st_api_reply_bytes(st_api_req_t *req, unsigned status, const char *content_type,
                       const void *data, size_t len);
/* application/problem+json; detail (printf format, may be NULL) must be safe to show. */
int st_api_reply_problem(st_api_req_t *req, st_api_problem kind, const char *detail, ...)
    ST_PRINTF(3, 4);
/* The problem an ST_E* code maps to, with detail (may be NULL: the kind's title). */
int st_api_reply_error(st_api_req_t *req, int code, const char *detail);

/* Chunked body from a callback: read(arg, pos, buf, max) returns bytes written (> 0),
 * 0 at the end, or a negative code to abort the connection. free_fn(arg) runs once. */
typedef long (*st_api_read_fn)(void *arg, unsigned long long pos, char *buf, size_t max);
int st_api_reply_stream(st_api_req_t *req, unsigned status, const char *content_type,
                        st_api_read_fn read, void *arg, void (*free_fn)(void *));
/* A file with Range support (one `bytes=` range: 206 + Content-Range; unsatisfiable: 416;
 * several ranges: the whole file, 200). 404 problem when it cannot be opened. */
int st_api_reply_file(st_api_req_t *req, const char *path, const char *content_type);

/* A body of `size` bytes read at absolute offsets, with Range support as
 * st_api_reply_file (206 + Content-Range, 416, Accept-Ranges) and a Content-Length:
 * read(arg, offset, buf, max) as st_api_reply_stream. free_fn(arg) runs once, also when
 * the range is refused. */
int st_api_reply_ranged(st_api_req_t *req, const char *content_type, unsigned long long size,
                        st_api_read_fn read, void *arg, void (*free_fn)(void *));

/* Server-Sent Events: replies 200 text/event-stream and hands back a stream that the
 * producer (any thread) feeds. The connection is suspended while the queue is empty. */
int st_api_reply_sse(st_api_req_t *req, st_api_sse_t **out);
/* Queue one event: `id:` (required, no newlines; what a reconnect sends as
 * Last-Event-ID), optional `event:`, `data:` (split into data lines at newlines).
 * ST_ECANCELED once the client has gone; ST_ETOOBIG when the backlog is full. */
int st_api_sse_send(st_api_sse_t *sse, const char *id, const char *event, const char *data)
    ST_MUST_CHECK;
/* End the stream after the queued events and drop the producer's reference. */
void st_api_sse_close(st_api_sse_t *sse);

/* ---- pure helpers (exposed for tests and other modules) ---- */

/* Parse a traceparent header; ST_EPARSE unless version 00 form (or a later version with
 * the same prefix), lower-case hex, non-zero ids. */
int st_api_traceparent_parse(const char *s, st_api_trace_t *out) ST_MUST_CHECK;
/* HTTP status and type URI of a problem kind. */
unsigned st_api_problem_status(st_api_problem kind);
const char *st_api_problem_type(st_api_problem kind);
/* The one mapping from ST_E* codes to problem kinds. */
st_api_problem st_api_problem_for_err(int code);

#endif
