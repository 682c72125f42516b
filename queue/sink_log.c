/* sink_log.c: the logging job state sink (JSON lines through stella/log.h). */
#include "sink.h"

#include <inttypes.h>
#include <stdio.h>

#include "stella/log.h"

const char *st_job_state_name(st_job_state s) {
  static const char *const names[] = {"started",       "progress",  "succeeded",
                                      "retry_scheduled", "dead_lettered", "cancelled",
                                      "released"};
  return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

static int log_record(void *ud, const st_job_transition_t *t, st_error_t *err) {
  char attempt[16], dur[24], due[24], prog[16];
  int terminal = t->state != ST_STATE_STARTED && t->state != ST_STATE_PROGRESS;

  snprintf(attempt, sizeof(attempt), "%u", t->env ? t->env->attempt : 0u);
  snprintf(dur, sizeof(dur), "%" PRIu64, t->duration_ms);
  snprintf(due, sizeof(due), "%" PRIu64, t->next_due_ms);
  snprintf(prog, sizeof(prog), "%.3f", t->progress);
  st_logkv(t->state == ST_STATE_DEAD_LETTERED ? ST_LOG_WARN : ST_LOG_INFO, "job.transition",
           "state", st_job_state_name(t->state), "type", t->type, "stream", t->stream,
           "entry_id", t->entry_id, "consumer", t->consumer, "attempt", attempt, "outcome",
           terminal ? st_job_outcome_name(t->outcome) : "", "reason", t->reason ? t->reason : "",
           "duration_ms", dur, "next_due_ms", due, "progress", prog, NULL);
  return 0;
}

void st_state_sink_log(st_state_sink_t *out) {
  out->record = log_record;
  out->free = NULL;
  out->ud = NULL;
}
