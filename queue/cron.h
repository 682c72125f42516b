/* cron.h: 5-field cron expressions evaluated in UTC, as Vixie cron reads them.
 *
 * Fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or jan-dec), day of week
 * 0-7 (or sun-sat; 0 and 7 are Sunday). Each field is a list of elements separated by
 * commas; an element is `*`, `N` or `N-M`, and `*` or `N-M` may take a step `/S` (S from
 * 1 to the field's width). A single number with a step (`5/10`) is refused, as Vixie cron
 * does; so are reversed ranges, out-of-range numbers, empty elements and unknown names.
 * Names are case-insensitive and may appear wherever a number may. Macros: @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight), @hourly; @reboot is refused.
 *
 * Day rule (Vixie): if the day-of-month or the day-of-week field starts with `*`, a day
 * must match both fields; otherwise it matches when EITHER matches ("0 0 13 * fri" fires
 * on every 13th and every Friday).
 *
 * Time is unix seconds in UTC, so there is no daylight-saving ambiguity: every minute
 * exists exactly once. With ST_CRON_SECONDS (tests only: config scheduler_test_seconds) an
 * expression may have a leading seconds field (6 fields); without it a tick is at second 0.
 *
 * Pure functions, no allocation, any thread.
 */
#ifndef STELLA_QUEUE_CRON_H
#define STELLA_QUEUE_CRON_H

#include <stdint.h>

#include "stella/err.h"

#define ST_CRON_MAX_LEN 256
/* next/prev look this far (seconds) before giving up with ST_ENOENT: 10 years covers the
 * 8-year gap between two February 29ths around 2100. */
#define ST_CRON_HORIZON ((int64_t)10 * 366 * 86400)

enum { ST_CRON_SECONDS = 1 << 0 };

typedef struct st_cron_s {
  uint64_t sec, min; /* bits 0..59 */
  uint32_t hour;     /* bits 0..23 */
  uint32_t dom;      /* bits 1..31 */
  uint32_t mon;      /* bits 1..12 */
  uint32_t dow;      /* bits 0..6, Sunday 0 */
  int dom_star, dow_star;
} st_cron_t;

/* Parse expr. ST_EINVAL naming the field and the problem ("hour: 24 is above 23"). */
int st_cron_parse(const char *expr, int flags, st_cron_t *out, st_error_t *err) ST_MUST_CHECK;
/* Whether unix time t (UTC) is a tick of c. */
int st_cron_matches(const st_cron_t *c, int64_t t);
/* The first tick strictly after `after`; ST_ENOENT if none within ST_CRON_HORIZON
 * ("0 0 30 2 *" never fires). */
int st_cron_next(const st_cron_t *c, int64_t after, int64_t *out) ST_MUST_CHECK;
/* The last tick at or before `at`; ST_ENOENT if none within ST_CRON_HORIZON. */
int st_cron_prev(const st_cron_t *c, int64_t at, int64_t *out) ST_MUST_CHECK;

#endif
