/* test_api.c: the pure parts of the API front: router matching (params, specificity,
 * 405 Allow, path tricks, bad patterns), the error -> problem mapping, traceparent
 * parsing, the token bucket and quota table, and If-None-Match comparison. */
#include "st_test.h"

#include "api_internal.h"

static int h_ok(st_api_req_t *req, void *arg) { return 0; }

static void test_router(void **state) {
  st__router_t r;
  st__match_t m;
  st_error_t err = ST_ERROR_INIT;
  const st_api_route_t routes[] = {
      {"GET", "/evidence/{id}", "evidence:read", 0, ST_API_BODY_NONE, 0, h_ok, NULL, NULL},
      {"GET", "/evidence/holds", "evidence:hold", 0, ST_API_BODY_NONE, 0, h_ok, NULL, NULL},
      {"DELETE", "/evidence/{id}", "evidence:write", 0, ST_API_BODY_NONE, 0, h_ok, NULL, NULL},
      {"GET", "/exports/{run}/files/{name}", NULL, 0, ST_API_BODY_NONE, 0, h_ok, NULL, NULL},
      {"GET", "/", NULL, ST_API_PUBLIC, ST_API_BODY_NONE, 0, h_ok, NULL, NULL},
  };

  st__router_init(&r);
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
    assert_int_equal(st__router_add(&r, &routes[i], &err), 0);
  assert_int_equal(st__router_add(&r, &routes[0], &err), ST_EINVAL); /* duplicate */

  assert_int_equal(st__router_match(&r, "GET", "/evidence/abc", &m), 0);
  assert_string_equal(m.route->r.pattern, "/evidence/{id}");
  assert_int_equal(m.nparams, 1);
  assert_string_equal(m.values[0], "abc");
  st__match_release(&m);
  /* the literal route wins over the parameter */
  assert_int_equal(st__router_match(&r, "GET", "/evidence/holds", &m), 0);
  assert_string_equal(m.route->r.scope, "evidence:hold");
  st__match_release(&m);
  /* HEAD is served by GET */
  assert_int_equal(st__router_match(&r, "HEAD", "/evidence/x", &m), 0);
  st__match_release(&m);
  assert_int_equal(st__router_match(&r, "GET", "/exports/r1/files/a.json", &m), 0);
  assert_int_equal(m.nparams, 2);
  assert_string_equal(m.values[1], "a.json");
  st__match_release(&m);
  /* 405 with every method of the path */
  assert_int_equal(st__router_match(&r, "POST", "/evidence/abc", &m), ST_EPERM);
  assert_string_equal(m.allow, "GET, HEAD, DELETE");
  st__match_release(&m);
  assert_int_equal(st__router_match(&r, "GET", "/", &m), 0);
  st__match_release(&m);
  /* unknown paths, empty segments, dot segments, too deep */
  static const char *nomatch[] = {"/evidence",     "/evidence/",      "/evidence//x",
                                  "/evidence/..",  "/evidence/.",     "evidence/a",
                                  "/evidence/a/b", "/exports/r1/files/..", "",
                                  "//"};
  for (size_t i = 0; i < sizeof(nomatch) / sizeof(nomatch[0]); i++) {
    if (st__router_match(&r, "GET", nomatch[i], &m) != ST_ENOENT)
      fail_msg("%s matched", nomatch[i]);
    st__match_release(&m);
  }
  {
    char deep[200] = "";
    for (int i = 0; i < 40; i++)
      strcat(deep, "/a");
    assert_int_equal(st__router_match(&r, "GET", deep, &m), ST_ENOENT);
    st__match_release(&m);
  }
  /* bad patterns */
  static const char *bad[] = {"evidence", "/a//b", "/a/{}", "/a/x{id}", "/a/{i d}", "/a/"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    st_api_route_t b = routes[0];
    b.pattern = bad[i];
    if (st__router_add(&r, &b, &err) != ST_EINVAL)
      fail_msg("pattern %s accepted", bad[i]);
  }
  {
    st_api_route_t b = routes[0];
    b.pattern = "/sink";
    b.body = ST_API_BODY_SINK;
    assert_int_equal(st__router_add(&r, &b, &err), ST_EINVAL); /* no sink */
  }
  st__router_release(&r);
}

static void test_problem_mapping(void **state) {
  static const struct {
    int code;
    unsigned status;
    const char *slug;
  } cases[] = {
      {ST_EINVAL, 400, "bad-request"},     {ST_EPARSE, 400, "malformed-json"},
      {ST_EUTF8, 400, "malformed-json"},   {ST_EPERM, 403, "forbidden"},
      {ST_ENOENT, 404, "not-found"},       {ST_EEXIST, 409, "conflict"},
      {ST_ECONFLICT, 409, "conflict"},     {ST_ETOOBIG, 413, "payload-too-large"},
      {ST_EVERIFY, 422, "verification-failed"}, {ST_EDBRETRY, 503, "unavailable"},
      {ST_EREDIS, 503, "unavailable"},     {ST_EDB, 500, "internal"},
      {ST_ENOMEM, 500, "internal"},        {ST_EIO, 500, "internal"},
      {-999, 500, "internal"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    st_api_problem k = st_api_problem_for_err(cases[i].code);
    const char *type = st_api_problem_type(k);
    assert_int_equal(st_api_problem_status(k), cases[i].status);
    assert_true(strncmp(type, "https://stella.dev/problems/", 28) == 0);
    assert_string_equal(type + 28, cases[i].slug);
  }
  /* every kind has a distinct type and an error status */
  for (int a = 0; a < ST_API_P_COUNT; a++) {
    assert_true(st_api_problem_status((st_api_problem)a) >= 400);
    for (int b = a + 1; b < ST_API_P_COUNT; b++)
      assert_string_not_equal(st_api_problem_type((st_api_problem)a),
                              st_api_problem_type((st_api_problem)b));
  }
}

static void test_traceparent(void **state) {
  st_api_trace_t t;
  assert_int_equal(st_api_traceparent_parse(
                       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &t),
                   0);
  assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(t.parent_id, "00f067aa0ba902b7");
  assert_int_equal(t.flags, 1);
  /* a later version may append fields */
  assert_int_equal(st_api_traceparent_parse(
                       "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra", &t),
                   0);
  static const char *bad[] = {
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* v00 is exact */
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    /* zero trace */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    /* zero parent */
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    /* upper case */
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* version ff */
      "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",    /* misplaced dash */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00x",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (st_api_traceparent_parse(bad[i], &t) != ST_EPARSE)
      fail_msg("accepted %s", bad[i]);
}

static void test_bucket(void **state) {
  st__bucket_t b = {3, 1000};
  st__quota_t *q = NULL;

  /* burst 3 at rate 2/s: three granted, the fourth waits one second */
  assert_int_equal(st__bucket_take(&b, 1000, 2, 3), 0);
  assert_int_equal(st__bucket_take(&b, 1000, 2, 3), 0);
  assert_int_equal(st__bucket_take(&b, 1000, 2, 3), 0);
  assert_int_equal(st__bucket_take(&b, 1000, 2, 3), 1);
  /* 500 ms later one token has refilled */
  assert_int_equal(st__bucket_take(&b, 1500, 2, 3), 0);
  assert_int_equal(st__bucket_take(&b, 1500, 2, 3), 1);
  /* a slow rate asks for a longer wait; time going backwards adds nothing */
  b = (st__bucket_t){0, 5000};
  assert_int_equal(st__bucket_take(&b, 5000, 0.1, 1), 10);
  assert_int_equal(st__bucket_take(&b, 4000, 0.1, 1), 10);
  /* long idle refills only up to the burst */
  assert_int_equal(st__bucket_take(&b, 1000000, 2, 3), 0);
  assert_true(b.tokens <= 2.0 + 1e-9);

  assert_int_equal(st__quota_new(&q, 1, 2), 0);
  assert_int_equal(st__quota_take(q, "acme", 0), 0);
  assert_int_equal(st__quota_take(q, "acme", 0), 0);
  assert_int_equal(st__quota_take(q, "acme", 0), 1);
  assert_int_equal(st__quota_take(q, "other", 0), 0); /* per tenant */
  assert_int_equal(st__quota_take(q, "acme", 1000), 0);
  /* many tenants: the table stays bounded and idle buckets are forgotten */
  for (int i = 0; i < 20000; i++) {
    char t[32];
    snprintf(t, sizeof(t), "t%d", i);
    assert_int_equal(st__quota_take(q, t, 10000 + i * 10), 0);
  }
  st__quota_free(q);
  assert_int_equal(st__quota_new(&q, 0, 1), 0); /* rate 0: no limit */
  for (int i = 0; i < 10; i++)
    assert_int_equal(st__quota_take(q, "acme", 0), 0);
  st__quota_free(q);
}

static void test_etag_match(void **state) {
  const char *e = "\"abc\"";
  assert_true(st__etag_match("\"abc\"", e));
  assert_true(st__etag_match("W/\"abc\"", e));
  assert_true(st__etag_match("\"x\", \"abc\"", e));
  assert_true(st__etag_match("*", e));
  assert_false(st__etag_match("\"abcd\"", e));
  assert_false(st__etag_match("abc", e));
  assert_false(st__etag_match("", e));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_router),     cmocka_unit_test(test_problem_mapping),
      cmocka_unit_test(test_traceparent), cmocka_unit_test(test_bucket),
      cmocka_unit_test(test_etag_match),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
