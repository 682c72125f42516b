/* envelope.h: the job envelope v1, the one message format on `stella:jobs:<type>`.
 *
 * An envelope is a msgpack map with string keys (schemas/json/envelope-v1.md):
 *   v 1, job_id, tenant, type, attempt (>= 1), not_before (unix ms, 0 = now),
 *   idempotency_key (optional), trace (optional W3C traceparent), payload (map).
 * Decoding is strict: the whole input must be one map, every key known and unique,
 * every value of the right msgpack type and within bounds; an error names the field
 * ("envelope: tenant: missing"). The payload map becomes a jansson object so workers
 * validate it with their own rules; payload strings must be UTF-8, integers must fit
 * int64, binary and extension values are refused.
 *
 * Sizes are checked before msgpack-c allocates anything: msgpack-c trusts the element
 * counts in container headers, so a 5-byte input could make it allocate gigabytes. A
 * bounded pre-scan (every declared element needs at least one byte of input, nesting at
 * most ST_ENVELOPE_MAX_DEPTH) runs first.
 *
 * Ownership: st_envelope_release frees every field and the payload. Decode fills a
 * caller-allocated envelope (initialise it first); on failure it is left released.
 * Thread rules: no shared state; any thread.
 * Errors: ST_ETOOBIG (over the size cap), ST_EPARSE (not msgpack, trailing bytes, too
 * deep), ST_EINVAL (missing field, wrong type, bad value), ST_EUNSUPPORTED (unknown job
 * type or envelope version), ST_ENOMEM.
 */
#ifndef STELLA_QUEUE_ENVELOPE_H
#define STELLA_QUEUE_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "stella/buf.h"
#include "stella/err.h"

#define ST_ENVELOPE_VERSION 1
#define ST_ENVELOPE_MAX_DEPTH 32
#define ST_ENVELOPE_MAX_ID 128        /* job_id, idempotency_key */
#define ST_ENVELOPE_MAX_TENANT 64
#define ST_ENVELOPE_MAX_TYPE 64
#define ST_ENVELOPE_MAX_ATTEMPT 1000
#define ST_ENVELOPE_MAX_PAYLOAD_KEYS 4096 /* per map or array in the payload */

typedef struct st_envelope_s {
  char *job_id;          /* [A-Za-z0-9._:-]{1,128} */
  char *tenant;          /* [A-Za-z0-9._-]{1,64} */
  char *type;            /* [a-z0-9_]{1,64}, a registered worker */
  uint32_t attempt;      /* 1 for the first run */
  uint64_t not_before;   /* unix ms; 0 = run at once */
  char *idempotency_key; /* NULL when absent; printable ASCII, <= 128 */
  char *trace;           /* NULL when absent; W3C traceparent (55 chars) */
  json_t *payload;       /* a JSON object; owned */
} st_envelope_t;

typedef struct st_envelope_limits_s {
  size_t max_bytes;          /* config max_envelope_bytes */
  const char *const *types;  /* NULL-terminated known types; NULL = any well-formed */
} st_envelope_limits_t;

void st_envelope_init(st_envelope_t *env);
void st_envelope_release(st_envelope_t *env);

/* Decode and validate data[0..len). */
int st_envelope_decode(st_envelope_t *env, const void *data, size_t len,
                       const st_envelope_limits_t *lim, st_error_t *err) ST_MUST_CHECK;

/* Validate env as decode would and append its msgpack form to out (whose cap is honoured).
 * ST_ETOOBIG when the encoding passes max_bytes (0 = no cap). */
int st_envelope_encode(const st_envelope_t *env, size_t max_bytes, st_buf_t *out,
                       st_error_t *err) ST_MUST_CHECK;

/* Set env->job_id to a fresh random UUIDv4 string. */
int st_envelope_new_id(st_envelope_t *env, st_error_t *err) ST_MUST_CHECK;

/* The stream of a job type: "stella:jobs:<type>" appended to out. */
int st_envelope_stream(const char *type, st_buf_t *out) ST_MUST_CHECK;

#define ST_STREAM_PREFIX "stella:jobs:"

#endif
