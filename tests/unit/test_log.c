/* test_log.c: every record is one JSON line carrying the thread's tenant/job/trace. */
#include "st_test.h"

#include <jansson.h>
#include <unistd.h>

#include "stella/log.h"

static json_t *capture(void (*emit)(void)) {
  int fds[2];
  char buf[4096];
  ssize_t n;
  json_error_t jerr;
  json_t *j;

  assert_int_equal(pipe(fds), 0);
  st_log_set_fd(fds[1]);
  emit();
  st_log_set_fd(2);
  close(fds[1]);
  n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  assert_true(n > 0);
  buf[n] = '\0';
  assert_int_equal(buf[n - 1], '\n');
  assert_null(memchr(buf, '\n', (size_t)n - 1)); /* exactly one line */
  j = json_loads(buf, 0, &jerr);
  assert_non_null(j);
  return j;
}

static void emit_plain(void) { st_info("hello %d \"quoted\"", 7); }
static void emit_ctx(void) {
  st_log_ctx_set("acme", "job-1", "4bf92f3577b34da6a3ce929d0e0e4736");
  st_logkv(ST_LOG_WARN, "with fields", "stream", "stella:jobs:probe", "bad", "\xff\xfe", NULL);
  st_log_ctx_clear();
}
static void emit_filtered(void) {
  st_log_set_level(ST_LOG_ERROR);
  st_info("dropped");
  st_error("kept");
  st_log_set_level(ST_LOG_INFO);
}

static void plain_record(void **state) {
  json_t *j = capture(emit_plain);
  assert_string_equal(json_string_value(json_object_get(j, "msg")), "hello 7 \"quoted\"");
  assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
  assert_non_null(json_object_get(j, "ts"));
  assert_null(json_object_get(j, "tenant"));
  json_decref(j);
}

static void context_and_fields(void **state) {
  json_t *j = capture(emit_ctx);
  assert_string_equal(json_string_value(json_object_get(j, "tenant")), "acme");
  assert_string_equal(json_string_value(json_object_get(j, "job_id")), "job-1");
  assert_string_equal(json_string_value(json_object_get(j, "stream")), "stella:jobs:probe");
  assert_string_equal(json_string_value(json_object_get(j, "bad")), "<non-utf8:fffe>");
  json_decref(j);
}

static void level_filter(void **state) {
  json_t *j = capture(emit_filtered);
  assert_string_equal(json_string_value(json_object_get(j, "msg")), "kept");
  json_decref(j);
}

static void level_parse(void **state) {
  st_log_level l;
  assert_int_equal(st_log_level_parse("warn", &l), 0);
  assert_int_equal(l, ST_LOG_WARN);
  assert_int_equal(st_log_level_parse("verbose", &l), ST_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_record),
      cmocka_unit_test(context_and_fields),
      cmocka_unit_test(level_filter),
      cmocka_unit_test(level_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
