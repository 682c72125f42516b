/* st_test_export.h: what the export adapters' integration tests share (test_export_json.c,
 * test_mirror.c): loading a ledger fixture into a tenant, creating a profile from its JSON
 * form, and removing the two test tenants' export and ledger rows. */
#ifndef STELLA_TEST_EXPORT_H
#define STELLA_TEST_EXPORT_H

#include "st_test_db.h"

#include "export/export.h"
#include "stella/ledger.h"

/* tests/fixtures/ledger/<rel> into tenant's ledger. */
static inline void st_test_ledger_load(st_db_pool_t *pool, const char *tenant, const char *rel) {
  char path[4096];
  const char *src = getenv("STELLA_SOURCE_DIR");
  st_buf_t b = ST_BUF_INIT;
  st_ledger_doc_t doc;
  st_ledger_loader_t *l = NULL;
  st_error_t err = ST_ERROR_INIT;
  FILE *f;
  char chunk[4096];
  size_t n;

  snprintf(path, sizeof(path), "%s/tests/fixtures/ledger/%s", src ? src : "../..", rel);
  assert_non_null(f = fopen(path, "rb"));
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    assert_int_equal(st_buf_add(&b, chunk, n), 0);
  fclose(f);
  if (st_ledger_doc_parse(b.data, b.len, &doc, &err) ||
      st_ledger_loader_new(pool, tenant, 0, &l, &err) || st_ledger_loader_add(l, &doc, &err) ||
      st_ledger_loader_flush(l, &err))
    fail_msg("%s: %s", rel, st_error_text(&err));
  st_ledger_doc_release(&doc);
  st_ledger_loader_free(l);
  st_buf_release(&b);
}

/* Create tenant's profile from its JSON form (fails the test otherwise). */
static inline void st_test_profile_create(st_db_pool_t *pool, const char *tenant,
                                          const char *json) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  json_t *j = json_loads(json, 0, NULL);
  st_export_profile_init(&p);
  assert_non_null(j);
  if (st_export_profile_from_json(j, &p, &err) ||
      st_export_profile_create(pool, tenant, &p, NULL, &err))
    fail_msg("profile: %s", st_error_text(&err));
  st_export_profile_release(&p);
  json_decref(j);
}

/* Delete both tenants' outbox, export and ledger rows (as the admin role). */
static inline void st_test_export_cleanup(const char *admin_url, const char *ta, const char *tb) {
  PGconn *a = PQconnectdb(admin_url);
  const char *p[2] = {ta, tb};
  static const char *const tables[] = {"outbox",
                                       "export_runs",
                                       "export_profiles",
                                       "ledger_policy_results",
                                       "ledger_policy_packs",
                                       "ledger_vex_documents",
                                       "ledger_advisories",
                                       NULL};
  for (const char *const *t = tables; *t; t++) {
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE tenant_id IN ($1, $2)", *t);
    PQclear(PQexecParams(a, sql, 2, NULL, p, NULL, NULL, 0));
  }
  PQfinish(a);
}

#endif
