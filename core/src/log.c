/* log.c: one JSON object per line, one write(2) per record, per-thread context. */
#include "stella/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stella/buf.h"

#define CTX_FIELD_MAX 128

static st_log_level min_level = ST_LOG_INFO;
static int log_fd = 2;

static _Thread_local struct {
  char tenant[CTX_FIELD_MAX];
  char job_id[CTX_FIELD_MAX];
  char trace_id[CTX_FIELD_MAX];
} ctx;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int st_log_level_parse(const char *s, st_log_level *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (st_log_level)i;
      return 0;
    }
  }
  return ST_EINVAL;
}

void st_log_set_level(st_log_level level) { min_level = level; }
void st_log_set_fd(int fd) { log_fd = fd; }

static void ctx_copy(char *dst, const char *src) {
  if (!src) {
    dst[0] = '\0';
    return;
  }
  snprintf(dst, CTX_FIELD_MAX, "%s", src);
}

void st_log_ctx_set(const char *tenant, const char *job_id, const char *trace_id) {
  ctx_copy(ctx.tenant, tenant);
  ctx_copy(ctx.job_id, job_id);
  ctx_copy(ctx.trace_id, trace_id);
}

void st_log_ctx_clear(void) { st_log_ctx_set(NULL, NULL, NULL); }

/* Append ,"key":"value" with the value made safe even if it is not UTF-8. */
static int add_field(st_buf_t *b, const char *key, const char *val) {
  size_t n = strlen(val);
  int rc = st_buf_addc(b, ',');
  if (!rc)
    rc = st_buf_add_json_str(b, key, strlen(key));
  if (!rc)
    rc = st_buf_addc(b, ':');
  if (rc)
    return rc;
  if (st_utf8_valid(val, n))
    return st_buf_add_json_str(b, val, n);
  rc = st_buf_adds(b, "\"<non-utf8:");
  if (!rc)
    rc = st_buf_add_hex(b, val, n > 64 ? 64 : n);
  return rc ? rc : st_buf_adds(b, ">\"");
}

static void emit(st_log_level level, const char *msg, va_list *kv) {
  st_buf_t b = ST_BUF_INIT;
  struct timespec ts;
  struct tm tm;
  char tbuf[40];
  int rc;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
  rc = st_buf_addf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\"", tbuf, ts.tv_nsec / 1000000,
                   level_names[level]);
  if (!rc)
    rc = add_field(&b, "msg", msg);
  if (!rc && ctx.tenant[0])
    rc = add_field(&b, "tenant", ctx.tenant);
  if (!rc && ctx.job_id[0])
    rc = add_field(&b, "job_id", ctx.job_id);
  if (!rc && ctx.trace_id[0])
    rc = add_field(&b, "trace_id", ctx.trace_id);
  while (!rc && kv) {
    const char *k = va_arg(*kv, const char *);
    const char *v;
    if (!k)
      break;
    v = va_arg(*kv, const char *);
    rc = add_field(&b, k, v ? v : "");
  }
  if (!rc)
    rc = st_buf_adds(&b, "}\n");
  if (!rc) {
    ssize_t w = write(log_fd, b.data, b.len);
    (void)w;
  }
  st_buf_release(&b);
}

void st_log(st_log_level level, const char *fmt, ...) {
  st_buf_t msg = ST_BUF_INIT;
  va_list ap;

  if (level < min_level)
    return;
  va_start(ap, fmt);
  if (st_buf_vaddf(&msg, fmt, ap) == 0)
    emit(level, msg.data, NULL);
  va_end(ap);
  st_buf_release(&msg);
}

void st_logkv(st_log_level level, const char *msg, ...) {
  va_list ap;
  if (level < min_level)
    return;
  va_start(ap, msg);
  emit(level, msg, &ap);
  va_end(ap);
}
