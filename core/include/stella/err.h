/* err.h: the one error type of Stella.
 *
 * Every fallible function returns an int: 0 on success or a negative ST_E* code.
 * Codes come from one X-macro (as libuv's UV_ERRNO_MAP) so names, messages and the
 * retry class stay in one place. A caller that wants detail passes an st_error_t,
 * which carries the code and a human message naming what failed (a field, a key,
 * a path). The message is for people and logs; programs branch on the code.
 *
 * Thread rules: st_strerror and st_err_name return static strings and are safe from
 * any thread. An st_error_t belongs to its caller; no function keeps a pointer to it.
 */
#ifndef STELLA_ERR_H
#define STELLA_ERR_H

#include <stddef.h>

/* X(name, value, message). Values are stable: they appear in logs and exit paths. */
#define ST_ERRNO_MAP(X)                                                        \
  X(EINVAL, -1, "invalid argument")                                             \
  X(ENOMEM, -2, "out of memory")                                                \
  X(EIO, -3, "input/output error")                                              \
  X(ENOENT, -4, "not found")                                                    \
  X(EEXIST, -5, "already exists")                                               \
  X(ETOOBIG, -6, "size limit exceeded")                                         \
  X(EPARSE, -7, "malformed input")                                              \
  X(EDEPTH, -8, "nesting too deep")                                             \
  X(EUTF8, -9, "invalid UTF-8")                                                 \
  X(ERANGE, -10, "value out of range")                                          \
  X(ECONFIG, -11, "invalid configuration")                                      \
  X(EDB, -12, "database error")                                                 \
  X(EDBRETRY, -13, "database transient failure")                                \
  X(EREDIS, -14, "redis error")                                                 \
  X(ECRYPTO, -15, "cryptographic failure")                                      \
  X(EVERIFY, -16, "verification failed")                                        \
  X(EPERM, -17, "permission denied")                                            \
  X(EBUSY, -18, "resource busy")                                                \
  X(ETIMEDOUT, -19, "timed out")                                                \
  X(ECANCELED, -20, "cancelled")                                                \
  X(ECONFLICT, -21, "conflict")                                                 \
  X(EUNSAFE, -22, "unsafe path or entry")                                       \
  X(ENET, -23, "network error")                                                 \
  X(EUNSUPPORTED, -24, "unsupported")                                           \
  X(EINTERNAL, -25, "internal error")                                           \
  X(EQUOTA, -26, "quota exceeded")

enum st_errno {
#define ST__ERR_ENUM(name, value, msg) ST_##name = value,
  ST_ERRNO_MAP(ST__ERR_ENUM)
#undef ST__ERR_ENUM
  ST_OK = 0
};

/* Whether a failure is worth retrying (libarchive's RETRY/FAILED ladder, reduced). */
typedef enum st_err_class {
  ST_ERRCLASS_PERMANENT = 0, /* same input fails again: dead-letter */
  ST_ERRCLASS_TRANSIENT = 1, /* infrastructure hiccup: retry with backoff */
} st_err_class;

#define ST_ERRMSG_MAX 512

/* Detail of one failure. Zero-initialise (ST_ERROR_INIT) before use. */
typedef struct st_error_s {
  int code;
  char msg[ST_ERRMSG_MAX]; /* NUL-terminated, truncated if longer */
} st_error_t;

#define ST_ERROR_INIT {0, {0}}

#if defined(__GNUC__)
#define ST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ST_MUST_CHECK __attribute__((warn_unused_result))
#else
#define ST_PRINTF(a, b)
#define ST_MUST_CHECK
#endif

/* Static message for a code ("unknown error" for unknown codes). */
const char *st_strerror(int code);
/* Static symbolic name for a code, e.g. "ST_EPARSE". */
const char *st_err_name(int code);
/* Retry class of a code: transient for DB/Redis/network/timeouts, else permanent. */
st_err_class st_err_classify(int code);

/* Record a failure in err (which may be NULL) and return code, so callers can write
 * `return st_fail(err, ST_EPARSE, "field %s: ...", name);`. */
int st_fail(st_error_t *err, int code, const char *fmt, ...) ST_PRINTF(3, 4);

/* Prefix err->msg with context ("loading %s: <old message>"); returns err->code. */
int st_error_wrap(st_error_t *err, const char *fmt, ...) ST_PRINTF(2, 3);

/* The message if set, else st_strerror(code). Never NULL. */
const char *st_error_text(const st_error_t *err);

#endif
