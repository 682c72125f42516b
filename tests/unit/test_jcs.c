/* test_jcs.c: RFC 8785 canonical JSON against the published vectors.
 *
 * - data/jcs/input/NAME.json -> data/jcs/output/NAME.json (cyberphone/json-canonicalization
 *   testdata: arrays, french, structures, unicode, values, weird; see data/jcs/SOURCE.md);
 * - the number table of RFC 8785 Appendix B;
 * - the es6testfile sequence from the same repository's testdata/README.md, regenerated
 *   here (168 edge cases, 2000 subnormal-border values, then doubles drawn from a SHA-256
 *   chain) and formatted by st_jcs_number; the SHA-256 of the resulting lines must equal
 *   the published checksum, which ties every one of them to Number.prototype.toString;
 * - UTF-16 key order, big integers, and bad input: invalid UTF-8, lone surrogates,
 *   nesting, 1e400, NaN, buffer cap.
 */
#include "st_test.h"

#include <math.h>

#include "stella/jcs.h"
#include "stella/mem.h"
#include "stella/sha256.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *d;
  long n;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  rewind(f);
  d = st_malloc((size_t)n + 1);
  assert_non_null(d);
  assert_int_equal(fread(d, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  d[n] = '\0';
  *len = (size_t)n;
  return d;
}

static void published_vectors(void **state) {
  static const char *names[] = {"arrays", "french", "structures", "unicode", "values", "weird"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char path[128];
    size_t in_len, want_len;
    char *in, *want;
    st_buf_t out = ST_BUF_INIT;
    st_error_t err = ST_ERROR_INIT;

    snprintf(path, sizeof(path), "data/jcs/input/%s.json", names[i]);
    in = slurp(path, &in_len);
    snprintf(path, sizeof(path), "data/jcs/output/%s.json", names[i]);
    want = slurp(path, &want_len);
    assert_int_equal(st_jcs_canonicalize(in, in_len, NULL, &out, &err), 0);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    /* Canonical output is a fixed point. */
    st_buf_reset(&out);
    assert_int_equal(st_jcs_canonicalize(want, want_len, NULL, &out, &err), 0);
    assert_memory_equal(out.data, want, want_len);
    st_buf_release(&out);
    st_free(in);
    st_free(want);
  }
}

static double from_bits(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

static void rfc8785_appendix_b(void **state) {
  static const struct {
    uint64_t bits;
    const char *want;
  } cases[] = {
      {0x0000000000000000ULL, "0"},
      {0x8000000000000000ULL, "0"},
      {0x0000000000000001ULL, "5e-324"},
      {0x8000000000000001ULL, "-5e-324"},
      {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
      {0xffefffffffffffffULL, "-1.7976931348623157e+308"},
      {0x4340000000000000ULL, "9007199254740992"},
      {0xc340000000000000ULL, "-9007199254740992"},
      {0x4430000000000000ULL, "295147905179352830000"},
      {0x44b52d02c7e14af5ULL, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6ULL, "1e+23"},
      {0x44b52d02c7e14af7ULL, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4eULL, "999999999999999700000"},
      {0x444b1ae4d6e2ef4fULL, "999999999999999900000"},
      {0x444b1ae4d6e2ef50ULL, "1e+21"},
      {0x3eb0c6f7a0b5ed8cULL, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8dULL, "0.000001"},
      {0x41b3de4355555553ULL, "333333333.3333332"},
      {0x41b3de4355555554ULL, "333333333.33333325"},
      {0x41b3de4355555555ULL, "333333333.3333333"},
      {0x41b3de4355555556ULL, "333333333.3333334"},
      {0x41b3de4355555557ULL, "333333333.33333343"},
      {0xbecbf647612f3696ULL, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959ULL, "1424953923781206.2"},
  };
  st_buf_t b = ST_BUF_INIT;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    st_buf_reset(&b);
    assert_int_equal(st_jcs_number(from_bits(cases[i].bits), &b), 0);
    assert_string_equal(b.data, cases[i].want);
  }
  assert_int_equal(st_jcs_number(from_bits(0x7fffffffffffffffULL), &b), ST_ERANGE); /* NaN */
  assert_int_equal(st_jcs_number(from_bits(0x7ff0000000000000ULL), &b), ST_ERANGE); /* +Inf */
  assert_int_equal(st_jcs_number(-INFINITY, &b), ST_ERANGE);
  st_buf_release(&b);
}

/* The es6testfile generator (testdata/README.md), line by line. */
static const uint64_t ES6_STATIC[] = {
    0x0000000000000000ULL, 0x8000000000000000ULL, 0x0000000000000001ULL, 0x8000000000000001ULL,
    0xc46696695dbd1cc3ULL, 0xc43211ede4974a35ULL, 0xc3fce97ca0f21056ULL, 0xc3c7213080c1a6acULL,
    0xc39280f39a348556ULL, 0xc35d9b1f5d20d557ULL, 0xc327af4c4a80aaacULL, 0xc2f2f2a36ecd5556ULL,
    0xc2be51057e155558ULL, 0xc28840d131aaaaacULL, 0xc253670dc1555557ULL, 0xc21f0b4935555557ULL,
    0xc1e8d5d42aaaaaacULL, 0xc1b3de4355555556ULL, 0xc17fca0555555556ULL, 0xc1496e6aaaaaaaabULL,
    0xc114585555555555ULL, 0xc0e046aaaaaaaaabULL, 0xc0aa0aaaaaaaaaaaULL, 0xc074d55555555555ULL,
    0xc040aaaaaaaaaaabULL, 0xc00aaaaaaaaaaaabULL, 0xbfd5555555555555ULL, 0xbfa1111111111111ULL,
    0xbf6b4e81b4e81b4fULL, 0xbf35d867c3ece2a5ULL, 0xbf0179ec9cbd821eULL, 0xbecbf647612f3696ULL,
    0xbe965e9f80f29212ULL, 0xbe61e54c672874dbULL, 0xbe2ca213d840baf8ULL, 0xbdf6e80fe033c8c6ULL,
    0xbdc2533fe68fd3d2ULL, 0xbd8d51ffd74c861cULL, 0xbd5774ccac3d3817ULL, 0xbd22c3d6f030f9acULL,
    0xbcee0624b3818f79ULL, 0xbcb804ea293472c7ULL, 0xbc833721ba905bd3ULL, 0xbc4ebe9c5db3c61eULL,
    0xbc18987d17c304e5ULL, 0xbbe3ad30dfcf371dULL, 0xbbaf7b816618582fULL, 0xbb792f9ab81379bfULL,
    0xbb442615600f9499ULL, 0xbb101e77800c76e1ULL, 0xbad9ca58cce0be35ULL, 0xbaa4a1e0a3e6fe90ULL,
    0xba708180831f320dULL, 0xba3a68cd9e985016ULL, 0x446696695dbd1cc3ULL, 0x443211ede4974a35ULL,
    0x43fce97ca0f21056ULL, 0x43c7213080c1a6acULL, 0x439280f39a348556ULL, 0x435d9b1f5d20d557ULL,
    0x4327af4c4a80aaacULL, 0x42f2f2a36ecd5556ULL, 0x42be51057e155558ULL, 0x428840d131aaaaacULL,
    0x4253670dc1555557ULL, 0x421f0b4935555557ULL, 0x41e8d5d42aaaaaacULL, 0x41b3de4355555556ULL,
    0x417fca0555555556ULL, 0x41496e6aaaaaaaabULL, 0x4114585555555555ULL, 0x40e046aaaaaaaaabULL,
    0x40aa0aaaaaaaaaaaULL, 0x4074d55555555555ULL, 0x4040aaaaaaaaaaabULL, 0x400aaaaaaaaaaaabULL,
    0x3fd5555555555555ULL, 0x3fa1111111111111ULL, 0x3f6b4e81b4e81b4fULL, 0x3f35d867c3ece2a5ULL,
    0x3f0179ec9cbd821eULL, 0x3ecbf647612f3696ULL, 0x3e965e9f80f29212ULL, 0x3e61e54c672874dbULL,
    0x3e2ca213d840baf8ULL, 0x3df6e80fe033c8c6ULL, 0x3dc2533fe68fd3d2ULL, 0x3d8d51ffd74c861cULL,
    0x3d5774ccac3d3817ULL, 0x3d22c3d6f030f9acULL, 0x3cee0624b3818f79ULL, 0x3cb804ea293472c7ULL,
    0x3c833721ba905bd3ULL, 0x3c4ebe9c5db3c61eULL, 0x3c18987d17c304e5ULL, 0x3be3ad30dfcf371dULL,
    0x3baf7b816618582fULL, 0x3b792f9ab81379bfULL, 0x3b442615600f9499ULL, 0x3b101e77800c76e1ULL,
    0x3ad9ca58cce0be35ULL, 0x3aa4a1e0a3e6fe90ULL, 0x3a708180831f320dULL, 0x3a3a68cd9e985016ULL,
    0x4024000000000000ULL, 0x4014000000000000ULL, 0x3fe0000000000000ULL, 0x3fa999999999999aULL,
    0x3f747ae147ae147bULL, 0x3f40624dd2f1a9fcULL, 0x3f0a36e2eb1c432dULL, 0x3ed4f8b588e368f1ULL,
    0x3ea0c6f7a0b5ed8dULL, 0x3e6ad7f29abcaf48ULL, 0x3e35798ee2308c3aULL, 0x3ed539223589fa95ULL,
    0x3ed4ff26cd5a7781ULL, 0x3ed4f95a762283ffULL, 0x3ed4f8c60703520cULL, 0x3ed4f8b72f19cd0dULL,
    0x3ed4f8b5b31c0c8dULL, 0x3ed4f8b58d1c461aULL, 0x3ed4f8b5894f7f0eULL, 0x3ed4f8b588ee37f3ULL,
    0x3ed4f8b588e47da4ULL, 0x3ed4f8b588e3849cULL, 0x3ed4f8b588e36bb5ULL, 0x3ed4f8b588e36937ULL,
    0x3ed4f8b588e368f8ULL, 0x3ed4f8b588e368f1ULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
    0xbfeffffffffffffaULL, 0xbfeffffffffffffbULL, 0x3feffffffffffffaULL, 0x3feffffffffffffbULL,
    0x3feffffffffffffcULL, 0x3feffffffffffffeULL, 0xbfefffffffffffffULL, 0xbfefffffffffffffULL,
    0x3fefffffffffffffULL, 0x3fefffffffffffffULL, 0x3fd3333333333332ULL, 0x3fd3333333333333ULL,
    0x3fd3333333333334ULL, 0x0010000000000000ULL, 0x000ffffffffffffdULL, 0x000fffffffffffffULL,
    0x7fefffffffffffffULL, 0xffefffffffffffffULL, 0x4340000000000000ULL, 0xc340000000000000ULL,
    0x4430000000000000ULL, 0x44b52d02c7e14af5ULL, 0x44b52d02c7e14af6ULL, 0x44b52d02c7e14af7ULL,
    0x444b1ae4d6e2ef4eULL, 0x444b1ae4d6e2ef4fULL, 0x444b1ae4d6e2ef50ULL, 0x3eb0c6f7a0b5ed8cULL,
    0x3eb0c6f7a0b5ed8dULL, 0x41b3de4355555553ULL, 0x41b3de4355555554ULL, 0x41b3de4355555555ULL,
    0x41b3de4355555556ULL, 0x41b3de4355555557ULL, 0xbecbf647612f3696ULL, 0x43143ff3c1cb0959ULL,
};

typedef struct es6gen_s {
  size_t idx;
  uint8_t block[ST_SHA256_LEN];
  size_t left; /* doubles of block not yet used */
} es6gen_t;

static uint64_t es6_next(es6gen_t *g) {
  size_t nstatic = sizeof(ES6_STATIC) / sizeof(ES6_STATIC[0]);
  uint64_t u = 0;
  double f = 0;

  if (g->idx < nstatic) {
    u = ES6_STATIC[g->idx];
  } else if (g->idx < nstatic + 2000) {
    u = 0x0010000000000000ULL + (g->idx - nstatic);
  } else {
    while (f == 0 || !isfinite(f)) {
      if (g->left == 0) {
        assert_int_equal(st_sha256(g->block, sizeof(g->block), g->block), 0);
        g->left = 4;
      }
      /* Float64Array over the digest: little-endian doubles. */
      const uint8_t *p = g->block + 8 * (4 - g->left--);
      u = 0;
      for (int k = 7; k >= 0; k--)
        u = u << 8 | p[k];
      f = from_bits(u);
    }
  }
  g->idx++;
  return u;
}

static void es6_lines(size_t lines, const char *want_hex, size_t want_bytes) {
  es6gen_t g = {0, {0}, 0};
  st_sha256_t h;
  st_buf_t line = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  size_t bytes = 0;

  assert_int_equal(st_sha256_init(&h), 0);
  for (size_t i = 0; i < lines; i++) {
    uint64_t u = es6_next(&g);
    st_buf_reset(&line);
    assert_int_equal(st_buf_addf(&line, "%llx,", (unsigned long long)u), 0);
    assert_int_equal(st_jcs_number(from_bits(u), &line), 0);
    assert_int_equal(st_buf_addc(&line, '\n'), 0);
    assert_int_equal(st_sha256_update(&h, line.data, line.len), 0);
    bytes += line.len;
  }
  assert_int_equal(st_sha256_final(&h, d), 0);
  st_sha256_hex(d, hex);
  assert_int_equal(bytes, want_bytes);
  assert_string_equal(hex, want_hex);
  st_sha256_release(&h);
  st_buf_release(&line);
}

static void es6_number_file(void **state) {
  es6_lines(1000, "be18b62b6f69cdab33a7e0dae0d9cfa869fda80ddc712221570f9f40a5878687", 37967);
  es6_lines(1000000, "49415fee2c56c77864931bd3624faad425c3c577d6d74e89a83bc725506dad16",
            40357417);
}

static void canon(const char *in, const char *want) {
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_jcs_canonicalize(in, strlen(in), NULL, &b, &err), 0);
  assert_string_equal(b.data, want);
  st_buf_release(&b);
}

static void utf16_key_order(void **state) {
  /* U+10000 (F0 90 80 80, UTF-16 D800 DC00) sorts before U+E000 (EE 80 80) and U+FFFD
   * (EF BF BD), though its UTF-8 bytes are larger; below U+E000 byte order holds. */
  canon("{\"\xee\x80\x80\":1,\"\xf0\x90\x80\x80\":2,\"\xef\xbf\xbd\":3,\"\xed\x9f\xbf\":4,"
        "\"z\":5}",
        "{\"z\":5,\"\xed\x9f\xbf\":4,\"\xf0\x90\x80\x80\":2,\"\xee\x80\x80\":1,"
        "\"\xef\xbf\xbd\":3}");
  /* Prefixes sort first; shared prefixes compare at the first difference. */
  canon("{\"ab\":1,\"a\":2,\"a\xf0\x9f\x98\x82\":3,\"a\xef\xac\xb3\":4,\"\":5}",
        "{\"\":5,\"a\":2,\"ab\":1,\"a\xf0\x9f\x98\x82\":3,\"a\xef\xac\xb3\":4}");
  /* Enough keys to leave the stack scratch array. */
  canon("{\"t\":0,\"s\":0,\"r\":0,\"q\":0,\"p\":0,\"o\":0,\"n\":0,\"m\":0,\"l\":0,\"k\":0,"
        "\"j\":0,\"i\":0,\"h\":0,\"g\":0,\"f\":0,\"e\":0,\"d\":0,\"c\":0,\"b\":0,\"a\":0}",
        "{\"a\":0,\"b\":0,\"c\":0,\"d\":0,\"e\":0,\"f\":0,\"g\":0,\"h\":0,\"i\":0,\"j\":0,"
        "\"k\":0,\"l\":0,\"m\":0,\"n\":0,\"o\":0,\"p\":0,\"q\":0,\"r\":0,\"s\":0,\"t\":0}");
}

static void numbers_in_documents(void **state) {
  canon("[-0, -0.0, 1.0, 1E2, 0.1, 1e21, 1e-7, 123456789012345678, -9007199254740993]",
        "[0,0,1,100,0.1,1e+21,1e-7,123456789012345680,-9007199254740992]");
  canon("[9007199254740992, 9223372036854775807, -9223372036854775808]",
        "[9007199254740992,9223372036854776000,-9223372036854776000]");
  canon("\"\\u00e9\\u001f\\t\\/\"", "\"\xc3\xa9\\u001f\\t/\"");
}

static void refused(const char *in, int code, const char *msg_part) {
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_buf_adds(&b, "keep"), 0);
  assert_int_equal(st_jcs_canonicalize(in, strlen(in), NULL, &b, &err), code);
  assert_string_equal(b.data, "keep");
  if (msg_part)
    assert_non_null(strstr(err.msg, msg_part));
  st_buf_release(&b);
}

static void bad_source_text(void **state) {
  refused("[\"\xff\"]", ST_EUTF8, NULL);
  refused("{\"a\":\"\\ud800\"}", ST_EUTF8, "surrogate");
  refused("[1e400]", ST_ERANGE, NULL);
  refused("[NaN]", ST_EPARSE, NULL);
  refused("{\"a\":1,\"a\":1}", ST_EPARSE, "duplicate");
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  deep[199] = '\0';
  refused(deep, ST_EDEPTH, "nesting");
}

static void bad_values(void **state) {
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  json_t *v = json_object(), *arr = json_array(), *deep = NULL;

  /* jansson's *_nocheck constructors let invalid UTF-8 in; the encoder must catch it. */
  assert_int_equal(json_array_append_new(arr, json_integer(1)), 0);
  assert_int_equal(json_array_append_new(arr, json_stringn_nocheck("\xed\xa0\x80", 3)), 0);
  assert_int_equal(json_object_set_new(v, "list", arr), 0);
  assert_int_equal(st_buf_adds(&b, "x"), 0);
  assert_int_equal(st_jcs_encode(v, &b, &err), ST_EUTF8);
  assert_string_equal(err.msg, "jcs: $.list[1]: string is not valid UTF-8");
  assert_string_equal(b.data, "x");
  json_decref(v);

  v = json_object();
  assert_int_equal(json_object_setn_new_nocheck(v, "k\xc0\x80", 3, json_null()), 0);
  assert_int_equal(st_jcs_encode(v, &b, &err), ST_EUTF8);
  assert_non_null(strstr(err.msg, "key"));
  json_decref(v);

  for (int i = 0; i <= ST_JCS_MAX_DEPTH + 1; i++) {
    json_t *a = json_array();
    if (deep)
      assert_int_equal(json_array_append_new(a, deep), 0);
    deep = a;
  }
  assert_int_equal(st_jcs_encode(deep, &b, &err), ST_EDEPTH);
  assert_string_equal(b.data, "x");
  json_decref(deep);
  assert_int_equal(st_jcs_encode(NULL, &b, &err), ST_EINVAL);
  st_buf_release(&b);
}

static void buffer_cap(void **state) {
  st_buf_t b;
  st_error_t err = ST_ERROR_INIT;
  json_t *v = json_pack("{s:s}", "key", "a value longer than the cap");
  st_buf_init(&b, 16);
  assert_int_equal(st_buf_adds(&b, "[1]"), 0);
  assert_int_equal(st_jcs_encode(v, &b, &err), ST_ETOOBIG);
  assert_string_equal(b.data, "[1]");
  json_decref(v);
  st_buf_release(&b);
}

static void appends(void **state) {
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  json_t *v = json_pack("{s:i,s:[b,n]}", "b", 2, "a", 1);
  assert_int_equal(st_buf_adds(&b, "prefix:"), 0);
  assert_int_equal(st_jcs_encode(v, &b, &err), 0);
  assert_int_equal(st_jcs_encode(v, &b, &err), 0);
  assert_string_equal(b.data, "prefix:{\"a\":[true,null],\"b\":2}{\"a\":[true,null],\"b\":2}");
  json_decref(v);
  st_buf_release(&b);
}

static void alloc_failure(void **state) {
  json_t *v = json_object();
  char key[8];
  int failed = 0;
  for (int i = 0; i < 40; i++) {
    snprintf(key, sizeof(key), "k%02d", 39 - i);
    assert_int_equal(json_object_set_new(v, key, json_real(i + 0.5)), 0);
  }
  for (long n = 0; n < 8; n++) {
    st_buf_t b = ST_BUF_INIT;
    st_error_t err = ST_ERROR_INIT;
    st_mem_fail_after(n);
    int rc = st_jcs_encode(v, &b, &err);
    st_mem_fail_after(-1);
    if (rc) {
      assert_int_equal(rc, ST_ENOMEM);
      assert_string_equal(b.data, "");
      failed++;
    }
    st_buf_release(&b);
  }
  assert_true(failed > 1);
  json_decref(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(published_vectors),
      cmocka_unit_test(rfc8785_appendix_b),
      cmocka_unit_test(es6_number_file),
      cmocka_unit_test(utf16_key_order),
      cmocka_unit_test(numbers_in_documents),
      cmocka_unit_test(bad_source_text),
      cmocka_unit_test(bad_values),
      cmocka_unit_test(buffer_cap),
      cmocka_unit_test(appends),
      cmocka_unit_test(alloc_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
