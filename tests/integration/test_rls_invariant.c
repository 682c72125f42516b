/* test_rls_invariant.c: the tenant-isolation invariant, checked for every table, today's
 * and future ones, without listing them.
 *
 * The catalog names the subjects: every table (and partition) in schema public with a
 * tenant_id column must have row-level security enabled and forced; a view with one must be
 * security_invoker (else it reads as its owner and bypasses RLS); a materialized view with
 * one is refused outright (RLS cannot apply to it). Then, as stella_app, for each table:
 *   - with tenant A set, only A's rows are visible (and A's seeded row is: the control);
 *   - UPDATE and DELETE aimed at B's row change nothing (checked as admin by row digest);
 *   - moving A's row to B, or inserting a B row, fails with a row-level security error;
 *   - with no tenant set (never set on the connection, or '' after a tenant transaction),
 *     nothing is visible and nothing can be inserted.
 * Rows are seeded as admin with session_replication_role = replica (no triggers, no FK
 * checks), so any table can be filled from minimal generated INSERTs: NOT NULL columns
 * without defaults get dummy values by type (an enum its first label). An unhandled type
 * fails the test by name: extend dummy_value() when a new table needs it. Migrations are
 * applied first. */
#include "st_test_db.h"

#include <unistd.h>

#include "stella/buf.h"
#include "stella/db.h"
#include "stella/mem.h"

#define MAX_COLS 128

static const char *app_url, *admin_url;
static char tenant_a[32], tenant_b[32];
static PGconn *admin;
static PGresult *tables; /* name (regclass text), relkind, rowsec, forcesec, reloptions */
static int uuid_counter;

static PGresult *admin_q(const char *sql, int np, const char *const *p) {
  PGresult *r = PQexecParams(admin, sql, np, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("admin: %s: %s", sql, PQerrorMessage(admin));
  return r;
}

/* Dummy text for a NOT NULL column without default; NULL for an unhandled type. */
static char *dummy_value(const char *type, const char *col, const char *tenant) {
  st_buf_t b = ST_BUF_INIT;
  int rc = 0;

  size_t cl = strlen(col);
  int text = !strcmp(type, "text") || !strcmp(type, "varchar");

  /* text columns whose CHECK wants a shape (0050_evidence.sql) */
  if (text && ((cl >= 6 && !strcmp(col + cl - 6, "sha256")) || !strcmp(col, "hash") ||
               !strcmp(col, "prev_hash")))
    rc = st_buf_adds(&b, "0000000000000000000000000000000000000000000000000000000000000000");
  else if (text && !strcmp(col, "sha1")) /* 0060_ledger_maven.sql */
    rc = st_buf_adds(&b, "0000000000000000000000000000000000000000");
  else if (text && !strcmp(col, "kind"))
    rc = st_buf_adds(&b, "export");
  else if (text && !strcmp(col, "event"))
    rc = st_buf_adds(&b, "evidence.rls");
  else if (text)
    rc = st_buf_addf(&b, "rls-%s-%s", tenant, col);
  else if (!strcmp(type, "int2") || !strcmp(type, "int4") || !strcmp(type, "int8"))
    rc = st_buf_adds(&b, "1");
  else if (!strcmp(type, "bool"))
    rc = st_buf_adds(&b, "false");
  else if (!strcmp(type, "jsonb") || !strcmp(type, "json"))
    rc = st_buf_adds(&b, "{}");
  else if (!strcmp(type, "timestamptz"))
    rc = st_buf_adds(&b, "2020-01-01T00:00:00Z");
  else if (!strcmp(type, "uuid"))
    rc = st_buf_addf(&b, "00000000-0000-4000-8000-%012x", ++uuid_counter);
  else if (!strcmp(type, "bytea"))
    rc = st_buf_adds(&b, "\\x00");
  else
    return NULL;
  assert_int_equal(rc, 0);
  return st_buf_detach(&b, NULL);
}

typedef struct ins_s {
  st_buf_t sql;
  char *vals[MAX_COLS];
  int n;
} ins_t;

/* A minimal INSERT of one row of `table` for `tenant`. */
static void build_insert(const char *table, const char *tenant, ins_t *ins) {
  const char *p[1] = {table};
  PGresult *cols = admin_q(
      "SELECT quote_ident(a.attname), a.attname, format_type(a.atttypid, a.atttypmod), "
      "  CASE WHEN t.typtype = 'd' THEN (SELECT typname FROM pg_type WHERE oid = t.typbasetype)"
      "  ELSE t.typname END, "
      "  (SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid "
      "   ORDER BY e.enumsortorder LIMIT 1) "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
      "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
      "  AND (a.attname = 'tenant_id' OR (a.attnotnull AND NOT a.atthasdef "
      "       AND a.attidentity = '' AND a.attgenerated = '')) "
      "ORDER BY a.attnum",
      1, p);
  st_buf_t values = ST_BUF_INIT;

  memset(ins, 0, sizeof(*ins));
  st_buf_init(&ins->sql, 0);
  assert_true(PQntuples(cols) < MAX_COLS);
  assert_int_equal(st_buf_addf(&ins->sql, "INSERT INTO %s (", table), 0);
  for (int i = 0; i < PQntuples(cols); i++) {
    const char *name = PQgetvalue(cols, i, 1), *type = PQgetvalue(cols, i, 3);
    char *v = !strcmp(name, "tenant_id") ? st_strdup(tenant) : dummy_value(type, name, tenant);
    if (!v && !PQgetisnull(cols, i, 4)) /* an enum type: its first label */
      v = st_strdup(PQgetvalue(cols, i, 4));
    if (!v)
      fail_msg("table %s column %s: type %s has no dummy value in test_rls_invariant.c; "
               "add it to dummy_value()", table, name, PQgetvalue(cols, i, 2));
    ins->vals[ins->n++] = v;
    assert_int_equal(st_buf_addf(&ins->sql, "%s%s", i ? ", " : "", PQgetvalue(cols, i, 0)), 0);
    assert_int_equal(st_buf_addf(&values, "%s$%d::%s", i ? ", " : "", i + 1,
                                 PQgetvalue(cols, i, 2)), 0);
  }
  assert_int_equal(st_buf_addf(&ins->sql, ") VALUES (%s)", values.data), 0);
  st_buf_release(&values);
  PQclear(cols);
}

static void ins_release(ins_t *ins) {
  for (int i = 0; i < ins->n; i++)
    st_free(ins->vals[i]);
  st_buf_release(&ins->sql);
}

static void seed(const char *table, const char *tenant) {
  ins_t ins;
  build_insert(table, tenant, &ins);
  PQclear(admin_q(ins.sql.data, ins.n, (const char *const *)ins.vals));
  ins_release(&ins);
}

/* md5 of tenant's rows of table as admin sees them, so "untouched" means byte-identical. */
static char *digest(const char *table, const char *tenant) {
  st_buf_t sql = ST_BUF_INIT;
  const char *p[1] = {tenant};
  PGresult *r;
  char *d;

  assert_int_equal(st_buf_addf(&sql, "SELECT count(*) || ':' || coalesce(md5(string_agg("
                                      "t::text, ',' ORDER BY t::text)), '') FROM %s t "
                                      "WHERE tenant_id = $1", table), 0);
  r = admin_q(sql.data, 1, p);
  d = st_strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  st_buf_release(&sql);
  return d;
}

static void for_each_table_clean(void) {
  PQclear(admin_q("SET session_replication_role = replica", 0, NULL));
  for (int i = 0; tables && i < PQntuples(tables); i++) {
    st_buf_t sql = ST_BUF_INIT;
    const char *p[2] = {tenant_a, tenant_b};
    if (strcmp(PQgetvalue(tables, i, 1), "v") == 0)
      continue;
    assert_int_equal(st_buf_addf(&sql, "DELETE FROM %s WHERE tenant_id IN ($1, $2)",
                                 PQgetvalue(tables, i, 0)), 0);
    PQclear(admin_q(sql.data, 2, p));
    st_buf_release(&sql);
  }
  PQclear(admin_q("SET session_replication_role = origin", 0, NULL));
}

static int setup(void **state) {
  st_test_db_setup(&app_url, &admin_url, "rls", tenant_a, tenant_b, sizeof(tenant_a));
  admin = PQconnectdb(admin_url);
  assert_int_equal(PQstatus(admin), CONNECTION_OK);
  tables = admin_q(
      "SELECT c.oid::regclass::text, c.relkind, c.relrowsecurity, c.relforcerowsecurity, "
      "  coalesce(array_to_string(c.reloptions, ','), '') "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
      "  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
      "              AND a.attname = 'tenant_id' AND NOT a.attisdropped) "
      "ORDER BY 1",
      0, NULL);
  for_each_table_clean();
  return 0;
}

static int teardown(void **state) {
  for_each_table_clean();
  PQclear(tables);
  PQfinish(admin);
  return 0;
}

static int is_table(int i) {
  const char *k = PQgetvalue(tables, i, 1);
  return !strcmp(k, "r") || !strcmp(k, "p");
}

static void catalog_flags(void **state) {
  int ntables = 0;
  PGresult *r;

  for (int i = 0; i < PQntuples(tables); i++) {
    const char *name = PQgetvalue(tables, i, 0), *kind = PQgetvalue(tables, i, 1);
    if (is_table(i)) {
      ntables++;
      if (strcmp(PQgetvalue(tables, i, 2), "t") || strcmp(PQgetvalue(tables, i, 3), "t"))
        fail_msg("table %s has tenant_id but row-level security is not enabled and forced",
                 name);
    } else if (!strcmp(kind, "v")) {
      if (!strstr(PQgetvalue(tables, i, 4), "security_invoker=true"))
        fail_msg("view %s has tenant_id but is not security_invoker: it would read as its "
                 "owner and bypass row-level security", name);
    } else {
      fail_msg("%s (relkind %s) has tenant_id but cannot carry row-level security", name,
               kind);
    }
  }
  /* The platform's own tables (tenants, audit_log, jobs, job_events, outbox) at least. */
  assert_true(ntables >= 5);
  r = admin_q("SELECT (rolsuper OR rolbypassrls)::int FROM pg_roles "
              "WHERE rolname IN ('stella_app', 'stella_maint')", 0, NULL);
  assert_int_equal(PQntuples(r), 2);
  for (int i = 0; i < 2; i++)
    assert_string_equal(PQgetvalue(r, i, 0), "0");
  PQclear(r);
}

/* ---- as stella_app ---- */

typedef struct stmt_s {
  const char *sql;
  int np;
  const char *const *p;
  long long n;
} stmt_t;

static int run_count(PGconn *c, void *arg, st_error_t *err) {
  stmt_t *s = arg;
  return st_db_exec_count(c, s->sql, s->np, s->p, &s->n, err);
}

static int run_int(PGconn *c, void *arg, st_error_t *err) {
  stmt_t *s = arg;
  return st_db_query_int(c, s->sql, s->np, s->p, &s->n, err);
}

static long long count_as(st_db_pool_t *pool, const char *tenant, const char *table,
                          const char *where, const char *param) {
  st_buf_t sql = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  const char *p[1] = {param};
  stmt_t s;
  int rc;

  assert_int_equal(st_buf_addf(&sql, "SELECT count(*) FROM %s WHERE %s", table, where), 0);
  s = (stmt_t){sql.data, param ? 1 : 0, p, -1};
  rc = tenant ? st_db_tenant_tx(pool, tenant, run_int, &s, &err)
              : st_db_system_tx(pool, run_int, &s, &err);
  if (rc)
    fail_msg("%s as %s: %s", sql.data, tenant ? tenant : "(no tenant)", st_error_text(&err));
  st_buf_release(&sql);
  return s.n;
}

static void expect_count(const char *table, const char *what, long long got, long long want) {
  if (got != want)
    fail_msg("%s: %s: %lld visible, expected %lld", table, what, got, want);
}

/* Run sql as tenant (NULL: system tx); return the code, rows affected in *n. */
static int write_as(st_db_pool_t *pool, const char *tenant, const char *sql, int np,
                    const char *const *p, long long *n, st_error_t *err) {
  stmt_t s = {sql, np, p, 0};
  int rc = tenant ? st_db_tenant_tx(pool, tenant, run_count, &s, err)
                  : st_db_system_tx(pool, run_count, &s, err);
  *n = s.n;
  return rc;
}

static int app_may(const char *table, const char *priv) {
  const char *p[2] = {table, priv};
  PGresult *r = admin_q("SELECT has_table_privilege('stella_app', $1, $2)::int", 2, p);
  int ok = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
  PQclear(r);
  return ok;
}

/* An insert of a row for `row_tenant` while `as_tenant` (or none) is set must be refused
 * by RLS (or by a missing INSERT grant). */
static void insert_refused(st_db_pool_t *pool, const char *table, const char *as_tenant,
                           const char *row_tenant) {
  st_error_t err = ST_ERROR_INIT;
  long long n;
  ins_t ins;
  int rc;

  build_insert(table, row_tenant, &ins);
  rc = write_as(pool, as_tenant, ins.sql.data, ins.n, (const char *const *)ins.vals, &n,
                &err);
  if (rc != ST_EPERM)
    fail_msg("%s: inserting a row of %s as %s: expected ST_EPERM, got %s (%s)", table,
             row_tenant, as_tenant ? as_tenant : "(no tenant)", st_err_name(rc),
             st_error_text(&err));
  if (app_may(table, "INSERT") && !strstr(err.msg, "row-level security"))
    fail_msg("%s: insert refused for another reason: %s", table, err.msg);
  ins_release(&ins);
}

/* UPDATE/DELETE of B's rows while A is set: zero rows or no privilege, never a change. */
static void write_misses(st_db_pool_t *pool, const char *table, const char *verb) {
  st_buf_t sql = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  const char *p[1] = {tenant_b};
  long long n = -1;
  int rc;

  assert_int_equal(
      st_buf_addf(&sql, strcmp(verb, "UPDATE") == 0
                            ? "UPDATE %s SET tenant_id = tenant_id WHERE tenant_id = $1"
                            : "DELETE FROM %s WHERE tenant_id = $1",
                  table),
      0);
  rc = write_as(pool, tenant_a, sql.data, 1, p, &n, &err);
  if (!(rc == 0 && n == 0) && rc != ST_EPERM)
    fail_msg("%s: %s of B's rows as A: rc %s, %lld rows (%s)", table, verb, st_err_name(rc),
             n, st_error_text(&err));
  st_buf_release(&sql);
}

static void check_table(st_db_pool_t *pool, PGconn *raw, const char *table) {
  const char *pa[1] = {tenant_a};
  st_error_t err = ST_ERROR_INIT;
  st_buf_t sql = ST_BUF_INIT;
  char *before, *after;
  long long n;
  int rc;

  PQclear(admin_q("SET session_replication_role = replica", 0, NULL));
  seed(table, tenant_a);
  seed(table, tenant_b);
  PQclear(admin_q("SET session_replication_role = origin", 0, NULL));
  before = digest(table, tenant_b);

  if (app_may(table, "SELECT")) {
    expect_count(table, "A's own row as A", count_as(pool, tenant_a, table, "tenant_id = $1",
                                                      tenant_a), 1);
    expect_count(table, "B's row as A", count_as(pool, tenant_a, table, "tenant_id = $1",
                                                  tenant_b), 0);
    expect_count(table, "other tenants' rows as A",
                 count_as(pool, tenant_a, table, "tenant_id <> $1", tenant_a), 0);
    expect_count(table, "B's own row as B", count_as(pool, tenant_b, table, "tenant_id = $1",
                                                      tenant_b), 1);
    expect_count(table, "rows with no tenant", count_as(pool, NULL, table, "true", NULL), 0);
  }
  write_misses(pool, table, "UPDATE");
  write_misses(pool, table, "DELETE");

  /* Moving A's own row to B violates WITH CHECK. */
  assert_int_equal(st_buf_addf(&sql, "UPDATE %s SET tenant_id = $1 WHERE tenant_id = $2",
                               table), 0);
  {
    const char *p2[2] = {tenant_b, tenant_a};
    rc = write_as(pool, tenant_a, sql.data, 2, p2, &n, &err);
    if (rc != ST_EPERM)
      fail_msg("%s: moving A's row to B: expected ST_EPERM, got %s, %lld rows (%s)", table,
               st_err_name(rc), n, st_error_text(&err));
  }
  insert_refused(pool, table, tenant_a, tenant_b);
  insert_refused(pool, table, NULL, tenant_a);

  after = digest(table, tenant_b);
  if (strcmp(before, after) != 0)
    fail_msg("%s: B's rows changed while A was set (%s -> %s)", table, before, after);
  st_free(before);
  st_free(after);

  /* A raw connection that never set stella.tenant (NULL), then after a tenant transaction
   * on it ended ('' for the rest of the session): nothing visible either way. */
  if (app_may(table, "SELECT")) {
    st_buf_reset(&sql);
    assert_int_equal(st_buf_addf(&sql, "SELECT count(*) FROM %s", table), 0);
    for (int round = 0; round < 2; round++) {
      PGresult *r = PQexec(raw, sql.data);
      assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
      if (strcmp(PQgetvalue(r, 0, 0), "0") != 0)
        fail_msg("%s: %s rows visible with no tenant set (round %d)", table,
                 PQgetvalue(r, 0, 0), round);
      PQclear(r);
      PQclear(PQexec(raw, "BEGIN"));
      PQclear(PQexecParams(raw, "SELECT set_config('stella.tenant', $1, true)", 1, NULL,
                           pa, NULL, NULL, 0));
      PQclear(PQexec(raw, "COMMIT"));
    }
  }
  st_buf_release(&sql);
}

static void app_isolation(void **state) {
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  PGconn *raw = NULL;
  int checked = 0, maven = 0;

  assert_int_equal(st_db_pool_new(app_url, 1, &pool, &err), 0);
  for (int i = 0; i < PQntuples(tables); i++) {
    if (!is_table(i) || !strcmp(PQgetvalue(tables, i, 1), "p"))
      continue; /* a partitioned parent holds no rows itself; its partitions are checked */
    raw = PQconnectdb(app_url);
    assert_int_equal(PQstatus(raw), CONNECTION_OK);
    check_table(pool, raw, PQgetvalue(tables, i, 0));
    PQfinish(raw);
    checked++;
    maven |= !strcmp(PQgetvalue(tables, i, 0), "ledger_maven_artifacts");
  }
  assert_true(checked >= 5);
  assert_true(maven); /* the Maven index (0060) is discovered and checked like the rest */
  st_db_pool_free(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(catalog_flags),
      cmocka_unit_test(app_isolation),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
