/* test_mirror.c: mirror:full and mirror:delta profiles through the export run machinery on
 * real Postgres with the filesystem object store: a full run is distributed with its
 * bundle, detached DSSE and state stored; its bundle imports and verifies; after a ledger
 * change a delta run (base found automatically: the newest distributed mirror run) ships
 * only the change, imports onto that tree, and the result has the same mirror.json and
 * indexes as a new full run; a delta with no base run fails the run; a redaction on a
 * mirror profile fails the run; the `mirror` job payload rules; a {"profile"} job starts a
 * run of that profile (what a cron schedule submits). */
#include "st_test_export.h"

#include <dirent.h>
#include <sys/stat.h>

#include "../keys_fixtures.h"
#include "export/export.h"
#include "mirror/mirror_export.h"
#include "registry.h"
#include "stella/bundle.h"
#include "stella/ledger.h"
#include "stella/mem.h"

static const char *app_url, *admin_url;
static char ta[32], tb[32];
static st_db_pool_t *pool;
static st_objstore_t *store;
static st_signer_t *signer;
static char *root, *work;

static int setup(void **state) {
  static const char *const files[] = {"osv/STELLA-NPM-0001.json",     "osv/STELLA-PYPI-0002.json",
                                      "osv/STELLA-MVN-0003.json",     "osv/STELLA-GO-0004.json",
                                      "vex/stella-vex-2024-001.json", "policy/baseline-pack.json",
                                      "policy/baseline-results.json", NULL};
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  st_test_db_setup(&app_url, &admin_url, "mir", ta, tb, sizeof(ta));
  assert_int_equal(st_db_pool_new(app_url, 3, &pool, &err), 0);
  for (const char *const *f = files; *f; f++)
    st_test_ledger_load(pool, ta, *f);
  root = fx_tmpdir();
  work = fx_tmpdir();
  assert_int_equal(st_objstore_fs_new(&store, root, &err), 0);
  assert_non_null(signer = fx_signer(ED25519_PRIV_PEM));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  st_test_export_cleanup(admin_url, ta, tb);
  st_signer_free(signer);
  st_objstore_free(store);
  st_db_pool_free(pool);
  fx_rmdir(root);
  fx_rmdir(work);
  return 0;
}

static void make_profile(const char *json) { st_test_profile_create(pool, ta, json); }

/* Start and run a run of profile; returns the run's code; run_id filled. */
static int run_profile(const char *profile, char run_id[ST_EXPORT_RUN_ID_LEN + 1],
                       st_error_t *err) {
  st_export_profile_t p;
  st_export_env_t env = {pool, store, signer, NULL, work, NULL, NULL, NULL, 0, NULL, 0};
  int rc;
  st_export_profile_init(&p);
  rc = st_export_profile_get(pool, ta, profile, &p, err);
  if (!rc)
    rc = st_export_run_start(pool, ta, &p, NULL, 0, NULL, run_id, err);
  st_export_profile_release(&p);
  return rc ? rc : st_mirror_export_run(&env, NULL, ta, run_id, NULL, err);
}

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

/* The run's state; its stored object `name` copied to work/<out> when out is set. */
static void run_fetch(const char *run_id, const char *want_state, const char *name,
                      const char *out) {
  json_t *run = NULL;
  st_error_t err = ST_ERROR_INIT;
  char key[512], path[4096];
  const char *akey;
  FILE *f;
  assert_int_equal(st_export_run_get(pool, ta, run_id, &run, &err), 0);
  if (strcmp(json_string_value(json_object_get(run, "state")), want_state))
    fail_msg("run %s: %s (%s), want %s", run_id, json_string_value(json_object_get(run, "state")),
             json_string_value(json_object_get(run, "error")), want_state);
  if (out) {
    akey = json_string_value(json_object_get(json_object_get(run, "artifact"), "key"));
    assert_non_null(akey);
    snprintf(key, sizeof(key), "%.*s%s", (int)(strrchr(akey, '/') + 1 - akey), akey, name);
    snprintf(path, sizeof(path), "%s/%s", work, out);
    assert_non_null(f = fopen(path, "wb"));
    if (st_objstore_get(store, ta, key, 0, ST_OBJSTORE_TO_END, to_file, f, &err))
      fail_msg("get %s: %s", key, st_error_text(&err));
    fclose(f);
  }
  json_decref(run);
}

static int import(const char *bundle, const char *tree, st_mirror_import_t *sum) {
  const st_pubkey_t *keys[1] = {st_signer_pubkey(signer)};
  st_mirror_trust_t t = {keys, 1, NULL, 0, 0};
  st_error_t err = ST_ERROR_INIT;
  char b[4096], d[4096];
  int rc;
  snprintf(b, sizeof(b), "%s/%s", work, bundle);
  snprintf(d, sizeof(d), "%s/%s", work, tree);
  if ((rc = st_mirror_import(b, d, &t, sum, &err)))
    print_message("import %s: %s\n", bundle, st_error_text(&err));
  return rc;
}

static void same_file(const char *a, const char *b, const char *rel) {
  char pa[4096], pb[4096];
  uint8_t da[32], db[32];
  st_error_t err = ST_ERROR_INIT;
  snprintf(pa, sizeof(pa), "%s/%s/%s", work, a, rel);
  snprintf(pb, sizeof(pb), "%s/%s/%s", work, b, rel);
  assert_int_equal(st_sha256_file(pa, da, NULL, &err), 0);
  assert_int_equal(st_sha256_file(pb, db, NULL, &err), 0);
  if (memcmp(da, db, 32))
    fail_msg("%s differs between %s and %s", rel, a, b);
}

static void full_then_delta(void **state) {
  char r1[ST_EXPORT_RUN_ID_LEN + 1], r2[ST_EXPORT_RUN_ID_LEN + 1], r3[ST_EXPORT_RUN_ID_LEN + 1];
  st_error_t err = ST_ERROR_INIT;
  st_mirror_import_t sum;
  st_bundle_report_t rep;
  const st_pubkey_t *keys[1] = {st_signer_pubkey(signer)};
  st_bundle_trust_t bt = {keys, 1, NULL, 0, NULL};
  char path[4096];
  (void)state;

  make_profile("{\"name\":\"mf\",\"kind\":\"mirror:full\"}");
  make_profile("{\"name\":\"md\",\"kind\":\"mirror:delta\"}");
  if (run_profile("mf", r1, &err))
    fail_msg("full run: %s", st_error_text(&err));
  run_fetch(r1, "distributed", "export.tgz", "full1.tgz");
  run_fetch(r1, "distributed", "export.tgz.dsse.json", "full1.dsse.json");
  snprintf(path, sizeof(path), "%s/full1.tgz", work);
  st_bundle_report_init(&rep);
  assert_int_equal(st_bundle_verify(path, &bt, &rep, &err), 0);
  assert_string_equal(rep.kind.data, "mirror");
  st_bundle_report_release(&rep);
  assert_int_equal(import("full1.tgz", "A", &sum), 0);
  assert_int_equal(sum.docs[ST_MIRROR_ADVISORIES], 4);
  assert_int_equal(sum.docs[ST_MIRROR_VEX], 1);
  assert_int_equal(sum.docs[ST_MIRROR_POLICY], 1);

  st_test_ledger_load(pool, ta, "osv/STELLA-GO-0010.json"); /* one more advisory */
  if (run_profile("md", r2, &err))
    fail_msg("delta run: %s", st_error_text(&err));
  run_fetch(r2, "distributed", "export.tgz", "delta12.tgz");
  assert_int_equal(import("delta12.tgz", "A", &sum), 0);
  assert_true(sum.delta);
  assert_int_equal(sum.added, 1);
  assert_int_equal(sum.changed + sum.removed, 0);
  assert_int_equal(sum.blobs_written, 1);
  assert_int_equal(sum.docs[ST_MIRROR_ADVISORIES], 5);

  if (run_profile("mf", r3, &err))
    fail_msg("second full run: %s", st_error_text(&err));
  run_fetch(r3, "distributed", "export.tgz", "full3.tgz");
  assert_int_equal(import("full3.tgz", "B", &sum), 0);
  same_file("A", "B", "mirror.json");
  same_file("A", "B", "advisories/index.ndjson");
  same_file("A", "B", "vex/index.ndjson");
  same_file("A", "B", "policy-packs/index.ndjson");
  /* the delta applies only onto its base */
  assert_int_equal(import("delta12.tgz", "B", &sum), ST_ECONFLICT);
}

static void refusals(void **state) {
  char r[ST_EXPORT_RUN_ID_LEN + 1];
  st_error_t err = ST_ERROR_INIT;
  const st_worker_t *w = st_worker_find("mirror");
  json_t *p;
  (void)state;

  make_profile("{\"name\":\"mred\",\"kind\":\"mirror:full\",\"redaction\":[\"id\"]}");
  assert_int_equal(run_profile("mred", r, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "redaction"));
  make_profile("{\"name\":\"mdo\",\"project\":\"other\",\"kind\":\"mirror:delta\"}");
  assert_int_equal(run_profile("mdo", r, &err), ST_ENOENT);
  assert_non_null(strstr(err.msg, "no distributed mirror run of project other"));

  assert_non_null(w);
  p = json_pack("{s:s}", "profile", "mf");
  assert_int_equal(w->validate(p, &err), 0);
  json_object_set_new(p, "run_id", json_string("not-a-uuid"));
  assert_int_equal(w->validate(p, &err), ST_EINVAL);
  json_object_del(p, "profile");
  assert_int_equal(w->validate(p, &err), ST_EINVAL);
  json_object_set_new(p, "run_id", json_string("123e4567-e89b-12d3-a456-426614174000"));
  assert_int_equal(w->validate(p, &err), 0);
  json_object_set_new(p, "base_run", json_string("../x"));
  assert_int_equal(w->validate(p, &err), ST_EINVAL);
  json_object_del(p, "base_run");
  json_object_set_new(p, "extra", json_true());
  assert_int_equal(w->validate(p, &err), ST_EINVAL);
  json_decref(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(full_then_delta),
      cmocka_unit_test(refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
