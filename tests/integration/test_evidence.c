/* test_evidence.c: the Evidence Locker against real Postgres and the filesystem store:
 * snapshot sealing (verifies with the bundle verifier, idempotent re-run, adoption of an
 * object a crashed run stored), payload refusals, tenant isolation, sealed-row
 * immutability, holds against the pruner, dispositions, and the custody chain (verified,
 * then tampered). With STELLA_TSA_URL the bundles are timestamped and the facts checked. */
#include "st_test_db.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stella/bundle.h"
#include "stella/evidence.h"
#include "stella/mem.h"
#include "stella/sha256.h"

typedef struct fx_s {
  const char *app, *admin, *maint;
  char a[64], b[64];
  char dir[64];
  st_db_pool_t *db;
  st_objstore_t *store;
  st_signer_t *signer;
  st_evidence_t *ev;
} fx_t;

static fx_t fx;

static void sh(const char *sql) {
  PGconn *c = PQconnectdb(fx.admin);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

static long long admin_int(const char *sql) {
  PGconn *c = PQconnectdb(fx.admin);
  PGresult *r = PQexec(c, sql);
  long long v = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
  PQclear(r);
  PQfinish(c);
  return v;
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  char priv[128], pub[128];
  st_evidence_opts_t o = {0};

  (void)state;
  st_test_db_setup(&fx.app, &fx.admin, "ev", fx.a, fx.b, sizeof(fx.a));
  fx.maint = st_test_env("STELLA_PG_MAINT_URL");
  snprintf(fx.dir, sizeof(fx.dir), "/tmp/st-evidence-XXXXXX");
  assert_non_null(mkdtemp(fx.dir));
  snprintf(priv, sizeof(priv), "%s/key.pem", fx.dir);
  snprintf(pub, sizeof(pub), "%s/key.pub", fx.dir);
  if (st_key_generate(ST_KEY_ED25519, priv, pub, &err) ||
      st_signer_open(&fx.signer, priv, &err) || st_db_pool_new(fx.app, 4, &fx.db, &err))
    fail_msg("%s", st_error_text(&err));
  {
    char root[96];
    snprintf(root, sizeof(root), "%s/store", fx.dir);
    if (st_objstore_fs_new(&fx.store, root, &err))
      fail_msg("%s", st_error_text(&err));
  }
  o.db = fx.db;
  o.store = fx.store;
  o.signer = fx.signer;
  o.tsa_url = getenv("STELLA_TSA_URL");
  o.tsa_ca_file = o.tsa_url ? getenv("STELLA_TSA_CA") : NULL;
  o.tmp_dir = fx.dir;
  if (st_evidence_new(&fx.ev, &o, &err))
    fail_msg("%s", st_error_text(&err));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  (void)state;
  st_evidence_free(fx.ev);
  st_objstore_free(fx.store);
  st_signer_free(fx.signer);
  st_db_pool_free(fx.db);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", fx.dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

static ssize_t mem_read(void *ctx, void *buf, size_t len) {
  const char **p = ctx;
  size_t n = strlen(*p) < len ? strlen(*p) : len;
  memcpy(buf, *p, n);
  *p += n;
  return (ssize_t)n;
}

/* Store text for tenant; hex gets its digest. */
static void upload(const char *tenant, const char *text, char hex[65]) {
  st_error_t err = ST_ERROR_INIT;
  st_buf_t key = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  const char *p = text;
  assert_int_equal(st_sha256(text, strlen(text), d), 0);
  st_sha256_hex(d, hex);
  if (st_objstore_key(&key, tenant, hex, &err) ||
      st_objstore_put(fx.store, tenant, key.data, hex, strlen(text), mem_read, &p, NULL, &err))
    fail_msg("%s", st_error_text(&err));
  st_buf_release(&key);
}

static json_t *payload(const char *kind, const char *sha_a, const char *sha_b) {
  json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s}, {s:s, s:{s:i}}],"
                        " s:[{s:s, s:s}], s:{s:s}}",
                        "kind", kind, "created", "2026-01-02T03:04:05Z", "run", "run_id", "r-1",
                        "actor", "alice", "started", "2026-01-02T03:00:00Z", "inputs", "path",
                        "sbom/a.json", "sha256", sha_a, "path", "config.json", "json", "x", 1,
                        "outputs", "path", "report.txt", "sha256", sha_b, "environment",
                        "image", "sha256:0123");
  assert_non_null(p);
  return p;
}

static void snap(const char *tenant, const char *id, const json_t *p, json_t **out) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {tenant, "alice", "req-1", NULL, NULL};
  if (st_evidence_snapshot(fx.ev, &who, id, p, "job-1", out, &err))
    fail_msg("snapshot %s: %s", id, st_error_text(&err));
}

/* Fetch the stored bundle into path. */
static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

static void fetch(const char *tenant, const char *key, const char *path) {
  st_error_t err = ST_ERROR_INIT;
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (st_objstore_get(fx.store, tenant, key, 0, ST_OBJSTORE_TO_END, to_file, f, &err))
    fail_msg("%s", st_error_text(&err));
  fclose(f);
}

static void test_snapshot_seals_and_verifies(void **state) {
  char a[65], b[65], path[128], q[512];
  json_t *out = NULL, *again = NULL, *p;
  st_bundle_report_t rep;
  const st_pubkey_t *k = st_signer_pubkey(fx.signer);
  st_bundle_trust_t trust = {&k, 1, NULL, 0, NULL};
  st_error_t err = ST_ERROR_INIT;

  (void)state;
  upload(fx.a, "{\"sbom\":1}", a);
  upload(fx.a, "report text\n", b);
  p = payload("evaluation", a, b);
  snap(fx.a, "ev-one", p, &out);
  assert_string_equal(json_string_value(json_object_get(out, "status")), "sealed");
  assert_int_equal(json_array_size(json_object_get(out, "artifacts")), 4);
  assert_string_equal(json_string_value(json_object_get(json_object_get(out, "signature"),
                                                        "keyid")),
                      st_pubkey_keyid(k));
  if (getenv("STELLA_TSA_URL"))
    assert_true(json_is_string(json_object_get(json_object_get(out, "timestamp"), "serial")));
  snprintf(path, sizeof(path), "%s/one.tgz", fx.dir);
  fetch(fx.a, json_string_value(json_object_get(json_object_get(out, "object"), "key")), path);
  st_bundle_report_init(&rep);
  if (st_bundle_verify(path, &trust, &rep, &err))
    fail_msg("verify: %s", st_error_text(&err));
  assert_string_equal(rep.kind.data, "evidence");
  assert_string_equal(rep.id.data, "ev-one");
  st_bundle_report_release(&rep);

  /* a re-run changes nothing: same object, one sealed custody record */
  snap(fx.a, "ev-one", p, &again);
  assert_true(json_equal(out, again));
  snprintf(q, sizeof(q),
           "SELECT count(*) FROM evidence_custody WHERE tenant_id = '%s' AND bundle_id = 'ev-one'"
           " AND event = 'evidence.sealed'", fx.a);
  assert_int_equal(admin_int(q), 1);
  snprintf(q, sizeof(q),
           "SELECT count(*) FROM outbox WHERE tenant_id = '%s' AND type = 'evidence.sealed'"
           " AND payload->>'subject' = 'evidence/ev-one'", fx.a);
  assert_int_equal(admin_int(q), 1);
  json_decref(out);
  json_decref(again);
  json_decref(p);
}

/* A crashed run stored the object but never sealed the row: the re-run adopts it. */
static void test_crash_after_store_adopts(void **state) {
  char a[65], b[65], q[1024];
  json_t *first = NULL, *second = NULL, *p;
  (void)state;
  upload(fx.a, "{\"sbom\":2}", a);
  upload(fx.a, "second report\n", b);
  p = payload("job", a, b);
  snap(fx.a, "ev-crash", p, &first);
  /* simulate the crash: forget the seal (as the admin, past the guard) */
  snprintf(q, sizeof(q),
           "ALTER TABLE evidence_bundles DISABLE TRIGGER evidence_bundles_guard;"
           " DELETE FROM evidence_artifacts WHERE tenant_id = '%s' AND bundle_id = 'ev-crash';"
           " UPDATE evidence_bundles SET status = 'pending' WHERE tenant_id = '%s' AND"
           " bundle_id = 'ev-crash';"
           " ALTER TABLE evidence_bundles ENABLE TRIGGER evidence_bundles_guard",
           fx.a, fx.a);
  sh(q);
  snap(fx.a, "ev-crash", p, &second);
  assert_string_equal(json_string_value(json_object_get(json_object_get(first, "object"),
                                                        "sha256")),
                      json_string_value(json_object_get(json_object_get(second, "object"),
                                                        "sha256")));
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '%s' AND"
           " bundle_id = 'ev-crash'", fx.a);
  assert_int_equal(admin_int(q), 1);
  json_decref(first);
  json_decref(second);
  json_decref(p);
}

static void test_payload_refusals(void **state) {
  static const char *const bad[] = {
      "{}",
      "{\"kind\":\"job\",\"created\":\"2026-01-02T03:04:05Z\",\"run\":{\"run_id\":\"r\","
      "\"actor\":\"a\"},\"inputs\":[{\"path\":\"../x\",\"json\":1}]}",
      "{\"kind\":\"job\",\"created\":\"2026-01-02T03:04:05Z\",\"run\":{\"run_id\":\"r\","
      "\"actor\":\"a\"},\"inputs\":[{\"path\":\"/abs\",\"json\":1}]}",
      "{\"kind\":\"nope\",\"created\":\"2026-01-02T03:04:05Z\",\"run\":{\"run_id\":\"r\","
      "\"actor\":\"a\"},\"inputs\":[{\"path\":\"x\",\"json\":1}]}",
      "{\"kind\":\"job\",\"created\":\"yesterday\",\"run\":{\"run_id\":\"r\","
      "\"actor\":\"a\"},\"inputs\":[{\"path\":\"x\",\"json\":1}]}",
      "{\"kind\":\"job\",\"created\":\"2026-01-02T03:04:05Z\",\"run\":{\"run_id\":\"r\","
      "\"actor\":\"a\"},\"inputs\":[{\"path\":\"x\",\"sha256\":\"ABC\"}]}",
      "{\"kind\":\"job\",\"created\":\"2026-01-02T03:04:05Z\",\"run\":{\"run_id\":\"r\","
      "\"actor\":\"a\"},\"inputs\":[]}",
      "{\"kind\":\"job\",\"created\":\"2026-01-02T03:04:05Z\",\"run\":{\"run_id\":\"r\","
      "\"actor\":\"a\"},\"inputs\":[{\"path\":\"x\",\"json\":1}],\"extra\":1}",
  };
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    st_error_t err = ST_ERROR_INIT;
    json_t *p = json_loads(bad[i], 0, NULL);
    assert_non_null(p);
    assert_int_equal(st_evidence_payload_check(p, &err), ST_EINVAL);
    json_decref(p);
  }
}

/* A digest the tenant never stored (but another tenant did) is not found. */
static void test_other_tenants_artifact_not_found(void **state) {
  char a[65], b[65];
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {fx.b, "bob", NULL, NULL, NULL};
  json_t *p, *out = NULL;
  (void)state;
  upload(fx.a, "{\"only-a\":1}", a);
  upload(fx.a, "only a\n", b);
  p = payload("job", a, b);
  assert_int_equal(st_evidence_snapshot(fx.ev, &who, "ev-b", p, "job-b", NULL, &err),
                   ST_ENOENT);
  assert_int_equal(st_evidence_get(fx.ev, NULL, fx.b, "ev-one", &out, &err), ST_ENOENT);
  assert_null(out);
  assert_int_equal(st_evidence_hold_get(fx.ev, fx.b, "case-1", &out, &err), ST_ENOENT);
  json_decref(p);
}

static int seal_update_tx(PGconn *c, void *arg, st_error_t *err) {
  (void)arg;
  return st_db_exec(c, "UPDATE evidence_bundles SET merkle_root = repeat('0', 64)"
                       " WHERE bundle_id = 'ev-one'", 0, NULL, NULL, err);
}

static void test_sealed_row_immutable(void **state) {
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  assert_int_equal(st_db_tenant_tx(fx.db, fx.a, seal_update_tx, NULL, &err), ST_EPERM);
}

static void test_holds_and_pruner(void **state) {
  char a[65], b[65], q[512];
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {fx.a, "carol", "req-h", NULL, NULL};
  st_evidence_prune_stats_t st;
  json_t *p, *spec, *out = NULL;
  (void)state;

  upload(fx.a, "{\"prune\":1}", a);
  upload(fx.a, "prune me\n", b);
  /* export bundles expire at once; evaluation ones stay (default window) */
  snprintf(q, sizeof(q), "INSERT INTO evidence_retention VALUES ('%s', 'export', 0)", fx.a);
  sh(q);
  p = payload("export", a, b);
  snap(fx.a, "ev-held", p, NULL);
  snap(fx.a, "ev-expired", p, NULL);
  json_decref(p);
  spec = json_pack("{s:s, s:[s]}", "reason", "litigation", "bundle_ids", "ev-held");
  if (st_evidence_hold_place(fx.ev, &who, "case-1", spec, &out, &err))
    fail_msg("%s", st_error_text(&err));
  assert_true(json_is_true(json_object_get(out, "active")));
  assert_int_equal(json_array_size(json_object_get(out, "bundle_ids")), 1);
  json_decref(out);
  json_decref(spec);
  {
    char key[256];
    snprintf(key, sizeof(key), "tenants/%s/evidence/ev-held.tgz", fx.a);
    assert_int_equal(st_objstore_delete(fx.store, fx.a, key, &err), ST_EPERM);
  }
  /* a hold naming another tenant's bundle, or none */
  spec = json_pack("{s:s, s:[s]}", "reason", "x", "bundle_ids", "ev-nope");
  assert_int_equal(st_evidence_hold_place(fx.ev, &who, "case-2", spec, NULL, &err), ST_ENOENT);
  json_decref(spec);

  if (st_evidence_prune(fx.ev, fx.maint, &st, &err))
    fail_msg("prune: %s", st_error_text(&err));
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '%s' AND"
           " bundle_id IN ('ev-held', 'ev-one')", fx.a);
  assert_int_equal(admin_int(q), 2);
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '%s' AND"
           " bundle_id = 'ev-expired'", fx.a);
  assert_int_equal(admin_int(q), 0);
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_dispositions WHERE tenant_id = '%s'"
           " AND bundle_id = 'ev-expired'", fx.a);
  assert_int_equal(admin_int(q), 1);
  snprintf(q, sizeof(q), "SELECT count(*) FROM audit_log WHERE tenant_id = '%s' AND"
           " actor = 'stella_maint' AND resource = 'evidence_bundles'", fx.a);
  assert_true(admin_int(q) >= 1);

  if (st_evidence_hold_release(fx.ev, &who, "case-1", &out, &err))
    fail_msg("%s", st_error_text(&err));
  assert_true(json_is_false(json_object_get(out, "active")));
  json_decref(out);
  assert_int_equal(st_evidence_hold_release(fx.ev, &who, "case-1", NULL, &err), ST_ENOENT);
  if (st_evidence_prune(fx.ev, fx.maint, &st, &err))
    fail_msg("prune: %s", st_error_text(&err));
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '%s' AND"
           " bundle_id = 'ev-held'", fx.a);
  assert_int_equal(admin_int(q), 0);
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '%s' AND"
           " bundle_id = 'ev-one'", fx.a);
  assert_int_equal(admin_int(q), 1);
}

static void test_custody_chain(void **state) {
  st_error_t err = ST_ERROR_INIT;
  long long n = 0;
  char q[512];
  (void)state;
  if (st_evidence_custody_verify(fx.ev, fx.a, NULL, &n, &err))
    fail_msg("custody: %s", st_error_text(&err));
  assert_true(n >= 8);
  snprintf(q, sizeof(q),
           "ALTER TABLE evidence_custody DISABLE TRIGGER evidence_custody_append_only;"
           " UPDATE evidence_custody SET record_text = replace(record_text, 'alice', 'mallory')"
           " WHERE tenant_id = '%s' AND seq = 2;"
           " ALTER TABLE evidence_custody ENABLE TRIGGER evidence_custody_append_only", fx.a);
  sh(q);
  assert_int_equal(st_evidence_custody_verify(fx.ev, fx.a, NULL, &n, &err), ST_EVERIFY);
  assert_non_null(strstr(st_error_text(&err), "seq 2"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snapshot_seals_and_verifies),
      cmocka_unit_test(test_crash_after_store_adopts),
      cmocka_unit_test(test_payload_refusals),
      cmocka_unit_test(test_other_tenants_artifact_not_found),
      cmocka_unit_test(test_sealed_row_immutable),
      cmocka_unit_test(test_holds_and_pruner),
      cmocka_unit_test(test_custody_chain),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
