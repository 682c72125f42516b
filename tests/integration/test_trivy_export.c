/* test_trivy_export.c: the Maven index in the ledger and the Trivy export adapters
 * (workers/trivy/trivy_export.c) on real Postgres with the filesystem object store:
 *   - Maven rows load idempotently (same row unchanged, another packaging replaces, an
 *     older modified does not), iterate in key order with their ids and digests, and
 *     another tenant never sees them;
 *   - a trivy:db run reaches distributed, stores export.tgz (which verifies, kind rule
 *     included), its .dsse.json/.sig and trivy-db.oci.tar; the advisory Trivy cannot map
 *     is counted as rejected; a second run of the same ledger state stores identical bytes;
 *   - a trivy:java-db run reads only the Maven rows;
 *   - refused: another profile kind (ST_EUNSUPPORTED), a ledger changed since planning
 *     (ST_ECONFLICT, nothing stored), a run cancelled mid-way (nothing stored, no work
 *     files left). */
#include "st_test_db.h"

#include <dirent.h>

#include "../keys_fixtures.h"
#include "export/adapter.h"
#include "stella/bundle.h"
#include "stella/ledger.h"
#include "stella/mem.h"
#include "trivy/trivy.h"

static const char *app_url, *admin_url;
static char ta[32], tb[32];
static st_db_pool_t *pool;
static st_objstore_t *store;
static st_signer_t *signer;
static char *root, *work;

static void load_text(const char *tenant, const char *text) {
  st_ledger_doc_t doc;
  st_ledger_loader_t *l = NULL;
  st_error_t err = ST_ERROR_INIT;
  if (st_ledger_doc_parse(text, strlen(text), &doc, &err) ||
      st_ledger_loader_new(pool, tenant, 0, &l, &err) || st_ledger_loader_add(l, &doc, &err) ||
      st_ledger_loader_flush(l, &err))
    fail_msg("load: %s", st_error_text(&err));
  st_ledger_loader_free(l);
}

static void load_fixture(const char *tenant, const char *rel) {
  char path[4096], chunk[4096];
  const char *src = getenv("STELLA_SOURCE_DIR");
  st_buf_t b = ST_BUF_INIT;
  FILE *f;
  size_t n;
  snprintf(path, sizeof(path), "%s/tests/fixtures/ledger/%s", src ? src : "../..", rel);
  assert_non_null(f = fopen(path, "rb"));
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    assert_int_equal(st_buf_add(&b, chunk, n), 0);
  fclose(f);
  load_text(tenant, b.data);
  st_buf_release(&b);
}

/* Load Maven rows; returns the loader's stats for the Maven kind. */
static void load_maven(const char *tenant, const st_ledger_maven_row_t *rows, size_t n,
                       long long out[3]) {
  st_ledger_loader_t *l = NULL;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_ledger_loader_new(pool, tenant, 0, &l, &err), 0);
  for (size_t i = 0; i < n; i++)
    if (st_ledger_loader_add_maven(l, &rows[i], &err))
      fail_msg("maven row %zu: %s", i, st_error_text(&err));
  assert_int_equal(st_ledger_loader_flush(l, &err), 0);
  out[0] = st_ledger_loader_stats(l)->added[ST_LEDGER_MAVEN];
  out[1] = st_ledger_loader_stats(l)->replaced[ST_LEDGER_MAVEN];
  out[2] = st_ledger_loader_stats(l)->unchanged[ST_LEDGER_MAVEN];
  st_ledger_loader_free(l);
}

static const st_ledger_maven_row_t rows[3] = {
    {"org.example", "xml-kit", "3.2.5", "1111111111111111111111111111111111111111", "jar",
     "2024-04-01T00:00:00Z"},
    {"com.example.android", "widgets", "1.0.0", "2222222222222222222222222222222222222222",
     "aar", NULL},
    {"org.example", "xml-kit", "3.2.4", "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567", "jar",
     "2024-03-01T00:00:00Z"},
};

static int setup(void **state) {
  static const char *const files[] = {"osv/STELLA-NPM-0001.json", "osv/STELLA-PYPI-0002.json",
                                      "osv/STELLA-DEB-0009.json", NULL};
  st_error_t err = ST_ERROR_INIT;
  long long s[3];
  (void)state;
  st_test_db_setup(&app_url, &admin_url, "xtv", ta, tb, sizeof(ta));
  assert_int_equal(st_db_pool_new(app_url, 3, &pool, &err), 0);
  for (const char *const *f = files; *f; f++)
    load_fixture(ta, *f);
  load_text(ta, "{\"id\":\"STELLA-CPAN-1\",\"modified\":\"2024-01-01T00:00:00Z\",\"affected\":"
                "[{\"package\":{\"ecosystem\":\"CPAN\",\"name\":\"Foo\"},\"ranges\":[{\"type\":"
                "\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},{\"fixed\":\"1\"}]}]}]}");
  load_maven(ta, rows, 3, s);
  load_maven(tb, rows, 1, s);
  root = fx_tmpdir();
  work = fx_tmpdir();
  assert_int_equal(st_objstore_fs_new(&store, root, &err), 0);
  assert_non_null(signer = fx_signer(ED25519_PRIV_PEM));
  return 0;
}

static int teardown(void **state) {
  PGconn *a = PQconnectdb(admin_url);
  const char *p[2] = {ta, tb};
  static const char *const tables[] = {"outbox", "export_runs", "export_profiles",
                                       "ledger_maven_artifacts", "ledger_advisories", NULL};
  (void)state;
  for (const char *const *t = tables; *t; t++) {
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE tenant_id IN ($1, $2)", *t);
    PQclear(PQexecParams(a, sql, 2, NULL, p, NULL, NULL, 0));
  }
  PQfinish(a);
  st_signer_free(signer);
  st_objstore_free(store);
  st_db_pool_free(pool);
  fx_rmdir(root);
  fx_rmdir(work);
  return 0;
}

static void maven_ledger(void **state) {
  st_ledger_maven_row_t again[2] = {rows[1], rows[0]};
  st_ledger_iter_t *it = NULL;
  const st_ledger_item_t *item;
  st_error_t err = ST_ERROR_INIT;
  long long s[3];
  int n = 0;
  (void)state;
  load_maven(ta, rows, 3, s); /* the same rows again */
  assert_int_equal(s[0], 0);
  assert_int_equal(s[1], 0);
  assert_int_equal(s[2], 3);
  again[0].packaging = "jar";            /* another packaging: replaced */
  again[1].modified = "2023-01-01T00:00:00Z"; /* older and different: kept out */
  load_maven(ta, again, 2, s);
  assert_int_equal(s[1], 1);
  assert_int_equal(s[2], 1);
  again[0].packaging = "aar"; /* back as it was, for the runs below */
  load_maven(ta, again, 1, s);
  assert_int_equal(st_ledger_iter_new(pool, ta, ST_LEDGER_MAVEN, NULL, 1, 2, &it, &err), 0);
  while ((st_ledger_iter_next(it, &item, &err)) == 1) {
    static const char *const ids[3] = {
        "com.example.android:widgets:1.0.0:2222222222222222222222222222222222222222",
        "org.example:xml-kit:3.2.4:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
        "org.example:xml-kit:3.2.5:1111111111111111111111111111111111111111"};
    assert_true(n < 3);
    assert_string_equal(item->id, ids[n]);
    assert_int_equal(strlen(item->digest), 64);
    assert_non_null(strstr(item->doc, "\"packaging\""));
    n++;
  }
  assert_int_equal(n, 3);
  st_ledger_iter_free(it);
  /* tenant b loaded one row and sees only it */
  assert_int_equal(st_ledger_iter_new(pool, tb, ST_LEDGER_MAVEN, NULL, 0, 0, &it, &err), 0);
  n = 0;
  while ((st_ledger_iter_next(it, &item, &err)) == 1)
    n++;
  assert_int_equal(n, 1);
  st_ledger_iter_free(it);
}

static void make_profile(const char *json) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  json_t *j = json_loads(json, 0, NULL);
  st_export_profile_init(&p);
  assert_non_null(j);
  if (st_export_profile_from_json(j, &p, &err) || st_export_profile_create(pool, ta, &p, NULL, &err))
    fail_msg("profile: %s", st_error_text(&err));
  st_export_profile_release(&p);
  json_decref(j);
}

static void start(const char *profile, char *run_id) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  st_export_profile_init(&p);
  if (st_export_profile_get(pool, ta, profile, &p, &err) ||
      st_export_run_start(pool, ta, &p, NULL, 0, NULL, run_id, &err))
    fail_msg("start %s: %s", profile, st_error_text(&err));
  st_export_profile_release(&p);
}

static void cancel_now(void *ud, double f, const char *note) {
  st_error_t err = ST_ERROR_INIT;
  (void)f;
  (void)note;
  if (ud)
    assert_int_equal(st_export_run_cancel(pool, ta, ud, NULL, &err), 0);
}

static int run(const char *run_id, int cancel, st_error_t *err) {
  st_export_env_t env = {pool, store, signer, NULL, work, NULL, cancel_now,
                         cancel ? (void *)run_id : NULL, 1, NULL, 0};
  return st_trivy_export_run(&env, ta, run_id, err);
}

static int to_buf(void *ctx, const void *data, size_t len) { return st_buf_add(ctx, data, len); }

static int get_object(const char *run_id, const char *name, st_buf_t *out) {
  char key[512];
  st_error_t err = ST_ERROR_INIT;
  snprintf(key, sizeof(key), "tenants/%s/projects/default/exports/%s/%s", ta, run_id, name);
  return st_objstore_get(store, ta, key, 0, ST_OBJSTORE_TO_END, to_buf, out, &err);
}

static int count_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  assert_non_null(d);
  while ((e = readdir(d)))
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return n;
}

static void check_distributed(const char *r, json_t **out) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_export_run_get(pool, ta, r, out, &err), 0);
  assert_string_equal(json_string_value(json_object_get(*out, "state")), "distributed");
}

static void trivy_db_runs(void **state) {
  char r1[40], r2[40];
  st_buf_t b1 = ST_BUF_INIT, b2 = ST_BUF_INIT, x = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  st_bundle_report_t rep;
  st_pubkey_t *pub = fx_pubkey(ED25519_PUB_PEM);
  const st_pubkey_t *keys[1] = {pub};
  st_bundle_trust_t trust = {keys, 1, NULL, 0, NULL};
  json_t *j1 = NULL, *j2 = NULL, *counts;
  (void)state;
  make_profile("{\"name\":\"tdb\",\"kind\":\"trivy:db\"}");
  start("tdb", r1);
  if (run(r1, 0, &err))
    fail_msg("run: %s", st_error_text(&err));
  check_distributed(r1, &j1);
  counts = json_object_get(j1, "counts");
  assert_int_equal(json_integer_value(json_object_get(counts, "documents")), 3);
  assert_int_equal(json_integer_value(json_object_get(counts, "rejected")), 1);
  assert_int_equal(json_integer_value(json_object_get(j1, "input_count")), 4);
  start("tdb", r2);
  assert_int_equal(run(r2, 0, &err), 0);
  check_distributed(r2, &j2);
  assert_int_equal(get_object(r1, "export.tgz", &b1), 0);
  assert_int_equal(get_object(r2, "export.tgz", &b2), 0);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  st_bundle_report_init(&rep);
  if (st_bundle_verify_mem(b1.data, b1.len, &trust, &rep, &err))
    fail_msg("verify: %s", st_error_text(&err));
  st_bundle_report_release(&rep);
  assert_int_equal(get_object(r1, "export.tgz.sig", &x), 0);
  st_buf_reset(&x);
  assert_int_equal(get_object(r1, "trivy-db.oci.tar", &x), 0);
  assert_true(x.len > 1024);
  /* a re-delivered job of a distributed run changes nothing */
  assert_int_equal(run(r1, 0, &err), 0);
  assert_int_equal(count_dir(work), 0);
  json_decref(j1);
  json_decref(j2);
  st_buf_release(&b1);
  st_buf_release(&b2);
  st_buf_release(&x);
  st_pubkey_free(pub);
}

static void trivy_java_db_run(void **state) {
  char r[40];
  st_error_t err = ST_ERROR_INIT;
  st_buf_t x = ST_BUF_INIT;
  json_t *j = NULL;
  (void)state;
  make_profile("{\"name\":\"tjava\",\"kind\":\"trivy:java-db\",\"filters\":{\"sources\":"
               "[\"advisories\"]}}");
  start("tjava", r);
  if (run(r, 0, &err))
    fail_msg("run: %s", st_error_text(&err));
  check_distributed(r, &j);
  /* the Maven rows only, whatever sources say */
  assert_int_equal(json_integer_value(json_object_get(j, "input_count")), 3);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counts"), "records")),
                   3);
  assert_int_equal(get_object(r, "trivy-java-db.oci.tar", &x), 0);
  json_decref(j);
  st_buf_release(&x);
}

static void refused_runs(void **state) {
  char r[40], st[32];
  st_error_t err = ST_ERROR_INIT;
  st_export_profile_t p;
  st_export_plan_t plan;
  st_buf_t x = ST_BUF_INIT;
  (void)state;
  /* another kind */
  make_profile("{\"name\":\"raw\",\"kind\":\"json:raw\"}");
  start("raw", r);
  assert_int_equal(run(r, 0, &err), ST_EUNSUPPORTED);
  assert_non_null(strstr(err.msg, "not a Trivy export"));
  assert_int_equal(st_export_run_set_state(pool, ta, r, "failed", "kind", &err), 0);
  /* the ledger changed since planning */
  make_profile("{\"name\":\"chg\",\"kind\":\"trivy:db\"}");
  memset(&plan, 0, sizeof(plan));
  st_export_profile_init(&p);
  assert_int_equal(st_export_profile_get(pool, ta, "chg", &p, &err), 0);
  start("chg", r);
  assert_int_equal(st_export_plan_build(pool, ta, &p, &plan, &err), 0);
  assert_int_equal(st_export_plan_record(pool, ta, r, &plan, &err), 0);
  load_fixture(ta, "osv/STELLA-GO-0004.json");
  assert_int_equal(run(r, 0, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "the ledger changed"));
  assert_int_equal(get_object(r, "export.tgz", &x), ST_ENOENT);
  assert_int_equal(count_dir(work), 0);
  assert_int_equal(st_export_run_set_state(pool, ta, r, "failed", "ledger changed", &err), 0);
  /* cancelled at the first progress report */
  make_profile("{\"name\":\"cnl\",\"kind\":\"trivy:db\"}");
  start("cnl", r);
  assert_int_equal(run(r, 1, &err), ST_ECANCELED);
  assert_int_equal(st_export_run_state(pool, ta, r, st, sizeof(st), &err), 0);
  assert_string_equal(st, "cancelled");
  assert_int_equal(get_object(r, "export.tgz", &x), ST_ENOENT);
  assert_int_equal(count_dir(work), 0);
  st_export_plan_release(&plan);
  st_export_profile_release(&p);
  st_buf_release(&x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(maven_ledger),
      cmocka_unit_test(trivy_db_runs),
      cmocka_unit_test(trivy_java_db_run),
      cmocka_unit_test(refused_runs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
