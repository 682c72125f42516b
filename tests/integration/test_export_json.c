/* test_export_json.c: the JSON export adapters and the run lifecycle on real Postgres
 * with the filesystem object store: json:raw twice gives byte-identical bundles that
 * verify, with every state change in the run's event log in order and one outbox row per
 * lifecycle event; zstd and uncompressed outputs are deterministic too and read back with
 * the zstd tool and cat; json:policy joins verdicts with advisories and VEX; redaction keeps
 * only allowlisted fields; a run cancelled mid-way stores nothing and leaves no work
 * files; a ledger change after planning fails the run with nothing stored; single-flight
 * and the per-tenant limit refuse a second active run; another tenant cannot read,
 * cancel or run a tenant's run. Every distributed run has an `export` evidence bundle
 * holding its manifest (Merkle root aligned) and transcript; a killed worker's scratch
 * directories and stored objects are cleaned; a profile's distribution targets queue an
 * oci_distribute job that fetches, verifies and copies the run's bundle. */
#include "st_test_export.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../keys_fixtures.h"
#include <hiredis/hiredis.h>

#include "envelope.h"
#include "export/adapter.h"
#include "registry.h"
#include "stella/config.h"
#include "transport.h"
#include "export/export.h"
#include "export_json/export_json.h"
#include "stella/bundle.h"
#include "stella/evidence.h"
#include "stella/ledger.h"
#include "stella/mem.h"
#include "stella/sha256.h"
#include "timeline/timeline_event.h"

static const char *app_url, *admin_url;
static char ta[32], tb[32];
static st_db_pool_t *pool;
static st_objstore_t *store;
static st_signer_t *signer;
static char *root, *work;

static int setup(void **state) {
  static const char *const files[] = {
      "osv/STELLA-NPM-0001.json", "osv/STELLA-PYPI-0002.json", "osv/STELLA-MVN-0003.json",
      "osv/STELLA-GO-0004.json", "osv/STELLA-DEB-0009.json", "vex/stella-vex-2024-001.json",
      "policy/baseline-pack.json", "policy/baseline-results.json", NULL};
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  st_test_db_setup(&app_url, &admin_url, "xjs", ta, tb, sizeof(ta));
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

static int start(const char *tenant, const char *profile, int max_active, char *run_id,
                 st_error_t *err) {
  st_export_profile_t p;
  int rc;
  st_export_profile_init(&p);
  rc = st_export_profile_get(pool, ta, profile, &p, err);
  if (!rc)
    rc = st_export_run_start(pool, tenant, &p, NULL, max_active, NULL, run_id, err);
  st_export_profile_release(&p);
  return rc;
}

typedef struct cancel_at_s {
  const char *run_id;
  int calls, at;
} cancel_at_t;

static void on_progress(void *ud, double f, const char *note) {
  cancel_at_t *c = ud;
  st_error_t err = ST_ERROR_INIT;
  (void)f;
  (void)note;
  if (c && ++c->calls == c->at)
    assert_int_equal(st_export_run_cancel(pool, ta, c->run_id, NULL, &err), 0);
}

static int run_export(const char *run_id, cancel_at_t *c, st_error_t *err) {
  st_export_json_env_t env = {pool, store, signer, NULL, work, NULL, on_progress, c, 1,
                              st_test_env("STELLA_REDIS_URL"), 1 << 20};
  return st_export_json_run(&env, ta, run_id, err);
}

typedef struct sink_s {
  st_buf_t b;
} sink_t;

static int to_buf(void *ctx, const void *data, size_t len) {
  return st_buf_add(&((sink_t *)ctx)->b, data, len);
}

static void get_object(const char *key, st_buf_t *out) {
  sink_t s = {ST_BUF_INIT};
  st_error_t err = ST_ERROR_INIT;
  if (st_objstore_get(store, ta, key, 0, ST_OBJSTORE_TO_END, to_buf, &s, &err))
    fail_msg("get %s: %s", key, st_error_text(&err));
  *out = s.b;
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

/* Every export.* outbox row of run_id decodes as the timeline ingester decodes events. */
static void events_decode(const char *run_id) {
  PGconn *a = PQconnectdb(admin_url);
  const char *p[1] = {run_id};
  PGresult *r = PQexecParams(a, "SELECT event_id, tenant_id, type, payload::text FROM outbox "
                                "WHERE event_id LIKE 'export:' || $1 || ':%'",
                             1, NULL, p, NULL, NULL, 0);
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  assert_true(PQntuples(r) > 0);
  for (int i = 0; i < PQntuples(r); i++) {
    st_tl_raw_t raw = {"redis:stella:events", 1, 0, PQgetvalue(r, i, 3),
                       (size_t)PQgetlength(r, i, 3), PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                       PQgetvalue(r, i, 2)};
    st_tl_event_t ev;
    st_error_t err = ST_ERROR_INIT;
    st_tl_event_init(&ev);
    if (st_tl_event_decode(&raw, &ev, &err))
      fail_msg("%s: %s", PQgetvalue(r, i, 0), st_error_text(&err));
    st_tl_event_release(&ev);
  }
  PQclear(r);
  PQfinish(a);
}

static long long sql_int(const char *sql, const char *arg) {
  PGconn *a = PQconnectdb(admin_url);
  const char *p[1] = {arg};
  PGresult *r = PQexecParams(a, sql, 1, NULL, p, NULL, NULL, 0);
  long long v;
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(a));
  v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  PQfinish(a);
  return v;
}

/* The run's artifact key, after checking it is distributed. */
static const char *artifact(const char *run_id, json_t **run) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_export_run_get(pool, ta, run_id, run, &err), 0);
  assert_string_equal(json_string_value(json_object_get(*run, "state")), "distributed");
  return json_string_value(json_object_get(json_object_get(*run, "artifact"), "key"));
}

/* The run's manifest and transcript are an `export` evidence bundle that verifies, holds
 * the export manifest under its digest, and whose id and the export Merkle root the run
 * and its distributed events carry. */
static void check_evidence(const char *run_id, const json_t *run, const char *merkle,
                           st_bundle_trust_t *trust) {
  const json_t *ev = json_object_get(run, "evidence");
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t b;
  char path[4096];
  FILE *f;

  assert_non_null(ev);
  assert_string_equal(json_string_value(json_object_get(run, "merkle_root")), merkle);
  assert_int_equal(sql_int("SELECT count(*) FROM evidence_bundles e JOIN export_runs r ON "
                           "e.tenant_id = r.tenant_id AND e.bundle_id = r.evidence_bundle_id "
                           "AND e.object_sha256 = r.evidence_sha256 AND e.merkle_root = "
                           "r.evidence_merkle_root WHERE r.run_id::text = $1 AND e.kind = "
                           "'export' AND e.status = 'sealed' AND e.run_id = $1", run_id), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM evidence_artifacts a JOIN export_runs r ON "
                           "a.tenant_id = r.tenant_id AND a.bundle_id = r.evidence_bundle_id "
                           "WHERE r.run_id::text = $1 AND a.path LIKE '%export/manifest.json' "
                           "AND a.sha256 = r.manifest_digest", run_id), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM evidence_artifacts a JOIN export_runs r ON "
                           "a.tenant_id = r.tenant_id AND a.bundle_id = r.evidence_bundle_id "
                           "WHERE r.run_id::text = $1 AND a.path LIKE '%export/distribution.json'",
                           run_id), 1);
  /* the distributed event (log and outbox) names the evidence; built came before it */
  assert_int_equal(sql_int("SELECT count(*) FROM outbox o JOIN export_runs r ON o.event_id = "
                           "'export:' || r.run_id || ':distributed' WHERE r.run_id::text = $1 "
                           "AND o.payload->'evidence'->1->>'bundle_id' = r.evidence_bundle_id "
                           "AND o.payload->'evidence'->1->>'digest' = 'sha256:' || "
                           "r.evidence_sha256 AND o.payload->'payload'->>'merkle_root' = "
                           "r.merkle_root AND o.payload->'payload'->'evidence'->>'merkle_root' = "
                           "r.evidence_merkle_root", run_id), 1);
  assert_int_equal(sql_int("SELECT count(*) FROM outbox WHERE event_id = 'export:' || $1 || "
                           "':built' AND payload->'payload' ? 'evidence'", run_id), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM export_run_events e JOIN export_runs r USING "
                           "(tenant_id, run_id) WHERE r.run_id::text = $1 AND e.state = "
                           "'distributed' AND e.data->>'evidence_bundle_id' = "
                           "r.evidence_bundle_id", run_id), 1);
  /* the evidence bundle itself verifies as kind evidence */
  get_object(json_string_value(json_object_get(ev, "key")), &b);
  snprintf(path, sizeof(path), "%s/e.tgz", work);
  assert_non_null(f = fopen(path, "wb"));
  assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
  fclose(f);
  st_bundle_report_init(&rep);
  if (st_bundle_verify(path, trust, &rep, &err))
    fail_msg("verify evidence: %s", st_error_text(&err));
  assert_string_equal(rep.kind.data, "evidence");
  st_bundle_report_release(&rep);
  unlink(path);
  st_buf_release(&b);
}

static void raw_deterministic_verified_and_evented(void **state) {
  static const char *const states[] = {"requested", "planning", "running", "built",
                                       "distributed"};
  char r1[40], r2[40];
  st_error_t err = ST_ERROR_INIT;
  st_buf_t b1, b2, dsse;
  json_t *run1 = NULL, *run2 = NULL, *ev = NULL, *e;
  st_bundle_report_t rep;
  st_pubkey_t *pub = fx_pubkey(ED25519_PUB_PEM);
  const st_pubkey_t *keys[1] = {pub};
  st_bundle_trust_t trust = {keys, 1, NULL, 0, NULL};
  st_evidence_facts_t facts;
  char path[4096];
  size_t i, k = 0;
  FILE *f;
  (void)state;

  make_profile("{\"name\":\"raw\",\"kind\":\"json:raw\",\"project\":\"p1\"}");
  assert_int_equal(start(ta, "raw", 4, r1, &err), 0);
  if (run_export(r1, NULL, &err))
    fail_msg("run 1: %s", st_error_text(&err));
  assert_int_equal(start(ta, "raw", 4, r2, &err), 0);
  if (run_export(r2, NULL, &err))
    fail_msg("run 2: %s", st_error_text(&err));
  get_object(artifact(r1, &run1), &b1);
  get_object(artifact(r2, &run2), &b2);
  assert_true(strstr(json_string_value(json_object_get(json_object_get(run1, "artifact"), "key")),
                     "tenants/") != NULL);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(run1, "counts"),
                                                      "advisories")), 5);
  /* the bundle verifies; the detached envelope sits beside it */
  snprintf(path, sizeof(path), "%s/b.tgz", work);
  assert_non_null(f = fopen(path, "wb"));
  assert_int_equal(fwrite(b1.data, 1, b1.len, f), b1.len);
  fclose(f);
  st_bundle_report_init(&rep);
  if (st_bundle_verify(path, &trust, &rep, &err))
    fail_msg("verify: %s", st_error_text(&err));
  assert_string_equal(rep.kind.data, "export");
  st_bundle_report_release(&rep);
  st_evidence_facts_init(&facts);
  if (st_evidence_facts_read(path, NULL, 0, &facts, &err))
    fail_msg("facts: %s", st_error_text(&err));
  unlink(path);
  get_object(json_string_value(json_object_get(run1, "manifest_key")), &dsse);
  assert_non_null(strstr(dsse.data, "\"payloadType\":\"application/vnd.in-toto+json\""));
  /* every state in order, seq 1.., no gaps; then nothing after the final event */
  int terminal = 0;
  assert_int_equal(st_export_run_events(pool, ta, r1, 0, 100, &ev, &terminal, &err), 0);
  assert_true(terminal);
  json_array_foreach(ev, i, e) {
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), (json_int_t)i + 1);
    if (!strcmp(json_string_value(json_object_get(e, "type")), "state"))
      assert_string_equal(json_string_value(json_object_get(e, "state")), states[k++]);
  }
  assert_int_equal(k, 5);
  json_decref(ev);
  assert_int_equal(st_export_run_events(pool, ta, r1, 2, 1, &ev, &terminal, &err), 0);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, 0), "seq")), 3);
  assert_false(terminal);
  json_decref(ev);
  assert_int_equal(sql_int("SELECT count(*) FROM outbox WHERE event_id LIKE 'export:' || $1 || "
                           "':%'", r1), 3);
  /* stella.event/v1 envelopes; built and distributed name the bundle as evidence */
  assert_int_equal(sql_int("SELECT count(*) FROM outbox WHERE event_id LIKE 'export:' || $1 || "
                           "':%' AND payload->>'schema' = 'stella.event/v1' AND "
                           "payload->>'subject' = 'export/' || $1 AND payload->>'type' = type",
                           r1), 3);
  assert_int_equal(sql_int("SELECT count(*) FROM outbox o JOIN export_runs r ON o.payload->"
                           "'evidence'->0->>'digest' = 'sha256:' || r.artifact_sha256 WHERE "
                           "r.run_id::text = $1 AND o.event_id LIKE 'export:' || $1 || ':%'",
                           r1), 2);
  events_decode(r1);
  check_evidence(r1, run1, facts.merkle_root.data, &trust);
  st_evidence_facts_release(&facts);
  /* another tenant sees nothing and cannot cancel */
  assert_int_equal(st_export_run_get(pool, tb, r1, &ev, &err), ST_ENOENT);
  assert_int_equal(st_export_run_cancel(pool, tb, r1, NULL, &err), ST_ENOENT);
  assert_int_equal(count_dir(work), 0);
  json_decref(run1);
  json_decref(run2);
  st_buf_release(&b1);
  st_buf_release(&b2);
  st_buf_release(&dsse);
  st_pubkey_free(pub);
}

/* The text of payload/<name> of a stored bundle, gunzipped, through tar and gzip. */
static void payload_text_with(const st_buf_t *bundle, const char *name, const char *decomp,
                              st_buf_t *out) {
  char path[4096], cmd[8192], chunk[4096];
  FILE *f, *p;
  size_t n;
  snprintf(path, sizeof(path), "%s/x.tgz", work);
  assert_non_null(f = fopen(path, "wb"));
  assert_int_equal(fwrite(bundle->data, 1, bundle->len, f), bundle->len);
  fclose(f);
  snprintf(cmd, sizeof(cmd), "tar -xzOf %s payload/%s | %s", path, name, decomp);
  assert_non_null(p = popen(cmd, "r"));
  while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
    assert_int_equal(st_buf_add(out, chunk, n), 0);
  assert_int_equal(pclose(p), 0);
  unlink(path);
}

static void payload_text(const st_buf_t *bundle, const char *name, st_buf_t *out) {
  payload_text_with(bundle, name, "gzip -dc", out);
}

/* zstd (read back by the zstd tool) and no compression; both deterministic. */
static void zstd_and_none(void **state) {
  static const char *const comp[][3] = {{"zst", "zstd", "zstd -dc"}, {"plain", "none", "cat"}};
  (void)state;
  for (int i = 0; i < 2; i++) {
    char json[256], name[32], r1[40], r2[40];
    st_error_t err = ST_ERROR_INIT;
    st_buf_t b1 = ST_BUF_INIT, b2 = ST_BUF_INIT, text = ST_BUF_INIT;
    json_t *run1 = NULL, *run2 = NULL;
    size_t lines = 0;
    snprintf(json, sizeof(json), "{\"name\":\"%s\",\"kind\":\"json:raw\",\"compression\":"
             "\"%s\",\"filters\":{\"sources\":[\"advisories\"]}}", comp[i][0], comp[i][1]);
    make_profile(json);
    assert_int_equal(start(ta, comp[i][0], 4, r1, &err), 0);
    if (run_export(r1, NULL, &err))
      fail_msg("%s: %s", comp[i][1], st_error_text(&err));
    assert_int_equal(start(ta, comp[i][0], 4, r2, &err), 0);
    if (run_export(r2, NULL, &err))
      fail_msg("%s again: %s", comp[i][1], st_error_text(&err));
    get_object(artifact(r1, &run1), &b1);
    get_object(artifact(r2, &run2), &b2);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);
    snprintf(name, sizeof(name), "advisories.ndjson%s", i == 0 ? ".zst" : "");
    payload_text_with(&b1, name, comp[i][2], &text);
    for (size_t k = 0; k < text.len; k++)
      lines += text.data[k] == '\n';
    assert_int_equal(lines, 5);
    json_decref(run1);
    json_decref(run2);
    st_buf_release(&b1);
    st_buf_release(&b2);
    st_buf_release(&text);
  }
}

static void policy_joins_and_redaction(void **state) {
  char r1[40], r2[40];
  st_error_t err = ST_ERROR_INIT;
  st_buf_t b = ST_BUF_INIT, text = ST_BUF_INIT;
  json_t *run = NULL;
  (void)state;

  make_profile("{\"name\":\"pol\",\"kind\":\"json:policy\"}");
  assert_int_equal(start(ta, "pol", 4, r1, &err), 0);
  if (run_export(r1, NULL, &err))
    fail_msg("policy: %s", st_error_text(&err));
  get_object(artifact(r1, &run), &b);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(run, "counts"),
                                                      "findings")), 3);
  payload_text(&b, "findings.ndjson.gz", &text);
  assert_non_null(strstr(text.data, "\"verdict\":\"fail\""));
  assert_non_null(strstr(text.data, "\"rationale\":\"critical severity (CVSS 9.8)\""));
  assert_non_null(strstr(text.data, "\"advisory\":{\"aliases\""));
  json_decref(run);
  st_buf_release(&b);
  st_buf_release(&text);

  make_profile("{\"name\":\"red\",\"kind\":\"json:raw\",\"redaction\":[\"id\",\"modified\"],"
               "\"filters\":{\"sources\":[\"advisories\"]}}");
  assert_int_equal(start(ta, "red", 4, r2, &err), 0);
  if (run_export(r2, NULL, &err))
    fail_msg("redacted: %s", st_error_text(&err));
  get_object(artifact(r2, &run), &b);
  payload_text(&b, "advisories.ndjson.gz", &text);
  assert_non_null(strstr(text.data, "{\"id\":\"STELLA-DEB-0009\",\"modified\":"));
  assert_null(strstr(text.data, "summary"));
  assert_null(strstr(text.data, "affected"));
  json_decref(run);
  st_buf_release(&b);
  st_buf_release(&text);
}

static void cancel_leaves_nothing(void **state) {
  char r[40], prefix[256];
  st_error_t err = ST_ERROR_INIT;
  cancel_at_t c = {r, 0, 3};
  st_objstore_page_t page = ST_OBJSTORE_PAGE_INIT;
  char st[32];
  (void)state;

  make_profile("{\"name\":\"cx\",\"kind\":\"json:raw\",\"project\":\"p2\"}");
  assert_int_equal(start(ta, "cx", 4, r, &err), 0);
  assert_int_equal(run_export(r, &c, &err), ST_ECANCELED);
  assert_int_equal(st_export_run_state(pool, ta, r, st, sizeof(st), &err), 0);
  assert_string_equal(st, "cancelled");
  snprintf(prefix, sizeof(prefix), "tenants/%s/projects/p2/", ta);
  assert_int_equal(st_objstore_list(store, ta, prefix, NULL, 10, &page, &err), 0);
  assert_int_equal(page.count, 0);
  st_objstore_page_release(&page);
  assert_int_equal(count_dir(work), 0);
  assert_int_equal(sql_int("SELECT count(*) FROM outbox WHERE event_id = 'export:' || $1 || "
                           "':cancelled'", r), 1);
  /* a cancelled run cannot be cancelled again, nor re-run */
  assert_int_equal(st_export_run_cancel(pool, ta, r, NULL, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "is cancelled"));
  assert_int_equal(run_export(r, NULL, &err), ST_ECANCELED);
}

static void mkfile(const char *path) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs("partial", f);
  fclose(f);
}

/* kill -9 of a worker leaves its scratch directory (named after its pid) and perhaps some
 * stored objects: the next job's sweep removes the directory (and no live process's, and
 * nothing else), and the run, once cancelled, gets its objects removed when its job runs. */
static void killed_worker_leftovers_cleaned(void **state) {
  char dead[4096], live[4096], other[4096], oci[4096], sub[4200], r[40], key[512], st[32];
  st_error_t err = ST_ERROR_INIT;
  st_objstore_page_t page = ST_OBJSTORE_PAGE_INIT;
  pid_t pid;
  int status;
  (void)state;

  assert_true((pid = fork()) >= 0);
  if (pid == 0)
    _exit(0);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  snprintf(dead, sizeof(dead), "%s/" ST_EXPORT_TMP_PREFIX "%ld-aB3dE9", work, (long)pid);
  snprintf(oci, sizeof(oci), "%s/" ST_EXPORT_OCI_TMP_PREFIX "%ld-Zz09xy", work, (long)pid);
  snprintf(live, sizeof(live), "%s/" ST_EXPORT_TMP_PREFIX "%ld-keepme", work, (long)getpid());
  snprintf(other, sizeof(other), "%s/" ST_EXPORT_TMP_PREFIX "notapid", work);
  assert_int_equal(mkdir(dead, 0700), 0);
  assert_int_equal(mkdir(oci, 0700), 0);
  assert_int_equal(mkdir(live, 0700), 0);
  assert_int_equal(mkdir(other, 0700), 0);
  snprintf(sub, sizeof(sub), "%s/payload", dead);
  assert_int_equal(mkdir(sub, 0700), 0);
  snprintf(sub, sizeof(sub), "%s/payload/advisories.ndjson", dead);
  mkfile(sub);
  snprintf(sub, sizeof(sub), "%s/export.tgz", dead);
  mkfile(sub);
  /* a link to the live directory is removed as a link, never followed */
  snprintf(sub, sizeof(sub), "%s/link", dead);
  assert_int_equal(symlink(live, sub), 0);
  snprintf(sub, sizeof(sub), "%s/keep", live);
  mkfile(sub);
  assert_int_equal(st_export_sweep(work), 2);
  assert_int_equal(access(dead, F_OK), -1);
  assert_int_equal(access(oci, F_OK), -1);
  assert_int_equal(access(sub, F_OK), 0);
  assert_int_equal(access(other, F_OK), 0);
  assert_int_equal(st_export_sweep(work), 0);
  unlink(sub);
  assert_int_equal(rmdir(live), 0);
  assert_int_equal(rmdir(other), 0);
  assert_int_equal(count_dir(work), 0);

  /* objects a killed worker stored for a run cancelled since */
  make_profile("{\"name\":\"kx\",\"kind\":\"json:raw\",\"project\":\"p4\"}");
  assert_int_equal(start(ta, "kx", 4, r, &err), 0);
  assert_int_equal(st_export_run_set_state(pool, ta, r, "planning", NULL, &err), 0);
  assert_int_equal(st_export_run_set_state(pool, ta, r, "running", NULL, &err), 0);
  snprintf(key, sizeof(key), "tenants/%s/projects/p4/exports/%s/export.tgz", ta, r);
  {
    uint8_t d[32];
    char hex[65];
    snprintf(sub, sizeof(sub), "%s/partial", work);
    mkfile(sub);
    assert_int_equal(st_sha256_file(sub, d, NULL, &err), 0);
    st_sha256_hex(d, hex);
    if (st_objstore_put_file(store, ta, key, hex, sub, NULL, &err))
      fail_msg("put: %s", st_error_text(&err));
    unlink(sub);
  }
  assert_int_equal(st_export_run_cancel(pool, ta, r, NULL, &err), 0);
  assert_int_equal(run_export(r, NULL, &err), ST_ECANCELED);
  assert_int_equal(st_export_run_state(pool, ta, r, st, sizeof(st), &err), 0);
  assert_string_equal(st, "cancelled");
  snprintf(key, sizeof(key), "tenants/%s/projects/p4/", ta);
  assert_int_equal(st_objstore_list(store, ta, key, NULL, 10, &page, &err), 0);
  assert_int_equal(page.count, 0);
  st_objstore_page_release(&page);
  assert_int_equal(count_dir(work), 0);
}

/* The envelope of job_id on stella:jobs:oci_distribute (NULL when absent). */
static json_t *queued_payload(const char *job_id) {
  char *host = NULL;
  int port = 0, db = 0;
  st_error_t err = ST_ERROR_INIT;
  redisContext *c;
  redisReply *r;
  json_t *found = NULL;

  assert_int_equal(st_redis_url_parse(st_test_env("STELLA_REDIS_URL"), &host, &port, &db, &err),
                   0);
  c = redisConnect(host, port);
  assert_true(c && !c->err);
  freeReplyObject(redisCommand(c, "SELECT %d", db));
  r = redisCommand(c, "XRANGE stella:jobs:oci_distribute - +");
  assert_true(r && r->type == REDIS_REPLY_ARRAY);
  for (size_t i = 0; i < r->elements; i++) {
    redisReply *fields = r->element[i]->element[1];
    st_envelope_t env;
    st_envelope_init(&env);
    assert_int_equal(st_envelope_decode(&env, fields->element[1]->str, fields->element[1]->len,
                                        &(st_envelope_limits_t){1 << 20, NULL}, &err),
                     0);
    if (!strcmp(env.job_id, job_id)) {
      assert_string_equal(env.tenant, ta);
      json_decref(found);
      found = json_incref(env.payload);
    }
    st_envelope_release(&env);
  }
  freeReplyObject(r);
  redisFree(c);
  st_free(host);
  return found;
}

static int run_oci(const st_config_t *cfg, json_t *payload, st_error_t *err) {
  st_envelope_t env;
  st_job_t job = {&env, "stella:jobs:oci_distribute", "1-0"};
  st_job_ctx_t ctx;
  int rc;
  st_envelope_init(&env);
  env.job_id = st_strdup("oci-test");
  env.tenant = st_strdup(ta);
  env.type = st_strdup("oci_distribute");
  env.attempt = 1;
  env.payload = json_incref(payload);
  memset(&ctx, 0, sizeof(ctx));
  ctx.db = pool;
  ctx.cfg = cfg;
  rc = st_worker_oci_distribute.validate(payload, err);
  if (!rc)
    rc = st_worker_oci_distribute.run(&job, &ctx, err);
  st_envelope_release(&env);
  return rc;
}

/* A profile with distribution targets: the built run queues oci-<run> {run_id, targets,
 * retain_days}; the distributor given only the run id fetches the stored bundle, verifies
 * it and copies it to the s3 target (same bytes, a pushed row); a stored bundle that no
 * longer matches the run is refused. Bad distribution settings are refused at the profile. */
static void distribution_handoff_and_fetch(void **state) {
  char r[40], key[512], pub[4096];
  st_error_t err = ST_ERROR_INIT;
  st_export_profile_t p;
  st_config_t *cfg = NULL;
  json_t *run = NULL, *payload, *j;
  st_buf_t orig, copy;
  FILE *f;
  (void)state;

  st_export_profile_init(&p);
  j = json_pack("{s:s, s:s, s:{s:[s]}}", "name", "bad", "kind", "json:raw", "distribution",
                "targets", "oci://user:pw@reg.example/r:1");
  assert_int_equal(st_export_profile_from_json(j, &p, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "distribution"));
  json_decref(j);
  j = json_pack("{s:s, s:s, s:{s:[s], s:i}}", "name", "bad", "kind", "json:raw",
                "distribution", "targets", "s3://x", "colour", 1);
  assert_int_equal(st_export_profile_from_json(j, &p, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "distribution.colour"));
  json_decref(j);

  make_profile("{\"name\":\"dx\",\"kind\":\"json:raw\",\"project\":\"p5\","
               "\"distribution\":{\"targets\":[\"s3://copies/dx.tgz\"],\"retain_days\":7}}");
  assert_int_equal(st_export_profile_get(pool, ta, "dx", &p, &err), 0);
  assert_int_equal(json_integer_value(json_object_get(p.distribution, "retain_days")), 7);
  st_export_profile_release(&p);
  assert_int_equal(start(ta, "dx", 4, r, &err), 0);
  if (run_export(r, NULL, &err))
    fail_msg("run: %s", st_error_text(&err));
  snprintf(key, sizeof(key), "oci-%s", r);
  assert_non_null(payload = queued_payload(key));
  assert_string_equal(json_string_value(json_object_get(payload, "run_id")), r);
  assert_string_equal(json_string_value(json_array_get(json_object_get(payload, "targets"), 0)),
                      "s3://copies/dx.tgz");
  assert_int_equal(json_integer_value(json_object_get(payload, "retain_days")), 7);

  /* the distributor, configured with this store and the trusted public key */
  snprintf(pub, sizeof(pub), "%s/trusted.pub", work);
  assert_non_null(f = fopen(pub, "wb"));
  fputs(ED25519_PUB_PEM, f);
  fclose(f);
  assert_int_equal(st_config_load(&cfg, NULL, &err), 0);
  assert_int_equal(st_config_set(cfg, "objstore", "fs", &err), 0);
  assert_int_equal(st_config_set(cfg, "data_dir", root, &err), 0);
  assert_int_equal(st_config_set(cfg, "oci_trusted_key", pub, &err), 0);
  assert_int_equal(st_config_set(cfg, "export_tmp_dir", work, &err), 0);
  if (run_oci(cfg, payload, &err))
    fail_msg("oci_distribute: %s", st_error_text(&err));
  get_object(artifact(r, &run), &orig);
  snprintf(key, sizeof(key), "tenants/%s/copies/dx.tgz", ta);
  get_object(key, &copy);
  assert_int_equal(orig.len, copy.len);
  assert_memory_equal(orig.data, copy.data, orig.len);
  assert_int_equal(sql_int("SELECT count(*) FROM export_distributions WHERE run_id::text = $1 "
                           "AND target = 's3://copies/dx.tgz' AND state = 'pushed' AND "
                           "retain_until IS NOT NULL", r), 1);
  /* the stored bundle replaced behind the run's back: refused, nothing copied */
  {
    uint8_t d[32];
    char hex[65], path[4200];
    snprintf(path, sizeof(path), "%s/swapped", work);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(orig.data, 1, orig.len - 1, f), orig.len - 1);
    fclose(f);
    assert_int_equal(st_sha256_file(path, d, NULL, &err), 0);
    st_sha256_hex(d, hex);
    snprintf(key, sizeof(key), "%s",
             json_string_value(json_object_get(json_object_get(run, "artifact"), "key")));
    assert_int_equal(st_objstore_delete(store, ta, key, &err), 0);
    assert_int_equal(st_objstore_put_file(store, ta, key, hex, path, NULL, &err), 0);
    unlink(path);
  }
  json_object_set_new(payload, "targets", json_pack("[s]", "s3://copies/dx2.tgz"));
  assert_int_equal(run_oci(cfg, payload, &err), ST_EVERIFY);
  assert_non_null(strstr(err.msg, "reads back as"));
  snprintf(key, sizeof(key), "tenants/%s/copies/dx2.tgz", ta);
  {
    st_objstore_stat_t sb;
    assert_int_equal(st_objstore_stat(store, ta, key, &sb, &err), ST_ENOENT);
  }
  /* a run that is not built has nothing to distribute */
  json_object_set_new(payload, "run_id", json_string("00000000-0000-4000-8000-000000000000"));
  assert_int_equal(run_oci(cfg, payload, &err), ST_ENOENT);
  unlink(pub);
  assert_int_equal(count_dir(work), 0);
  st_config_free(cfg);
  json_decref(payload);
  json_decref(run);
  st_buf_release(&orig);
  st_buf_release(&copy);
}

static void ledger_change_fails_with_nothing_stored(void **state) {
  char r[40], st[32];
  st_error_t err = ST_ERROR_INIT;
  st_export_profile_t p;
  st_export_plan_t plan;
  (void)state;

  memset(&plan, 0, sizeof(plan));
  make_profile("{\"name\":\"chg\",\"kind\":\"json:raw\",\"project\":\"p3\"}");
  st_export_profile_init(&p);
  assert_int_equal(st_export_profile_get(pool, ta, "chg", &p, &err), 0);
  assert_int_equal(st_export_run_start(pool, ta, &p, NULL, 4, NULL, r, &err), 0);
  assert_int_equal(st_export_plan_build(pool, ta, &p, &plan, &err), 0);
  assert_int_equal(st_export_plan_record(pool, ta, r, &plan, &err), 0);
  st_test_ledger_load(pool, ta, "osv/STELLA-CRATES-0005.json");
  assert_int_equal(run_export(r, NULL, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "the ledger changed"));
  assert_int_equal(st_export_run_state(pool, ta, r, st, sizeof(st), &err), 0);
  assert_string_equal(st, "planning"); /* the worker marks it failed (worker.c) */
  assert_int_equal(count_dir(work), 0);
  assert_int_equal(st_export_run_set_state(pool, ta, r, "failed", "ledger changed", &err), 0);
  st_export_plan_release(&plan);
  st_export_profile_release(&p);
}

static void single_flight_and_tenant_limit(void **state) {
  char r1[40], r2[40], r3[40];
  st_error_t err = ST_ERROR_INIT;
  (void)state;

  make_profile("{\"name\":\"sf\",\"kind\":\"json:raw\"}");
  make_profile("{\"name\":\"multi\",\"kind\":\"json:raw\",\"single_flight\":false}");
  assert_int_equal(start(ta, "sf", 2, r1, &err), 0);
  assert_int_equal(start(ta, "sf", 2, r3, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "single-flight"));
  assert_int_equal(start(ta, "multi", 2, r2, &err), 0);
  assert_int_equal(start(ta, "multi", 2, r3, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "limit 2"));
  assert_int_equal(st_export_run_cancel(pool, ta, r1, NULL, &err), 0);
  assert_int_equal(st_export_run_cancel(pool, ta, r2, NULL, &err), 0);
  /* a run id that is not a UUID is simply not found */
  assert_int_equal(st_export_run_cancel(pool, ta, "x'; DROP TABLE export_runs; --", NULL, &err),
                   ST_ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(raw_deterministic_verified_and_evented),
      cmocka_unit_test(policy_joins_and_redaction),
      cmocka_unit_test(zstd_and_none),
      cmocka_unit_test(cancel_leaves_nothing),
      cmocka_unit_test(killed_worker_leftovers_cleaned),
      cmocka_unit_test(distribution_handoff_and_fetch),
      cmocka_unit_test(ledger_change_fails_with_nothing_stored),
      cmocka_unit_test(single_flight_and_tenant_limit),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
