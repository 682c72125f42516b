/* test_metrics.c: registry semantics, Prometheus text rendering, health state. */
#include "st_test.h"

#include "stella/metrics.h"

static void test_registry(void **state) {
  st_metric_t *a = st_metric_counter("stella_t_jobs_total", "Jobs", "probe", NULL);
  st_metric_t *b = st_metric_counter("stella_t_jobs_total", "Jobs", "probe", NULL);
  st_metric_t *c = st_metric_counter("stella_t_jobs_total", "Jobs", "probe", "failed");
  assert_non_null(a);
  assert_ptr_equal(a, b);
  assert_ptr_not_equal(a, c);
  assert_null(st_metric_gauge("stella_t_jobs_total", "Jobs", "probe", NULL)); /* kind clash */
  assert_null(st_metric_counter("9bad", "x", NULL, NULL));
  assert_null(st_metric_counter("bad-name", "x", NULL, NULL));
  st_metric_inc(a);
  st_metric_add(a, 2);
  st_metric_add(a, -5); /* counters never go down */
  assert_true(st_metric_value(a) == 3);
  st_metric_inc(NULL); /* harmless */
}

static void test_render(void **state) {
  st_buf_t b = ST_BUF_INIT;
  st_metric_t *g = st_metric_gauge("stella_t_depth_entries", "Depth \\ of\nqueue", "we\"ird", NULL);
  st_metric_t *h = st_metric_histogram("stella_t_duration_seconds", "Durations", "probe", "ok");
  st_metric_set(g, 7);
  st_metric_observe(h, 0.003);
  st_metric_observe(h, 0.7);
  st_metric_observe(h, 1e6);
  assert_int_equal(st_metrics_render(&b), 0);
  assert_non_null(strstr(b.data, "# HELP stella_t_depth_entries Depth \\\\ of\\nqueue\n"));
  assert_non_null(strstr(b.data, "# TYPE stella_t_depth_entries gauge\n"));
  assert_non_null(strstr(b.data, "stella_t_depth_entries{type=\"we\\\"ird\"} 7\n"));
  assert_non_null(strstr(b.data, "# TYPE stella_t_duration_seconds histogram\n"));
  assert_non_null(
      strstr(b.data, "stella_t_duration_seconds_bucket{type=\"probe\",outcome=\"ok\",le=\"0.005\"} 1\n"));
  assert_non_null(
      strstr(b.data, "stella_t_duration_seconds_bucket{type=\"probe\",outcome=\"ok\",le=\"1\"} 2\n"));
  assert_non_null(
      strstr(b.data, "stella_t_duration_seconds_bucket{type=\"probe\",outcome=\"ok\",le=\"+Inf\"} 3\n"));
  assert_non_null(strstr(b.data, "stella_t_duration_seconds_count{type=\"probe\",outcome=\"ok\"} 3\n"));
  assert_null(strstr(b.data, "tenant"));
  st_buf_release(&b);
}

static void test_health(void **state) {
  st_buf_t r = ST_BUF_INIT;
  assert_false(st_health_live(1000));
  st_health_beat();
  assert_true(st_health_live(1000));
  assert_false(st_health_ready(&r));
  assert_string_equal(r.data, "starting");
  st_buf_reset(&r);
  st_health_set_ready(1, "ok");
  assert_true(st_health_ready(&r));
  assert_string_equal(r.data, "ok");
  st_buf_release(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_registry), cmocka_unit_test(test_render),
                                     cmocka_unit_test(test_health)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
