/* test_oci.c: OCI layouts (oci.h) and the registry client's offline parts
 * (oci_registry.h): validators, canonical encoding with fixed digests, the writer's
 * determinism and dedup, hostile tars refused by the extractor, tampered layouts refused
 * by the reader, reference parsing. Registry traffic is tested in
 * tests/e2e/oci_registry.sh against a real registry. */
#define _GNU_SOURCE
#include "st_test.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stella/mem.h"
#include "stella/oci.h"
#include "stella/oci_registry.h"
#include "stella/sha256.h"

static char *mkscratch(void) {
  char *d = st_strdup("/tmp/test_oci.XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void test_validators(void **state) {
  (void)state;
  assert_true(st_oci_digest_valid(ST_OCI_EMPTY_DIGEST));
  assert_false(st_oci_digest_valid("sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A"));
  assert_false(st_oci_digest_valid("sha512:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"));
  assert_false(st_oci_digest_valid("sha256:44136fa3"));
  assert_true(st_oci_repo_valid("stella/trivy-db"));
  assert_true(st_oci_repo_valid("a__b/c.d/e--f"));
  assert_false(st_oci_repo_valid("Upper"));
  assert_false(st_oci_repo_valid("a/../b"));
  assert_false(st_oci_repo_valid("a//b"));
  assert_false(st_oci_repo_valid("a/"));
  assert_false(st_oci_repo_valid("a___b"));
  assert_false(st_oci_repo_valid("a?mount=x"));
  assert_true(st_oci_tag_valid("2"));
  assert_true(st_oci_tag_valid("sha256-abc"));
  assert_false(st_oci_tag_valid(".hidden"));
  assert_false(st_oci_tag_valid("a/b"));
  assert_true(st_oci_media_type_valid(ST_OCI_MT_MANIFEST));
  assert_false(st_oci_media_type_valid("no-slash"));
  assert_false(st_oci_media_type_valid("a/b c"));
  assert_false(st_oci_media_type_valid("a/b\r\nX-Injected: 1"));
}

/* The empty descriptor and a manifest over it have fixed bytes and digests. */
static void test_encoding_golden(void **state) {
  st_oci_layout_t *l = NULL;
  st_oci_desc_t cfg = {0}, man = {0};
  st_buf_t json = ST_BUF_INIT;
  (void)state;
  assert_int_equal(st_oci_layout_new(&l, NULL), 0);
  assert_int_equal(st_oci_layout_add_empty(l, &cfg, NULL), 0);
  assert_string_equal(cfg.digest, ST_OCI_EMPTY_DIGEST);
  assert_int_equal(cfg.size, 2);
  st_oci_manifest_t m = {.artifact_type = "application/vnd.example+json", .config = &cfg};
  assert_int_equal(st_oci_manifest_encode(&m, &json, NULL), 0);
  assert_string_equal(json.data,
                      "{\"artifactType\":\"application/vnd.example+json\",\"config\":{\"digest\":"
                      "\"" ST_OCI_EMPTY_DIGEST "\",\"mediaType\":\"application/vnd.oci.empty.v1+"
                      "json\",\"size\":2},\"layers\":[],\"mediaType\":\"application/vnd.oci."
                      "image.manifest.v1+json\",\"schemaVersion\":2}");
  assert_int_equal(st_oci_layout_add_manifest(l, &m, &man, NULL), 0);
  assert_string_equal(man.artifact_type, "application/vnd.example+json");
  st_oci_desc_release(&cfg);
  st_oci_desc_release(&man);
  st_buf_release(&json);
  st_oci_layout_free(l);
}

static void test_encode_rejects(void **state) {
  st_oci_desc_t cfg = {.media_type = (char *)ST_OCI_MT_EMPTY, .digest = "sha256:zz", .size = 2};
  st_buf_t json = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  st_oci_manifest_t m = {.config = &cfg};
  (void)state;
  assert_int_equal(st_oci_manifest_encode(&m, &json, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "digest"));
  memcpy(cfg.digest, ST_OCI_EMPTY_DIGEST, sizeof(ST_OCI_EMPTY_DIGEST));
  m.artifact_type = "bad type";
  assert_int_equal(st_oci_manifest_encode(&m, &json, &err), ST_EINVAL);
  m.artifact_type = NULL;
  cfg.media_type = (char *)"text/plain\n";
  assert_int_equal(st_oci_manifest_encode(&m, &json, &err), ST_EINVAL);
  st_buf_release(&json);
}

static void build(const char *out_tar, const char *out_dir, const char *file) {
  st_oci_layout_t *l = NULL;
  st_oci_desc_t cfg = {0}, layer = {0}, layer2 = {0}, man = {0};
  assert_int_equal(st_oci_layout_new(&l, NULL), 0);
  assert_int_equal(st_oci_layout_add_empty(l, &cfg, NULL), 0);
  assert_int_equal(st_oci_layout_add_file(l, file, "application/octet-stream", &layer, NULL), 0);
  /* the same bytes again: stored once */
  assert_int_equal(st_oci_layout_add_mem(l, "hello oci\n", 10, "application/octet-stream",
                                         &layer2, NULL), 0);
  assert_string_equal(layer.digest, layer2.digest);
  assert_int_equal(st_oci_desc_annotate(&layer, ST_OCI_ANN_TITLE, "hello.txt", NULL), 0);
  st_oci_manifest_t m = {.config = &cfg, .layers = &layer, .nlayers = 1};
  assert_int_equal(st_oci_layout_add_manifest(l, &m, &man, NULL), 0);
  assert_int_equal(st_oci_layout_tag(l, &man, "v1", NULL), 0);
  assert_int_equal(st_oci_layout_tag(l, &man, "v1", NULL), ST_EEXIST);
  if (out_tar)
    assert_int_equal(st_oci_layout_write_tar(l, out_tar, 1700000000, NULL), 0);
  if (out_dir)
    assert_int_equal(st_oci_layout_write_dir(l, out_dir, NULL), 0);
  st_oci_desc_release(&cfg);
  st_oci_desc_release(&layer);
  st_oci_desc_release(&layer2);
  st_oci_desc_release(&man);
  st_oci_layout_free(l);
}

static int file_sha(const char *p, uint8_t d[32]) { return st_sha256_file(p, d, NULL, NULL); }

static void test_write_read_roundtrip(void **state) {
  char *dir = mkscratch();
  char f[512], t1[512], t2[512], out[512], ex[512];
  uint8_t d1[32], d2[32];
  st_oci_dir_t *d = NULL;
  st_oci_desc_t root = {0};
  size_t n = 0;
  FILE *fp;
  (void)state;
  snprintf(f, sizeof(f), "%s/hello.txt", dir);
  snprintf(t1, sizeof(t1), "%s/a.tar", dir);
  snprintf(t2, sizeof(t2), "%s/b.tar", dir);
  snprintf(out, sizeof(out), "%s/layout", dir);
  snprintf(ex, sizeof(ex), "%s/extracted", dir);
  assert_non_null(fp = fopen(f, "w"));
  fputs("hello oci\n", fp);
  fclose(fp);
  build(t1, out, f);
  build(t2, NULL, f);
  assert_int_equal(file_sha(t1, d1), 0);
  assert_int_equal(file_sha(t2, d2), 0);
  assert_memory_equal(d1, d2, 32); /* deterministic */
  assert_int_equal(mkdir(ex, 0755), 0);
  assert_int_equal(st_oci_archive_extract(t1, ex, NULL, NULL), 0);
  assert_int_equal(st_oci_dir_open(ex, NULL, &d, NULL), 0);
  assert_int_equal(st_oci_dir_count(d), 1);
  assert_int_equal(st_oci_dir_resolve(d, "v1", &root, NULL), 0);
  assert_string_equal(root.media_type, ST_OCI_MT_MANIFEST);
  assert_int_equal(st_oci_dir_verify(d, &n, NULL), 0);
  assert_int_equal(n, 3);
  st_oci_desc_release(&root);
  assert_int_equal(st_oci_dir_resolve(d, "nope", &root, NULL), ST_ENOENT);
  st_oci_dir_free(d);
  /* the writer never overwrites */
  {
    st_error_t err = ST_ERROR_INIT;
    st_oci_layout_t *l = NULL;
    assert_int_equal(st_oci_layout_new(&l, NULL), 0);
    assert_int_equal(st_oci_layout_write_dir(l, out, &err), ST_EEXIST);
    st_oci_layout_free(l);
  }
  st_oci_rmtree(dir);
  st_free(dir);
}

/* A tar with one hostile entry next to a good oci-layout file. */
static void hostile_tar(const char *path, const char *name, int type, const char *link,
                        const char *data) {
  struct archive *a = archive_write_new();
  struct archive_entry *e = archive_entry_new();
  assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, (unsigned)type);
  archive_entry_set_perm(e, 0644);
  if (link)
    archive_entry_set_symlink(e, link);
  archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)strlen(data) : 0);
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  if (type == AE_IFREG)
    archive_write_data(a, data, strlen(data));
  archive_write_close(a);
  archive_write_free(a);
  archive_entry_free(e);
}

static void test_extract_refuses(void **state) {
  static const struct {
    const char *name;
    int type;
    const char *link;
    int want;
  } cases[] = {
      {"../evil", AE_IFREG, NULL, ST_EUNSAFE},
      {"/etc/evil", AE_IFREG, NULL, ST_EUNSAFE},
      {"a/./b", AE_IFREG, NULL, ST_EUNSAFE},
      {"a//b", AE_IFREG, NULL, ST_EUNSAFE},
      {"sp ace", AE_IFREG, NULL, ST_EUNSAFE},
      {"link", AE_IFLNK, "/etc/passwd", ST_EUNSAFE},
      {"fifo", AE_IFIFO, NULL, ST_EUNSAFE},
      /* a blob whose name is not its digest */
      {"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
       AE_IFREG, NULL, ST_EVERIFY},
  };
  char *dir = mkscratch();
  char tar[512], ex[512];
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    st_error_t err = ST_ERROR_INIT;
    snprintf(tar, sizeof(tar), "%s/h%zu.tar", dir, i);
    snprintf(ex, sizeof(ex), "%s/x%zu", dir, i);
    hostile_tar(tar, cases[i].name, cases[i].type, cases[i].link, "not {}");
    assert_int_equal(mkdir(ex, 0755), 0);
    assert_int_equal(st_oci_archive_extract(tar, ex, NULL, &err), cases[i].want);
  }
  /* limits: a file over max_blob_bytes */
  {
    st_oci_limits_t lim = {.max_blob_bytes = 3};
    st_error_t err = ST_ERROR_INIT;
    snprintf(tar, sizeof(tar), "%s/big.tar", dir);
    snprintf(ex, sizeof(ex), "%s/xbig", dir);
    hostile_tar(tar, "file", AE_IFREG, NULL, "four");
    assert_int_equal(mkdir(ex, 0755), 0);
    assert_int_equal(st_oci_archive_extract(tar, ex, &lim, &err), ST_ETOOBIG);
  }
  st_oci_rmtree(dir);
  st_free(dir);
}

static void write_at(const char *dir, const char *name, const char *text) {
  char p[512];
  FILE *f;
  snprintf(p, sizeof(p), "%s/%s", dir, name);
  assert_non_null(f = fopen(p, "w"));
  fputs(text, f);
  fclose(f);
}

static void test_dir_refuses(void **state) {
  char *dir = mkscratch();
  char p[512];
  st_oci_dir_t *d = NULL;
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  assert_int_equal(st_oci_dir_open(dir, NULL, &d, &err), ST_ENOENT); /* no oci-layout */
  write_at(dir, "oci-layout", "{\"imageLayoutVersion\":\"2.0.0\"}");
  assert_int_equal(st_oci_dir_open(dir, NULL, &d, &err), ST_EPARSE);
  write_at(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
  write_at(dir, "index.json", "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\","
                              "\"digest\":\"sha256:../../etc/passwd\",\"size\":1}]}");
  assert_int_equal(st_oci_dir_open(dir, NULL, &d, &err), ST_EPARSE);
  write_at(dir, "index.json", "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" ST_OCI_MT_MANIFEST
                              "\",\"digest\":\"" ST_OCI_EMPTY_DIGEST "\",\"size\":2}]}");
  snprintf(p, sizeof(p), "%s/blobs", dir);
  assert_int_equal(mkdir(p, 0755), 0);
  snprintf(p, sizeof(p), "%s/blobs/sha256", dir);
  assert_int_equal(mkdir(p, 0755), 0);
  /* the blob is a symlink: refused */
  snprintf(p, sizeof(p), "%s/blobs/sha256/%s", dir, ST_OCI_EMPTY_DIGEST + 7);
  assert_int_equal(symlink("/etc/hostname", p), 0);
  assert_int_equal(st_oci_dir_open(dir, NULL, &d, &err), 0);
  assert_int_not_equal(st_oci_dir_verify(d, NULL, &err), 0);
  unlink(p);
  /* right size, wrong bytes */
  write_at(dir, "blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "[]");
  assert_int_equal(st_oci_dir_verify(d, NULL, &err), ST_EVERIFY);
  st_oci_dir_free(d);
  st_oci_rmtree(dir);
  st_free(dir);
}

static void test_ref_parse(void **state) {
  st_buf_t reg = ST_BUF_INIT, repo = ST_BUF_INIT, tag = ST_BUF_INIT;
  (void)state;
  assert_int_equal(st_oci_ref_parse("http://127.0.0.1:5000/a/b:2", &reg, &repo, &tag, NULL), 0);
  assert_string_equal(reg.data, "http://127.0.0.1:5000");
  assert_string_equal(repo.data, "a/b");
  assert_string_equal(tag.data, "2");
  assert_int_equal(st_oci_ref_parse("reg:443/x@" ST_OCI_EMPTY_DIGEST, &reg, &repo, &tag, NULL), 0);
  assert_string_equal(tag.data, ST_OCI_EMPTY_DIGEST);
  assert_int_equal(st_oci_ref_parse("reg/x", &reg, &repo, &tag, NULL), 0);
  assert_int_equal(tag.len, 0);
  assert_int_equal(st_oci_ref_parse("noslash", &reg, &repo, &tag, NULL), ST_EINVAL);
  assert_int_equal(st_oci_ref_parse("reg/UP", &reg, &repo, &tag, NULL), ST_EINVAL);
  assert_int_equal(st_oci_ref_parse("reg/a:b/c", &reg, &repo, &tag, NULL), ST_EINVAL);
  st_buf_release(&reg);
  st_buf_release(&repo);
  st_buf_release(&tag);
}

static void test_client_options(void **state) {
  st_oci_client_t *c = NULL;
  st_oci_client_opts_t o = {.registry = "http://127.0.0.1:1/path"};
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  assert_int_equal(st_oci_client_new(&o, &c, &err), ST_EINVAL);
  o.registry = "127.0.0.1:1";
  o.username = "a:b";
  assert_int_equal(st_oci_client_new(&o, &c, &err), ST_EINVAL);
  o.username = "u";
  o.password = "p";
  assert_int_equal(st_oci_client_new(&o, &c, &err), 0);
  /* names are checked before any request goes out */
  assert_int_equal(st_oci_blob_exists(c, "../x", ST_OCI_EMPTY_DIGEST, NULL, &err), ST_EINVAL);
  assert_int_equal(st_oci_blob_exists(c, "x", "sha256:00", NULL, &err), ST_EINVAL);
  assert_int_equal(st_oci_client_stats(c)->requests, 0);
  st_oci_client_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validators),       cmocka_unit_test(test_encoding_golden),
      cmocka_unit_test(test_encode_rejects),   cmocka_unit_test(test_write_read_roundtrip),
      cmocka_unit_test(test_extract_refuses),  cmocka_unit_test(test_dir_refuses),
      cmocka_unit_test(test_ref_parse),        cmocka_unit_test(test_client_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
