/* test_base64.c: RFC 4648 vectors, both alphabets, padding rules, strictness. */
#include "st_test.h"

#include "stella/base64.h"

static void encode_rfc4648_vectors(void **state) {
  static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_base64_encode(&b, in[i], strlen(in[i])), 0);
    assert_string_equal(b.data, out[i]);
    assert_int_equal(st_base64_encoded_len(strlen(in[i])), strlen(out[i]));
    st_buf_release(&b);
  }
  assert_int_equal(st_base64_encoded_len(SIZE_MAX), 0);
}

static void decode_ok(const char *s, const void *want, size_t want_len) {
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  int rc = st_base64_decode(&b, s, strlen(s), &err);
  if (rc)
    fail_msg("decoding '%s': %s", s, st_error_text(&err));
  assert_int_equal(b.len, want_len);
  assert_memory_equal(b.data, want, want_len);
  st_buf_release(&b);
}

static void decode_bad(const char *s, const char *reason) {
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  int rc = st_base64_decode(&b, s, strlen(s), &err);
  if (rc != ST_EPARSE || !strstr(err.msg, reason))
    fail_msg("'%s': got %s '%s', want '%s'", s, st_err_name(rc), err.msg, reason);
  assert_int_equal(b.len, 0);
  st_buf_release(&b);
}

static void decode_accepts_both_alphabets_and_padding(void **state) {
  decode_ok("", "", 0);
  decode_ok("Zm9vYmFy", "foobar", 6);
  decode_ok("Zg==", "f", 1);
  decode_ok("Zg", "f", 1);
  decode_ok("Zm8=", "fo", 2);
  decode_ok("Zm8", "fo", 2);
  decode_ok("+/+/", "\xfb\xff\xbf", 3);
  decode_ok("-_-_", "\xfb\xff\xbf", 3);
  decode_ok("-_8=", "\xfb\xff", 2);
  decode_ok("-_8", "\xfb\xff", 2);
}

static void decode_rejects(void **state) {
  decode_bad("Zm9v\nZg=", "invalid character at offset 4");
  decode_bad("Zm 9vZg=", "invalid character at offset 2");
  decode_bad("Zm9v*A==", "invalid character at offset 4");
  decode_bad("Z", "impossible length");
  decode_bad("Zm9vY", "impossible length");
  decode_bad("Zg=", "padding on a length");
  decode_bad("Zm8==", "padding on a length");
  decode_bad("Zm9v====", "invalid character at offset 4"); /* only two stripped */
  decode_bad("Zm9vY===", "invalid character at offset 5");
  decode_bad("Zm9v=", "padding on a length");
  decode_bad("Zm9vYg=A", "invalid character at offset 6");
  decode_bad("Zg=a", "invalid character at offset 2");
  decode_bad("=Zg=", "invalid character at offset 0");
  decode_bad("Zh==", "non-zero trailing bits");
  decode_bad("Zm9=", "non-zero trailing bits");
  decode_bad("+_", "alphabets mixed");
  decode_bad("-/", "alphabets mixed");
}

static void decode_respects_cap_and_appends(void **state) {
  st_buf_t b;
  st_error_t err = ST_ERROR_INIT;
  st_buf_init(&b, 4);
  assert_int_equal(st_base64_decode(&b, "Zm9vYmFy", 8, &err), ST_ETOOBIG);
  assert_int_equal(b.len, 0);
  st_buf_release(&b);
  st_buf_init(&b, 0);
  assert_int_equal(st_buf_adds(&b, "x"), 0);
  assert_int_equal(st_base64_decode(&b, "Zm9v", 4, &err), 0);
  assert_string_equal(b.data, "xfoo");
  assert_int_equal(st_base64_decode(&b, "Zm9v!", 5, &err), ST_EPARSE);
  assert_string_equal(b.data, "xfoo"); /* failure leaves earlier content alone */
  st_buf_release(&b);
}

static void roundtrip_all_lengths(void **state) {
  unsigned char data[300];
  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (unsigned char)(i * 37 + 11);
  for (size_t n = 0; n <= sizeof(data); n++) {
    st_buf_t e = ST_BUF_INIT, d = ST_BUF_INIT;
    assert_int_equal(st_base64_encode(&e, data, n), 0);
    assert_int_equal(st_base64_decode(&d, e.data, e.len, NULL), 0);
    assert_int_equal(d.len, n);
    assert_memory_equal(d.data, data, n);
    st_buf_release(&e);
    st_buf_release(&d);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(encode_rfc4648_vectors),
      cmocka_unit_test(decode_accepts_both_alphabets_and_padding),
      cmocka_unit_test(decode_rejects),
      cmocka_unit_test(decode_respects_cap_and_appends),
      cmocka_unit_test(roundtrip_all_lengths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
