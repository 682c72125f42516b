/* trace.c: request ids and W3C trace context (https://www.w3.org/TR/trace-context/).
 * An incoming X-Request-Id is kept when it is 1..128 characters of [A-Za-z0-9._:-]
 * (so it is safe in headers, logs and JSON), otherwise a new 32-hex id is made. An
 * incoming traceparent is kept only when valid; this request always gets its own span
 * id, and what it hands downstream is 00-<trace>-<own span>-<flags>. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "api_internal.h"

int64_t st__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void st__rand_hex(char *out, size_t nbytes) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[32];
  if (nbytes > sizeof(raw))
    nbytes = sizeof(raw);
  if (RAND_bytes(raw, (int)nbytes) != 1) {
    /* ids must be unique, not secret: fall back to time and a counter */
    static _Atomic uint64_t counter;
    uint64_t v = (uint64_t)st__now_ms() * 1000003u ^ ++counter;
    for (size_t i = 0; i < nbytes; i++)
      raw[i] = (unsigned char)(v >> (8 * (i % 8)) ^ i);
  }
  for (size_t i = 0; i < nbytes; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[2 * nbytes] = '\0';
}

static int lhex(const char *s, size_t n) {
  int nonzero = 0;
  for (size_t i = 0; i < n; i++) {
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return -1;
    nonzero |= s[i] != '0';
  }
  return nonzero;
}

int st_api_traceparent_parse(const char *s, st_api_trace_t *out) {
  size_t n = strlen(s);
  unsigned flags;

  /* version "-" trace-id(32) "-" parent-id(16) "-" flags(2) = 55 */
  if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
    return ST_EPARSE;
  if (lhex(s, 2) < 0 || memcmp(s, "ff", 2) == 0)
    return ST_EPARSE;
  if (memcmp(s, "00", 2) == 0 ? n != 55 : (n > 55 && s[55] != '-'))
    return ST_EPARSE;
  if (lhex(s + 3, 32) != 1 || lhex(s + 36, 16) != 1 || lhex(s + 53, 2) < 0)
    return ST_EPARSE;
  sscanf(s + 53, "%2x", &flags);
  memset(out, 0, sizeof(*out));
  memcpy(out->trace_id, s + 3, 32);
  memcpy(out->parent_id, s + 36, 16);
  out->flags = (unsigned char)flags;
  return 0;
}

static int req_id_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > ST__REQ_ID_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || strchr("._:-", s[i])))
      return 0;
  return 1;
}

void st__req_ids(st_api_req_t *req) {
  const char *id = st_api_req_header(req, "X-Request-Id");
  const char *tp = st_api_req_header(req, "traceparent");

  if (id && req_id_ok(id))
    snprintf(req->id, sizeof(req->id), "%s", id);
  else
    st__rand_hex(req->id, 16);
  if (!tp || st_api_traceparent_parse(tp, &req->trace)) {
    memset(&req->trace, 0, sizeof(req->trace));
    st__rand_hex(req->trace.trace_id, 16);
  }
  st__rand_hex(req->trace.span_id, 8);
  snprintf(req->traceparent, sizeof(req->traceparent), "00-%s-%s-%02x", req->trace.trace_id,
           req->trace.span_id, req->trace.flags);
}

const char *st_api_req_id(const st_api_req_t *req) { return req->id; }
const st_api_trace_t *st_api_req_trace(const st_api_req_t *req) { return &req->trace; }
const char *st_api_req_traceparent(const st_api_req_t *req) { return req->traceparent; }
