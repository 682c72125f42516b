/* test_hmac.c: HMAC-SHA256 against RFC 4231 test cases 1, 2 and 6 (key longer than the
 * block size). */
#include "st_test.h"

#include "stella/hmac.h"

static void rfc4231(void **state) {
  uint8_t k1[20], k6[131], out[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  memset(k1, 0x0b, sizeof(k1));
  memset(k6, 0xaa, sizeof(k6));
  assert_int_equal(st_hmac_sha256(k1, sizeof(k1), "Hi There", 8, out), 0);
  st_sha256_hex(out, hex);
  assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  assert_int_equal(st_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, out), 0);
  st_sha256_hex(out, hex);
  assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  assert_int_equal(st_hmac_sha256(k6, sizeof(k6), m6, strlen(m6), out), 0);
  st_sha256_hex(out, hex);
  assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(rfc4231)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
