/* test_cron.c: the cron parser and UTC tick search.
 * Known answers (ranges, steps, lists, names, macros, the Vixie day-of-month/day-of-week
 * OR rule, leap days, year ends, expressions that never fire), every refused input kind
 * with its message, and a cross-check of next/prev against a brute-force scan that judges
 * each minute with libc's gmtime_r (independent of cron.c's own calendar arithmetic). */
#include "st_test.h"

#include <time.h>

#include "cron.h"

/* Unix time of a UTC date (timegm: libc, not cron.c). */
static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return (int64_t)timegm(&tm);
}

static st_cron_t parse_ok(const char *expr, int flags) {
  st_cron_t c;
  st_error_t err = ST_ERROR_INIT;
  if (st_cron_parse(expr, flags, &c, &err))
    fail_msg("%s: %s", expr, st_error_text(&err));
  return c;
}

static int64_t next_of(const char *expr, int64_t after) {
  st_cron_t c = parse_ok(expr, 0);
  int64_t t = -1;
  assert_int_equal(st_cron_next(&c, after, &t), 0);
  return t;
}

static int64_t prev_of(const char *expr, int64_t at) {
  st_cron_t c = parse_ok(expr, 0);
  int64_t t = -1;
  assert_int_equal(st_cron_prev(&c, at, &t), 0);
  return t;
}

static void test_every_minute(void **state) {
  assert_int_equal(next_of("* * * * *", utc(2024, 1, 1, 0, 0, 0)), utc(2024, 1, 1, 0, 1, 0));
  assert_int_equal(next_of("* * * * *", utc(2024, 1, 1, 0, 0, 59)), utc(2024, 1, 1, 0, 1, 0));
  assert_int_equal(prev_of("* * * * *", utc(2024, 1, 1, 0, 0, 59)), utc(2024, 1, 1, 0, 0, 0));
  assert_int_equal(prev_of("* * * * *", utc(2024, 1, 1, 0, 1, 0)), utc(2024, 1, 1, 0, 1, 0));
}

static void test_ranges_steps_lists(void **state) {
  /* Friday 17:50 -> Monday 09:00 */
  assert_int_equal(next_of("*/15 9-17 * * mon-fri", utc(2024, 3, 1, 17, 50, 0)),
                   utc(2024, 3, 4, 9, 0, 0));
  assert_int_equal(next_of("*/15 9-17 * * mon-fri", utc(2024, 3, 4, 9, 0, 0)),
                   utc(2024, 3, 4, 9, 15, 0));
  assert_int_equal(next_of("10-50/20 * * * *", utc(2024, 3, 4, 9, 31, 0)),
                   utc(2024, 3, 4, 9, 50, 0));
  assert_int_equal(next_of("10-50/20 * * * *", utc(2024, 3, 4, 9, 50, 0)),
                   utc(2024, 3, 4, 10, 10, 0));
  assert_int_equal(next_of("5,7,3 1 * * *", utc(2024, 3, 4, 1, 5, 0)), utc(2024, 3, 4, 1, 7, 0));
  assert_int_equal(next_of("0 0,12 * * *", utc(2024, 3, 4, 1, 0, 0)), utc(2024, 3, 4, 12, 0, 0));
  /* names, mixed case, in lists and ranges */
  assert_int_equal(next_of("0 12 * JAN,Jul sun", utc(2024, 2, 1, 0, 0, 0)),
                   utc(2024, 7, 7, 12, 0, 0));
  assert_int_equal(next_of("0 0 * feb-mar *", utc(2024, 3, 31, 0, 0, 0)),
                   utc(2025, 2, 1, 0, 0, 0));
  /* 7 and 0 are both Sunday; 5-7 is Fri..Sun */
  assert_int_equal(next_of("0 0 * * 7", utc(2024, 3, 4, 0, 0, 0)), utc(2024, 3, 10, 0, 0, 0));
  assert_int_equal(next_of("0 0 * * 0", utc(2024, 3, 4, 0, 0, 0)), utc(2024, 3, 10, 0, 0, 0));
  assert_int_equal(next_of("0 0 * * 5-7", utc(2024, 3, 10, 0, 0, 0)), utc(2024, 3, 15, 0, 0, 0));
  /* a step wider than the values present leaves the first only */
  assert_int_equal(next_of("*/60 * * * *", utc(2024, 3, 4, 9, 1, 0)), utc(2024, 3, 4, 10, 0, 0));
}

static void test_day_or_rule(void **state) {
  /* both restricted: the 13th OR a Friday (2024-09-01 is a Sunday) */
  assert_int_equal(next_of("0 0 13 * fri", utc(2024, 9, 1, 0, 0, 0)), utc(2024, 9, 6, 0, 0, 0));
  assert_int_equal(next_of("0 0 13 * fri", utc(2024, 10, 11, 0, 0, 0)),
                   utc(2024, 10, 13, 0, 0, 0)); /* a Sunday 13th */
  /* the 1st OR a Monday: Thursday Feb 1 fires */
  assert_int_equal(next_of("0 0 1 * mon", utc(2024, 1, 29, 0, 0, 0)), utc(2024, 2, 1, 0, 0, 0));
  /* a field starting with '*' means AND: odd days that are Mondays */
  assert_int_equal(next_of("0 0 */2 * mon", utc(2024, 3, 1, 0, 0, 0)),
                   utc(2024, 3, 11, 0, 0, 0));
  /* day-of-week '*': the day of month alone */
  assert_int_equal(next_of("0 0 15 * *", utc(2024, 3, 1, 0, 0, 0)), utc(2024, 3, 15, 0, 0, 0));
  /* day-of-month '*': the weekday alone */
  assert_int_equal(next_of("0 0 * * wed", utc(2024, 3, 1, 0, 0, 0)), utc(2024, 3, 6, 0, 0, 0));
}

static void test_calendar_edges(void **state) {
  st_cron_t c;
  st_error_t err = ST_ERROR_INIT;
  int64_t t;
  /* leap day: 2024 -> 2028; 2100 is not a leap year: 2096 -> 2104 */
  assert_int_equal(next_of("0 0 29 2 *", utc(2024, 3, 1, 0, 0, 0)), utc(2028, 2, 29, 0, 0, 0));
  assert_int_equal(next_of("0 0 29 2 *", utc(2096, 3, 1, 0, 0, 0)), utc(2104, 2, 29, 0, 0, 0));
  assert_int_equal(prev_of("0 0 29 2 *", utc(2104, 2, 28, 0, 0, 0)), utc(2096, 2, 29, 0, 0, 0));
  /* year end */
  assert_int_equal(next_of("59 23 31 12 *", utc(2023, 12, 31, 23, 59, 0)),
                   utc(2024, 12, 31, 23, 59, 0));
  assert_int_equal(next_of("0 0 1 1 *", utc(2023, 12, 31, 23, 59, 59)), utc(2024, 1, 1, 0, 0, 0));
  assert_int_equal(prev_of("0 0 1 1 *", utc(2024, 6, 15, 12, 0, 0)), utc(2024, 1, 1, 0, 0, 0));
  assert_int_equal(prev_of("0 0 31 * *", utc(2024, 5, 1, 0, 0, 0)), utc(2024, 3, 31, 0, 0, 0));
  /* never fires: February 30th */
  assert_int_equal(st_cron_parse("0 0 30 2 *", 0, &c, &err), 0);
  assert_int_equal(st_cron_next(&c, utc(2024, 1, 1, 0, 0, 0), &t), ST_ENOENT);
  assert_int_equal(st_cron_prev(&c, utc(2024, 1, 1, 0, 0, 0), &t), ST_ENOENT);
  /* before 1970 works too (floor division) */
  assert_int_equal(next_of("0 0 1 1 *", utc(1969, 6, 1, 0, 0, 0)), utc(1970, 1, 1, 0, 0, 0));
  assert_int_equal(prev_of("30 6 * * *", utc(1969, 12, 31, 6, 29, 0)),
                   utc(1969, 12, 30, 6, 30, 0));
}

static void test_macros(void **state) {
  int64_t at = utc(2024, 3, 4, 9, 31, 0); /* a Monday */
  assert_int_equal(next_of("@hourly", at), utc(2024, 3, 4, 10, 0, 0));
  assert_int_equal(next_of("@daily", at), utc(2024, 3, 5, 0, 0, 0));
  assert_int_equal(next_of("@midnight", at), utc(2024, 3, 5, 0, 0, 0));
  assert_int_equal(next_of("@weekly", at), utc(2024, 3, 10, 0, 0, 0));
  assert_int_equal(next_of("@monthly", at), utc(2024, 4, 1, 0, 0, 0));
  assert_int_equal(next_of("@yearly", at), utc(2025, 1, 1, 0, 0, 0));
  assert_int_equal(next_of("@annually", at), utc(2025, 1, 1, 0, 0, 0));
  assert_int_equal(next_of("  * * * * *  ", at), utc(2024, 3, 4, 9, 32, 0));
}

static void test_seconds_extension(void **state) {
  st_cron_t c = parse_ok("*/2 * * * * *", ST_CRON_SECONDS);
  int64_t t;
  assert_int_equal(st_cron_next(&c, utc(2024, 3, 4, 9, 31, 1), &t), 0);
  assert_int_equal(t, utc(2024, 3, 4, 9, 31, 2));
  assert_int_equal(st_cron_next(&c, utc(2024, 3, 4, 9, 31, 58), &t), 0);
  assert_int_equal(t, utc(2024, 3, 4, 9, 32, 0));
  assert_int_equal(st_cron_prev(&c, utc(2024, 3, 4, 9, 31, 3), &t), 0);
  assert_int_equal(t, utc(2024, 3, 4, 9, 31, 2));
  /* five fields still work with the flag: second 0 */
  c = parse_ok("* * * * *", ST_CRON_SECONDS);
  assert_int_equal(st_cron_next(&c, utc(2024, 3, 4, 9, 31, 1), &t), 0);
  assert_int_equal(t, utc(2024, 3, 4, 9, 32, 0));
}

static void refused(const char *expr, int flags, const char *msg) {
  st_cron_t c;
  st_error_t err = ST_ERROR_INIT;
  int rc = st_cron_parse(expr, flags, &c, &err);
  if (rc != ST_EINVAL || !strstr(err.msg, msg))
    fail_msg("\"%s\": expected ST_EINVAL with \"%s\", got %d \"%s\"", expr, msg, rc, err.msg);
}

static void test_refused(void **state) {
  char big[ST_CRON_MAX_LEN + 8];
  refused("", 0, "empty expression");
  refused("   ", 0, "expected 5 fields");
  refused("* * * *", 0, "expected 5 fields");
  refused("* * * * * *", 0, "expected 5 fields");
  refused("* * * * * * *", ST_CRON_SECONDS, "more than 6 fields");
  refused("60 * * * *", 0, "minute: 60 is outside 0-59");
  refused("* 24 * * *", 0, "hour: 24 is outside 0-23");
  refused("* * 0 * *", 0, "day of month: 0 is outside 1-31");
  refused("* * 32 * *", 0, "day of month: 32 is outside 1-31");
  refused("* * * 13 *", 0, "month: 13 is outside 1-12");
  refused("* * * * 8", 0, "day of week: 8 is outside 0-7");
  refused("-1 * * * *", 0, "minute: expected a number");
  refused("5/10 * * * *", 0, "a step needs * or a range");
  refused("*/0 * * * *", 0, "step must be 1-60");
  refused("*/61 * * * *", 0, "step must be 1-60");
  refused("*/ * * * *", 0, "step must be 1-60");
  refused("5-3 * * * *", 0, "range 5-3 is reversed");
  refused("* * * foo *", 0, "month: expected a number or a name");
  refused("* * * * sunday", 0, "day of week: expected a number or a name");
  refused("* * * jan *x", 0, "unexpected");
  refused("jan * * * *", 0, "minute: expected a number at");
  refused("1,,2 * * * *", 0, "empty list element");
  refused("1, * * * *", 0, "empty list element");
  refused("1x * * * *", 0, "minute: unexpected \"x\"");
  refused("99999999999999999999 * * * *", 0, "number too long");
  refused("@reboot", 0, "unknown macro");
  refused("@daily x", 0, "unknown macro");
  refused("*-5 * * * *", 0, "minute: unexpected");
  memset(big, '*', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  refused(big, 0, "longer than 256");
}

/* Brute force: every minute for 40 days from a few starts, judged by gmtime_r. */
static int brute_match(const st_cron_t *c, int64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  int dom, dow;
  gmtime_r(&tt, &tm);
  dom = (c->dom >> tm.tm_mday) & 1;
  dow = (c->dow >> tm.tm_wday) & 1;
  return (c->sec >> tm.tm_sec & 1) && (c->min >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1) &&
         (c->mon >> (tm.tm_mon + 1) & 1) &&
         (c->dom_star || c->dow_star ? dom && dow : dom || dow);
}

static void test_brute_force(void **state) {
  static const char *const exprs[] = {"*/7 */5 * * *", "0 0 13 * fri", "15 3 1-7 * mon",
                                      "0 12 * * 1-5", "*/30 * 29-31 * *", "0 */6 */10 * *",
                                      "0 0 * 2,3 sat,sun", "45 23 * * *"};
  int64_t starts[] = {utc(2024, 2, 20, 0, 0, 0), utc(2023, 12, 25, 13, 7, 0)};
  for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
    st_cron_t c = parse_ok(exprs[e], 0);
    for (size_t s = 0; s < 2; s++) {
      int64_t at = starts[s], expect = -1, got, prev = -1;
      for (int64_t t = at; t < at + 40 * 86400; t += 60) {
        assert_int_equal(st_cron_matches(&c, t), brute_match(&c, t));
        if (t > at && brute_match(&c, t) && expect < 0)
          expect = t;
        if (brute_match(&c, t)) {
          /* prev at t and at t+59 both give t */
          assert_int_equal(st_cron_prev(&c, t + 59, &got), 0);
          assert_int_equal(got, t);
          if (prev >= 0) {
            assert_int_equal(st_cron_next(&c, prev, &got), 0);
            assert_int_equal(got, t);
          }
          prev = t;
        }
      }
      assert_true(expect > 0);
      assert_int_equal(st_cron_next(&c, at, &got), 0);
      assert_int_equal(got, expect);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_minute),    cmocka_unit_test(test_ranges_steps_lists),
      cmocka_unit_test(test_day_or_rule),     cmocka_unit_test(test_calendar_edges),
      cmocka_unit_test(test_macros),          cmocka_unit_test(test_seconds_extension),
      cmocka_unit_test(test_refused),         cmocka_unit_test(test_brute_force),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
