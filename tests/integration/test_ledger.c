/* test_ledger.c: the source ledger and the export planner on real Postgres: fixture import
 * with named rejects, idempotent re-import, a newer `modified` replacing, tenant isolation
 * of ledger reads, planner determinism (twice, and after another tenant's inserts),
 * sampling determinism (SQL agrees with st_ledger_sample_keep), each filter validation
 * error, unsatisfiable and empty scopes, cross-tenant refusal (audited) and grant, the
 * single-flight run and idempotent plan recording. */
#include "st_test_db.h"

#include "export/export.h"
#include "stella/ledger.h"
#include "stella/mem.h"

static const char *app_url, *admin_url;
static char ta[32], tb[32];
static st_db_pool_t *pool;

static char *fixture(const char *rel, size_t *len) {
  char path[4096];
  const char *src = getenv("STELLA_SOURCE_DIR");
  FILE *f;
  char *buf = st_malloc(1 << 20);
  snprintf(path, sizeof(path), "%s/tests/fixtures/ledger/%s", src ? src : "../..", rel);
  assert_non_null(f = fopen(path, "rb"));
  *len = fread(buf, 1, (1 << 20) - 1, f);
  buf[*len] = 0;
  fclose(f);
  return buf;
}

/* Parse and load one fixture for tenant; returns the loader code (or parse code). */
static int load(const char *tenant, const char *rel, st_ledger_stats_t *stats, st_error_t *err) {
  size_t len;
  char *s = fixture(rel, &len);
  st_ledger_doc_t doc;
  st_ledger_loader_t *l = NULL;
  int rc = st_ledger_doc_parse(s, len, &doc, err);
  st_free(s);
  if (rc)
    return rc;
  assert_int_equal(st_ledger_loader_new(pool, tenant, 0, &l, err), 0);
  rc = st_ledger_loader_add(l, &doc, err);
  if (!rc)
    rc = st_ledger_loader_flush(l, err);
  if (stats)
    *stats = *st_ledger_loader_stats(l);
  st_ledger_doc_release(&doc);
  st_ledger_loader_free(l);
  return rc;
}

static void load_all(const char *tenant) {
  static const char *const good[] = {
      "osv/STELLA-NPM-0001.json", "osv/STELLA-PYPI-0002.json", "osv/STELLA-MVN-0003.json",
      "osv/STELLA-GO-0004.json", "osv/STELLA-CRATES-0005.json", "osv/STELLA-GEM-0006.json",
      "osv/STELLA-NUGET-0007.json", "osv/STELLA-PHP-0008.json", "osv/STELLA-DEB-0009.json",
      "osv/STELLA-GO-0010.json", "vex/stella-vex-2024-001.json", "vex/stella-vex-2024-002.json",
      "policy/baseline-pack.json", "policy/baseline-results.json", NULL};
  st_error_t err = ST_ERROR_INIT;
  for (const char *const *g = good; *g; g++)
    if (load(tenant, *g, NULL, &err))
      fail_msg("%s: %s", *g, st_error_text(&err));
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_test_db_setup(&app_url, &admin_url, "ldg", ta, tb, sizeof(ta));
  assert_int_equal(st_db_pool_new(app_url, 2, &pool, &err), 0);
  load_all(ta);
  return 0;
}

static int teardown(void **state) {
  PGconn *a = PQconnectdb(admin_url);
  const char *p[2] = {ta, tb};
  static const char *const tables[] = {"export_runs", "export_profiles", "ledger_policy_results",
                                       "ledger_policy_packs", "ledger_vex_documents",
                                       "ledger_advisories", "audit_log", NULL};
  for (const char *const *t = tables; *t; t++) {
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE tenant_id IN ($1, $2)", *t);
    PQclear(PQexecParams(a, sql, 2, NULL, p, NULL, NULL, 0));
  }
  PQclear(PQexecParams(a, "DELETE FROM export_cross_tenant_grants WHERE target_tenant IN "
                          "($1, $2)", 2, NULL, p, NULL, NULL, 0));
  PQfinish(a);
  st_db_pool_free(pool);
  return 0;
}

static void rejects_named(void **state) {
  static const struct { const char *file, *reason; int code; } bad[] = {
      {"bad/osv-bad-modified.json", "modified: \"2024-13-01T00:00:00Z\" is not an RFC 3339", 0},
      {"bad/osv-no-ecosystem.json", "affected[0].package.ecosystem: missing", 0},
      {"bad/osv-bad-range-type.json", "affected[0].ranges[0].type: \"CALVER\"", 0},
      {"bad/osv-fixed-and-last-affected.json", "both \"fixed\" and \"last_affected\"", 0},
      {"bad/osv-no-introduced.json", "no \"introduced\" event", 0},
      {"bad/vex-bad-status.json", "statements[0].status: \"maybe\"", 0},
      {"bad/vex-not-affected-no-justification.json", "needs a justification", 0},
      {"bad/vex-justification-on-affected.json", "only allowed with status not_affected", 0},
      {"bad/unknown-kind.json", "unknown document kind", 0},
      {"bad/not-json.json", "json: line 2", ST_EPARSE},
      {"bad/policy-results-unknown-pack.json", "nonexistent@9.9.9 is not in the ledger",
       ST_ENOENT},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    st_error_t err = ST_ERROR_INIT;
    int rc = load(ta, bad[i].file, NULL, &err);
    if (rc == 0 || !strstr(err.msg, bad[i].reason))
      fail_msg("%s: rc %d, message \"%s\", expected \"%s\"", bad[i].file, rc, err.msg,
               bad[i].reason);
    if (bad[i].code && rc != bad[i].code)
      fail_msg("%s: %s", bad[i].file, st_err_name(rc));
  }
}

static void reimport_idempotent_and_newer_replaces(void **state) {
  st_ledger_stats_t s;
  st_error_t err = ST_ERROR_INIT;
  const char *p[1] = {ta};
  PGconn *a = PQconnectdb(admin_url);
  PGresult *r;
  st_ledger_loader_t *l = NULL;
  st_ledger_doc_t doc;
  const char *older = "{\"id\":\"STELLA-NPM-0001\",\"modified\":\"2023-01-01T00:00:00Z\","
                      "\"affected\":[{\"package\":{\"ecosystem\":\"npm\",\"name\":\"x\"}}]}";
  const char *newer = "{\"id\":\"STELLA-NPM-0001\",\"modified\":\"2025-01-01T00:00:00Z\","
                      "\"affected\":[{\"package\":{\"ecosystem\":\"npm\",\"name\":\"x\"}}]}";

  assert_int_equal(load(ta, "osv/STELLA-NPM-0001.json", &s, &err), 0);
  assert_int_equal(s.unchanged[ST_LEDGER_ADVISORY], 1);
  assert_int_equal(s.added[ST_LEDGER_ADVISORY] + s.replaced[ST_LEDGER_ADVISORY], 0);
  assert_int_equal(load(ta, "vex/stella-vex-2024-001.json", &s, &err), 0);
  assert_int_equal(s.unchanged[ST_LEDGER_VEX], 1);
  assert_int_equal(load(ta, "policy/baseline-results.json", &s, &err), 0);
  assert_int_equal(s.unchanged[ST_LEDGER_POLICY_RESULT], 3);

  assert_int_equal(st_ledger_loader_new(pool, ta, 0, &l, &err), 0);
  assert_int_equal(st_ledger_doc_parse(older, strlen(older), &doc, &err), 0);
  assert_int_equal(st_ledger_loader_add(l, &doc, &err), 0);
  assert_int_equal(st_ledger_doc_parse(newer, strlen(newer), &doc, &err), 0);
  assert_int_equal(st_ledger_loader_add(l, &doc, &err), 0);
  assert_int_equal(st_ledger_loader_flush(l, &err), 0);
  /* Both in one batch: the newer one wins, the older is not applied. */
  assert_int_equal(st_ledger_loader_stats(l)->replaced[ST_LEDGER_ADVISORY], 1);
  assert_int_equal(st_ledger_loader_stats(l)->unchanged[ST_LEDGER_ADVISORY], 1);
  st_ledger_loader_free(l);
  r = PQexecParams(a, "SELECT modified = '2025-01-01T00:00:00Z', severity IS NULL FROM "
                      "ledger_advisories WHERE tenant_id = $1 AND id = 'STELLA-NPM-0001'",
                   1, NULL, p, NULL, NULL, 0);
  assert_string_equal(PQgetvalue(r, 0, 0), "t");
  assert_string_equal(PQgetvalue(r, 0, 1), "t");
  PQclear(r);
  /* An older one afterwards changes nothing. */
  assert_int_equal(st_ledger_loader_new(pool, ta, 0, &l, &err), 0);
  assert_int_equal(st_ledger_doc_parse(older, strlen(older), &doc, &err), 0);
  assert_int_equal(st_ledger_loader_add(l, &doc, &err), 0);
  assert_int_equal(st_ledger_loader_flush(l, &err), 0);
  assert_int_equal(st_ledger_loader_stats(l)->unchanged[ST_LEDGER_ADVISORY], 1);
  st_ledger_loader_free(l);
  /* A pack version is immutable. */
  {
    const char *pk = "{\"schema\":\"stella.policy-pack/v1\",\"name\":\"baseline\",\"version\":"
                     "\"1.0.0\",\"rules\":[{\"id\":\"r\",\"verdict\":\"pass\"}]}";
    assert_int_equal(st_ledger_loader_new(pool, ta, 0, &l, &err), 0);
    assert_int_equal(st_ledger_doc_parse(pk, strlen(pk), &doc, &err), 0);
    assert_int_equal(st_ledger_loader_add(l, &doc, &err), ST_ECONFLICT);
    st_ledger_loader_free(l);
  }
  PQfinish(a);
}

static long count_items(const char *tenant, st_ledger_kind k, const st_ledger_scope_t *s) {
  st_ledger_iter_t *it = NULL;
  const st_ledger_item_t *item;
  st_error_t err = ST_ERROR_INIT;
  long n = 0;
  int rc;
  assert_int_equal(st_ledger_iter_new(pool, tenant, k, s, 1, 3, &it, &err), 0);
  while ((rc = st_ledger_iter_next(it, &item, &err)) == 1) {
    assert_non_null(item->doc);
    n++;
  }
  assert_int_equal(rc, 0);
  st_ledger_iter_free(it);
  return n;
}

static void tenant_isolation(void **state) {
  const char *ecos[] = {"Debian"};
  st_ledger_scope_t s = {.ecosystems = ecos, .n_ecosystems = 1};
  assert_int_equal(count_items(ta, ST_LEDGER_ADVISORY, NULL), 10);
  assert_int_equal(count_items(tb, ST_LEDGER_ADVISORY, NULL), 0);
  assert_int_equal(count_items(tb, ST_LEDGER_VEX, NULL), 0);
  assert_int_equal(count_items(ta, ST_LEDGER_ADVISORY, &s), 1);
}

static void plan_of(const char *filters, st_export_plan_t *pl, int expect, const char *msg) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  json_t *j = json_pack("{ssssso}", "name", "p", "kind", "json:raw", "filters",
                        json_loads(filters, 0, NULL));
  int rc;
  st_export_profile_init(&p);
  rc = st_export_profile_from_json(j, &p, &err);
  if (!rc)
    rc = st_export_plan_build(pool, ta, &p, pl, &err);
  if (rc != expect || (msg && !strstr(err.msg, msg)))
    fail_msg("%s: %s (%s), expected %s \"%s\"", filters, st_err_name(rc), err.msg,
             st_err_name(expect), msg ? msg : "");
  st_export_profile_release(&p);
  json_decref(j);
}

static void planner_deterministic(void **state) {
  st_export_plan_t a = {0}, b = {0};
  st_error_t err = ST_ERROR_INIT;
  plan_of("{}", &a, 0, NULL);
  assert_int_equal(a.n, 10 + 2 + 1 + 3);
  plan_of("{}", &b, 0, NULL);
  assert_string_equal(a.digest, b.digest);
  load_all(tb); /* another tenant's inserts */
  assert_int_equal(load(tb, "policy/baseline-pack.json", NULL, &err), 0);
  plan_of("{}", &b, 0, NULL);
  assert_string_equal(a.digest, b.digest);
  for (size_t i = 1; i < b.n; i++)
    assert_true(b.inputs[i - 1].kind < b.inputs[i].kind ||
                strcmp(b.inputs[i - 1].id, b.inputs[i].id) < 0);
  plan_of("{\"sources\":[\"advisories\"],\"severities\":[\"critical\"]}", &b, 0, NULL);
  assert_int_equal(b.n, 2);
  plan_of("{\"ids\":[\"CVE-2099-0003\"],\"sources\":[\"advisories\"]}", &b, 0, NULL);
  assert_int_equal(b.n, 1);
  assert_string_equal(b.inputs[0].id, "STELLA-MVN-0003");
  plan_of("{\"sources\":[\"policy\"],\"ids\":[\"STELLA-PYPI-0002\"]}", &b, 0, NULL);
  assert_int_equal(b.counts[ST_LEDGER_POLICY_PACK], 1);
  assert_int_equal(b.counts[ST_LEDGER_POLICY_RESULT], 1);
  plan_of("{\"modified_since\":\"2024-04-01T00:00:00Z\",\"sources\":[\"advisories\"]}", &b, 0,
          NULL);
  assert_int_equal(b.n, 2); /* GO-0010 and the replaced NPM-0001 (2025) */
  st_export_plan_release(&a);
  st_export_plan_release(&b);
}

static void sampling_deterministic(void **state) {
  st_export_plan_t a = {0}, b = {0};
  size_t expect = 0;
  static const char *const ids[] = {"STELLA-CRATES-0005", "STELLA-DEB-0009", "STELLA-GEM-0006",
                                    "STELLA-GO-0004", "STELLA-GO-0010", "STELLA-MVN-0003",
                                    "STELLA-NPM-0001", "STELLA-NUGET-0007", "STELLA-PHP-0008",
                                    "STELLA-PYPI-0002"};
  const char *f = "{\"sources\":[\"advisories\"],\"sample\":{\"rate\":0.5,\"seed\":\"s1\"}}";
  for (size_t i = 0; i < 10; i++)
    expect += (size_t)st_ledger_sample_keep("s1", ids[i], 0.5);
  assert_true(expect > 0 && expect < 10); /* the seed splits this set */
  plan_of(f, &a, 0, NULL);
  plan_of(f, &b, 0, NULL);
  assert_int_equal(a.n, expect);
  for (size_t i = 0; i < a.n; i++)
    assert_true(st_ledger_sample_keep("s1", a.inputs[i].id, 0.5));
  assert_string_equal(a.digest, b.digest);
  plan_of("{\"sources\":[\"advisories\"],\"sample\":{\"rate\":0.5,\"seed\":\"other\"}}", &b, 0,
          NULL);
  assert_string_not_equal(a.digest, b.digest);
  st_export_plan_release(&a);
  st_export_plan_release(&b);
}

static void filter_errors(void **state) {
  st_export_plan_t pl = {0};
  plan_of("{\"color\":1}", &pl, ST_EINVAL, "filters.color: unknown filter field");
  plan_of("{\"severities\":[\"high\",\"huge\"]}", &pl, ST_EINVAL, "filters.severities[1]");
  plan_of("{\"modified_since\":\"2025-01-01T00:00:00Z\",\"modified_until\":"
          "\"2024-12-31T23:00:00+02:00\"}", &pl, ST_EINVAL, "time window is inverted");
  plan_of("{\"modified_since\":\"yesterday\"}", &pl, ST_EINVAL, "filters.modified_since");
  plan_of("{\"sources\":[]}", &pl, ST_EINVAL, "filters.sources: empty");
  plan_of("{\"sources\":[\"mirrors\"]}", &pl, ST_EINVAL, "filters.sources[0]");
  plan_of("{\"sources\":[\"vex\"],\"ecosystems\":[\"npm\"]}", &pl, ST_EINVAL,
          "filters.ecosystems: applies to advisories only");
  plan_of("{\"sample\":{\"rate\":0,\"seed\":\"x\"}}", &pl, ST_EINVAL, "filters.sample.rate");
  plan_of("{\"sample\":{\"rate\":0.5}}", &pl, ST_EINVAL, "filters.sample.seed");
  plan_of("{\"sample\":{\"rate\":0.5,\"seed\":\"x\",\"salt\":1}}", &pl, ST_EINVAL,
          "filters.sample.salt");
  plan_of("{\"ids\":[]}", &pl, ST_EINVAL, "filters.ids: empty");
  plan_of("{\"ids\":[\"NOPE-1\"]}", &pl, ST_ENOENT, "the scope is empty");
  plan_of("{\"sources\":[\"advisories\"],\"ecosystems\":[\"Hex\"]}", &pl, ST_ENOENT,
          "the scope is empty");
}

static void cross_tenant_and_runs(void **state) {
  st_export_profile_t p;
  st_export_plan_t pl = {0}, pl2 = {0};
  st_error_t err = ST_ERROR_INIT;
  char run[ST_EXPORT_RUN_ID_LEN + 1], run2[ST_EXPORT_RUN_ID_LEN + 1];
  json_t *j = json_pack("{sssss[s]so}", "name", "xt", "kind", "json:raw", "source_tenants", tb,
                        "filters", json_pack("{s[s]}", "sources", "advisories"));
  PGconn *a = PQconnectdb(admin_url);
  const char *pa[2] = {tb, ta};
  PGresult *r;

  st_export_profile_init(&p);
  assert_int_equal(st_export_profile_from_json(j, &p, &err), 0);
  assert_int_equal(st_export_profile_create(pool, ta, &p, NULL, &err), 0);
  assert_int_equal(st_export_profile_create(pool, ta, &p, NULL, &err), ST_EEXIST);
  assert_int_equal(st_export_plan_build(pool, ta, &p, &pl, &err), ST_EPERM);
  r = PQexecParams(a, "SELECT count(*) FROM audit_log WHERE tenant_id = $2 AND outcome = "
                      "'denied' AND detail->>'source_tenant' = $1", 2, NULL, pa, NULL, NULL, 0);
  assert_string_equal(PQgetvalue(r, 0, 0), "1");
  PQclear(r);
  PQclear(PQexecParams(a, "INSERT INTO export_cross_tenant_grants (source_tenant, "
                          "target_tenant, granted_by, reason) VALUES ($1, $2, 'op', 'test')",
                       2, NULL, pa, NULL, NULL, 0));
  assert_int_equal(st_export_plan_build(pool, ta, &p, &pl, &err), 0);
  assert_int_equal(pl.n, 20);
  assert_int_equal(json_array_size(pl.grants), 1);
  assert_true(pl.inputs[19].grant_id > 0);
  assert_string_equal(pl.inputs[19].tenant, tb);

  assert_int_equal(st_export_run_create(pool, ta, &p, "k1", run, &err), 0);
  assert_int_equal(st_export_run_create(pool, ta, &p, "k1", run2, &err), 0);
  assert_string_equal(run, run2); /* same idempotency key, same run */
  assert_int_equal(st_export_run_create(pool, ta, &p, NULL, run2, &err), ST_ECONFLICT);
  assert_int_equal(st_export_plan_record(pool, ta, run, &pl, &err), 0);
  assert_int_equal(st_export_plan_record(pool, ta, run, &pl, &err), 0);
  {
    const char *pr[1] = {run};
    r = PQexecParams(a, "SELECT (SELECT count(*) FROM export_inputs WHERE run_id = $1::uuid), "
                        "state, plan_digest FROM export_runs WHERE run_id = $1::uuid",
                     1, NULL, pr, NULL, NULL, 0);
    assert_string_equal(PQgetvalue(r, 0, 0), "20");
    assert_string_equal(PQgetvalue(r, 0, 1), "planning");
    assert_string_equal(PQgetvalue(r, 0, 2), pl.digest);
    PQclear(r);
  }
  /* The ledger changes: recording a new plan for the same run is refused. */
  json_decref(j);
  j = json_pack("{sssss[s]so}", "name", "xt", "kind", "json:raw", "source_tenants", tb,
                "filters", json_pack("{s[s]s[s]}", "sources", "advisories", "severities",
                                     "high"));
  assert_int_equal(st_export_profile_from_json(j, &p, &err), 0);
  assert_int_equal(st_export_plan_build(pool, ta, &p, &pl2, &err), 0);
  assert_int_equal(st_export_plan_record(pool, ta, run, &pl2, &err), ST_ECONFLICT);
  assert_int_equal(st_export_profile_delete(pool, ta, "xt", NULL, &err), ST_ECONFLICT);
  st_export_plan_release(&pl);
  st_export_plan_release(&pl2);
  st_export_profile_release(&p);
  json_decref(j);
  PQfinish(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rejects_named),
      cmocka_unit_test(reimport_idempotent_and_newer_replaces),
      cmocka_unit_test(tenant_isolation),
      cmocka_unit_test(planner_deterministic),
      cmocka_unit_test(sampling_deterministic),
      cmocka_unit_test(filter_errors),
      cmocka_unit_test(cross_tenant_and_runs),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
