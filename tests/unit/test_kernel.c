/* test_kernel.c: errors, allocation failure injection, buffers and UTF-8 checks. */
#include "st_test.h"

#include "stella/buf.h"
#include "stella/err.h"
#include "stella/mem.h"

static void err_names_and_classes(void **state) {
  st_error_t e = ST_ERROR_INIT;
  assert_string_equal(st_err_name(ST_EPARSE), "ST_EPARSE");
  assert_string_equal(st_strerror(ST_ENOMEM), "out of memory");
  assert_string_equal(st_strerror(12345), "unknown error");
  assert_int_equal(st_err_classify(ST_EDBRETRY), ST_ERRCLASS_TRANSIENT);
  assert_int_equal(st_err_classify(ST_EPARSE), ST_ERRCLASS_PERMANENT);
  assert_int_equal(st_fail(&e, ST_EPARSE, "field %s", "tenant"), ST_EPARSE);
  assert_string_equal(st_error_text(&e), "field tenant");
  assert_int_equal(st_error_wrap(&e, "envelope"), ST_EPARSE);
  assert_string_equal(e.msg, "envelope: field tenant");
  assert_int_equal(st_fail(NULL, ST_EIO, "x"), ST_EIO);
}

static void buf_basics(void **state) {
  st_buf_t b = ST_BUF_INIT;
  assert_non_null(b.data);
  assert_string_equal(b.data, "");
  assert_int_equal(st_buf_adds(&b, "abc"), 0);
  assert_int_equal(st_buf_addf(&b, "-%d-", 42), 0);
  assert_int_equal(st_buf_add_hex(&b, "\x01\xff", 2), 0);
  assert_string_equal(b.data, "abc-42-01ff");
  assert_int_equal(b.len, 11);
  st_buf_reset(&b);
  assert_string_equal(b.data, "");
  st_buf_release(&b);
  assert_int_equal(b.cap, 0);
}

static void buf_cap_enforced(void **state) {
  st_buf_t b;
  st_buf_init(&b, 8);
  assert_int_equal(st_buf_adds(&b, "12345678"), 0);
  assert_int_equal(st_buf_addc(&b, '9'), ST_ETOOBIG);
  assert_string_equal(b.data, "12345678");
  st_buf_release(&b);
}

static void buf_detach_empty(void **state) {
  st_buf_t b = ST_BUF_INIT;
  size_t n = 99;
  char *d = st_buf_detach(&b, &n);
  assert_non_null(d);
  assert_int_equal(n, 0);
  assert_string_equal(d, "");
  st_free(d);
}

static void buf_alloc_failure(void **state) {
  st_buf_t b = ST_BUF_INIT;
  st_mem_fail_after(0);
  assert_int_equal(st_buf_adds(&b, "x"), ST_ENOMEM);
  assert_string_equal(b.data, "");
  assert_int_equal(st_buf_adds(&b, "x"), 0);
  st_buf_release(&b);
}

static void json_string_escaping(void **state) {
  st_buf_t b = ST_BUF_INIT;
  const char in[] = "a\"b\\c\n\x01\x1f\xc3\xa9/";
  assert_int_equal(st_buf_add_json_str(&b, in, sizeof(in) - 1), 0);
  assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\\u001f\xc3\xa9/\"");
  st_buf_release(&b);
}

static void utf8_validation(void **state) {
  assert_true(st_utf8_valid("plain", 5));
  assert_true(st_utf8_valid("\xf0\x9f\x98\x80", 4));   /* U+1F600 */
  assert_false(st_utf8_valid("\xc0\xaf", 2));           /* overlong '/' */
  assert_false(st_utf8_valid("\xed\xa0\x80", 3));       /* lone surrogate U+D800 */
  assert_false(st_utf8_valid("\xf4\x90\x80\x80", 4));   /* > U+10FFFF */
  assert_false(st_utf8_valid("\xe2\x82", 2));           /* truncated */
  assert_false(st_utf8_valid("\xff", 1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(err_names_and_classes), cmocka_unit_test(buf_basics),
      cmocka_unit_test(buf_cap_enforced),      cmocka_unit_test(buf_detach_empty),
      cmocka_unit_test(buf_alloc_failure),     cmocka_unit_test(json_string_escaping),
      cmocka_unit_test(utf8_validation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
