/* test_sha256.c: SHA-256 against the NIST FIPS 180-2 examples, streaming vs one-shot,
 * file hashing, hex round trips and bad hex. */
#include "st_test.h"

#include <unistd.h>

#include "stella/mem.h"
#include "stella/sha256.h"

static const char *EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char *ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char *M448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char *M448_HEX = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char *MILLION_A = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

static void assert_digest(const uint8_t d[ST_SHA256_LEN], const char *hex) {
  char got[ST_SHA256_HEX_LEN + 1];
  st_sha256_hex(d, got);
  assert_string_equal(got, hex);
}

static void nist_one_shot(void **state) {
  uint8_t d[ST_SHA256_LEN];
  assert_int_equal(st_sha256("", 0, d), 0);
  assert_digest(d, EMPTY);
  assert_int_equal(st_sha256("abc", 3, d), 0);
  assert_digest(d, ABC);
  assert_int_equal(st_sha256(M448, strlen(M448), d), 0);
  assert_digest(d, M448_HEX);
}

static void nist_million_a_streaming(void **state) {
  st_sha256_t h;
  uint8_t d[ST_SHA256_LEN];
  char chunk[1000];
  memset(chunk, 'a', sizeof(chunk));
  assert_int_equal(st_sha256_init(&h), 0);
  for (int i = 0; i < 1000; i++)
    assert_int_equal(st_sha256_update(&h, chunk, sizeof(chunk)), 0);
  assert_int_equal(st_sha256_final(&h, d), 0);
  assert_digest(d, MILLION_A);
  /* The context starts a new message after final. */
  assert_int_equal(st_sha256_update(&h, "ab", 2), 0);
  assert_int_equal(st_sha256_update(&h, "c", 1), 0);
  assert_int_equal(st_sha256_final(&h, d), 0);
  assert_digest(d, ABC);
  st_sha256_release(&h);
  st_sha256_release(&h); /* idempotent */
}

static void released_context_refused(void **state) {
  st_sha256_t h = {NULL};
  uint8_t d[ST_SHA256_LEN];
  assert_int_equal(st_sha256_update(&h, "x", 1), ST_EINVAL);
  assert_int_equal(st_sha256_final(&h, d), ST_EINVAL);
}

static void file_hash(void **state) {
  char path[] = "/tmp/st_sha256_XXXXXX";
  int fd = mkstemp(path);
  uint8_t d[ST_SHA256_LEN];
  uint64_t size = 0;
  st_error_t err = ST_ERROR_INIT;
  char *big = st_malloc(1000000);

  assert_true(fd >= 0);
  assert_non_null(big);
  memset(big, 'a', 1000000);
  assert_int_equal(write(fd, big, 1000000), 1000000);
  close(fd);
  assert_int_equal(st_sha256_file(path, d, &size, &err), 0);
  assert_digest(d, MILLION_A);
  assert_int_equal(size, 1000000);
  unlink(path);
  st_free(big);

  assert_int_equal(st_sha256_file(path, d, NULL, &err), ST_ENOENT);
  assert_non_null(strstr(err.msg, path));
  assert_int_equal(st_sha256_file("/", d, NULL, &err), ST_EIO);
}

static void file_alloc_failure(void **state) {
  uint8_t d[ST_SHA256_LEN];
  st_error_t err = ST_ERROR_INIT;
  st_mem_fail_after(0);
  assert_int_equal(st_sha256_file("/dev/null", d, NULL, &err), ST_ENOMEM);
  st_mem_fail_after(-1);
  assert_int_equal(st_sha256_file("/dev/null", d, NULL, &err), 0);
  assert_digest(d, EMPTY);
}

static void hex_round_trip_and_equal(void **state) {
  uint8_t a[ST_SHA256_LEN], b[ST_SHA256_LEN];
  char upper[ST_SHA256_HEX_LEN + 1];
  assert_int_equal(st_sha256_from_hex(ABC, 64, a), 0);
  assert_digest(a, ABC);
  for (int i = 0; i < 64; i++)
    upper[i] = (char)((ABC[i] >= 'a') ? ABC[i] - 32 : ABC[i]);
  upper[64] = '\0';
  assert_int_equal(st_sha256_from_hex(upper, 64, b), 0);
  assert_true(st_sha256_equal(a, b));
  b[31] ^= 1;
  assert_false(st_sha256_equal(a, b));
  b[31] ^= 1;
  b[0] ^= 0x80;
  assert_false(st_sha256_equal(a, b));
}

static void bad_hex_refused(void **state) {
  uint8_t d[ST_SHA256_LEN], keep[ST_SHA256_LEN];
  char bad[ST_SHA256_HEX_LEN + 1];
  memset(d, 0x5a, sizeof(d));
  memcpy(keep, d, sizeof(d));
  assert_int_equal(st_sha256_from_hex(ABC, 63, d), ST_EPARSE);
  assert_int_equal(st_sha256_from_hex(ABC, 65, d), ST_EPARSE);
  memcpy(bad, ABC, sizeof(bad));
  bad[63] = 'g';
  assert_int_equal(st_sha256_from_hex(bad, 64, d), ST_EPARSE);
  bad[63] = ' ';
  assert_int_equal(st_sha256_from_hex(bad, 64, d), ST_EPARSE);
  assert_memory_equal(d, keep, sizeof(d)); /* untouched on failure */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(nist_one_shot),
      cmocka_unit_test(nist_million_a_streaming),
      cmocka_unit_test(released_context_refused),
      cmocka_unit_test(file_hash),
      cmocka_unit_test(file_alloc_failure),
      cmocka_unit_test(hex_round_trip_and_equal),
      cmocka_unit_test(bad_hex_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
