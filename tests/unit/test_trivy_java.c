/* test_trivy_java.c: the Maven index rows (the ledger's row rules and line parser, which
 * `stella ledger import` and `stella trivy build --java-index` share) and the Java DB
 * builder: every reject kind names its field and leaves the builder usable; a repeated
 * sha1 keeps one row; the same rows in another order give byte-identical trivy-java.db
 * and javadb.tar.gz; UpdatedAt is the latest `modified`. SQLite lookups and integrity are
 * checked with the sqlite3 CLI in tests/e2e/trivy_db.sh and trivy_export.sh. */
#include "st_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "stella/ledger.h"
#include "stella/mem.h"
#include "trivy/trivy.h"

static void parse_bad(const char *text, int with_modified, const char *field) {
  st_error_t err = ST_ERROR_INIT;
  st_ledger_maven_row_t r;
  char *line = st_strdup(text);
  assert_non_null(line);
  if (st_ledger_maven_parse_line(line, with_modified, &r, &err) != ST_EINVAL ||
      !strstr(st_error_text(&err), field))
    fail_msg("%s: want a reject naming %s, got: %s", text, field, st_error_text(&err));
  st_free(line);
}

static void rows(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_ledger_maven_row_t r;
  char line[] = "org.example,kit,1.0,0A1B2C3D4E5F60718293A4B5C6D7E8F901234567,aar,"
                "2024-01-02T03:04:05Z";
  (void)state;
  assert_int_equal(st_ledger_maven_parse_line(line, 1, &r, &err), 0);
  assert_string_equal(r.group_id, "org.example");
  assert_string_equal(r.packaging, "aar");
  assert_string_equal(r.modified, "2024-01-02T03:04:05Z");
  parse_bad("org.example,kit,1.0,0a1b", 0, "5 comma-separated");
  parse_bad("org.example,kit,1.0,0a1b2c3d4e5f60718293a4b5c6d7e8f901234567,jar,x,y", 1,
            "6 comma-separated");
  parse_bad("org/example,kit,1.0,0a1b2c3d4e5f60718293a4b5c6d7e8f901234567,jar", 0, "group_id");
  parse_bad("org.example,,1.0,0a1b2c3d4e5f60718293a4b5c6d7e8f901234567,jar", 0, "artifact_id");
  parse_bad("org.example,kit,1 0,0a1b2c3d4e5f60718293a4b5c6d7e8f901234567,jar", 0, "version");
  parse_bad("org.example,kit,1.0,0a1b2c3d4e5f60718293a4b5c6d7e8f90123456z,jar", 0, "sha1");
  parse_bad("org.example,kit,1.0,0a1b2c3d4e5f60718293a4b5c6d7e8f901234567,war", 0,
            "archive_type");
  parse_bad("org.example,kit,1.0,0a1b2c3d4e5f60718293a4b5c6d7e8f901234567,jar,yesterday", 1,
            "modified");
  assert_true(st_ledger_maven_detect(ST_LEDGER_MAVEN_HEADER "\n", sizeof(ST_LEDGER_MAVEN_HEADER)));
  assert_true(st_ledger_maven_detect(ST_LEDGER_MAVEN_HEADER ",modified\r\nx", 60));
  assert_false(st_ledger_maven_detect(ST_LEDGER_MAVEN_HEADER ",colour\n", 55));
  assert_false(st_ledger_maven_detect("{\"id\": \"x\"}", 11));
}

static const st_trivy_maven_row_t good[3] = {
    {"org.example", "kit", "1.0", "1111111111111111111111111111111111111111", "jar"},
    {"org.example", "kit", "1.1", "2222222222222222222222222222222222222222", "jar"},
    {"com.example", "widgets", "2.0", "1111111111111111111111111111111111111111", "aar"},
};

static char *slurp(const char *dir, const char *name, size_t *len) {
  char path[256];
  FILE *f;
  char *data;
  long n;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  assert_non_null(f = fopen(path, "rb"));
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  rewind(f);
  assert_non_null(data = st_malloc((size_t)n + 1));
  assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  data[n] = '\0';
  *len = (size_t)n;
  return data;
}

static void build(const char *dir, const int order[3], st_trivy_result_t *res) {
  st_trivy_java_db_t *b = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_trivy_maven_row_t bad = good[0];
  assert_int_equal(st_trivy_java_db_new(dir, NULL, &b, &err), 0);
  bad.archive_type = "war";
  assert_int_equal(st_trivy_java_db_add(b, &bad, NULL, &err), ST_EINVAL);
  assert_non_null(strstr(st_error_text(&err), "archive_type"));
  for (int i = 0; i < 3; i++)
    assert_int_equal(st_trivy_java_db_add(b, &good[order[i]],
                                          order[i] == 2   ? "2024-04-30T23:00:00Z"
                                          : order[i] == 0 ? "2024-05-01T00:00:00+02:00"
                                                          : NULL,
                                          &err),
                     0);
  assert_int_equal(st_trivy_java_db_add(b, &good[0], "not a time", &err), ST_EINVAL);
  assert_int_equal(st_trivy_java_db_finish(b, res, &err), 0);
  st_trivy_java_db_free(b);
}

static void builder(void **state) {
  char a[] = "/tmp/stella-tjava-XXXXXX", c[] = "/tmp/stella-tjava-XXXXXX", cmd[128];
  static const int o1[3] = {0, 1, 2}, o2[3] = {2, 1, 0};
  st_trivy_result_t ra, rc;
  size_t la, lc;
  char *da, *dc;
  (void)state;
  assert_non_null(mkdtemp(a));
  assert_non_null(mkdtemp(c));
  build(a, o1, &ra);
  build(c, o2, &rc);
  assert_int_equal(ra.documents, 3);
  assert_int_equal(ra.records, 2);    /* sha1 1111... twice: one row kept */
  assert_int_equal(ra.duplicates, 1);
  assert_string_equal(ra.updated_at, "2024-04-30T23:00:00Z"); /* the latest modified */
  for (int i = 0; i < 2; i++) {
    const char *name = i ? "javadb.tar.gz" : "trivy-java.db";
    da = slurp(a, name, &la);
    dc = slurp(c, name, &lc);
    assert_int_equal(la, lc);
    assert_memory_equal(da, dc, la);
    st_free(da);
    st_free(dc);
  }
  da = slurp(a, "metadata.json", &la);
  assert_non_null(strstr(da, "\"Version\":1"));
  assert_non_null(strstr(da, "\"UpdatedAt\":\"2024-04-30T23:00:00Z\""));
  st_free(da);
  snprintf(cmd, sizeof(cmd), "rm -rf %s %s", a, c);
  assert_int_equal(system(cmd), 0);
}

static void schema_refused(void **state) {
  char d[] = "/tmp/stella-tjava-XXXXXX";
  st_trivy_opts_t o = {0};
  st_trivy_java_db_t *b = NULL;
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  assert_non_null(mkdtemp(d));
  o.schema_version = 2;
  assert_int_equal(st_trivy_java_db_new(d, &o, &b, &err), ST_EUNSUPPORTED);
  assert_null(b);
  assert_int_equal(rmdir(d), 0); /* nothing written */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rows),
      cmocka_unit_test(builder),
      cmocka_unit_test(schema_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
