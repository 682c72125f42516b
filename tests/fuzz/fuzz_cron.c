/* fuzz_cron.c: libFuzzer target for the cron parser (schedules come from tenants). Anything
 * that parses must give next/prev ticks that match and are ordered around the probe time. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char expr[ST_CRON_MAX_LEN + 2];
  st_cron_t c;
  st_error_t err = ST_ERROR_INIT;
  int64_t at = 1700000000, t;

  if (size > ST_CRON_MAX_LEN + 1)
    size = ST_CRON_MAX_LEN + 1;
  memcpy(expr, data, size);
  expr[size] = '\0';
  if (st_cron_parse(expr, size && data[0] & 1 ? ST_CRON_SECONDS : 0, &c, &err))
    return 0;
  if (st_cron_next(&c, at, &t) == 0 && (t <= at || !st_cron_matches(&c, t)))
    abort();
  if (st_cron_prev(&c, at, &t) == 0 && (t > at || !st_cron_matches(&c, t)))
    abort();
  return 0;
}
