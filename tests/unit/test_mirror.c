/* test_mirror.c: the mirror module without services: TUF's OLPC canonical JSON (escapes,
 * byte-order keys, integers only); index and patch line parsing refusals; a full mirror
 * from in-memory documents (identical documents stored once, an id shaped like a path is
 * only data) imports and verifies with Ed25519 and P-256 keys; duplicate ids; a foreign
 * key; a stray file, a symlinked blob and an unreferenced blob in a tree at rest; a delta
 * onto a tree that is not its base or onto nothing; a delta that removes, changes and adds
 * gives the same tree as a full build; an old mirror replayed with a fresh timestamp
 * (snapshot rollback) is refused on import. */
#include "st_test.h"

#include <sys/stat.h>
#include <unistd.h>

#include "keys_fixtures.h"
#include "mirror/mirror_int.h"
#include "stella/bundle.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/tgz.h"

/* Mirrors here are signed at 1800000000..1800000200; expiry is judged an hour later, so
 * the tests do not depend on the wall clock. */
#define NOW 1800003600

static char *dir;
static st_signer_t *ed, *p256;

static int setup(void **state) {
  (void)state;
  dir = fx_tmpdir();
  ed = fx_signer(ED25519_PRIV_PEM);
  p256 = fx_signer(P256_PRIV_PEM);
  return ed && p256 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  st_signer_free(ed);
  st_signer_free(p256);
  fx_rmdir(dir);
  return 0;
}

static const char *path_of(const char *rel) {
  static char p[4][4096];
  static int i;
  i = (i + 1) % 4;
  snprintf(p[i], sizeof(p[i]), "%s/%s", dir, rel);
  return p[i];
}

static void olpc_canonical(void **state) {
  json_t *v = json_pack("{s:i, s:s, s:[b, n, i], s:{s:s}}", "b", 1, "a", "x\"y\\z\n\xc3\xa9", "c",
                        1, -3, "B", "k", "v");
  st_buf_t out = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  assert_int_equal(st__tuf_canonical(v, &out, &err), 0);
  /* only '"' and '\' escaped; the newline and the UTF-8 bytes stay raw; keys by bytes */
  assert_string_equal(out.data, "{\"B\":{\"k\":\"v\"},\"a\":\"x\\\"y\\\\z\n\xc3\xa9\",\"b\":1,"
                                "\"c\":[true,null,-3]}");
  json_object_set_new(v, "r", json_real(1.5));
  st_buf_reset(&out);
  assert_int_equal(st__tuf_canonical(v, &out, &err), ST_EPARSE);
  json_decref(v);
  st_buf_release(&out);
}

static void index_lines(void **state) {
  static const char *const bad[] = {
      "{\"id\":\"a\",\"sha256\":\"00\",\"size\":1}",
      "{\"id\":\"a\",\"sha256\":\""
      "AB00000000000000000000000000000000000000000000000000000000000000"
      "\",\"size\":1}",
      "{\"id\":\"a\",\"sha256\":\""
      "0000000000000000000000000000000000000000000000000000000000000000"
      "\",\"size\":-1}",
      "{\"id\":\"\",\"sha256\":\""
      "0000000000000000000000000000000000000000000000000000000000000000"
      "\",\"size\":1}",
      "{\"id\":\"a\",\"sha256\":\""
      "0000000000000000000000000000000000000000000000000000000000000000"
      "\",\"size\":1,\"x\":1}",
      "[1]",
      "{\"id\":\"a\"",
      NULL};
  st__mentry_t e;
  st_error_t err = ST_ERROR_INIT;
  int del;
  (void)state;
  for (const char *const *b = bad; *b; b++) {
    assert_int_not_equal(st__mirror_index_parse(*b, strlen(*b), 0, &e, &del, &err), 0);
    st_free(e.id);
  }
  assert_int_equal(st__mirror_index_parse("{\"id\":\"a\",\"op\":\"del\"}", 21, 1, &e, &del, &err),
                   0);
  assert_true(del);
  st_free(e.id);
  assert_int_not_equal(
      st__mirror_index_parse("{\"id\":\"a\",\"op\":\"mv\"}", 20, 1, &e, &del, &err), 0);
  st_free(e.id);
  assert_int_not_equal(
      st__mirror_index_parse("{\"id\":\"a\",\"op\":\"del\",\"size\":1}", 30, 1, &e, &del, &err), 0);
  st_free(e.id);
}

typedef struct doc_s {
  st_mirror_dir d;
  const char *id, *json;
} doc_t;

static int build(const doc_t *docs, size_t n, st_signer_t *s, const char *base, int64_t issued,
                 const char *out, st_error_t *err) {
  st_mirror_builder_t *b = NULL;
  st_mirror_state_t *bs = NULL;
  st_mirror_opts_t o = {"acme", "p", issued, 0, 0, 0};
  int rc = st_mirror_builder_new(dir, &b, err);
  for (size_t i = 0; i < n && !rc; i++)
    rc = st_mirror_builder_add(b, docs[i].d, docs[i].id, docs[i].json, strlen(docs[i].json),
                               "2024-01-01T00:00:00Z", err);
  if (!rc && base)
    rc = st_mirror_state_load(path_of(base), &bs, err);
  if (!rc)
    rc = st_mirror_builder_seal(b, &o, bs, s, NULL, path_of(out), NULL, NULL, err);
  st_mirror_builder_free(b);
  st_mirror_state_free(bs);
  return rc;
}

static int import(const char *bundle, const char *tree, st_signer_t *s, st_mirror_import_t *sum,
                  st_error_t *err) {
  const st_pubkey_t *k[1] = {st_signer_pubkey(s)};
  st_mirror_trust_t t = {k, 1, NULL, 0, NOW};
  return st_mirror_import(path_of(bundle), path_of(tree), &t, sum, err);
}

static int verify(const char *tree, st_signer_t *s, st_error_t *err) {
  const st_pubkey_t *k[1] = {st_signer_pubkey(s)};
  st_mirror_trust_t t = {k, 1, NULL, 0, NOW};
  return st_mirror_verify_tree(path_of(tree), &t, NULL, err);
}

static const doc_t v1[] = {
    {ST_MIRROR_ADVISORIES, "A-1", "{\"id\":\"A-1\",\"modified\":\"2024-01-01T00:00:00Z\"}"},
    {ST_MIRROR_ADVISORIES, "../../etc/passwd", "{\"same\":true}"},
    {ST_MIRROR_VEX, "https://x/vex/1", "{\"same\":true}"},
    {ST_MIRROR_POLICY, "pack@1", "{\"schema\":\"p\"}"},
};

static void full_import_verify(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_mirror_import_t sum;
  st_signer_t *keys[2] = {ed, p256};
  (void)state;
  for (int k = 0; k < 2; k++) {
    const char *tree = k ? "p256tree" : "edtree";
    if (build(v1, 4, keys[k], NULL, 1800000000 + k, "f.tgz", &err))
      fail_msg("build: %s", st_error_text(&err));
    if (import("f.tgz", tree, keys[k], &sum, &err))
      fail_msg("import: %s", st_error_text(&err));
    assert_int_equal(sum.docs[ST_MIRROR_ADVISORIES], 2);
    assert_int_equal(sum.blobs_written, 3); /* {"same":true} stored once */
    assert_int_equal(verify(tree, keys[k], &err), 0);
    assert_int_equal(verify(tree, keys[!k], &err), ST_EVERIFY); /* root not trusted */
    assert_non_null(strstr(err.msg, "root.json"));
    unlink(path_of("f.tgz"));
  }
  assert_false(access(path_of("etc"), F_OK) == 0);
}

static void duplicate_id(void **state) {
  doc_t d[2] = {v1[0], v1[0]};
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  assert_int_equal(build(d, 2, ed, NULL, 1800000000, "dup.tgz", &err), ST_EEXIST);
  assert_false(access(path_of("dup.tgz"), F_OK) == 0);
}

static void tree_at_rest(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_mirror_import_t sum;
  char cmd[8192];
  (void)state;
  assert_int_equal(build(v1, 4, ed, NULL, 1800000000, "r.tgz", &err), 0);
  assert_int_equal(import("r.tgz", "rest", ed, &sum, &err), 0);
  assert_int_equal(st__mirror_write(path_of("rest/extra.txt"), "x", 1, &err), 0);
  assert_int_equal(verify("rest", ed, &err), ST_EVERIFY);
  assert_non_null(strstr(err.msg, "stray file"));
  unlink(path_of("rest/extra.txt"));
  assert_int_equal(verify("rest", ed, &err), 0);
  assert_int_equal(st__mirror_write(path_of("rest/tuf/1.root.json"), "{}", 2, &err), 0);
  assert_int_equal(verify("rest", ed, &err), ST_EVERIFY);
  assert_non_null(strstr(err.msg, "stray file tuf/1.root.json"));
  unlink(path_of("rest/tuf/1.root.json"));
  assert_int_equal(st__mirror_write(path_of("rest/vex/x.json"), "{}", 2, &err), 0);
  assert_int_equal(verify("rest", ed, &err), ST_EVERIFY);
  unlink(path_of("rest/vex/x.json"));
  assert_int_equal(verify("rest", ed, &err), 0);
  /* an unreferenced blob */
  assert_int_equal(st__mirror_mkdirs(path_of("rest/blobs/sha256/ab"), &err), 0);
  assert_int_equal(st__mirror_write(path_of("rest/blobs/sha256/ab/ab00000000000000000000000000"
                                            "00000000000000000000000000000000000000"),
                                    "x", 1, &err),
                   0);
  assert_int_equal(verify("rest", ed, &err), ST_EVERIFY);
  snprintf(cmd, sizeof(cmd), "rm -r '%s'", path_of("rest/blobs/sha256/ab"));
  assert_int_equal(system(cmd), 0);
  /* a blob replaced by a symlink to an identical file */
  snprintf(cmd, sizeof(cmd),
           "cd '%s' && f=$(find blobs -type f | head -n 1) && cp \"$f\" ../copy && rm \"$f\" && "
           "ln -s \"$PWD/../copy\" \"$f\"",
           path_of("rest"));
  assert_int_equal(system(cmd), 0);
  assert_int_equal(verify("rest", ed, &err), ST_EVERIFY);
}

static void delta_rules(void **state) {
  static const doc_t v2[] = {
      {ST_MIRROR_ADVISORIES, "A-1", "{\"id\":\"A-1\",\"modified\":\"2024-02-01T00:00:00Z\"}"},
      {ST_MIRROR_ADVISORIES, "A-2", "{\"id\":\"A-2\"}"},
      {ST_MIRROR_VEX, "https://x/vex/1", "{\"same\":true}"},
      {ST_MIRROR_POLICY, "pack@1", "{\"schema\":\"p\"}"},
  };
  st_error_t err = ST_ERROR_INIT;
  st_mirror_import_t sum;
  char cmd[8192];
  (void)state;
  assert_int_equal(build(v1, 4, ed, NULL, 1800000000, "d0.tgz", &err), 0);
  assert_int_equal(import("d0.tgz", "base", ed, &sum, &err), 0);
  assert_int_equal(build(v2, 4, ed, "base", 1800000100, "d01.tgz", &err), 0);
  assert_int_equal(build(v2, 4, ed, NULL, 1800000100, "f1.tgz", &err), 0);
  /* onto nothing, onto the wrong tree */
  assert_int_equal(import("d01.tgz", "none", ed, &sum, &err), ST_ECONFLICT);
  assert_int_equal(import("f1.tgz", "other", ed, &sum, &err), 0);
  assert_int_equal(import("d01.tgz", "other", ed, &sum, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "wrong base"));
  /* onto its base: the same tree as the full build */
  if (import("d01.tgz", "base", ed, &sum, &err))
    fail_msg("delta: %s", st_error_text(&err));
  assert_true(sum.delta);
  assert_int_equal(sum.added, 1);
  assert_int_equal(sum.changed, 1);
  assert_int_equal(sum.removed, 1);
  snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s' >/dev/null", path_of("base"), path_of("other"));
  assert_int_equal(system(cmd), 0);
  assert_false(access(path_of("none"), F_OK) == 0);
}

/* A freeze/rollback attack the bundle signature cannot stop (the key signs both): an old
 * mirror (T0's content, snapshot and targets) with a fresh, validly signed timestamp,
 * sealed as a proper bundle. Import onto the T1 tree refuses it, tree unchanged. */
static void snapshot_rollback(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_mirror_import_t sum;
  st_tgz_reader_t *r = NULL;
  st_buf_t raw = ST_BUF_INIT, c = ST_BUF_INIT, sig = ST_BUF_INIT, hex = ST_BUF_INIT;
  json_t *ts = NULL, *man = NULL, *e;
  st_bundle_input_t in[16];
  char paths[16][4096];
  st_bundle_spec_t spec;
  uint8_t before[32], after[32];
  size_t i, n = 0;
  (void)state;

  assert_int_equal(build(v1, 4, ed, NULL, 1800000000, "s0.tgz", &err), 0);
  assert_int_equal(build(v1 + 1, 3, ed, NULL, 1800000100, "s1.tgz", &err), 0);
  assert_int_equal(import("s1.tgz", "srb", ed, &sum, &err), 0);
  assert_int_equal(st__mirror_mkdirs(path_of("x0"), &err), 0);
  assert_int_equal(st_tgz_reader_open(path_of("s0.tgz"), NULL, &r, &err), 0);
  assert_int_equal(st_tgz_reader_extract(r, path_of("x0"), &err), 0);
  st_tgz_reader_free(r);
  /* timestamp: version past T1, same snapshot (T0), signed again */
  assert_int_equal(st__mirror_read(path_of("x0/payload/tuf/timestamp.json"), 1 << 20, &raw, &err),
                   0);
  assert_int_equal(st_json_parse(raw.data, raw.len, NULL, &ts, &err), 0);
  json_object_set_new(json_object_get(ts, "signed"), "version", json_integer(1800000200));
  assert_int_equal(st__tuf_canonical(json_object_get(ts, "signed"), &c, &err), 0);
  assert_int_equal(st_signer_sign(ed, c.data, c.len, &sig, &err), 0);
  assert_int_equal(st_buf_add_hex(&hex, sig.data, sig.len), 0);
  json_object_set_new(json_array_get(json_object_get(ts, "signatures"), 0), "sig",
                      json_string(hex.data));
  st_buf_reset(&c);
  assert_int_equal(st_jcs_encode(ts, &c, &err), 0);
  unlink(path_of("x0/payload/tuf/timestamp.json"));
  assert_int_equal(st__mirror_write(path_of("x0/payload/tuf/timestamp.json"), c.data, c.len, &err),
                   0);
  /* sealed again with the same metadata and payload paths */
  assert_int_equal(st__mirror_read(path_of("x0/manifest.json"), 1 << 20, &raw, &err), 0);
  assert_int_equal(st_json_parse(raw.data, raw.len, NULL, &man, &err), 0);
  json_array_foreach(json_object_get(man, "entries"), i, e) {
    const char *p = json_string_value(json_object_get(e, "path"));
    snprintf(paths[n], sizeof(paths[n]), "%s", path_of("x0"));
    strncat(paths[n], "/", sizeof(paths[n]) - strlen(paths[n]) - 1);
    strncat(paths[n], p, sizeof(paths[n]) - strlen(paths[n]) - 1);
    in[n] = (st_bundle_input_t){p + 8, ST_BUNDLE_SRC_FILE, paths[n], NULL, 0, NULL};
    n++;
  }
  memset(&spec, 0, sizeof(spec));
  spec.kind = "mirror";
  spec.tenant = "acme";
  spec.created = json_string_value(json_object_get(man, "created"));
  spec.metadata = json_object_get(man, "metadata");
  spec.inputs = in;
  spec.ninputs = n;
  if (st_bundle_seal(&spec, ed, NULL, path_of("replay.tgz"), &err))
    fail_msg("seal: %s", st_error_text(&err));
  assert_int_equal(st_sha256_file(path_of("srb/mirror.json"), before, NULL, &err), 0);
  assert_int_equal(import("replay.tgz", "srb", ed, &sum, &err), ST_EVERIFY);
  assert_non_null(strstr(err.msg, "rollback"));
  assert_int_equal(st_sha256_file(path_of("srb/mirror.json"), after, NULL, &err), 0);
  assert_memory_equal(before, after, 32);
  /* the same bundle onto nothing is a consistent (older) mirror: accepted */
  assert_int_equal(import("replay.tgz", "fresh", ed, &sum, &err), 0);
  json_decref(ts);
  json_decref(man);
  st_buf_release(&raw);
  st_buf_release(&c);
  st_buf_release(&sig);
  st_buf_release(&hex);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(olpc_canonical),     cmocka_unit_test(index_lines),
      cmocka_unit_test(full_import_verify), cmocka_unit_test(duplicate_id),
      cmocka_unit_test(tree_at_rest),       cmocka_unit_test(delta_rules),
      cmocka_unit_test(snapshot_rollback),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
