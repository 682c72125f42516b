/* test_json.c: bounded parsing (depth, size, UTF-8, surrogates, number range, duplicate
 * keys, trailing data) and the typed getters. */
#include "st_test.h"

#include "stella/json.h"
#include "stella/mem.h"

static int parse(const char *s, const st_json_limits_t *lim, st_error_t *err) {
  json_t *v = NULL;
  int rc = st_json_parse(s, strlen(s), lim, &v, err);
  if (rc)
    assert_null(v);
  else
    assert_non_null(v);
  json_decref(v);
  return rc;
}

static void parses_values(void **state) {
  json_t *v = NULL;
  st_error_t err = ST_ERROR_INIT;
  const char *s = "{\"a\":[1,2.5,\"x\"],\"b\":{\"c\":null},\"d\":true}";
  assert_int_equal(st_json_parse(s, strlen(s), NULL, &v, &err), 0);
  assert_true(json_is_integer(json_array_get(json_object_get(v, "a"), 0)));
  assert_true(json_is_real(json_array_get(json_object_get(v, "a"), 1)));
  json_decref(v);
  assert_int_equal(parse("42", NULL, &err), 0); /* any value at top level */
  assert_int_equal(parse("\"\\ud83d\\ude02\"", NULL, &err), 0);
}

static void depth_bound(void **state) {
  st_json_limits_t lim = {0, 3};
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(parse("[[[1]]]", &lim, &err), 0);
  assert_int_equal(parse("[[[[1]]]]", &lim, &err), ST_EDEPTH);
  assert_string_equal(err.msg, "json: line 1, column 4: nesting deeper than 3 levels");
  assert_int_equal(parse("{\"a\":\n [{\"b\":\n  [1]}]}", &lim, &err), ST_EDEPTH);
  assert_non_null(strstr(err.msg, "line 3, column 3"));
  /* Brackets inside strings (escaped quotes included) do not nest. */
  assert_int_equal(parse("[\"[[[[\\\"[[[[\", {\"{{{{\":1}]", &lim, &err), 0);
  /* Siblings do not add up. */
  assert_int_equal(parse("[[[1]],[[2]],[[3]]]", &lim, &err), 0);
}

static void million_deep_never_recurses(void **state) {
  size_t n = 1000000;
  char *s = st_malloc(2 * n);
  json_t *v = NULL;
  st_error_t err = ST_ERROR_INIT;
  assert_non_null(s);
  memset(s, '[', n);
  memset(s + n, ']', n);
  assert_int_equal(st_json_parse(s, 2 * n, NULL, &v, &err), ST_EDEPTH);
  assert_non_null(strstr(err.msg, "column 65"));
  /* Above jansson's own 2048 the requested limit is clamped, never passed through. */
  st_json_limits_t lim = {0, 1000000};
  assert_int_equal(st_json_parse(s, 2 * n, &lim, &v, &err), ST_EDEPTH);
  assert_null(v);
  st_free(s);
}

static void size_bound(void **state) {
  st_json_limits_t lim = {8, 0};
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(parse("[1,2,3]", &lim, &err), 0);
  assert_int_equal(parse("[1,2,3,4]", &lim, &err), ST_ETOOBIG);
  assert_non_null(strstr(err.msg, "9 bytes"));
}

static void invalid_utf8(void **state) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(parse("\"\xc3\x28\"", NULL, &err), ST_EUTF8);     /* bad continuation */
  assert_int_equal(parse("\"\xc0\xaf\"", NULL, &err), ST_EUTF8);     /* overlong '/' */
  assert_int_equal(parse("\"\xed\xa0\x80\"", NULL, &err), ST_EUTF8); /* encoded surrogate */
  assert_int_equal(parse("{\"k\xff\":1}", NULL, &err), ST_EUTF8);
  assert_non_null(strstr(err.msg, "line 1"));
}

static void lone_surrogates(void **state) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(parse("[\"\\ud800\"]", NULL, &err), ST_EUTF8);
  assert_string_equal(err.msg, "json: line 1, column 3: \\u escape is a lone UTF-16 surrogate");
  assert_int_equal(parse("\"\\udc00\"", NULL, &err), ST_EUTF8);
  assert_int_equal(parse("\"\\uD800\\u0041\"", NULL, &err), ST_EUTF8);
  assert_int_equal(parse("\"\\ud800x\"", NULL, &err), ST_EUTF8);
  assert_int_equal(parse("{\"\\udfff\":1}", NULL, &err), ST_EUTF8);
  assert_int_equal(parse("\"\\\\ud800\"", NULL, &err), 0); /* an escaped backslash, not \u */
}

static void numbers_out_of_range(void **state) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(parse("[1e400]", NULL, &err), ST_ERANGE);
  assert_int_equal(parse("-1e400", NULL, &err), ST_ERANGE);
  assert_int_equal(parse("99999999999999999999", NULL, &err), ST_ERANGE);
  assert_int_equal(parse("1e-400", NULL, &err), 0); /* underflow is 0, as in JavaScript */
  assert_int_equal(parse("9223372036854775807", NULL, &err), 0);
  assert_int_equal(parse("NaN", NULL, &err), ST_EPARSE);
  assert_int_equal(parse("Infinity", NULL, &err), ST_EPARSE);
}

static void malformed(void **state) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(parse("{\"a\":1,\"a\":2}", NULL, &err), ST_EPARSE);
  assert_non_null(strstr(err.msg, "duplicate"));
  assert_int_equal(parse("[1] x", NULL, &err), ST_EPARSE);
  assert_int_equal(parse("[1,]", NULL, &err), ST_EPARSE);
  assert_int_equal(parse("", NULL, &err), ST_EPARSE);
  assert_int_equal(parse("\"a\\u0000b\"", NULL, &err), ST_EPARSE);
  assert_int_equal(parse("[\"unterminated", NULL, &err), ST_EPARSE);
  assert_int_equal(parse("]]]", NULL, &err), ST_EPARSE);
  json_t *v = NULL;
  assert_int_equal(st_json_parse("[1]\0", 4, NULL, &v, &err), ST_EPARSE);
}

static void alloc_failure(void **state) {
  st_error_t err = ST_ERROR_INIT;
  int failed = 0;
  /* Every allocation jansson makes for this document fails in turn; each must be a clean
   * ST_ENOMEM (LeakSanitizer checks nothing leaks). */
  for (long n = 0; n < 40; n++) {
    st_mem_fail_after(n);
    int rc = parse("{\"a\":[1,\"xyz\",{\"b\":2.5}],\"c\":\"d\"}", NULL, &err);
    st_mem_fail_after(-1);
    if (rc) {
      assert_int_equal(rc, ST_ENOMEM);
      failed++;
    }
  }
  assert_true(failed > 3);
}

static void getters(void **state) {
  json_t *v = NULL, *o = NULL;
  st_error_t err = ST_ERROR_INIT;
  const char *s = NULL;
  size_t len = 0;
  long long i = 0;
  int b = 0;
  const char *doc = "{\"tenant\":\"acme\",\"n\":7,\"r\":1.5,\"ok\":false,\"o\":{},\"a\":[]}";
  assert_int_equal(st_json_parse(doc, strlen(doc), NULL, &v, &err), 0);
  assert_int_equal(st_json_get_str(v, "tenant", &s, &len, &err), 0);
  assert_string_equal(s, "acme");
  assert_int_equal(len, 4);
  assert_int_equal(st_json_get_int(v, "n", &i, &err), 0);
  assert_int_equal(i, 7);
  assert_int_equal(st_json_get_bool(v, "ok", &b, &err), 0);
  assert_int_equal(b, 0);
  assert_int_equal(st_json_get_obj(v, "o", &o, &err), 0);
  assert_int_equal(st_json_get_arr(v, "a", &o, &err), 0);

  assert_int_equal(st_json_get_str(v, "missing", &s, NULL, &err), ST_ENOENT);
  assert_string_equal(err.msg, "json: field missing is missing");
  assert_null(s);
  assert_int_equal(st_json_get_str(v, "n", &s, NULL, &err), ST_EINVAL);
  assert_string_equal(err.msg, "json: field n must be a string");
  assert_int_equal(st_json_get_int(v, "r", &i, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "field r"));
  assert_int_equal(st_json_get_bool(v, "tenant", &b, &err), ST_EINVAL);
  assert_int_equal(st_json_get_obj(v, "a", &o, &err), ST_EINVAL);
  assert_null(o);
  assert_int_equal(st_json_get_arr(v, "o", &o, &err), ST_EINVAL);
  assert_int_equal(st_json_get_obj(json_object_get(v, "a"), "x", &o, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "not in an object"));
  json_decref(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parses_values),
      cmocka_unit_test(depth_bound),
      cmocka_unit_test(million_deep_never_recurses),
      cmocka_unit_test(size_bound),
      cmocka_unit_test(invalid_utf8),
      cmocka_unit_test(lone_surrogates),
      cmocka_unit_test(numbers_out_of_range),
      cmocka_unit_test(malformed),
      cmocka_unit_test(alloc_failure),
      cmocka_unit_test(getters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
