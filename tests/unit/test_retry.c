/* test_retry.c: outcome -> action decisions and the full-jitter backoff bounds. */
#include "st_test.h"

#include "retry.h"

static void test_decide(void **state) {
  assert_int_equal(st_job_decide(ST_JOB_SUCCEEDED, 1, 3), ST_ACTION_ACK);
  assert_int_equal(st_job_decide(ST_JOB_CANCELLED, 1, 3), ST_ACTION_ACK);
  assert_int_equal(st_job_decide(ST_JOB_RELEASED, 1, 3), ST_ACTION_RELEASE);
  assert_int_equal(st_job_decide(ST_JOB_PERMANENT, 1, 3), ST_ACTION_DEAD_LETTER);
  assert_int_equal(st_job_decide(ST_JOB_TRANSIENT, 1, 3), ST_ACTION_RETRY);
  assert_int_equal(st_job_decide(ST_JOB_TRANSIENT, 2, 3), ST_ACTION_RETRY);
  assert_int_equal(st_job_decide(ST_JOB_TRANSIENT, 3, 3), ST_ACTION_DEAD_LETTER);
  assert_int_equal(st_job_decide(ST_JOB_TIMEOUT, 1, 2), ST_ACTION_RETRY);
  assert_int_equal(st_job_decide(ST_JOB_TIMEOUT, 2, 2), ST_ACTION_DEAD_LETTER);
  assert_int_equal(st_job_decide(ST_JOB_TRANSIENT, 1, 1), ST_ACTION_DEAD_LETTER);
  assert_string_equal(st_job_outcome_name(ST_JOB_TIMEOUT), "timeout");
}

static void test_backoff(void **state) {
  /* the ceiling doubles per attempt: rnd = max draws the ceiling itself */
  assert_int_equal(st_backoff_ms(1, 100, 10000, UINT64_MAX - 1), (UINT64_MAX - 1) % 101);
  assert_int_equal(st_backoff_ms(1, 100, 10000, 100), 100);
  assert_int_equal(st_backoff_ms(2, 100, 10000, 200), 200);
  assert_int_equal(st_backoff_ms(3, 100, 10000, 400), 400);
  assert_int_equal(st_backoff_ms(3, 100, 10000, 401), 0); /* 401 % 401 */
  /* capped */
  assert_int_equal(st_backoff_ms(10, 100, 10000, 10000), 10000);
  assert_int_equal(st_backoff_ms(1000, 100, 10000, 10000), 10000);
  assert_int_equal(st_backoff_ms(1000, 100, 10000, 10001), 0);
  /* no overflow at huge attempts and caps */
  assert_true(st_backoff_ms(1000, UINT64_MAX / 2 + 7, UINT64_MAX, 5) == 5);
  /* jitter spans the whole range: every value stays within [0, ceiling] */
  for (uint64_t r = 0; r < 5000; r++) {
    assert_true(st_backoff_ms(4, 50, 100000, r * 7919) <= 400);
    assert_true(st_backoff_ms(30, 50, 1000, r * 7919) <= 1000);
  }
  assert_int_equal(st_backoff_ms(1, 0, 100, 12345), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_decide),
                                     cmocka_unit_test(test_backoff)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
