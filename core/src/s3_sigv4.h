/* s3_sigv4.h: AWS Signature Version 4 for the S3 object store backend (internal).
 *
 * Written from the AWS documentation and checked against its published vectors
 * (tests/unit/test_s3_sigv4.c). The caller builds the pieces already in canonical
 * form where noted; st__sigv4_authorization sorts and canonicalises the headers.
 */
#ifndef STELLA_S3_SIGV4_H
#define STELLA_S3_SIGV4_H

#include <stdint.h>

#include "stella/buf.h"
#include "stella/err.h"

typedef struct st__sigv4_header_s {
  const char *name;  /* any case: lower-cased in the canonical request */
  const char *value; /* trimmed, inner runs of spaces collapsed */
} st__sigv4_header_t;

typedef struct st__sigv4_req_s {
  const char *method;
  const char *canonical_uri;   /* URI-encoded path, e.g. "/bucket/a%24b" */
  const char *canonical_query; /* from st__sigv4_query, "" if none */
  const st__sigv4_header_t *headers; /* every signed header, host and x-amz-date included */
  size_t nheaders;
  const char *payload_hash;    /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
  const char *amz_date;        /* YYYYMMDDTHHMMSSZ, equal to the x-amz-date header */
  const char *region, *service, *access_key, *secret_key;
} st__sigv4_req_t;

/* Append to out the Authorization header value
 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". canonical (may
 * be NULL) gets the canonical request, for tests and debug logs. */
int st__sigv4_authorization(const st__sigv4_req_t *r, st_buf_t *out, st_buf_t *canonical)
    ST_MUST_CHECK;

/* RFC 3986 encoding as SigV4 asks: unreserved bytes verbatim, others %XX upper-case;
 * '/' kept when keep_slash. */
int st__sigv4_uri_encode(st_buf_t *out, const char *s, size_t len, int keep_slash)
    ST_MUST_CHECK;

/* Canonical query string of n (name, value) pairs: each encoded, sorted by name then
 * value, joined with '&'. kv holds 2n strings. */
int st__sigv4_query(st_buf_t *out, const char *const *kv, size_t n) ST_MUST_CHECK;

/* x-amz-date form of a Unix time (17 bytes with NUL). */
void st__sigv4_amz_date(int64_t t, char out[17]);

#endif
