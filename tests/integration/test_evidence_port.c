/* test_evidence_port.c: portable evidence exports (evidence_port.h) between two lockers
 * (each its own filesystem store and signing key) on real Postgres: the export verifies
 * with the bundle verifier, keeps the source Merkle root, redacts run.actor, carries the
 * custody records and records evidence.exported; it imports into another tenant once
 * (idempotent), re-exports from there; and every bad bundle (a flipped byte, a truncated
 * file, an untrusted key, a plain snapshot, a path trick, an id holding other evidence)
 * is refused with nothing stored; an edited custody record cannot even be sealed. */
#include "st_test_db.h"

#include <stdlib.h>
#include <string.h>

#include "stella/bundle.h"
#include "stella/evidence_port.h"
#include "stella/jcs.h"
#include "stella/mem.h"
#include "stella/sha256.h"

typedef struct locker_s {
  st_objstore_t *store;
  st_signer_t *signer;
  st_evidence_t *ev;
  const st_pubkey_t *pub;
} locker_t;

static struct {
  const char *app, *admin;
  char a[64], b[64];
  char dir[64];
  st_db_pool_t *db;
  locker_t src, dst;
} fx;

static long long admin_int(const char *sql) {
  PGconn *c = PQconnectdb(fx.admin);
  PGresult *r = PQexec(c, sql);
  long long v = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
  PQclear(r);
  PQfinish(c);
  return v;
}

static void open_locker(locker_t *l, const char *name) {
  st_error_t err = ST_ERROR_INIT;
  char priv[160], pub[160], root[160];
  st_evidence_opts_t o = {0};

  snprintf(priv, sizeof(priv), "%s/%s.pem", fx.dir, name);
  snprintf(pub, sizeof(pub), "%s/%s.pub", fx.dir, name);
  snprintf(root, sizeof(root), "%s/%s-store", fx.dir, name);
  if (st_key_generate(ST_KEY_ED25519, priv, pub, &err) || st_signer_open(&l->signer, priv, &err) ||
      st_objstore_fs_new(&l->store, root, &err))
    fail_msg("%s", st_error_text(&err));
  o.db = fx.db;
  o.store = l->store;
  o.signer = l->signer;
  o.tmp_dir = fx.dir;
  if (st_evidence_new(&l->ev, &o, &err))
    fail_msg("%s", st_error_text(&err));
  l->pub = st_signer_pubkey(l->signer);
}

static void close_locker(locker_t *l) {
  st_evidence_free(l->ev);
  st_objstore_free(l->store);
  st_signer_free(l->signer);
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  st_test_db_setup(&fx.app, &fx.admin, "evp", fx.a, fx.b, sizeof(fx.a));
  snprintf(fx.dir, sizeof(fx.dir), "/tmp/st-evport-XXXXXX");
  assert_non_null(mkdtemp(fx.dir));
  if (st_db_pool_new(fx.app, 4, &fx.db, &err))
    fail_msg("%s", st_error_text(&err));
  open_locker(&fx.src, "src");
  open_locker(&fx.dst, "dst");
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  (void)state;
  close_locker(&fx.src);
  close_locker(&fx.dst);
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

static void upload(const char *text, char hex[65]) {
  st_error_t err = ST_ERROR_INIT;
  st_buf_t key = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  const char *p = text;
  assert_int_equal(st_sha256(text, strlen(text), d), 0);
  st_sha256_hex(d, hex);
  if (st_objstore_key(&key, fx.a, hex, &err) ||
      st_objstore_put(fx.src.store, fx.a, key.data, hex, strlen(text), mem_read, &p, NULL, &err))
    fail_msg("%s", st_error_text(&err));
  st_buf_release(&key);
}

/* A sealed snapshot id in tenant a of the source locker; out: its description. */
static void snapshot(const char *id, const char *text, json_t **out) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {fx.a, "alice", "req-1", NULL, NULL};
  char hex[65];
  json_t *p;
  upload(text, hex);
  p = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s}], s:[{s:s, s:{s:i}}],"
                " s:{s:s}}",
                "kind", "evaluation", "created", "2026-01-02T03:04:05Z", "run", "run_id", "r-1",
                "actor", "alice", "started", "2026-01-02T03:00:00Z", "inputs", "path",
                "sbom/a.json", "sha256", hex, "outputs", "path", "verdict.json", "json", "ok", 1,
                "environment", "image", "sha256:0123");
  assert_non_null(p);
  if (st_evidence_snapshot(fx.src.ev, &who, id, p, "job-1", out, &err))
    fail_msg("snapshot %s: %s", id, st_error_text(&err));
  json_decref(p);
}

static void export_to(locker_t *l, const char *tenant, const char *id, const char *path,
                      json_t **facts) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t who = {tenant, "bob", "req-x", NULL, NULL};
  if (st_evidence_export(l->ev, &who, id, path, facts, &err))
    fail_msg("export %s: %s", id, st_error_text(&err));
}

static int import_as(locker_t *l, const char *tenant, const char *path, const st_pubkey_t *key,
                     int *imported, st_error_t *err) {
  st_bundle_trust_t trust = {&key, 1, NULL, 0, NULL};
  st_evidence_who_t who = {tenant, "carol", "req-y", NULL, NULL};
  json_t *out = NULL;
  int rc = st_evidence_import(l->ev, &who, path, &trust, NULL, imported, &out, err);
  json_decref(out);
  return rc;
}

static long long rows_of(const char *tenant) {
  char q[200];
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '%s'", tenant);
  return admin_int(q);
}

static size_t imported_objects(const char *tenant) {
  st_objstore_page_t page = ST_OBJSTORE_PAGE_INIT;
  st_error_t err = ST_ERROR_INIT;
  char prefix[128];
  size_t n;
  snprintf(prefix, sizeof(prefix), "tenants/%s/evidence/imported/", tenant);
  if (st_objstore_list(fx.dst.store, tenant, prefix, NULL, 1000, &page, &err))
    fail_msg("%s", st_error_text(&err));
  n = page.count;
  st_objstore_page_release(&page);
  return n;
}

static void test_export_verifies_and_imports(void **state) {
  char path[128], again[128], re[128], q[300];
  json_t *desc = NULL, *facts = NULL, *facts2 = NULL, *facts3 = NULL;
  const st_pubkey_t *k = fx.src.pub;
  st_bundle_trust_t trust = {&k, 1, NULL, 0, NULL};
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  int imported = -1;

  (void)state;
  snapshot("ev-port", "{\"sbom\":\"port\"}", &desc);
  snprintf(path, sizeof(path), "%s/port.tgz", fx.dir);
  export_to(&fx.src, fx.a, "ev-port", path, &facts);
  assert_string_equal(json_string_value(json_object_get(facts, "merkle_root")),
                      json_string_value(json_object_get(desc, "merkle_root")));
  assert_int_equal(json_integer_value(json_object_get(facts, "custody_records")), 2);
  assert_string_equal(json_string_value(json_array_get(json_object_get(facts, "redacted"), 0)),
                      "run.actor");
  st_bundle_report_init(&rep);
  if (st_bundle_verify(path, &trust, &rep, &err))
    fail_msg("verify: %s", st_error_text(&err));
  assert_string_equal(rep.id.data, "ev-port");
  st_bundle_report_release(&rep);
  snprintf(
      q, sizeof(q),
      "SELECT count(*) FROM evidence_custody WHERE tenant_id = '%s' AND bundle_id ="
      " 'ev-port' AND event = 'evidence.exported' AND record->'detail'->>'export_sha256' = '%s'",
      fx.a, json_string_value(json_object_get(facts, "sha256")));
  assert_int_equal(admin_int(q), 1);

  /* the first export's evidence.exported record belongs to the bundle's custody now,
   * so a second export carries three records */
  snprintf(again, sizeof(again), "%s/port2.tgz", fx.dir);
  export_to(&fx.src, fx.a, "ev-port", again, &facts2);
  assert_int_equal(json_integer_value(json_object_get(facts2, "custody_records")), 3);

  /* into tenant b of the other locker: once, then idempotent */
  assert_int_equal(import_as(&fx.dst, fx.b, path, fx.src.pub, &imported, &err), 0);
  assert_int_equal(imported, 1);
  assert_int_equal(import_as(&fx.dst, fx.b, path, fx.src.pub, &imported, &err), 0);
  assert_int_equal(imported, 0);
  assert_int_equal(import_as(&fx.dst, fx.b, again, fx.src.pub, &imported, &err), 0);
  assert_int_equal(imported, 0); /* a later export of the same evidence */
  snprintf(q, sizeof(q),
           "SELECT count(*) FROM evidence_bundles WHERE tenant_id = '%s' AND bundle_id ="
           " 'ev-port' AND status = 'sealed' AND merkle_root = '%s' AND actor IS NULL",
           fx.b, json_string_value(json_object_get(desc, "merkle_root")));
  assert_int_equal(admin_int(q), 1);
  snprintf(q, sizeof(q),
           "SELECT count(*) FROM evidence_custody WHERE tenant_id = '%s' AND event ="
           " 'evidence.imported'",
           fx.b);
  assert_int_equal(admin_int(q), 1);
  snprintf(q, sizeof(q), "SELECT count(*) FROM evidence_artifacts WHERE tenant_id = '%s'", fx.b);
  assert_int_equal(admin_int(q), 3);
  assert_int_equal(imported_objects(fx.b), 1);
  {
    long long n = 0;
    if (st_evidence_custody_verify(fx.dst.ev, fx.b, NULL, &n, &err))
      fail_msg("custody: %s", st_error_text(&err));
    assert_int_equal(n, 1);
  }

  /* and onwards: tenant b's locker exports it again, anchored on evidence.imported */
  snprintf(re, sizeof(re), "%s/re.tgz", fx.dir);
  export_to(&fx.dst, fx.b, "ev-port", re, &facts3);
  k = fx.dst.pub;
  st_bundle_report_init(&rep);
  if (st_bundle_verify(re, &trust, &rep, &err))
    fail_msg("verify re-export: %s", st_error_text(&err));
  st_bundle_report_release(&rep);
  json_decref(desc);
  json_decref(facts);
  json_decref(facts2);
  json_decref(facts3);
}

static void expect_refused(const char *path, const st_pubkey_t *key, int code, const char *what) {
  st_error_t err = ST_ERROR_INIT;
  long long before = rows_of(fx.b);
  size_t objs = imported_objects(fx.b);
  int imported = -1;
  assert_int_equal(import_as(&fx.dst, fx.b, path, key, &imported, &err), code);
  if (!strstr(st_error_text(&err), what))
    fail_msg("%s: error '%s' lacks '%s'", path, st_error_text(&err), what);
  assert_int_equal(rows_of(fx.b), before);
  assert_int_equal(imported_objects(fx.b), objs);
}

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

static void copy_with(const char *from, const char *to, long flip_at, long truncate_to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  int c;
  long i = 0;
  assert_non_null(in);
  assert_non_null(out);
  while ((c = fgetc(in)) != EOF && (truncate_to < 0 || i < truncate_to)) {
    fputc(i == flip_at ? c ^ 0x01 : c, out);
    i++;
  }
  fclose(in);
  fclose(out);
}

/* The same payload as the export `good` of snapshot(.., text, ..) with its metadata, but
 * custody record 0 edited after hashing: the kind rule refuses to seal it (the same rule
 * refuses it at verification, so no key holder can pass it off either). */
static void forged_custody(const char *good, const char *text, const char *out) {
  st_evidence_facts_t f;
  st_error_t err = ST_ERROR_INIT;
  json_t *meta, *rec;
  st_bundle_spec_t spec = {0};
  static const char verdict[] = "{\"ok\":1}", env[] = "{\"image\":\"sha256:0123\"}";
  st_bundle_input_t in[3] = {
      {"inputs/sbom/a.json", ST_BUNDLE_SRC_MEM, NULL, text, strlen(text), NULL},
      {"outputs/verdict.json", ST_BUNDLE_SRC_MEM, NULL, verdict, sizeof(verdict) - 1, NULL},
      {"run/environment.json", ST_BUNDLE_SRC_MEM, NULL, env, sizeof(env) - 1, NULL}};

  st_evidence_facts_init(&f);
  if (st_evidence_facts_read(good, NULL, 0, &f, &err))
    fail_msg("%s", st_error_text(&err));
  meta = json_deep_copy(json_object_get(f.manifest, "metadata"));
  rec = json_object_get(
      json_array_get(json_object_get(json_object_get(meta, "export"), "custody"), 0), "record");
  json_object_set_new(rec, "actor", json_string("mallory"));
  spec.kind = "evidence";
  spec.id = "ev-refuse";
  spec.tenant = fx.a;
  spec.created = "2026-01-02T03:04:05Z";
  spec.metadata = meta;
  spec.inputs = in;
  spec.ninputs = 3;
  assert_int_not_equal(st_bundle_seal(&spec, fx.src.signer, NULL, out, &err), 0);
  assert_non_null(strstr(st_error_text(&err), "hash does not match the record"));
  json_decref(meta);
  st_evidence_facts_release(&f);
}

static void test_import_refusals(void **state) {
  char good[128], bad[128], cmd[700], plain[128];
  json_t *desc = NULL, *facts = NULL;
  long size;
  FILE *f;

  (void)state;
  snapshot("ev-refuse", "{\"sbom\":\"refuse\"}", &desc);
  snprintf(good, sizeof(good), "%s/refuse.tgz", fx.dir);
  snprintf(bad, sizeof(bad), "%s/bad.tgz", fx.dir);
  export_to(&fx.src, fx.a, "ev-refuse", good, &facts);
  f = fopen(good, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fclose(f);

  copy_with(good, bad, size / 2, -1);
  expect_refused(bad, fx.src.pub, ST_EVERIFY, "archive check failed");
  copy_with(good, bad, -1, size - 100);
  expect_refused(bad, fx.src.pub, ST_EVERIFY, "archive check failed");
  expect_refused(good, fx.dst.pub, ST_EVERIFY, "signature check failed");
  snprintf(cmd, sizeof(cmd), "%s/nope.tgz", fx.dir);
  expect_refused(cmd, fx.src.pub, ST_ENOENT, "nope.tgz");

  /* a plain snapshot bundle is not a portable export */
  snprintf(plain, sizeof(plain), "%s/plain.tgz", fx.dir);
  {
    st_error_t err = ST_ERROR_INIT;
    FILE *o = fopen(plain, "wb");
    const char *key = json_string_value(json_object_get(json_object_get(desc, "object"), "key"));
    assert_non_null(o);
    if (st_objstore_get(fx.src.store, fx.a, key, 0, ST_OBJSTORE_TO_END, to_file, o, &err))
      fail_msg("%s", st_error_text(&err));
    fclose(o);
  }
  expect_refused(plain, fx.src.pub, ST_EINVAL, "not a portable evidence export");

  /* path trick: an extra ../ member in the tar stream */
  snprintf(cmd, sizeof(cmd),
           "cd %s && rm -rf trick && mkdir trick && tar -xzf refuse.tgz -C trick && "
           "/usr/bin/python3 -c \"import tarfile,sys; t=tarfile.open('trick.tgz','w:gz'); "
           "[t.add('trick/'+n, arcname=n) for n in sorted(__import__('os').listdir('trick'))]; "
           "i=tarfile.TarInfo('../escape.txt'); i.size=0; t.addfile(i); t.close()\"",
           fx.dir);
  assert_int_equal(system(cmd), 0);
  snprintf(bad, sizeof(bad), "%s/trick.tgz", fx.dir);
  expect_refused(bad, fx.src.pub, ST_EVERIFY, "archive check failed");

  /* an edited custody record, the bundle otherwise validly signed */
  snprintf(bad, sizeof(bad), "%s/forged.tgz", fx.dir);
  forged_custody(good, "{\"sbom\":\"refuse\"}", bad);

  /* tenant b already holds ev-refuse with other evidence */
  {
    st_evidence_who_t who = {fx.b, "dave", NULL, NULL, NULL};
    st_error_t err = ST_ERROR_INIT;
    json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s}, s:[{s:s, s:{s:i}}]}", "kind", "job", "created",
                          "2026-02-02T00:00:00Z", "run", "run_id", "other", "actor", "dave",
                          "inputs", "path", "x.json", "json", "x", 2);
    if (st_evidence_snapshot(fx.dst.ev, &who, "ev-refuse", p, "job-2", NULL, &err))
      fail_msg("%s", st_error_text(&err));
    json_decref(p);
  }
  expect_refused(good, fx.src.pub, ST_ECONFLICT, "other evidence");
  json_decref(desc);
  json_decref(facts);
}

typedef struct pend_s {
  const st_evidence_who_t *who;
  const json_t *payload;
} pend_t;

static int pending_tx(PGconn *c, void *arg, st_error_t *err) {
  pend_t *pd = arg;
  int created = 0;
  return st_evidence_pending(fx.src.ev, c, pd->who, "ev-pending", pd->payload, "job-p", &created,
                             err);
}

static void test_export_refusals(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_who_t other = {fx.b, "eve", NULL, NULL, NULL};
  st_evidence_who_t own = {fx.a, "eve", NULL, NULL, NULL};
  char path[128];
  json_t *p;
  (void)state;
  snprintf(path, sizeof(path), "%s/x.tgz", fx.dir);
  /* another tenant's id does not exist there */
  assert_int_equal(st_evidence_export(fx.src.ev, &other, "ev-port", path, NULL, &err), ST_ENOENT);
  assert_int_equal(st_evidence_export(fx.src.ev, &own, "../etc", path, NULL, &err), ST_ENOENT);
  /* a pending bundle has nothing to export yet */
  p = json_pack("{s:s, s:s, s:{s:s, s:s}}", "kind", "job", "created", "2026-01-01T00:00:00Z", "run",
                "run_id", "p", "actor", "eve");
  {
    pend_t pd = {&own, p};
    if (st_db_tenant_tx(fx.db, fx.a, pending_tx, &pd, &err))
      fail_msg("%s", st_error_text(&err));
  }
  assert_int_equal(st_evidence_export(fx.src.ev, &own, "ev-pending", path, NULL, &err),
                   ST_ECONFLICT);
  json_decref(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_export_verifies_and_imports),
      cmocka_unit_test(test_import_refusals),
      cmocka_unit_test(test_export_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
