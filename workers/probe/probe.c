/* probe.c: the `probe` job type, for health checks, demos and tests.
 * Payload (schemas/json/job-probe.schema.json): sleep_ms (0..3600000) sleeps in 10 ms
 * steps honouring cancellation; fail "transient"|"permanent" fails the run, but only for
 * attempts <= fail_times when fail_times is given (so a retry can then succeed). */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "registry.h"

static int probe_validate(const json_t *p, st_error_t *err) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)p, k, v) {
    if (!strcmp(k, "sleep_ms")) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3600000)
        return st_fail(err, ST_EINVAL, "sleep_ms: expected an integer in 0..3600000");
    } else if (!strcmp(k, "fail")) {
      if (!json_is_string(v) || (strcmp(json_string_value(v), "transient") &&
                                 strcmp(json_string_value(v), "permanent")))
        return st_fail(err, ST_EINVAL, "fail: expected \"transient\" or \"permanent\"");
    } else if (!strcmp(k, "fail_times")) {
      if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000)
        return st_fail(err, ST_EINVAL, "fail_times: expected an integer in 1..1000");
    } else {
      return st_fail(err, ST_EINVAL, "%s: unknown key", k);
    }
  }
  return 0;
}

static int probe_run(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err) {
  const json_t *p = job->env->payload;
  json_int_t sleep_ms = json_integer_value(json_object_get(p, "sleep_ms"));
  const char *fail = json_string_value(json_object_get(p, "fail"));
  json_t *times = json_object_get(p, "fail_times");

  for (json_int_t slept = 0; slept < sleep_ms; slept += 10) {
    struct timespec ts = {0, 10 * 1000000L};
    if (st_job_cancelled(ctx))
      return st_fail(err, ST_ECANCELED, "probe: cancelled after %lld ms", (long long)slept);
    nanosleep(&ts, NULL);
  }
  if (ctx->progress)
    ctx->progress(ctx, 1.0, "slept");
  if (fail && (!times || (json_int_t)job->env->attempt <= json_integer_value(times))) {
    if (!strcmp(fail, "transient"))
      return st_fail(err, ST_EBUSY, "probe: injected transient failure (attempt %u)",
                     job->env->attempt);
    return st_fail(err, ST_EINVAL, "probe: injected permanent failure");
  }
  return 0;
}

const st_worker_t st_worker_probe = {
    .name = "probe",
    .validate = probe_validate,
    .run = probe_run,
    .max_concurrency = 0,
    .max_attempts = 0,
};
