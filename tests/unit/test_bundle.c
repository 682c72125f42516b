/* test_bundle.c: sealed bundles (bundle.h).
 *
 * Golden data (tests/unit/data/bundle/<case>/): spec.json + input/ -> the exact
 * manifest.json bytes -> the exact verification report (STELLA_GOLDEN_UPDATE=1 rewrites
 * the expected files; review the diff). Determinism across input order, mtimes and
 * memory/file sources. Wrong key, no key, missing entry, extra
 * entry, stray file each fail with their own reason. Proofs: pass, tampered content,
 * index, key, private subjects. Spec errors name what is wrong. Timestamps are covered
 * against a real TSA in tests/e2e/bundle_interop.sh; every-byte tampering in
 * test_bundle_tamper.c. Kind bootstrap: metadata shape at seal, payload layout rules at verify;
 * the same layout rules for Trivy exports (kind export, export_kind trivy:*). */
#include "st_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_fixtures.h"
#include "stella/base64.h"
#include "stella/bundle.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/sha256.h"
#include "stella/tgz.h"

static const st_bundle_check_t *check_named(const st_bundle_report_t *r, const char *name) {
  for (size_t i = 0; i < r->nchecks; i++)
    if (strcmp(r->checks[i].name, name) == 0)
      return &r->checks[i];
  fail_msg("no check %s", name);
  return NULL;
}

static void expect_fail(const st_buf_t *tgz, const st_pubkey_t *key, const char *check,
                        const char *reason_part) {
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  const st_bundle_check_t *c;
  st_bundle_report_init(&rep);
  assert_int_equal(verify_mem(tgz, key, &rep, &err), ST_EVERIFY);
  c = check_named(&rep, check);
  if (c->status != ST_BUNDLE_FAIL || (reason_part && !strstr(c->reason.data, reason_part)))
    fail_msg("check %s: %s '%s' (want fail with '%s')", check, st_bundle_status_text(c->status),
             c->reason.data, reason_part ? reason_part : "");
  st_bundle_report_release(&rep);
}

/* ---- tests ---- */

static void seal_and_verify(void **state) {
  st_buf_t tgz = ST_BUF_INIT, js = ST_BUF_INIT;
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  st_bundle_sealed_t res;
  st_bundle_spec_t spec = {"evidence", NULL, NULL, CREATED, NULL, small_inputs, 3, 0, &res};

  assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, path_in("s.tgz"), &err), 0);
  assert_int_equal(res.entries, 3);
  assert_string_equal(res.created, CREATED);
  assert_int_equal(strncmp(res.id, "b-", 2), 0);
  assert_int_equal(strlen(res.id), 34);
  read_all(path_in("s.tgz"), &tgz);
  st_bundle_report_init(&rep);
  assert_int_equal(verify_mem(&tgz, g_pub, &rep, &err), 0);
  assert_null(st_bundle_report_failed(&rep));
  assert_int_equal(check_named(&rep, "timestamp")->status, ST_BUNDLE_SKIP);
  assert_string_equal(rep.id.data, res.id);
  assert_string_equal(rep.tenant.data, "default");
  assert_string_equal(rep.keyid.data, ED25519_KEYID);
  assert_int_equal(st_bundle_report_json(&rep, &js), 0);
  assert_non_null(strstr(js.data, "\"ok\":true"));
  /* From a file too. */
  {
    const st_pubkey_t *keys[1] = {g_pub};
    st_bundle_trust_t trust = {keys, 1, NULL, 0, NULL};
    assert_int_equal(st_bundle_verify(path_in("s.tgz"), &trust, &rep, &err), 0);
    assert_int_equal(st_bundle_verify(path_in("missing.tgz"), &trust, &rep, &err), ST_EIO);
  }
  st_bundle_report_release(&rep);
  st_buf_release(&tgz);
  st_buf_release(&js);
}

static void determinism(void **state) {
  st_bundle_input_t rev[3], files[3];
  st_bundle_spec_t spec = {"evidence", "ev-1", "acme", CREATED, NULL, rev, 3, 0, NULL};
  st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT, c = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  struct timespec ts[2] = {{1000, 0}, {1000, 0}};

  seal_small(path_in("d1.tgz"), 0, &a);
  for (int i = 0; i < 3; i++)
    rev[i] = small_inputs[2 - i];
  assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, path_in("d2.tgz"), &err), 0);
  read_all(path_in("d2.tgz"), &b);
  assert_int_equal(a.len, b.len);
  assert_memory_equal(a.data, b.data, a.len);

  /* The same contents from files with odd mtimes, added in yet another order. */
  mkdir(path_in("src"), 0700);
  mkdir(path_in("src/dir"), 0700);
  for (int i = 0; i < 3; i++) {
    const st_bundle_input_t *in = &small_inputs[(i + 1) % 3];
    char *p = strdup(path_in("src"));
    FILE *f;
    char full[600];
    snprintf(full, sizeof(full), "%s/%s", p, in->path);
    f = fopen(full, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(in->data, 1, in->len, f), in->len);
    fclose(f);
    ts[0].tv_sec = ts[1].tv_sec = 1000 + 77 * i;
    assert_int_equal(utimensat(AT_FDCWD, full, ts, 0), 0);
    files[i] = *in;
    files[i].src = ST_BUNDLE_SRC_FILE;
    files[i].fs_path = strdup(full);
    files[i].data = NULL;
    free(p);
  }
  spec.inputs = files;
  assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, path_in("d3.tgz"), &err), 0);
  read_all(path_in("d3.tgz"), &c);
  assert_int_equal(a.len, c.len);
  assert_memory_equal(a.data, c.data, a.len);
  for (int i = 0; i < 3; i++)
    free((char *)files[i].fs_path);
  st_buf_release(&a);
  st_buf_release(&b);
  st_buf_release(&c);
}

static void wrong_key_and_no_key(void **state) {
  st_buf_t tgz = ST_BUF_INIT;
  seal_small(path_in("k.tgz"), 0, &tgz);
  expect_fail(&tgz, g_p256_pub, "signature", "unknown key");
  expect_fail(&tgz, NULL, "signature", "no trusted key");
  st_buf_release(&tgz);
}

static void missing_extra_stray(void **state) {
  st_buf_t tgz = ST_BUF_INIT, re = ST_BUF_INIT;
  fileset_t fs;
  ssize_t i;

  seal_small(path_in("m.tgz"), 0, &tgz);
  fileset_from_tgz(&tgz, &fs);
  i = fileset_find(&fs, "payload/dir/b.json");
  assert_true(i >= 0);
  fileset_to_tgz(&fs, i, &re);
  expect_fail(&re, g_pub, "entries", "missing entry: 'payload/dir/b.json'");
  expect_fail(&re, g_pub, "checksums", "listed in SHA256SUMS but not in the bundle");

  fs.path[fs.n] = strdup("payload/extra.txt");
  st_buf_init(&fs.data[fs.n], 0);
  assert_int_equal(st_buf_adds(&fs.data[fs.n], "extra"), 0);
  fs.n++;
  fileset_to_tgz(&fs, -1, &re);
  expect_fail(&re, g_pub, "entries", "extra entry: 'payload/extra.txt'");
  fs.n--;
  free(fs.path[fs.n]);
  st_buf_release(&fs.data[fs.n]);

  fs.path[fs.n] = strdup("README");
  st_buf_init(&fs.data[fs.n], 0);
  fs.n++;
  fileset_to_tgz(&fs, -1, &re);
  expect_fail(&re, g_pub, "archive", "unexpected file 'README'");
  fileset_release(&fs);
  st_buf_release(&tgz);
  st_buf_release(&re);
}

static void proofs(void **state) {
  st_buf_t proof = ST_BUF_INIT, bad = ST_BUF_INIT;
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  const st_pubkey_t *keys[1] = {g_pub}, *wrong[1] = {g_p256_pub};
  st_bundle_trust_t trust = {keys, 1, NULL, 0, NULL}, wtrust = {wrong, 1, NULL, 0, NULL};
  char *p;

  st_bundle_report_init(&rep);
  for (int priv = 0; priv < 2; priv++) {
    seal_small(path_in("p.tgz"), priv, NULL);
    st_buf_reset(&proof);
    assert_int_equal(st_bundle_prove(path_in("p.tgz"), "dir/b.json", &proof, &err), 0);
    /* The signed statement names the other entries only without private subjects. */
    {
      json_t *pj = NULL;
      st_buf_t stmt = ST_BUF_INIT;
      const char *pl;
      assert_int_equal(st_json_parse(proof.data, proof.len, NULL, &pj, &err), 0);
      pl = json_string_value(json_object_get(json_object_get(pj, "envelope"), "payload"));
      assert_non_null(pl);
      assert_int_equal(st_base64_decode(&stmt, pl, strlen(pl), &err), 0);
      assert_int_equal(strstr(stmt.data, "payload/a.txt") != NULL, !priv);
      assert_null(strstr(proof.data, "payload/a.txt"));
      json_decref(pj);
      st_buf_release(&stmt);
    }
    assert_int_equal(st_bundle_proof_verify(proof.data, proof.len, &trust, &rep, &err), 0);
    assert_string_equal(rep.entry.data, "payload/dir/b.json");
    assert_int_equal(rep.nchecks, 5);
    assert_int_equal(st_bundle_proof_verify(proof.data, proof.len, &wtrust, &rep, &err),
                     ST_EVERIFY);
    assert_int_equal(check_named(&rep, "signature")->status, ST_BUNDLE_FAIL);

    /* Content "eyJiIjoyfQ==" ({"b":2}) -> "eyJiIjozfQ==" ({"b":3}). */
    st_buf_reset(&bad);
    assert_int_equal(st_buf_add(&bad, proof.data, proof.len), 0);
    p = strstr(bad.data, "eyJiIjoyfQ==");
    assert_non_null(p);
    p[6] = 'z';
    assert_int_equal(st_bundle_proof_verify(bad.data, bad.len, &trust, &rep, &err), ST_EVERIFY);
    assert_int_equal(check_named(&rep, "content")->status, ST_BUNDLE_FAIL);

    st_buf_reset(&bad);
    assert_int_equal(st_buf_add(&bad, proof.data, proof.len), 0);
    p = strstr(bad.data, "\"index\":1");
    assert_non_null(p);
    p[8] = '0';
    assert_int_equal(st_bundle_proof_verify(bad.data, bad.len, &trust, &rep, &err), ST_EVERIFY);
    assert_int_equal(check_named(&rep, "merkle")->status, ST_BUNDLE_FAIL);

    assert_int_equal(st_bundle_proof_verify("{}", 2, &trust, &rep, &err), ST_EVERIFY);
    assert_int_equal(check_named(&rep, "proof")->status, ST_BUNDLE_FAIL);
  }
  assert_int_equal(st_bundle_prove(path_in("p.tgz"), "nope", &proof, &err), ST_ENOENT);
  st_bundle_report_release(&rep);
  st_buf_release(&proof);
  st_buf_release(&bad);
}

#define DIGEST64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void spec_errors(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_bundle_input_t in[2] = {small_inputs[0], small_inputs[0]};
  st_bundle_spec_t spec = {"evidence", NULL, NULL, CREATED, NULL, in, 1, 0, NULL};
  const char *out = path_in("e.tgz");
  json_t *meta;
  struct {
    const char *kind, *id, *tenant, *created, *path;
    int n, code;
    const char *msg;
  } cases[] = {
      {"nokind", NULL, NULL, CREATED, "a", 1, ST_EINVAL, "kind"},
      {"evidence", "bad id!", NULL, CREATED, "a", 1, ST_EINVAL, "id"},
      {"evidence", NULL, "bad/tenant", CREATED, "a", 1, ST_EINVAL, "tenant"},
      {"evidence", NULL, NULL, "2025-02-30T00:00:00Z", "a", 1, ST_EINVAL, "created"},
      {"evidence", NULL, NULL, "2025-01-02 03:04:05", "a", 1, ST_EINVAL, "created"},
      {"evidence", NULL, NULL, CREATED, "../x", 1, ST_EUNSAFE, "'..'"},
      {"evidence", NULL, NULL, CREATED, "a//b", 1, ST_EUNSAFE, "empty"},
      {"evidence", NULL, NULL, CREATED, "q\"uote", 1, ST_EUNSAFE, "'\"'"},
      {"evidence", NULL, NULL, CREATED, "a", 2, ST_EEXIST, "given twice"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memset(&err, 0, sizeof(err));
    spec.kind = cases[i].kind;
    spec.id = cases[i].id;
    spec.tenant = cases[i].tenant;
    spec.created = cases[i].created;
    in[0].path = in[1].path = cases[i].path;
    spec.ninputs = (size_t)cases[i].n;
    assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, out, &err), cases[i].code);
    if (!strstr(err.msg, cases[i].msg))
      fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
    assert_int_equal(access(out, F_OK), -1);
  }
  /* Metadata keys follow the kind's rules; a symlink input is refused. */
  spec.kind = "evidence";
  spec.id = spec.tenant = NULL;
  spec.created = CREATED;
  in[0] = small_inputs[0];
  spec.ninputs = 1;
  meta = json_pack("{s:s}", "bad key", "v");
  spec.metadata = meta;
  assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, out, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "metadata key"));
  json_decref(meta);
  spec.metadata = NULL;
  assert_int_equal(symlink("/etc/passwd", path_in("link")), 0);
  in[0].src = ST_BUNDLE_SRC_FILE;
  in[0].fs_path = path_in("link");
  assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, out, &err), ST_EUNSAFE);
  /* 50,001 files each in its own directory: more archive entries than a verifier accepts. */
  {
    size_t nin = 50001;
    st_bundle_input_t *many = calloc(nin, sizeof(*many));
    char *names = calloc(nin, 16);
    assert_non_null(many);
    assert_non_null(names);
    for (size_t k = 0; k < nin; k++) {
      snprintf(names + 16 * k, 16, "d%05zu/f", k);
      many[k] = small_inputs[0];
      many[k].path = names + 16 * k;
    }
    spec.inputs = many;
    spec.ninputs = nin;
    assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, out, &err), ST_ETOOBIG);
    assert_non_null(strstr(err.msg, "verifiers accept at most 100000"));
    spec.inputs = in;
    spec.ninputs = 1;
    free(many);
    free(names);
  }
  /* SOURCE_DATE_EPOCH sets created when none is given. */
  {
    st_bundle_sealed_t res;
    in[0] = small_inputs[0];
    spec.created = NULL;
    spec.result = &res;
    setenv("SOURCE_DATE_EPOCH", "1735787045", 1);
    assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, out, &err), 0);
    assert_string_equal(res.created, CREATED);
    setenv("SOURCE_DATE_EPOCH", "12x", 1);
    assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, out, &err), ST_EINVAL);
    unsetenv("SOURCE_DATE_EPOCH");
  }
}

/* P-256 bundles verify, but are not byte-reproducible (ECDSA signatures are random). */
static void p256_bundle(void **state) {
  st_bundle_spec_t spec = {"export", "x", "t", CREATED, NULL, small_inputs, 3, 0, NULL};
  st_buf_t tgz = ST_BUF_INIT;
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_bundle_seal(&spec, g_p256, NULL, path_in("p256.tgz"), &err), 0);
  read_all(path_in("p256.tgz"), &tgz);
  st_bundle_report_init(&rep);
  assert_int_equal(verify_mem(&tgz, g_p256_pub, &rep, &err), 0);
  expect_fail(&tgz, g_pub, "signature", NULL);
  st_bundle_report_release(&rep);
  st_buf_release(&tgz);
}

/* Allocation failures anywhere in verification are reported, never crash or leak. */
static void verify_alloc_failures(void **state) {
  st_buf_t tgz = ST_BUF_INIT;
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  int rc = -1;
  seal_small(path_in("a.tgz"), 0, &tgz);
  for (long n = 0; rc != 0 && n < 100000; n++) {
    st_bundle_report_init(&rep);
    st_mem_fail_after(n);
    rc = verify_mem(&tgz, g_pub, &rep, &err);
    st_mem_fail_after(-1);
    st_bundle_report_release(&rep);
  }
  assert_int_equal(rc, 0);
  st_buf_release(&tgz);
}

/* ---- golden data ---- */

static void golden_inputs(const char *dir, const char *rel, st_bundle_input_t *in, size_t *n) {
  char full[2048], r2[1024];
  DIR *d;
  struct dirent *de;
  snprintf(full, sizeof(full), "%s/%s", dir, rel);
  if (!(d = opendir(full)))
    return;
  while ((de = readdir(d))) {
    struct stat st;
    if (de->d_name[0] == '.')
      continue;
    snprintf(r2, sizeof(r2), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
    snprintf(full, sizeof(full), "%s/%s", dir, r2);
    assert_int_equal(stat(full, &st), 0);
    if (S_ISDIR(st.st_mode)) {
      golden_inputs(dir, r2, in, n);
      continue;
    }
    assert_true(*n < 16);
    memset(&in[*n], 0, sizeof(in[0]));
    in[*n].path = strdup(r2);
    in[*n].src = ST_BUNDLE_SRC_FILE;
    in[*n].fs_path = strdup(full);
    (*n)++;
  }
  closedir(d);
}

static void golden_compare(const char *file, const char *got, size_t len) {
  const char *update = getenv("STELLA_GOLDEN_UPDATE");
  st_buf_t want = ST_BUF_INIT;
  if (update && strcmp(update, "1") == 0) {
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(got, 1, len, f), len);
    fclose(f);
    return;
  }
  read_all(file, &want);
  if (want.len != len || memcmp(want.data, got, len))
    fail_msg("%s differs:\n got: %.*s\nwant: %s", file, (int)len, got, want.data);
  st_buf_release(&want);
}

static void golden_case(const char *name) {
  char dir[256], file[600], input[600];
  st_buf_t specj = ST_BUF_INIT, tgz = ST_BUF_INIT, js = ST_BUF_INIT;
  json_t *spec_json = NULL;
  st_bundle_input_t in[16];
  size_t n = 0;
  st_bundle_spec_t spec;
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  fileset_t fs;
  ssize_t mi;

  snprintf(dir, sizeof(dir), "data/bundle/%s", name);
  snprintf(file, sizeof(file), "%s/spec.json", dir);
  read_all(file, &specj);
  assert_int_equal(st_json_parse(specj.data, specj.len, NULL, &spec_json, &err), 0);
  snprintf(input, sizeof(input), "%s/input", dir);
  golden_inputs(input, "", in, &n);
  memset(&spec, 0, sizeof(spec));
  spec.kind = json_string_value(json_object_get(spec_json, "kind"));
  spec.id = json_string_value(json_object_get(spec_json, "id"));
  spec.tenant = json_string_value(json_object_get(spec_json, "tenant"));
  spec.created = json_string_value(json_object_get(spec_json, "created"));
  spec.metadata = json_object_get(spec_json, "metadata");
  spec.private_subjects = json_is_true(json_object_get(spec_json, "private"));
  spec.inputs = in;
  spec.ninputs = n;
  if (st_bundle_seal(&spec, g_signer, NULL, path_in("golden.tgz"), &err))
    fail_msg("%s: %s", name, err.msg);
  read_all(path_in("golden.tgz"), &tgz);
  fileset_from_tgz(&tgz, &fs);
  mi = fileset_find(&fs, "manifest.json");
  assert_true(mi >= 0);
  snprintf(file, sizeof(file), "%s/manifest.json", dir);
  golden_compare(file, fs.data[mi].data, fs.data[mi].len);
  st_bundle_report_init(&rep);
  assert_int_equal(verify_mem(&tgz, g_pub, &rep, &err), 0);
  assert_int_equal(st_bundle_report_json(&rep, &js), 0);
  assert_int_equal(st_buf_addc(&js, '\n'), 0);
  snprintf(file, sizeof(file), "%s/report.json", dir);
  golden_compare(file, js.data, js.len);
  st_bundle_report_release(&rep);
  fileset_release(&fs);
  for (size_t i = 0; i < n; i++) {
    free((char *)in[i].path);
    free((char *)in[i].fs_path);
  }
  json_decref(spec_json);
  st_buf_release(&specj);
  st_buf_release(&tgz);
  st_buf_release(&js);
}

static void golden(void **state) {
  DIR *d = opendir("data/bundle");
  struct dirent *de;
  int cases = 0;
  assert_non_null(d);
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') {
      golden_case(de->d_name);
      cases++;
    }
  closedir(d);
  assert_true(cases >= 3);
}

/* Each metadata text in bad[i][0] makes sealing fail with ST_EINVAL naming bad[i][1]. */
static void seal_refused(st_bundle_spec_t *spec, const char *const bad[][2], size_t n) {
  st_error_t err = ST_ERROR_INIT;
  json_t *meta;
  for (size_t i = 0; i < n; i++) {
    assert_non_null(meta = json_loads(bad[i][0], 0, NULL));
    spec->metadata = meta;
    memset(&err, 0, sizeof(err));
    assert_int_equal(st_bundle_seal(spec, g_signer, NULL, path_in("x.tgz"), &err), ST_EINVAL);
    if (!strstr(err.msg, bad[i][1]))
      fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i][1]);
    json_decref(meta);
  }
}

/* Kind export: the adapter's metadata fields, when present, must be well-formed. */
static void export_kind_rules(void **state) {
  static const char *const bad[][2] = {
      {"{\"export_kind\":\"json:weird\"}", "export_kind"},
      {"{\"export_kind\":\"json:raw\",\"plan_digest\":\"ABC\"}", "plan_digest"},
      {"{\"export_kind\":\"json:raw\",\"plan_digest\":\"" DIGEST64 "\"}", "format"},
      {"{\"export_kind\":\"json:raw\",\"plan_digest\":\"" DIGEST64 "\",\"format\":\"ndjson\","
       "\"compression\":\"lz4\"}", "compression"},
      {"{\"export_kind\":\"json:raw\",\"plan_digest\":\"" DIGEST64 "\",\"format\":\"ndjson\","
       "\"compression\":\"gzip\",\"counts\":{\"advisories\":-1}}", "counts.advisories"},
  };
  const char *good = "{\"export_kind\":\"json:policy\",\"plan_digest\":\"" DIGEST64 "\","
                     "\"format\":\"ndjson\",\"compression\":\"none\",\"counts\":{\"findings\":3}}";
  st_bundle_spec_t spec = {"export", NULL, "t", CREATED, NULL, small_inputs, 1, 0, NULL};
  const char *out = path_in("x.tgz");
  st_error_t err = ST_ERROR_INIT;
  json_t *meta;
  (void)state;
  seal_refused(&spec, bad, sizeof(bad) / sizeof(bad[0]));
  assert_non_null(meta = json_loads(good, 0, NULL));
  spec.metadata = meta;
  assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, out, &err), 0);
  json_decref(meta);
  unlink(out);
}

/* Kind bootstrap: metadata shape at seal time; at verify time the payload must be exactly
 * an OCI layout whose blob names are their signed digests and hold every ref. */
#define SHA_EMPTY_OBJ "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
static void layout_pack(const char *kind, const char *blob_content, const char *extra,
                        const char *meta_text, const char *want_fail) {
  st_bundle_input_t in[4] = {
      {"oci/oci-layout", ST_BUNDLE_SRC_MEM, NULL, "{\"imageLayoutVersion\":\"1.0.0\"}", 30, NULL},
      {"oci/index.json", ST_BUNDLE_SRC_MEM, NULL, "{}", 2, NULL},
      {"oci/blobs/sha256/" SHA_ABC, ST_BUNDLE_SRC_MEM, NULL, blob_content, 3, NULL},
      {extra, ST_BUNDLE_SRC_MEM, NULL, "x", 1, NULL},
  };
  st_bundle_spec_t spec = {kind, NULL, "t", CREATED, NULL, in, extra ? 4 : 3, 0, NULL};
  st_buf_t tgz = ST_BUF_INIT;
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  json_t *meta = json_loads(meta_text, 0, NULL);

  assert_non_null(meta);
  spec.metadata = meta;
  assert_int_equal(st_bundle_seal(&spec, g_signer, NULL, path_in("boot.tgz"), &err), 0);
  read_all(path_in("boot.tgz"), &tgz);
  if (want_fail) {
    expect_fail(&tgz, g_pub, "kind", want_fail);
  } else {
    st_bundle_report_init(&rep);
    assert_int_equal(verify_mem(&tgz, g_pub, &rep, &err), 0);
    st_bundle_report_release(&rep);
  }
  json_decref(meta);
  st_buf_release(&tgz);
  unlink(path_in("boot.tgz"));
}

static void bootstrap_pack(const char *blob_content, const char *extra, const char *meta_text,
                           const char *want_fail) {
  layout_pack("bootstrap", blob_content, extra, meta_text, want_fail);
}

/* Kind export with a Trivy export_kind (workers/trivy): an OCI layout payload (plus
 * rejects.ndjson), gzip, the kind's Trivy layer media type. */
#define TRIVY_META(kind, fmt, mt)                                                          \
  "{\"export_kind\":\"" kind "\",\"plan_digest\":\"" DIGEST64 "\",\"format\":\"" fmt "\","      \
  "\"compression\":\"gzip\",\"counts\":{\"documents\":1},\"index_sha256\":\"" SHA_EMPTY_OBJ "\","  \
  "\"media_type\":\"application/vnd.aquasec." mt ".layer.v1.tar+gzip\"}"
static void trivy_export_kind_rules(void **state) {
  static const char *const bad[][2] = {
      {TRIVY_META("trivy:db", "ndjson", "trivy.db"), "oci-layout"},
      {TRIVY_META("trivy:db", "oci-layout", "trivy.javadb"), "media_type"},
      {TRIVY_META("trivy:java-db", "oci-layout", "trivy.db"), "media_type"},
  };
  st_bundle_spec_t spec = {"export", NULL, "t", CREATED, NULL, small_inputs, 1, 0, NULL};
  (void)state;
  seal_refused(&spec, bad, sizeof(bad) / sizeof(bad[0]));
  layout_pack("export", "abc", NULL, TRIVY_META("trivy:db", "oci-layout", "trivy.db"), NULL);
  layout_pack("export", "abc", "rejects.ndjson",
              TRIVY_META("trivy:java-db", "oci-layout", "trivy.javadb"), NULL);
  layout_pack("export", "abc", "trivy.db", TRIVY_META("trivy:db", "oci-layout", "trivy.db"),
              "not part of an OCI layout");
  layout_pack("export", "abd", NULL, TRIVY_META("trivy:db", "oci-layout", "trivy.db"),
              "holds sha256:");
}

static void bootstrap_kind_rules(void **state) {
  static const char *const bad[][2] = {
      {"{}", "format"},
      {"{\"format\":\"oci-layout\",\"index_sha256\":\"ABC\"}", "index_sha256"},
      {"{\"format\":\"oci-layout\",\"index_sha256\":\"" DIGEST64 "\",\"refs\":[]}", "refs"},
      {"{\"format\":\"oci-layout\",\"index_sha256\":\"" DIGEST64 "\",\"refs\":[{\"ref\":"
       "\"a:1\",\"digest\":\"sha256:" DIGEST64 "\",\"type\":\"vm\"}]}", "refs[0]"},
  };
  const char *good = "{\"format\":\"oci-layout\",\"index_sha256\":\"" SHA_EMPTY_OBJ "\","
                     "\"refs\":[{\"ref\":\"a:1\",\"digest\":\"sha256:" SHA_ABC "\","
                     "\"type\":\"image\"}]}";
  const char *other_index = "{\"format\":\"oci-layout\",\"index_sha256\":\"" DIGEST64 "\","
                            "\"refs\":[{\"ref\":\"a:1\",\"digest\":\"sha256:" SHA_ABC "\","
                            "\"type\":\"image\"}]}";
  const char *missing_ref = "{\"format\":\"oci-layout\",\"index_sha256\":\"" SHA_EMPTY_OBJ
                            "\",\"refs\":[{\"ref\":\"a:1\",\"digest\":\"sha256:" DIGEST64
                            "\",\"type\":\"chart\"}]}";
  st_bundle_spec_t spec = {"bootstrap", NULL, "t", CREATED, NULL, small_inputs, 1, 0, NULL};
  (void)state;
  seal_refused(&spec, bad, sizeof(bad) / sizeof(bad[0]));
  bootstrap_pack("abc", NULL, good, NULL);
  bootstrap_pack("abd", NULL, good, "holds sha256:");
  bootstrap_pack("abc", "oci/notes.txt", good, "not part of an OCI layout");
  bootstrap_pack("abc", "oci/blobs/sha256/short", good, "not part of an OCI layout");
  bootstrap_pack("abc", NULL, other_index, "index_sha256");
  bootstrap_pack("abc", NULL, missing_ref, "not in the payload");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bootstrap_kind_rules),
      cmocka_unit_test(trivy_export_kind_rules),
      cmocka_unit_test(export_kind_rules),
      cmocka_unit_test(seal_and_verify),
      cmocka_unit_test(determinism),
      cmocka_unit_test(golden),
      cmocka_unit_test(wrong_key_and_no_key),
      cmocka_unit_test(missing_extra_stray),
      cmocka_unit_test(proofs),
      cmocka_unit_test(spec_errors),
      cmocka_unit_test(p256_bundle),
      cmocka_unit_test(verify_alloc_failures),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
