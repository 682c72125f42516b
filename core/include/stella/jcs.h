/* jcs.h: canonical JSON (RFC 8785, JCS) from jansson values.
 *
 * The output is the one byte sequence RFC 8785 defines for a value, so that hashes and
 * signatures over it are reproducible anywhere:
 *   - no whitespace; object members sorted by their keys as UTF-16 code units (not
 *     UTF-8 bytes: U+10000 and above sort before U+E000..U+FFFF);
 *   - strings escaped exactly as st_buf_add_json_str does; a string or key that is not
 *     valid UTF-8 (including encoded surrogates) is refused with ST_EUTF8;
 *   - numbers as ECMAScript Number.prototype.toString prints them: shortest digits that
 *     round-trip, plain notation from 1e-6 up to below 1e21, exponent form ("1e+21",
 *     "1e-7") outside; -0 prints as 0; NaN and infinities are refused with ST_ERANGE;
 *   - json_integer values (long long) with |v| <= 2^53 print exactly; larger ones print as
 *     the double nearest to them would (9007199254740993 -> "9007199254740992"), which is
 *     what any RFC 8785 implementation that reads the same JSON text produces.
 *
 * st_jcs_encode appends to a caller buffer, so several values (or a prefix) can be
 * written into one buffer; on failure the buffer is restored to its length before the
 * call. Nesting deeper than ST_JCS_MAX_DEPTH fails with ST_EDEPTH. Error messages give
 * the path of the offending value, e.g. `jcs: $.entries[3].size: ...`.
 * A buffer's cap applies: ST_ETOOBIG when the output would pass it.
 *
 * Thread rules: safe from any thread; the value must not be modified during the call.
 */
#ifndef STELLA_JCS_H
#define STELLA_JCS_H

#include <jansson.h>
#include <stddef.h>

#include "stella/buf.h"
#include "stella/err.h"
#include "stella/json.h"

#define ST_JCS_MAX_DEPTH ST_JSON_MAX_DEPTH_CEILING

/* Append the canonical form of v to out. */
int st_jcs_encode(const json_t *v, st_buf_t *out, st_error_t *err) ST_MUST_CHECK;

/* Parse s[0..len) with st_json_parse (lim may be NULL) and append its canonical form. */
int st_jcs_canonicalize(const char *s, size_t len, const st_json_limits_t *lim, st_buf_t *out,
                        st_error_t *err) ST_MUST_CHECK;

/* Append d as Number.prototype.toString would print it; ST_ERANGE for NaN/infinity. */
int st_jcs_number(double d, st_buf_t *out) ST_MUST_CHECK;

#endif
