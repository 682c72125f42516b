/* keys_internal.h: helpers shared by the keys_*.c providers (not public). */
#ifndef STELLA_KEYS_INTERNAL_H
#define STELLA_KEYS_INTERNAL_H

#include <stddef.h>

#include "stella/buf.h"
#include "stella/err.h"

/* Read a whole regular file of at most max bytes into out (reset first). ST_EIO names
 * the path; ST_ETOOBIG if larger than max. The caller wipes out if it holds a secret. */
int st__keys_read_file(const char *path, size_t max, st_buf_t *out, st_error_t *err)
    ST_MUST_CHECK;

#endif
