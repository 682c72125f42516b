/* test_export_json.c: the JSON export adapters and the run lifecycle on real Postgres
 * with the filesystem object store: json:raw twice gives byte-identical bundles that
 * verify, with every state change in the run's event log in order and one outbox row per
 * lifecycle event; zstd and uncompressed outputs are deterministic too and read back with
 * the zstd tool and cat; json:policy joins verdicts with advisories and VEX; redaction keeps
 * only allowlisted fields; a run cancelled mid-way stores nothing and leaves no work
 * files; a ledger change after planning fails the run with nothing stored; single-flight
 * and the per-tenant limit refuse a second active run; another tenant cannot read,
 * cancel or run a tenant's run. */
#include "st_test_db.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../keys_fixtures.h"
#include "export/adapter.h"
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

static void load_file(const char *tenant, const char *rel) {
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
    load_file(ta, *f);
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
                                       "ledger_policy_results", "ledger_policy_packs",
                                       "ledger_vex_documents", "ledger_advisories", NULL};
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

static void make_profile(const char *json) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  json_error_t jerr;
  json_t *j = json_loads(json, 0, &jerr);
  st_export_profile_init(&p);
  assert_non_null(j);
  if (st_export_profile_from_json(j, &p, &err) || st_export_profile_create(pool, ta, &p, NULL, &err))
    fail_msg("profile: %s", st_error_text(&err));
  st_export_profile_release(&p);
  json_decref(j);
}

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
  st_export_json_env_t env = {pool, store, signer, NULL, work, NULL, on_progress, c, 1};
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
  load_file(ta, "osv/STELLA-CRATES-0005.json");
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
      cmocka_unit_test(ledger_change_fails_with_nothing_stored),
      cmocka_unit_test(single_flight_and_tenant_limit),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
