/* bundle_fixtures.h: shared set-up for the bundle tests: the fixture signers (Ed25519 for
 * determinism, P-256), a private temp directory, a small three-entry bundle, and an
 * in-memory file set that extracts a bundle and rebuilds it canonically (tampering tests
 * change one byte and rebuild). */
#ifndef STELLA_BUNDLE_FIXTURES_H
#define STELLA_BUNDLE_FIXTURES_H

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys_fixtures.h"
#include "stella/bundle.h"
#include "stella/tgz.h"

#define CREATED "2025-01-02T03:04:05Z"
#define CREATED_EPOCH 1735787045

static st_signer_t *g_signer, *g_p256;
static st_pubkey_t *g_pub, *g_p256_pub;
static char *g_dir;

static inline int group_setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  g_signer = fx_signer(ED25519_PRIV_PEM);
  g_p256 = fx_signer(P256_PRIV_PEM);
  assert_int_equal(st_pubkey_from_pem(&g_pub, ED25519_PUB_PEM, strlen(ED25519_PUB_PEM), &err), 0);
  assert_int_equal(st_pubkey_from_pem(&g_p256_pub, P256_PUB_PEM, strlen(P256_PUB_PEM), &err), 0);
  g_dir = fx_tmpdir();
  assert_non_null(g_dir);
  unsetenv("SOURCE_DATE_EPOCH");
  return 0;
}

static inline int group_teardown(void **state) {
  st_signer_free(g_signer);
  st_signer_free(g_p256);
  st_pubkey_free(g_pub);
  st_pubkey_free(g_p256_pub);
  fx_rmdir(g_dir);
  return 0;
}

static inline char *path_in(const char *name) {
  static char buf[4][512];
  static int i;
  char *p = buf[i++ & 3];
  snprintf(p, 512, "%s/%s", g_dir, name);
  return p;
}

static inline void read_all(const char *path, st_buf_t *out) {
  FILE *f = fopen(path, "rb");
  char chunk[65536];
  size_t n;
  assert_non_null(f);
  st_buf_init(out, 0);
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    assert_int_equal(st_buf_add(out, chunk, n), 0);
  fclose(f);
}

/* ---- a small in-memory file set: extract and rebuild archives ---- */

typedef struct fileset_s {
  char *path[32];
  st_buf_t data[32];
  size_t n;
} fileset_t;

static inline int collect_cb(void *ud, const void *data, size_t len, st_error_t *err) {
  return st_buf_add(ud, data, len);
}

static inline void fileset_from_tgz(const st_buf_t *tgz, fileset_t *fs) {
  st_tgz_reader_t *r;
  const st_tgz_entry_t *e;
  st_error_t err = ST_ERROR_INIT;
  int more;
  memset(fs, 0, sizeof(*fs));
  assert_int_equal(st_tgz_reader_open_mem(tgz->data, tgz->len, NULL, &r, &err), 0);
  while ((more = st_tgz_reader_next(r, &e, &err)) == 1) {
    if (e->type != ST_TGZ_FILE)
      continue;
    assert_true(fs->n < 32);
    fs->path[fs->n] = strdup(e->path);
    st_buf_init(&fs->data[fs->n], 0);
    assert_int_equal(st_tgz_reader_data(r, collect_cb, &fs->data[fs->n], &err), 0);
    fs->n++;
  }
  assert_int_equal(more, 0);
  st_tgz_reader_free(r);
}

static inline void fileset_release(fileset_t *fs) {
  for (size_t i = 0; i < fs->n; i++) {
    free(fs->path[i]);
    st_buf_release(&fs->data[i]);
  }
  fs->n = 0;
}

static inline ssize_t fileset_find(const fileset_t *fs, const char *path) {
  for (size_t i = 0; i < fs->n; i++)
    if (strcmp(fs->path[i], path) == 0)
      return (ssize_t)i;
  return -1;
}

/* Canonical archive of fs (as the sealer writes it), skipping index `skip` (-1: none). */
static inline void fileset_to_tgz(const fileset_t *fs, ssize_t skip, st_buf_t *out) {
  st_tgz_options_t opt = {CREATED_EPOCH, ST_TGZ_LEVEL_FAST};
  st_tgz_writer_t *w;
  st_error_t err = ST_ERROR_INIT;
  const char *p = path_in("rebuilt.tgz");
  assert_int_equal(st_tgz_writer_new(p, &opt, &w, &err), 0);
  for (size_t i = 0; i < fs->n; i++)
    if ((ssize_t)i != skip)
      assert_int_equal(st_tgz_add_mem(w, fs->path[i], fs->data[i].data, fs->data[i].len, &err), 0);
  assert_int_equal(st_tgz_writer_finish(w, &err), 0);
  st_tgz_writer_free(w);
  st_buf_release(out);
  read_all(p, out);
}

/* ---- sealing helpers ---- */

static const st_bundle_input_t small_inputs[] = {
    {"a.txt", ST_BUNDLE_SRC_MEM, NULL, "alpha\n", 6, NULL},
    {"dir/b.json", ST_BUNDLE_SRC_MEM, NULL, "{\"b\":2}", 7, NULL},
    {"dir/c.bin", ST_BUNDLE_SRC_MEM, NULL, "\x00\x01\x02", 3, "application/x-test"},
};

static inline void seal_small(const char *out, int private_subjects, st_buf_t *tgz) {
  st_bundle_spec_t spec = {"evidence", "ev-1", "acme", CREATED, NULL, small_inputs, 3,
                           private_subjects, NULL};
  st_error_t err = ST_ERROR_INIT;
  int rc = st_bundle_seal(&spec, g_signer, NULL, out, &err);
  if (rc)
    fail_msg("seal: %s", st_error_text(&err));
  if (tgz)
    read_all(out, tgz);
}

static inline int verify_mem(const st_buf_t *tgz, const st_pubkey_t *key, st_bundle_report_t *rep,
                      st_error_t *err) {
  const st_pubkey_t *keys[1] = {key};
  st_bundle_trust_t trust = {keys, key ? 1 : 0, NULL, 0, NULL};
  return st_bundle_verify_mem(tgz->data, tgz->len, &trust, rep, err);
}

#endif
