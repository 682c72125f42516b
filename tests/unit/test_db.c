/* test_db.c: tenant id validation and argument checks that need no server. */
#include "st_test.h"

#include "stella/db.h"

static void tenant_ids(void **state) {
  st_error_t err = ST_ERROR_INIT;
  char longest[ST_DB_TENANT_MAX + 2];

  assert_int_equal(st_db_tenant_check("acme", &err), 0);
  assert_int_equal(st_db_tenant_check("A.b_c-9", &err), 0);
  memset(longest, 'x', sizeof(longest) - 1);
  longest[sizeof(longest) - 1] = '\0';
  assert_int_equal(st_db_tenant_check(longest + 1, &err), 0);
  assert_int_equal(st_db_tenant_check(longest, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "longer than 64"));
  assert_int_equal(st_db_tenant_check("", &err), ST_EINVAL);
  assert_int_equal(st_db_tenant_check(NULL, &err), ST_EINVAL);
  assert_int_equal(st_db_tenant_check("a/b", &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "\"a/b\""));
  assert_non_null(strstr(err.msg, "character 2"));
  /* Control bytes are shown escaped, so the message stays one line. */
  assert_int_equal(st_db_tenant_check("a\nb", &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "\"a\\nb\""));
  assert_int_equal(st_db_tenant_check("caf\xc3\xa9", &err), ST_EINVAL);
  assert_int_equal(st_db_tenant_check("\xff\xfe", &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "not UTF-8"));
}

static void bad_arguments(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_db_pool_t *pool = (st_db_pool_t *)&err;

  assert_int_equal(st_db_pool_new("", 1, &pool, &err), ST_EINVAL);
  assert_null(pool);
  assert_int_equal(st_db_pool_new("dbname=x", 0, &pool, &err), ST_EINVAL);
  assert_int_equal(st_db_tenant_tx(NULL, "acme", NULL, NULL, &err), ST_EINVAL);
  assert_int_equal(st_db_exec(NULL, "SELECT 1", 0, NULL, NULL, &err), ST_EINVAL);
  st_db_pool_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tenant_ids),
      cmocka_unit_test(bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
