/* retry.c: outcome -> action decisions and the full-jitter backoff. */
#include "retry.h"

const char *st_job_outcome_name(st_job_outcome o) {
  static const char *const names[] = {"succeeded", "transient", "permanent",
                                      "timeout",   "cancelled", "released"};
  return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "unknown";
}

st_job_action st_job_decide(st_job_outcome o, uint32_t attempt, uint32_t max_attempts) {
  switch (o) {
  case ST_JOB_SUCCEEDED:
  case ST_JOB_CANCELLED: return ST_ACTION_ACK;
  case ST_JOB_RELEASED: return ST_ACTION_RELEASE;
  case ST_JOB_TRANSIENT:
  case ST_JOB_TIMEOUT: return attempt < max_attempts ? ST_ACTION_RETRY : ST_ACTION_DEAD_LETTER;
  default: return ST_ACTION_DEAD_LETTER;
  }
}

uint64_t st_backoff_ms(uint32_t attempt, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd) {
  uint64_t ceiling = base_ms;
  for (uint32_t i = 1; i < attempt && ceiling < cap_ms; i++)
    ceiling = ceiling > cap_ms / 2 ? cap_ms : ceiling * 2;
  if (ceiling > cap_ms)
    ceiling = cap_ms;
  return ceiling == UINT64_MAX ? rnd : rnd % (ceiling + 1);
}
