/* test_db_migrate.c: the migration runner on throw-away databases and temp directories of
 * SQL files: applies in order and re-runs as a no-op, refuses an edited applied file (and
 * --status reports it), refuses a gap below applied history, duplicate numbers and bad
 * names, rolls a failing file back entirely and names its line, refuses a file that commits
 * by itself, and serialises concurrent runners with the advisory lock. */
#include "st_test.h"

#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include "stella/buf.h"
#include "stella/db.h"

static const char *admin_url;
static char dbname[64], conninfo[512], dir[64];

static PGresult *q(const char *ci, const char *sql) {
  PGconn *c = PQconnectdb(ci);
  PGresult *r;
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQfinish(c);
  return r;
}

static void put(const char *name, const char *text) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void rm(const char *name) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  unlink(path);
}

/* A fresh database and an empty directory per test. */
static int fresh(void **state) {
  static int n;
  char sql[128];
  PGconn *c;

  admin_url = st_test_env("STELLA_PG_ADMIN_URL");
  snprintf(dbname, sizeof(dbname), "stella_mig_%d_%d", (int)getpid(), ++n);
  snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
  PQclear(q(admin_url, sql));
  c = PQconnectdb(admin_url);
  snprintf(conninfo, sizeof(conninfo), "host=%s port=%s user=%s dbname=%s", PQhost(c),
           PQport(c), PQuser(c), dbname);
  PQfinish(c);
  snprintf(dir, sizeof(dir), "/tmp/stella-mig-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int cleanup(void **state) {
  char sql[128];
  DIR *d = opendir(dir);
  struct dirent *e;

  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.')
      rm(e->d_name);
  if (d)
    closedir(d);
  rmdir(dir);
  snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", dbname);
  PQclear(q(admin_url, sql));
  return 0;
}

static void count_cb(const st_db_migration_t *m, void *arg) { (*(int *)arg)++; }

typedef struct status_s {
  int applied, pending, changed;
} status_t;

static void status_cb(const st_db_migration_t *m, void *arg) {
  status_t *s = arg;
  assert_int_equal(strlen(m->checksum), 64);
  if (!m->applied_at)
    s->pending++;
  else
    s->applied++;
  s->changed += m->changed;
}

static long long scalar(const char *sql) {
  PGresult *r = q(conninfo, sql);
  long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return v;
}

static void applies_then_noop(void **state) {
  st_error_t err = ST_ERROR_INIT;
  status_t st = {0};
  int n = 0;

  put("0001_a.sql", "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\n");
  put("0002_b.sql", "INSERT INTO a VALUES (2);\n");
  put("README.md", "not a migration\n");
  assert_int_equal(st_db_migrate_status(conninfo, dir, status_cb, &st, &err), 0);
  assert_int_equal(st.pending, 2);
  assert_int_equal(st_db_migrate(conninfo, dir, count_cb, &n, &err), 0);
  assert_int_equal(n, 2);
  n = 0;
  assert_int_equal(st_db_migrate(conninfo, dir, count_cb, &n, &err), 0);
  assert_int_equal(n, 0);
  assert_int_equal(scalar("SELECT count(*) FROM a"), 2); /* 0002 ran once */
  assert_int_equal(scalar("SELECT count(*) FROM schema_migrations "
                          "WHERE checksum ~ '^[0-9a-f]{64}$'"), 2);
  st = (status_t){0};
  assert_int_equal(st_db_migrate_status(conninfo, dir, status_cb, &st, &err), 0);
  assert_int_equal(st.applied, 2);
  assert_int_equal(st.pending + st.changed, 0);
}

static void changed_checksum_refused(void **state) {
  st_error_t err = ST_ERROR_INIT;
  status_t st = {0};

  put("0001_a.sql", "CREATE TABLE a (x int);\n");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), 0);
  put("0001_a.sql", "CREATE TABLE a (x bigint);\n");
  put("0002_b.sql", "CREATE TABLE b (x int);\n");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "0001_a.sql"));
  assert_non_null(strstr(err.msg, "changed"));
  assert_int_equal(scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);
  assert_int_equal(st_db_migrate_status(conninfo, dir, status_cb, &st, &err), 0);
  assert_int_equal(st.changed, 1);
  assert_int_equal(st.pending, 1);
}

static void gaps_duplicates_and_names(void **state) {
  st_error_t err = ST_ERROR_INIT;
  int n = 0;

  put("0001_a.sql", "SELECT 1;\n");
  put("0004_d.sql", "SELECT 4;\n"); /* skipping numbers is allowed */
  assert_int_equal(st_db_migrate(conninfo, dir, count_cb, &n, &err), 0);
  assert_int_equal(n, 2);
  put("0003_c.sql", "SELECT 3;\n"); /* below an applied one: a hole in history */
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "0003_c.sql"));
  assert_non_null(strstr(err.msg, "gap"));
  status_t st = {0};
  assert_int_equal(st_db_migrate_status(conninfo, dir, status_cb, &st, &err), ST_ECONFLICT);
  rm("0003_c.sql");

  put("0005_e.sql", "SELECT 5;\n");
  put("0005_f.sql", "SELECT 5;\n");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "duplicate"));
  assert_non_null(strstr(err.msg, "0005_e.sql"));
  assert_non_null(strstr(err.msg, "0005_f.sql"));
  rm("0005_f.sql");

  put("6_g.sql", "SELECT 6;\n");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "6_g.sql"));
  rm("6_g.sql");
  put("0006_x y.sql", "SELECT 6;\n");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_EINVAL);
  rm("0006_x y.sql");

  /* An applied file that disappeared from the directory. */
  rm("0004_d.sql");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "0004_d.sql"));
  put("0004_d.sql", "SELECT 4;\n");
  n = 0;
  assert_int_equal(st_db_migrate(conninfo, dir, count_cb, &n, &err), 0);
  assert_int_equal(n, 1); /* 0005_e */

  assert_int_equal(st_db_migrate(conninfo, "/nonexistent/dir", NULL, NULL, &err), ST_EIO);
}

static void failing_file_rolls_back(void **state) {
  st_error_t err = ST_ERROR_INIT;

  put("0001_a.sql", "CREATE TABLE a (x int);\n");
  put("0002_b.sql", "CREATE TABLE b (x int);\nINSERT INTO b VALUES (1);\nSELEC oops;\n");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_EDB);
  assert_non_null(strstr(err.msg, "0002_b.sql:3"));
  assert_non_null(strstr(err.msg, "42601"));
  assert_int_equal(scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0);
  assert_int_equal(scalar("SELECT count(*) FROM schema_migrations"), 1);

  put("0002_b.sql", "CREATE TABLE b (x int);\nCOMMIT;\n");
  assert_int_equal(st_db_migrate(conninfo, dir, NULL, NULL, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "0002_b.sql"));
  assert_int_equal(scalar("SELECT count(*) FROM schema_migrations"), 1);
}

static void *migrate_thread(void *arg) {
  st_error_t err = ST_ERROR_INIT;
  int *rc = arg;
  *rc = st_db_migrate(conninfo, dir, NULL, NULL, &err);
  return NULL;
}

static void concurrent_runners_serialise(void **state) {
  pthread_t t[3];
  int rc[3];

  /* Not idempotent on purpose: a second application would fail or double the row. */
  put("0001_a.sql", "CREATE TABLE a (x int);\nSELECT pg_sleep(0.2);\n");
  put("0002_b.sql", "INSERT INTO a VALUES (1);\n");
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&t[i], NULL, migrate_thread, &rc[i]), 0);
  for (int i = 0; i < 3; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(rc[i], 0);
  }
  assert_int_equal(scalar("SELECT count(*) FROM a"), 1);
}

static void real_schema_applies_twice(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_buf_t real = ST_BUF_INIT;
  const char *src = getenv("STELLA_SOURCE_DIR");
  int n = 0;

  assert_int_equal(st_buf_addf(&real, "%s/schemas/postgres", src ? src : "../.."), 0);
  assert_int_equal(st_db_migrate(conninfo, real.data, count_cb, &n, &err), 0);
  assert_true(n >= 3);
  n = 0;
  assert_int_equal(st_db_migrate(conninfo, real.data, count_cb, &n, &err), 0);
  assert_int_equal(n, 0);
  st_buf_release(&real);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(applies_then_noop, fresh, cleanup),
      cmocka_unit_test_setup_teardown(changed_checksum_refused, fresh, cleanup),
      cmocka_unit_test_setup_teardown(gaps_duplicates_and_names, fresh, cleanup),
      cmocka_unit_test_setup_teardown(failing_file_rolls_back, fresh, cleanup),
      cmocka_unit_test_setup_teardown(concurrent_runners_serialise, fresh, cleanup),
      cmocka_unit_test_setup_teardown(real_schema_applies_twice, fresh, cleanup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
