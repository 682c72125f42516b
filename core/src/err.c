/* err.c: code names, messages, retry classes and the st_error_t helpers. */
#include "stella/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *st_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
#define ST__ERR_MSG(name, value, msg) \
  case value:                         \
    return msg;
    ST_ERRNO_MAP(ST__ERR_MSG)
#undef ST__ERR_MSG
  default:
    return "unknown error";
  }
}

const char *st_err_name(int code) {
  switch (code) {
  case 0:
    return "ST_OK";
#define ST__ERR_NAME(name, value, msg) \
  case value:                          \
    return "ST_" #name;
    ST_ERRNO_MAP(ST__ERR_NAME)
#undef ST__ERR_NAME
  default:
    return "ST_UNKNOWN";
  }
}

st_err_class st_err_classify(int code) {
  switch (code) {
  case ST_ENOMEM:
  case ST_EIO:
  case ST_EDBRETRY:
  case ST_EREDIS:
  case ST_EBUSY:
  case ST_ETIMEDOUT:
  case ST_ENET:
    return ST_ERRCLASS_TRANSIENT;
  default:
    return ST_ERRCLASS_PERMANENT;
  }
}

int st_fail(st_error_t *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
  }
  return code;
}

int st_error_wrap(st_error_t *err, const char *fmt, ...) {
  char prefix[ST_ERRMSG_MAX];
  char old[ST_ERRMSG_MAX];
  va_list ap;

  if (!err)
    return ST_EINTERNAL;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof(prefix), fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof(old));
  /* Truncation keeps the start of the message, which names the outermost context. */
  if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix,
               old[0] ? old : st_strerror(err->code)) >= (int)sizeof(err->msg))
    err->msg[sizeof(err->msg) - 1] = '\0';
  return err->code;
}

const char *st_error_text(const st_error_t *err) {
  if (!err)
    return "unknown error";
  return err->msg[0] ? err->msg : st_strerror(err->code);
}
