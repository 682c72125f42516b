/* test_config.c: configuration defaults, file parsing, env precedence, errors naming keys. */
#include "st_test.h"

#include <unistd.h>

#include "stella/config.h"

static char *write_tmp(const char *text) {
  static char path[64];
  int fd;
  strcpy(path, "/tmp/stella-config-XXXXXX");
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

static void defaults(void **state) {
  st_config_t *cfg;
  st_error_t err = ST_ERROR_INIT;
  unsetenv("STELLA_WORKER_THREADS");
  assert_int_equal(st_config_load(&cfg, "", &err), 0);
  assert_int_equal(st_config_int(cfg, "worker_threads"), 4);
  assert_string_equal(st_config_str(cfg, "log_level"), "info");
  assert_null(st_config_str(cfg, "no_such_key"));
  st_config_free(cfg);
}

static void file_then_env(void **state) {
  st_config_t *cfg;
  st_error_t err = ST_ERROR_INIT;
  char *p = write_tmp("# comment\n worker_threads = 8 \n\nlog_level=debug\n");
  setenv("STELLA_WORKER_THREADS", "16", 1);
  assert_int_equal(st_config_load(&cfg, p, &err), 0);
  assert_int_equal(st_config_int(cfg, "worker_threads"), 16);
  assert_string_equal(st_config_str(cfg, "log_level"), "debug");
  st_config_free(cfg);
  unsetenv("STELLA_WORKER_THREADS");
  unlink(p);
}

static void errors_name_the_key(void **state) {
  st_config_t *cfg;
  st_error_t err = ST_ERROR_INIT;
  char *p = write_tmp("worker_threads = many\n");
  assert_int_equal(st_config_load(&cfg, p, &err), ST_ECONFIG);
  assert_null(cfg);
  assert_non_null(strstr(err.msg, "worker_threads"));
  assert_non_null(strstr(err.msg, ":1:"));
  unlink(p);

  p = write_tmp("wrker_threads = 2\n");
  assert_int_equal(st_config_load(&cfg, p, &err), ST_ECONFIG);
  assert_non_null(strstr(err.msg, "wrker_threads: unknown key"));
  unlink(p);

  p = write_tmp("just a line\n");
  assert_int_equal(st_config_load(&cfg, p, &err), ST_ECONFIG);
  assert_non_null(strstr(err.msg, "expected key = value"));
  unlink(p);

  setenv("STELLA_WORKER_THREADS", "0", 1);
  assert_int_equal(st_config_load(&cfg, "", &err), ST_ECONFIG);
  assert_non_null(strstr(err.msg, "STELLA_WORKER_THREADS: worker_threads: 0 is outside"));
  unsetenv("STELLA_WORKER_THREADS");

  setenv("STELLA_LOG_LEVEL", "loud", 1);
  assert_int_equal(st_config_load(&cfg, "", &err), ST_ECONFIG);
  assert_non_null(strstr(err.msg, "log_level"));
  unsetenv("STELLA_LOG_LEVEL");

  assert_int_equal(st_config_load(&cfg, "/nonexistent/stella.conf", &err), ST_EIO);
}

static void set_validates(void **state) {
  st_config_t *cfg;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_config_load(&cfg, "", &err), 0);
  assert_int_equal(st_config_set(cfg, "roles", "worker", &err), 0);
  assert_string_equal(st_config_str(cfg, "roles"), "worker");
  assert_int_equal(st_config_set(cfg, "pg_pool_size", "1000", &err), ST_ECONFIG);
  assert_int_equal(st_config_set(cfg, "bogus", "1", &err), ST_ECONFIG);
  st_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults),
      cmocka_unit_test(file_then_env),
      cmocka_unit_test(errors_name_the_key),
      cmocka_unit_test(set_validates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
