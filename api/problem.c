/* problem.c: RFC 9457 problem details. The one table of problem kinds (status, stable
 * type URI, title) and the one mapping from ST_E* codes to kinds (rekor's
 * pkg/api/error.go pattern): handlers and the server never pick a status elsewhere.
 * The client sees the type, title, safe detail and the request id; the log gets the
 * internal reason. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "stella/log.h"
#include "stella/mem.h"

#define TYPE_BASE "https://stella.dev/problems/"
#define DETAIL_MAX 1024
#define QUOTA_RETRY_AFTER "3600"

static const struct {
  unsigned status;
  const char *type;
  const char *title;
} kinds[ST_API_P_COUNT] = {
    [ST_API_P_BAD_REQUEST] = {400, TYPE_BASE "bad-request", "Bad request"},
    [ST_API_P_MALFORMED_JSON] = {400, TYPE_BASE "malformed-json", "Malformed JSON body"},
    [ST_API_P_UNAUTHORIZED] = {401, TYPE_BASE "unauthorized", "Authentication required"},
    [ST_API_P_FORBIDDEN] = {403, TYPE_BASE "forbidden", "Insufficient scope"},
    [ST_API_P_NOT_FOUND] = {404, TYPE_BASE "not-found", "Not found"},
    [ST_API_P_METHOD_NOT_ALLOWED] = {405, TYPE_BASE "method-not-allowed",
                                     "Method not allowed"},
    [ST_API_P_CONFLICT] = {409, TYPE_BASE "conflict", "Conflict"},
    [ST_API_P_IDEMPOTENCY_IN_FLIGHT] = {409, TYPE_BASE "idempotency-in-flight",
                                        "Request with this Idempotency-Key is in progress"},
    [ST_API_P_PAYLOAD_TOO_LARGE] = {413, TYPE_BASE "payload-too-large",
                                    "Request body too large"},
    [ST_API_P_UNSUPPORTED_MEDIA_TYPE] = {415, TYPE_BASE "unsupported-media-type",
                                         "Unsupported media type"},
    [ST_API_P_RANGE_NOT_SATISFIABLE] = {416, TYPE_BASE "range-not-satisfiable",
                                        "Range not satisfiable"},
    [ST_API_P_UNPROCESSABLE] = {422, TYPE_BASE "unprocessable", "Unprocessable request"},
    [ST_API_P_IDEMPOTENCY_MISMATCH] = {422, TYPE_BASE "idempotency-key-reused",
                                       "Idempotency-Key reused with a different request"},
    [ST_API_P_VERIFICATION_FAILED] = {422, TYPE_BASE "verification-failed",
                                      "Verification failed"},
    [ST_API_P_RATE_LIMITED] = {429, TYPE_BASE "rate-limited", "Too many requests"},
    [ST_API_P_QUOTA_EXCEEDED] = {429, TYPE_BASE "quota-exceeded", "Storage quota exceeded"},
    [ST_API_P_INTERNAL] = {500, TYPE_BASE "internal", "Internal error"},
    [ST_API_P_UNAVAILABLE] = {503, TYPE_BASE "unavailable", "Service unavailable"},
};

unsigned st_api_problem_status(st_api_problem kind) {
  return (unsigned)kind < ST_API_P_COUNT ? kinds[kind].status : 500;
}

const char *st_api_problem_type(st_api_problem kind) {
  return (unsigned)kind < ST_API_P_COUNT ? kinds[kind].type : kinds[ST_API_P_INTERNAL].type;
}

st_api_problem st_api_problem_for_err(int code) {
  switch (code) {
  case ST_EINVAL:
  case ST_ERANGE:
  case ST_EUNSAFE:
    return ST_API_P_BAD_REQUEST;
  case ST_EPARSE:
  case ST_EUTF8:
  case ST_EDEPTH:
    return ST_API_P_MALFORMED_JSON;
  case ST_EPERM:
    return ST_API_P_FORBIDDEN;
  case ST_ENOENT:
    return ST_API_P_NOT_FOUND;
  case ST_EEXIST:
  case ST_ECONFLICT:
  case ST_EBUSY:
  case ST_ECANCELED:
    return ST_API_P_CONFLICT;
  case ST_ETOOBIG:
    return ST_API_P_PAYLOAD_TOO_LARGE;
  case ST_EUNSUPPORTED:
    return ST_API_P_UNPROCESSABLE;
  case ST_EVERIFY:
    return ST_API_P_VERIFICATION_FAILED;
  case ST_EQUOTA:
    return ST_API_P_QUOTA_EXCEEDED;
  case ST_EDBRETRY:
  case ST_EREDIS:
  case ST_ENET:
  case ST_ETIMEDOUT:
    return ST_API_P_UNAVAILABLE;
  default: /* EIO, ENOMEM, EDB, ECRYPTO, ECONFIG, EINTERNAL, unknown: nothing to show */
    return ST_API_P_INTERNAL;
  }
}

static int reply_problem(st_api_req_t *req, st_api_problem kind, const char *detail) {
  json_t *j;
  char *text = NULL;
  int rc;

  if ((unsigned)kind >= ST_API_P_COUNT)
    kind = ST_API_P_INTERNAL;
  j = json_pack("{s:s, s:s, s:i, s:s}", "type", kinds[kind].type, "title", kinds[kind].title,
                "status", (int)kinds[kind].status, "instance", req->id);
  if (j && detail && *detail)
    json_object_set_new(j, "detail", json_string(detail));
  if (!j || !(text = json_dumps(j, JSON_COMPACT))) {
    json_decref(j);
    return ST_ENOMEM;
  }
  json_decref(j);
  if (kinds[kind].status == 503 && (rc = st_api_add_header(req, "Retry-After", "1")))
    goto done;
  /* storage frees only when the tenant deletes something: ask for a patient retry */
  if (kind == ST_API_P_QUOTA_EXCEEDED &&
      (rc = st_api_add_header(req, "Retry-After", QUOTA_RETRY_AFTER)))
    goto done;
  rc = st_api_reply_bytes(req, kinds[kind].status, "application/problem+json", text,
                          strlen(text));
done:
  free(text);
  return rc;
}

int st_api_reply_problem(st_api_req_t *req, st_api_problem kind, const char *detail, ...) {
  char buf[DETAIL_MAX];
  va_list ap;

  if (!detail)
    return reply_problem(req, kind, NULL);
  va_start(ap, detail);
  vsnprintf(buf, sizeof(buf), detail, ap);
  va_end(ap);
  /* detail may quote client input; json_string rejects invalid UTF-8, so scrub it */
  if (!st_utf8_valid(buf, strlen(buf)))
    snprintf(buf, sizeof(buf), "%s", kinds[(unsigned)kind < ST_API_P_COUNT ? kind
                                                                           : ST_API_P_INTERNAL]
                                         .title);
  return reply_problem(req, kind, buf);
}

int st_api_reply_error(st_api_req_t *req, int code, const char *detail) {
  st_api_problem kind = st_api_problem_for_err(code);
  if (kind == ST_API_P_INTERNAL || kind == ST_API_P_UNAVAILABLE)
    detail = NULL; /* never leak internal text for server-side failures */
  return reply_problem(req, kind, detail);
}
