/* test_bbolt.c: the bbolt writer's input validation, failure handling and fixed bytes.
 * File contents are proven against bbolt itself in tests/e2e/bbolt_check.sh; here: every
 * refused input kind (and that a refusal leaves the writer usable), I/O and allocation
 * failures (writer failed, temporary file removed, nothing published, no leaks), and the
 * empty DB's meta pages against known FNV-1a checksums. */
#include "st_test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stella/bbolt.h"
#include "stella/mem.h"

static char dir[64];
static char path[128];

static int setup(void **state) {
  strcpy(dir, "/tmp/stella-bbolt-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/t.db", dir);
  return 0;
}

static size_t dir_entries(void) {
  size_t n = 0;
  DIR *d = opendir(dir);
  struct dirent *e;
  assert_non_null(d);
  while ((e = readdir(d)))
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static int teardown(void **state) {
  unlink(path);
  assert_int_equal(dir_entries(), 0); /* no temporary file left behind */
  rmdir(dir);
  return 0;
}

static st_bbolt_writer_t *new_writer(void) {
  st_bbolt_writer_t *w = NULL;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_bbolt_writer_new(path, &w, &err), 0);
  return w;
}

static void put_ok(st_bbolt_writer_t *w, const char *k, const char *v) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_bbolt_put(w, k, strlen(k), v, strlen(v), &err), 0);
}

static void begin_ok(st_bbolt_writer_t *w, const char *name) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_bbolt_bucket_begin(w, name, strlen(name), &err), 0);
}

static void finish_ok(st_bbolt_writer_t *w) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_bbolt_writer_finish(w, &err), 0);
}

static void unsorted_keys(void **state) {
  st_bbolt_writer_t *w = new_writer();
  st_error_t err = ST_ERROR_INIT;
  begin_ok(w, "b");
  put_ok(w, "abc", "1");
  assert_int_equal(st_bbolt_put(w, "abb", 3, "x", 1, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "\"abb\" is not after previous key \"abc\""));
  assert_non_null(strstr(err.msg, "bucket \"b\""));
  assert_int_equal(st_bbolt_put(w, "abc", 3, "x", 1, &err), ST_EINVAL); /* duplicate */
  assert_int_equal(st_bbolt_put(w, "ab", 2, "x", 1, &err), ST_EINVAL);  /* prefix first */
  /* A sub-bucket name is a key of its parent: same order rule. */
  assert_int_equal(st_bbolt_bucket_begin(w, "abc", 3, &err), ST_EINVAL);
  /* Refusals change nothing: the writer goes on. */
  put_ok(w, "abcd", "2");
  begin_ok(w, "abce");
  st_bbolt_bucket_end(w, &err);
  st_bbolt_bucket_end(w, &err);
  assert_int_equal(st_bbolt_bucket_begin(w, "a", 1, &err), ST_EINVAL); /* top level too */
  assert_int_equal(st_bbolt_bucket_begin(w, "b", 1, &err), ST_EINVAL);
  begin_ok(w, "c");
  st_bbolt_bucket_end(w, &err);
  finish_ok(w);
  st_bbolt_writer_free(w);
}

static void binary_key_named(void **state) {
  st_bbolt_writer_t *w = new_writer();
  st_error_t err = ST_ERROR_INIT;
  begin_ok(w, "b");
  assert_int_equal(st_bbolt_put(w, "\xff\x01", 2, "", 0, &err), 0);
  assert_int_equal(st_bbolt_put(w, "\x01\"", 2, "", 0, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "\"\\x01\\x22\" is not after previous key \"\\xff\\x01\""));
  st_bbolt_writer_free(w);
}

static void bad_lengths(void **state) {
  st_bbolt_writer_t *w = new_writer();
  st_error_t err = ST_ERROR_INIT;
  char *big = calloc(1, ST_BBOLT_MAX_KEY + 1);
  assert_non_null(big);
  memset(big, 'k', ST_BBOLT_MAX_KEY + 1);
  assert_int_equal(st_bbolt_bucket_begin(w, "", 0, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "empty bucket name"));
  assert_int_equal(st_bbolt_bucket_begin(w, big, ST_BBOLT_MAX_KEY + 1, &err), ST_ETOOBIG);
  begin_ok(w, "b");
  assert_int_equal(st_bbolt_put(w, "", 0, "v", 1, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "empty key"));
  assert_int_equal(st_bbolt_put(w, NULL, 3, "v", 1, &err), ST_EINVAL);
  assert_int_equal(st_bbolt_put(w, big, ST_BBOLT_MAX_KEY + 1, "v", 1, &err), ST_ETOOBIG);
  assert_non_null(strstr(err.msg, "32769 bytes (max 32768)"));
  /* Refused on its length alone: the value is never read. */
  assert_int_equal(st_bbolt_put(w, "k", 1, big, ST_BBOLT_MAX_VALUE + 1, &err), ST_ETOOBIG);
  assert_int_equal(st_bbolt_put(w, "k", 1, NULL, 5, &err), ST_EINVAL);
  assert_int_equal(st_bbolt_put(w, big, ST_BBOLT_MAX_KEY, NULL, 0, &err), 0);
  st_bbolt_bucket_end(w, &err);
  finish_ok(w);
  st_bbolt_writer_free(w);
  free(big);
}

static void structure_errors(void **state) {
  st_bbolt_writer_t *w = new_writer();
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_bbolt_put(w, "k", 1, "v", 1, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "top level"));
  assert_int_equal(st_bbolt_bucket_end(w, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "without a matching begin"));
  begin_ok(w, "outer");
  begin_ok(w, "inner");
  assert_int_equal(st_bbolt_writer_finish(w, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "\"outer\"/\"inner\" still open"));
  assert_int_equal(access(path, F_OK), -1);
  st_bbolt_bucket_end(w, &err);
  st_bbolt_bucket_end(w, &err);
  finish_ok(w);
  assert_int_equal(access(path, F_OK), 0);
  assert_int_equal(st_bbolt_put(w, "k", 1, "v", 1, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "already finished"));
  assert_int_equal(st_bbolt_writer_finish(w, &err), ST_EINVAL);
  st_bbolt_writer_free(w);
  assert_int_equal(st_bbolt_writer_new("", &w, &err), ST_EINVAL);
  assert_null(w);
}

static void depth_limit(void **state) {
  st_bbolt_writer_t *w = new_writer();
  st_error_t err = ST_ERROR_INIT;
  for (int i = 0; i < ST_BBOLT_MAX_DEPTH; i++)
    begin_ok(w, "n");
  assert_int_equal(st_bbolt_bucket_begin(w, "n", 1, &err), ST_EDEPTH);
  for (int i = 0; i < ST_BBOLT_MAX_DEPTH; i++)
    assert_int_equal(st_bbolt_bucket_end(w, &err), 0);
  finish_ok(w);
  st_bbolt_writer_free(w);
}

static void free_unfinished_removes_temp(void **state) {
  st_bbolt_writer_t *w = new_writer();
  begin_ok(w, "b");
  put_ok(w, "k", "v");
  assert_int_equal(dir_entries(), 1); /* the temporary file */
  st_bbolt_writer_free(w);
  assert_int_equal(access(path, F_OK), -1);
  st_bbolt_writer_free(NULL);
}

static void unwritable_directory(void **state) {
  st_bbolt_writer_t *w = NULL;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_bbolt_writer_new("/nonexistent-dir/x.db", &w, &err), ST_EIO);
  assert_non_null(strstr(err.msg, "/nonexistent-dir/x.db"));
  assert_null(w);
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* bbolt's own empty DB: metas (txid 0, 1), free list at 2, empty root leaf at 3. */
static void empty_db_bytes(void **state) {
  static const uint64_t sums[2] = {0x07516e114689fdeeull, 0x264c351a5179480full};
  st_bbolt_writer_t *w = new_writer();
  unsigned char *buf = malloc(4 * 4096 + 1);
  st_bbolt_stats_t s;
  FILE *f;
  assert_non_null(buf);
  finish_ok(w);
  st_bbolt_writer_stats(w, &s);
  assert_int_equal(s.pages, 4);
  st_bbolt_writer_free(w);
  assert_non_null(f = fopen(path, "rb"));
  assert_int_equal(fread(buf, 1, 4 * 4096 + 1, f), 4 * 4096);
  fclose(f);
  for (int m = 0; m < 2; m++) {
    const unsigned char *p = buf + m * 4096;
    assert_int_equal(le64(p), m);
    assert_int_equal(p[8], 0x04);
    assert_int_equal(le64(p + 16) & 0xffffffffu, 0xED0CDAEDu);
    assert_int_equal(le64(p + 32), 3); /* root */
    assert_int_equal(le64(p + 48), 2); /* free list */
    assert_int_equal(le64(p + 56), 4); /* pgid */
    assert_int_equal(le64(p + 64), m); /* txid */
    assert_int_equal(le64(p + 72), sums[m]);
  }
  assert_int_equal(le64(buf + 2 * 4096), 2);
  assert_int_equal(buf[2 * 4096 + 8], 0x10);
  assert_int_equal(le64(buf + 3 * 4096), 3);
  assert_int_equal(buf[3 * 4096 + 8], 0x02);
  free(buf);
}

/* Writes enough to flush leaf and branch pages and hold an inline and a paged bucket. */
static int scenario(st_bbolt_writer_t *w, st_error_t *err) {
  char key[32], val[300];
  int rc;
  memset(val, 'v', sizeof(val));
  if ((rc = st_bbolt_bucket_begin(w, "a", 1, err)) ||
      (rc = st_bbolt_bucket_begin(w, "i", 1, err)) || (rc = st_bbolt_put(w, "k", 1, "v", 1, err)) || (rc = st_bbolt_bucket_end(w, err)))
    return rc;
  for (int i = 0; i < 400; i++) {
    snprintf(key, sizeof(key), "key-%05d", i);
    if ((rc = st_bbolt_put(w, key, strlen(key), val, sizeof(val), err)))
      return rc;
  }
  if ((rc = st_bbolt_bucket_end(w, err)))
    return rc;
  return st_bbolt_writer_finish(w, err);
}

/* Every allocation failure surfaces as ST_ENOMEM, later calls fail, nothing leaks and
 * nothing is published. */
static void allocation_failures(void **state) {
  int done = 0;
  for (long n = 0; !done; n++) {
    st_bbolt_writer_t *w = NULL;
    st_error_t err = ST_ERROR_INIT;
    int rc;
    st_mem_fail_after(n);
    rc = st_bbolt_writer_new(path, &w, &err);
    if (rc == 0)
      rc = scenario(w, &err);
    st_mem_fail_after(-1);
    if (rc == 0) {
      done = 1;
    } else {
      assert_int_equal(rc, ST_ENOMEM);
      if (w) {
        assert_int_equal(st_bbolt_put(w, "zz", 2, "v", 1, &err), ST_EIO);
        assert_non_null(strstr(err.msg, "failed earlier"));
      }
      assert_int_equal(access(path, F_OK), -1);
    }
    st_bbolt_writer_free(w);
    assert_true(n < 10000);
  }
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(unsorted_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(binary_key_named, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_lengths, setup, teardown),
      cmocka_unit_test_setup_teardown(structure_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(depth_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(free_unfinished_removes_temp, setup, teardown),
      cmocka_unit_test_setup_teardown(unwritable_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(empty_db_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(allocation_failures, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
