/* test_evidence_retention.c: the Evidence Locker's retention, custody, recovery and
 * incident mode against real Postgres and the filesystem store:
 *   - windows: per-kind config defaults, the tenant's rows above them, a bad spec refused;
 *     the pruner prunes expired unheld bundles (signed disposition, evidence.pruned),
 *     keeps live and held ones, prunes a held one once released, and a held object's
 *     deletion is refused by the store;
 *   - incident mode: the pruner keeps an expired bundle while the incident is active and
 *     prunes it after; a snapshot sealed meanwhile gets the longer window and the debug
 *     artifacts (job log, redacted config, environment); incident.* outbox events; a
 *     second activation changes nothing; off without an incident is ST_ENOENT;
 *   - custody: a deleted record, and a truncated tail with a rewritten head after a
 *     periodic checkpoint, are both caught;
 *   - reindex: rows wiped, rebuilt from the store with the same facts; a forged object and
 *     a copy under another bundle's name are refused;
 *   - the store refuses another tenant's prefix (get, stat, delete, list: not found). */
#include "st_test_db.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stella/config.h"
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
  st_config_t *cfg;
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

/* The single value of sql as text (st_free), "" for no row. */
static char *admin_text(const char *sql) {
  PGconn *c = PQconnectdb(fx.admin);
  PGresult *r = PQexec(c, sql);
  char *v;
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  v = st_strdup(PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
  PQclear(r);
  PQfinish(c);
  assert_non_null(v);
  return v;
}

static long long admin_int(const char *sql) {
  char *v = admin_text(sql);
  long long n = *v ? strtoll(v, NULL, 10) : -1;
  st_free(v);
  return n;
}

static long long count_where(const char *table, const char *tenant, const char *cond) {
  char q[512];
  snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE tenant_id = '%s' AND %s", table, tenant,
           cond);
  return admin_int(q);
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  char priv[128], pub[128], root[96];
  st_evidence_opts_t o = {0};

  (void)state;
  st_test_db_setup(&fx.app, &fx.admin, "evr", fx.a, fx.b, sizeof(fx.a));
  fx.maint = st_test_env("STELLA_PG_MAINT_URL");
  snprintf(fx.dir, sizeof(fx.dir), "/tmp/st-evret-XXXXXX");
  assert_non_null(mkdtemp(fx.dir));
  snprintf(priv, sizeof(priv), "%s/key.pem", fx.dir);
  snprintf(pub, sizeof(pub), "%s/key.pub", fx.dir);
  snprintf(root, sizeof(root), "%s/store", fx.dir);
  /* what the debug config must redact */
  setenv("STELLA_S3_SECRET_KEY", "s3-secret-never-shown", 1);
  setenv("STELLA_TSA_URL", "http://tsa-user:tsa-pass-never-shown@127.0.0.1:1/", 1);
  if (st_key_generate(ST_KEY_ED25519, priv, pub, &err) ||
      st_signer_open(&fx.signer, priv, &err) || st_db_pool_new(fx.app, 4, &fx.db, &err) ||
      st_objstore_fs_new(&fx.store, root, &err) || st_config_load(&fx.cfg, "/dev/null", &err))
    fail_msg("%s", st_error_text(&err));
  unsetenv("STELLA_TSA_URL");
  o.db = fx.db;
  o.store = fx.store;
  o.signer = fx.signer;
  o.tmp_dir = fx.dir;
  o.retention_kinds = "job=0,export=3650";
  o.incident_extension_days = 30;
  o.debug_config = fx.cfg;
  if (st_evidence_new(&fx.ev, &o, &err))
    fail_msg("%s", st_error_text(&err));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  (void)state;
  st_evidence_free(fx.ev);
  st_config_free(fx.cfg);
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

static void put(const char *tenant, const char *key, const char *text, const char *hex) {
  st_error_t err = ST_ERROR_INIT;
  const char *p = text;
  if (st_objstore_put(fx.store, tenant, key, hex, strlen(text), mem_read, &p, NULL, &err))
    fail_msg("put %s: %s", key, st_error_text(&err));
}

static void upload(const char *tenant, const char *text, char hex[65]) {
  st_buf_t key = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_sha256(text, strlen(text), d), 0);
  st_sha256_hex(d, hex);
  if (st_objstore_key(&key, tenant, hex, &err))
    fail_msg("%s", st_error_text(&err));
  put(tenant, key.data, text, hex);
  st_buf_release(&key);
}

/* Seal bundle id of kind for tenant over one uploaded artifact. */
static void snap(const char *tenant, const char *id, const char *kind, const char *text) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {tenant, "alice", "req-r", NULL, NULL};
  char sha[65];
  json_t *p;
  upload(tenant, text, sha);
  p = json_pack("{s:s, s:s, s:{s:s, s:s}, s:[{s:s, s:s}], s:[{s:s, s:{s:s}}]}", "kind", kind,
                "created", "2026-02-03T04:05:06Z", "run", "run_id", id, "actor", "alice",
                "inputs", "path", "in.txt", "sha256", sha, "outputs", "path", "out.json",
                "json", "id", id);
  assert_non_null(p);
  if (st_evidence_snapshot(fx.ev, &who, id, p, "job-r", NULL, &err))
    fail_msg("snapshot %s: %s", id, st_error_text(&err));
  json_decref(p);
}

static st_evidence_prune_stats_t prune(void) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_prune_stats_t st;
  /* another test binary's pruner may hold the lock for a moment */
  for (int i = 0; i < 200; i++) {
    if (st_evidence_prune(fx.ev, fx.maint, &st, &err))
      fail_msg("prune: %s", st_error_text(&err));
    if (!st.busy)
      return st;
    usleep(50000);
  }
  fail_msg("prune: the pruner lock stayed busy");
  return st;
}

static int exists(const char *tenant, const char *id) {
  char cond[200];
  snprintf(cond, sizeof(cond), "bundle_id = '%s'", id);
  return (int)count_where("evidence_bundles", tenant, cond);
}

static void test_windows_and_pruner(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {fx.a, "carol", "req-w", NULL, NULL};
  st_evidence_opts_t bad = {0};
  st_evidence_t *ev2 = NULL;
  json_t *spec, *ret = NULL;
  char key[200];
  (void)state;

  /* a malformed per-kind spec stops the locker from opening */
  bad.db = fx.db;
  bad.store = fx.store;
  bad.retention_kinds = "jobs=3";
  assert_int_equal(st_evidence_new(&ev2, &bad, &err), ST_ECONFIG);
  assert_non_null(strstr(st_error_text(&err), "evidence_retention_kinds"));
  bad.retention_kinds = "job=-1";
  assert_int_equal(st_evidence_new(&ev2, &bad, &err), ST_ECONFIG);
  assert_null(ev2);

  /* config: job=0 expires at once, evaluation uses the 365-day default; the tenant's row
   * for evaluation (0) beats the default, export keeps its config window */
  snap(fx.a, "r-job", "job", "job artifact\n");
  snap(fx.a, "r-live", "evaluation", "live artifact\n");
  if (st_evidence_retention_set(fx.ev, &who, "export", 0, &err) ||
      st_evidence_retention_set(fx.ev, &who, "export", -1, &err) ||
      st_evidence_retention_set(fx.ev, &who, "evaluation", 0, &err))
    fail_msg("%s", st_error_text(&err));
  assert_int_equal(st_evidence_retention_set(fx.ev, &who, "bogus", 1, &err), ST_EINVAL);
  snap(fx.a, "r-held", "evaluation", "held artifact\n");
  snap(fx.a, "r-expired", "evaluation", "expired artifact\n");
  snap(fx.a, "r-export", "export", "export artifact\n");
  if (st_evidence_retention_get(fx.ev, fx.a, &ret, &err))
    fail_msg("%s", st_error_text(&err));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(ret, "effective"), "job")), 0);
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(ret, "effective"), "export")), 3650);
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(ret, "effective"), "evaluation")), 0);
  assert_null(json_object_get(json_object_get(ret, "tenant"), "export"));
  json_decref(ret);

  spec = json_pack("{s:s, s:[s]}", "reason", "litigation", "bundle_ids", "r-held");
  if (st_evidence_hold_place(fx.ev, &who, "case-r", spec, NULL, &err))
    fail_msg("%s", st_error_text(&err));
  json_decref(spec);
  snprintf(key, sizeof(key), "tenants/%s/evidence/r-held.tgz", fx.a);
  assert_int_equal(st_objstore_delete(fx.store, fx.a, key, &err), ST_EPERM);

  prune();
  assert_int_equal(exists(fx.a, "r-job"), 0);
  assert_int_equal(exists(fx.a, "r-expired"), 0);
  assert_int_equal(exists(fx.a, "r-held"), 1);
  assert_int_equal(exists(fx.a, "r-live"), 1);
  assert_int_equal(exists(fx.a, "r-export"), 1);
  /* the pruned objects are gone from the store, the others are there */
  {
    st_objstore_stat_t st;
    snprintf(key, sizeof(key), "tenants/%s/evidence/r-expired.tgz", fx.a);
    assert_int_equal(st_objstore_stat(fx.store, fx.a, key, &st, &err), ST_ENOENT);
    snprintf(key, sizeof(key), "tenants/%s/evidence/r-live.tgz", fx.a);
    assert_int_equal(st_objstore_stat(fx.store, fx.a, key, &st, &err), 0);
  }
  /* a signed disposition and a custody record per pruned bundle */
  assert_int_equal(count_where("evidence_dispositions", fx.a,
                               "bundle_id IN ('r-job', 'r-expired') AND record_text LIKE"
                               " '%\"rule\":\"retention expired, no active hold\"%'"),
                   2);
  assert_int_equal(count_where("evidence_custody", fx.a,
                               "event = 'evidence.pruned' AND bundle_id IN ('r-job', 'r-expired')"),
                   2);
  {
    long long n = 0;
    if (st_evidence_custody_verify(fx.ev, fx.a, NULL, &n, &err))
      fail_msg("custody: %s", st_error_text(&err));
  }

  if (st_evidence_hold_release(fx.ev, &who, "case-r", NULL, &err))
    fail_msg("%s", st_error_text(&err));
  prune();
  assert_int_equal(exists(fx.a, "r-held"), 0);
  assert_int_equal(exists(fx.a, "r-live"), 1);
  if (st_evidence_retention_set(fx.ev, &who, "evaluation", -1, &err))
    fail_msg("%s", st_error_text(&err));
}

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

/* Fetch the object of bundle id into path; sha gets its digest. */
static void fetch(const char *tenant, const char *id, const char *path, char sha[65]) {
  st_error_t err = ST_ERROR_INIT;
  st_objstore_stat_t st;
  char key[200];
  FILE *f;
  snprintf(key, sizeof(key), "tenants/%s/evidence/%s.tgz", tenant, id);
  assert_non_null(f = fopen(path, "wb"));
  if (st_objstore_get(fx.store, tenant, key, 0, ST_OBJSTORE_TO_END, to_file, f, &err) ||
      st_objstore_stat(fx.store, tenant, key, &st, &err))
    fail_msg("%s: %s", key, st_error_text(&err));
  assert_int_equal(fclose(f), 0);
  memcpy(sha, st.sha256, 65);
}

/* One payload file of a stored bundle as text (st_free). */
static char *bundle_file(const char *tenant, const char *id, const char *entry) {
  char path[128], cmd[512], sha[65], chunk[4096];
  st_buf_t out = ST_BUF_INIT;
  size_t n;
  FILE *p;

  snprintf(path, sizeof(path), "%s/x.tgz", fx.dir);
  fetch(tenant, id, path, sha);
  snprintf(cmd, sizeof(cmd), "tar -xzOf %s payload/%s", path, entry);
  assert_non_null(p = popen(cmd, "r"));
  while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
    assert_int_equal(st_buf_add(&out, chunk, n), 0);
  assert_int_equal(pclose(p), 0);
  return st_buf_detach(&out, NULL);
}

static void test_incident_mode(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {fx.b, "dave", "req-i", NULL, NULL};
  json_t *out = NULL;
  int created = -1;
  char q[512], *text, *until;
  (void)state;

  snap(fx.b, "i-old", "job", "before the incident\n"); /* job=0: expired at once */
  assert_int_equal(st_evidence_incident_off(fx.ev, &who, NULL, &err), ST_ENOENT);
  assert_int_equal(st_evidence_incident_on(fx.ev, &who, "", -1, NULL, NULL, &err), ST_EINVAL);
  if (st_evidence_incident_on(fx.ev, &who, "breach 42", -1, &created, &out, &err))
    fail_msg("%s", st_error_text(&err));
  assert_int_equal(created, 1);
  assert_true(json_is_true(json_object_get(out, "active")));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "incident"),
                                                      "extension_days")),
                   30);
  json_decref(out);
  if (st_evidence_incident_on(fx.ev, &who, "again", 5, &created, NULL, &err))
    fail_msg("%s", st_error_text(&err));
  assert_int_equal(created, 0);
  assert_int_equal(count_where("evidence_incidents", fx.b, "true"), 1);

  /* expired, but the incident extends every window: kept */
  prune();
  assert_int_equal(exists(fx.b, "i-old"), 1);

  /* sealed during the incident: window 0 + 30 days, debug artifacts, metadata */
  snap(fx.b, "i-new", "job", "during the incident\n");
  snprintf(q, sizeof(q),
           "SELECT (retention_until - sealed_at) BETWEEN interval '29 days 23 hours' AND"
           " interval '30 days 1 hour' FROM evidence_bundles WHERE tenant_id = '%s' AND"
           " bundle_id = 'i-new'", fx.b);
  until = admin_text(q);
  assert_string_equal(until, "t");
  st_free(until);
  assert_int_equal(count_where("evidence_artifacts", fx.b,
                               "bundle_id = 'i-new' AND path IN ('payload/run/debug/job-log.json',"
                               " 'payload/run/debug/config.json',"
                               " 'payload/run/debug/environment.json')"),
                   3);
  assert_int_equal(count_where("evidence_artifacts", fx.b,
                               "bundle_id = 'i-old' AND path LIKE 'payload/run/debug/%'"),
                   0);
  text = bundle_file(fx.b, "i-new", "run/debug/config.json");
  assert_null(strstr(text, "never-shown"));
  assert_non_null(strstr(text, "\"s3_secret_key\":\"[redacted]\""));
  assert_non_null(strstr(text, "tsa-user:[redacted]@127.0.0.1"));
  st_free(text);
  text = bundle_file(fx.b, "i-new", "run/debug/environment.json");
  assert_non_null(strstr(text, "\"STELLA_S3_SECRET_KEY\":\"[redacted]\""));
  assert_null(strstr(text, "never-shown"));
  st_free(text);

  if (st_evidence_incident_off(fx.ev, &who, &out, &err))
    fail_msg("%s", st_error_text(&err));
  assert_true(json_is_false(json_object_get(out, "active")));
  assert_string_equal(json_string_value(json_object_get(json_object_get(out, "incident"),
                                                        "deactivated_by")),
                      "dave");
  json_decref(out);
  prune();
  assert_int_equal(exists(fx.b, "i-old"), 0);
  assert_int_equal(exists(fx.b, "i-new"), 1);

  /* events: custody records and outbox rows with the actor and request id */
  assert_int_equal(count_where("outbox", fx.b,
                               "type = 'incident.activated' AND payload->>'actor' = 'dave' AND"
                               " payload->>'correlation_id' = 'req-i'"),
                   1);
  assert_int_equal(count_where("outbox", fx.b, "type = 'incident.deactivated'"), 1);
  assert_int_equal(count_where("evidence_custody", fx.b, "event LIKE 'incident.%'"), 2);
  if (st_evidence_incident_status(fx.ev, fx.a, &out, &err))
    fail_msg("%s", st_error_text(&err));
  assert_true(json_is_false(json_object_get(out, "active")));
  assert_true(json_is_null(json_object_get(out, "incident"))); /* tenant a: never */
  json_decref(out);
}

static void test_custody_tamper(void **state) {
  st_error_t err = ST_ERROR_INIT;
  long long n = 0, made = 0, head;
  char q[768];
  (void)state;

  /* a periodic checkpoint signs the head of each tenant that grew past its last one */
  if (st_evidence_checkpoint_all(fx.ev, &made, &err))
    fail_msg("%s", st_error_text(&err));
  assert_true(made >= 1);
  if (st_evidence_checkpoint_all(fx.ev, &made, &err))
    fail_msg("%s", st_error_text(&err));
  assert_int_equal(count_where("evidence_custody_checkpoints", fx.b, "true"), 1);
  if (st_evidence_custody_verify(fx.ev, fx.b, NULL, &n, &err))
    fail_msg("custody: %s", st_error_text(&err));
  snprintf(q, sizeof(q), "SELECT seq FROM evidence_custody_head WHERE tenant_id = '%s'", fx.b);
  head = admin_int(q);
  assert_int_equal(head, n);

  /* truncate the tail and rewrite the head to match: the checkpoint catches it */
  snprintf(q, sizeof(q),
           "BEGIN; ALTER TABLE evidence_custody DISABLE TRIGGER evidence_custody_append_only;"
           " DELETE FROM evidence_custody WHERE tenant_id = '%s' AND seq = %lld;"
           " UPDATE evidence_custody_head h SET seq = c.seq, hash = c.hash FROM evidence_custody c"
           " WHERE h.tenant_id = '%s' AND c.tenant_id = h.tenant_id AND c.seq = %lld;"
           " ALTER TABLE evidence_custody ENABLE TRIGGER evidence_custody_append_only; COMMIT",
           fx.b, head, fx.b, head - 1);
  sh(q);
  assert_int_equal(st_evidence_custody_verify(fx.ev, fx.b, NULL, &n, &err), ST_EVERIFY);
  assert_non_null(strstr(st_error_text(&err), "checkpoint"));

  /* delete a record in the middle: the gap is named */
  snprintf(q, sizeof(q),
           "BEGIN; ALTER TABLE evidence_custody DISABLE TRIGGER evidence_custody_append_only;"
           " DELETE FROM evidence_custody WHERE tenant_id = '%s' AND seq = 3;"
           " ALTER TABLE evidence_custody ENABLE TRIGGER evidence_custody_append_only; COMMIT",
           fx.a);
  sh(q);
  assert_int_equal(st_evidence_custody_verify(fx.ev, fx.a, NULL, &n, &err), ST_EVERIFY);
  assert_non_null(strstr(st_error_text(&err), "record 3 missing"));
}

#define FACTS_SQL                                                                            \
  "SELECT string_agg(concat_ws('|', b.bundle_id, b.kind, b.status, b.run_id, b.actor,"       \
  " b.merkle_root, b.manifest_sha256, b.object_key, b.object_sha256, b.object_size, b.keyid," \
  " b.created, (SELECT string_agg(a.path || ':' || a.sha256 || ':' || a.size || ':' ||"     \
  " a.media_type, ',' ORDER BY a.path) FROM evidence_artifacts a WHERE a.tenant_id ="        \
  " b.tenant_id AND a.bundle_id = b.bundle_id)), E'\\n' ORDER BY b.bundle_id)"              \
  " FROM evidence_bundles b WHERE b.tenant_id = '%s'"

static void test_reindex(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {fx.b, "ops", NULL, NULL, NULL};
  st_evidence_reindex_stats_t st;
  char q[1024], key[200], *before, *after;
  (void)state;

  snprintf(q, sizeof(q), FACTS_SQL, fx.b);
  before = admin_text(q);
  assert_non_null(strstr(before, "i-new|job|sealed|i-new|alice|"));
  /* a forged object, and a real bundle copied under another id: both refused */
  {
    const char *forged = "not a bundle";
    char sha[65], path[128];
    uint8_t d[ST_SHA256_LEN];
    assert_int_equal(st_sha256(forged, strlen(forged), d), 0);
    st_sha256_hex(d, sha);
    snprintf(key, sizeof(key), "tenants/%s/evidence/i-forged.tgz", fx.b);
    put(fx.b, key, forged, sha);
    snprintf(path, sizeof(path), "%s/copy.tgz", fx.dir);
    fetch(fx.b, "i-new", path, sha);
    snprintf(key, sizeof(key), "tenants/%s/evidence/i-copy.tgz", fx.b);
    if (st_objstore_put_file(fx.store, fx.b, key, sha, path, NULL, &err))
      fail_msg("%s", st_error_text(&err));
  }
  /* disaster: the tenant's rows are gone (cascading to the artifacts) */
  snprintf(q, sizeof(q), "DELETE FROM evidence_bundles WHERE tenant_id = '%s'", fx.b);
  sh(q);
  assert_int_equal(count_where("evidence_artifacts", fx.b, "true"), 0);
  if (st_evidence_reindex(fx.ev, &who, NULL, &st, &err))
    fail_msg("reindex: %s", st_error_text(&err));
  assert_int_equal(st.objects, 3);
  assert_int_equal(st.restored, 1);
  assert_int_equal(st.refused, 2);
  snprintf(q, sizeof(q), FACTS_SQL, fx.b);
  after = admin_text(q);
  assert_string_equal(before, after);
  st_free(after);
  assert_int_equal(count_where("evidence_custody", fx.b,
                               "event = 'evidence.reindexed' AND bundle_id = 'i-new'"),
                   1);
  /* again: everything present, nothing changes */
  if (st_evidence_reindex(fx.ev, &who, NULL, &st, &err))
    fail_msg("reindex: %s", st_error_text(&err));
  assert_int_equal(st.restored, 0);
  assert_int_equal(st.present, 1);
  assert_int_equal(st.refused, 2);
  st_free(before);
}

static void test_store_refuses_other_prefix(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_objstore_stat_t st;
  st_objstore_page_t page = ST_OBJSTORE_PAGE_INIT;
  char key[200], prefix[100];
  (void)state;
  snprintf(key, sizeof(key), "tenants/%s/evidence/r-live.tgz", fx.a);
  snprintf(prefix, sizeof(prefix), "tenants/%s/", fx.a);
  assert_int_equal(st_objstore_stat(fx.store, fx.a, key, &st, &err), 0);
  assert_int_equal(st_objstore_stat(fx.store, fx.b, key, &st, &err), ST_ENOENT);
  assert_int_equal(st_objstore_get(fx.store, fx.b, key, 0, ST_OBJSTORE_TO_END, NULL, NULL, &err),
                   ST_ENOENT);
  assert_int_equal(st_objstore_delete(fx.store, fx.b, key, &err), ST_ENOENT);
  assert_int_equal(st_objstore_list(fx.store, fx.b, prefix, NULL, 10, &page, &err), ST_ENOENT);
  assert_int_equal(st_objstore_stat(fx.store, fx.a, key, &st, &err), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_windows_and_pruner),
      cmocka_unit_test(test_incident_mode),
      cmocka_unit_test(test_custody_tamper),
      cmocka_unit_test(test_reindex),
      cmocka_unit_test(test_store_refuses_other_prefix),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
