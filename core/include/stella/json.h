/* json.h: bounded JSON parsing (jansson underneath) and typed field getters.
 *
 * st_json_parse accepts one RFC 8259 JSON text of any type and refuses, with the line and
 * column in the message:
 *   - texts longer than lim->max_bytes (ST_ETOOBIG),
 *   - nesting of arrays/objects deeper than lim->max_depth (ST_EDEPTH). Depth is checked
 *     by a scan of the raw text before jansson sees it, so jansson's recursive parser
 *     never recurses past the bound, whatever the input,
 *   - invalid UTF-8, and \u escapes naming a lone surrogate (ST_EUTF8),
 *   - \u0000 in strings (ST_EPARSE): keys and values stay C strings,
 *   - numbers outside the range of a double, e.g. 1e400, and integer literals outside
 *     long long (ST_ERANGE). RFC 8785 can only represent IEEE doubles, and I-JSON
 *     (RFC 7493) limits interoperable integers to +-2^53, so no precision is silently lost
 *     here: out-of-range numbers are refused, not rounded,
 *   - duplicate object keys (ST_EPARSE, naming the key),
 *   - anything else malformed, including trailing data (ST_EPARSE).
 * Integers without fraction or exponent become json_integer, the rest json_real.
 *
 * Ownership: *out is a new reference (json_decref it). Getters return borrowed
 * references/strings that live as long as the object.
 * Allocation: the first parse routes jansson's allocator through st_malloc/st_free for the
 * whole process (so allocation-failure tests reach jansson too).
 * Thread rules: safe from any thread; a json_t belongs to one thread at a time.
 */
#ifndef STELLA_JSON_H
#define STELLA_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "stella/err.h"

#define ST_JSON_MAX_BYTES_DEFAULT ((size_t)64 << 20)
#define ST_JSON_MAX_DEPTH_DEFAULT 64
/* Larger limits are clamped to this (jansson's own bound is 2048; the canonical encoder
 * recurses too and must stay well inside a worker thread's stack). */
#define ST_JSON_MAX_DEPTH_CEILING 512

typedef struct st_json_limits_s {
  size_t max_bytes; /* 0 = ST_JSON_MAX_BYTES_DEFAULT */
  int max_depth;    /* 0 = ST_JSON_MAX_DEPTH_DEFAULT; a scalar text has depth 0 */
} st_json_limits_t;

/* Parse s[0..len) (lim may be NULL for the defaults). */
int st_json_parse(const char *s, size_t len, const st_json_limits_t *lim, json_t **out,
                  st_error_t *err) ST_MUST_CHECK;

/* Typed getters of obj[key]: ST_ENOENT if missing, ST_EINVAL if obj is not an object or
 * the member has another type; the message names the key. */
int st_json_get_obj(const json_t *obj, const char *key, json_t **out, st_error_t *err)
    ST_MUST_CHECK;
int st_json_get_arr(const json_t *obj, const char *key, json_t **out, st_error_t *err)
    ST_MUST_CHECK;
/* *out is NUL-terminated; *len_out (if non-NULL) gets its length. */
int st_json_get_str(const json_t *obj, const char *key, const char **out, size_t *len_out,
                    st_error_t *err) ST_MUST_CHECK;
int st_json_get_int(const json_t *obj, const char *key, long long *out, st_error_t *err)
    ST_MUST_CHECK;
int st_json_get_bool(const json_t *obj, const char *key, int *out, st_error_t *err)
    ST_MUST_CHECK;

#endif
