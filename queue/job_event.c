/* job_event.c: the outbox event of a job transition (st_job_event_make, see sink.h),
 * shared by the Postgres state sink and the API's job submission so that every job event
 * has one id scheme and one envelope format. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sink.h"
#include "stella/buf.h"
#include "stella/sha256.h"

int st_job_event_make(const st_job_event_t *ev, char id[ST_SHA256_HEX_LEN + 1], char **json,
                      st_error_t *err) {
  const st_envelope_t *e = ev->env;
  st_buf_t b = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char when[64], subject[ST_ENVELOPE_MAX_ID + 8], trace[33];
  time_t secs = (time_t)(ev->at_ms / 1000);
  struct tm tm;
  json_t *env = NULL, *pl = NULL;
  int rc = 0;

  *json = NULL;
  if (st_buf_addf(&b, "job\n%s\n%u\n%s", e->job_id, ev->attempt, ev->transition) ||
      st_sha256(b.data, b.len, d)) {
    rc = st_fail(err, ST_ENOMEM, "job event: cannot derive the event id");
    goto done;
  }
  st_sha256_hex(d, id);
  gmtime_r(&secs, &tm);
  snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (unsigned)(ev->at_ms % 1000));
  snprintf(subject, sizeof(subject), "job/%s", e->job_id);
  pl = json_pack("{s:s, s:s, s:I, s:s}", "job_id", e->job_id, "job_type", e->type, "attempt",
                 (json_int_t)ev->attempt, "state", ev->state);
  if (pl && ev->extra && json_object_update(pl, (json_t *)ev->extra)) {
    json_decref(pl);
    pl = NULL;
  }
  env = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o*}", "schema", "stella.event/v1",
                  "event_id", id, "tenant", e->tenant, "type", ev->type, "occurred_at", when,
                  "subject", subject, "payload", pl);
  if (env && e->trace) { /* 00-<32 hex trace id>-<16 hex>-<2 hex> */
    snprintf(trace, sizeof(trace), "%.32s", e->trace + 3);
    json_object_set_new(env, "trace_id", json_string(trace));
  }
  if (!env || !pl || !(*json = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS)))
    rc = st_fail(err, ST_ENOMEM, "job event: out of memory");
done:
  json_decref(env);
  st_buf_release(&b);
  return rc;
}
