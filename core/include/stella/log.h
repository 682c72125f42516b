/* log.h: JSON-lines logging.
 *
 * Each record is one line: {"ts","level","msg","tenant","job_id","trace_id", extra...}
 * written with a single write(2) so lines from threads never interleave. The tenant,
 * job_id and trace_id come from a per-thread context that a worker sets when it picks
 * up a job and clears when done; fields that are unset are omitted.
 *
 * Thread rules: st_log may be called from any thread. st_log_set_level / st_log_set_fd
 * are for start-up, before threads exist. Strings handed to st_log_ctx_set are copied.
 */
#ifndef STELLA_LOG_H
#define STELLA_LOG_H

#include "stella/err.h"

typedef enum st_log_level {
  ST_LOG_DEBUG = 0,
  ST_LOG_INFO,
  ST_LOG_WARN,
  ST_LOG_ERROR,
} st_log_level;

/* Parse "debug|info|warn|error"; ST_EINVAL otherwise. */
int st_log_level_parse(const char *s, st_log_level *out);
void st_log_set_level(st_log_level level);
/* Destination fd (default 2). */
void st_log_set_fd(int fd);

/* Set this thread's context; NULL clears a field. */
void st_log_ctx_set(const char *tenant, const char *job_id, const char *trace_id);
void st_log_ctx_clear(void);

/* Log msg (printf format). */
void st_log(st_log_level level, const char *fmt, ...) ST_PRINTF(2, 3);
/* Log with extra key/value string pairs, NULL-terminated: st_logkv(INFO, "m", "k", "v", NULL). */
void st_logkv(st_log_level level, const char *msg, ...);

#define st_debug(...) st_log(ST_LOG_DEBUG, __VA_ARGS__)
#define st_info(...) st_log(ST_LOG_INFO, __VA_ARGS__)
#define st_warn(...) st_log(ST_LOG_WARN, __VA_ARGS__)
#define st_error(...) st_log(ST_LOG_ERROR, __VA_ARGS__)

#endif
