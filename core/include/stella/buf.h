/* buf.h: the one growable byte buffer, for every outside-sourced string.
 *
 * Invariants (git's strbuf): `data` is never NULL and always NUL-terminated, so an
 * empty buffer can be printed; `len` excludes the terminator. Unlike strbuf a buffer
 * has a size cap (curl's dynbuf): a write that would pass `max` fails with ST_ETOOBIG
 * and leaves the buffer unchanged, so a hostile peer cannot grow it without bound.
 *
 * Ownership: the buffer owns `data`; st_buf_release frees it and resets to empty;
 * st_buf_detach hands it to the caller (free with st_free). Not thread-safe: one
 * buffer, one thread at a time.
 */
#ifndef STELLA_BUF_H
#define STELLA_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "stella/err.h"

typedef struct st_buf_s {
  char *data;
  size_t len;
  size_t cap; /* 0 while data points at the shared empty string */
  size_t max; /* largest len allowed */
} st_buf_t;

extern char st_buf_empty[];
#define ST_BUF_MAX_DEFAULT ((size_t)1 << 30)
#define ST_BUF_INIT {st_buf_empty, 0, 0, ST_BUF_MAX_DEFAULT}

/* Set up an empty buffer with a size cap (0 = ST_BUF_MAX_DEFAULT). */
void st_buf_init(st_buf_t *b, size_t max);
/* Free contents; the buffer is empty and reusable afterwards. */
void st_buf_release(st_buf_t *b);
/* Truncate to zero length, keeping the allocation. */
void st_buf_reset(st_buf_t *b);
/* Ensure room for `extra` more bytes. ST_ETOOBIG past max, ST_ENOMEM. */
int st_buf_grow(st_buf_t *b, size_t extra) ST_MUST_CHECK;
/* Hand the data to the caller (st_free it); *len_out gets the length if non-NULL. */
char *st_buf_detach(st_buf_t *b, size_t *len_out);

int st_buf_add(st_buf_t *b, const void *data, size_t len) ST_MUST_CHECK;
int st_buf_adds(st_buf_t *b, const char *s) ST_MUST_CHECK;
int st_buf_addc(st_buf_t *b, char c) ST_MUST_CHECK;
int st_buf_addf(st_buf_t *b, const char *fmt, ...) ST_PRINTF(2, 3) ST_MUST_CHECK;
int st_buf_vaddf(st_buf_t *b, const char *fmt, va_list ap) ST_MUST_CHECK;
/* Lower-case hex of len bytes. */
int st_buf_add_hex(st_buf_t *b, const void *data, size_t len) ST_MUST_CHECK;

/* Append s as a JSON string literal with quotes, escaping exactly as RFC 8785 asks:
 * `"` `\\` and controls below 0x20 (\b \t \n \f \r, others \u00xx lower-case); all
 * else verbatim. The caller guarantees s is valid UTF-8 (see st_utf8_valid). */
int st_buf_add_json_str(st_buf_t *b, const char *s, size_t len) ST_MUST_CHECK;

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int st_utf8_valid(const char *s, size_t len);

#endif
