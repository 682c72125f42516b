/* oci_push.c: sources of the OCI distributor. A sealed bundle becomes an OCI artifact
 * (artifactType application/vnd.stella.bundle.v1+tar+gzip, empty config, one layer: the
 * .tgz with its file name as title) plus a referrer whose subject is that manifest and
 * whose one layer is the bundle's manifest.dsse.json (artifactType
 * application/vnd.dsse.envelope.v1+json), both built as a deterministic layout in a
 * scratch directory; a layout directory or oci-archive is pushed as it is. Pushes go
 * through st_oci_push_dir, so every blob and manifest is HEAD-checked first: a re-push
 * uploads nothing. */
#define _GNU_SOURCE /* mkdtemp */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <unistd.h>

#include "export/adapter.h"
#include "oci_dist.h"
#include "stella/mem.h"
#include "stella/sha256.h"
#include "stella/tgz.h"

#define DSSE_MAX ((size_t)4 << 20)

static int collect(void *ud, const void *data, size_t len, st_error_t *err) {
  return st_buf_add(ud, data, len) ? st_fail(err, ST_ETOOBIG, "manifest.dsse.json: over %zu "
                                              "bytes", DSSE_MAX)
                                    : 0;
}

/* The bundle's manifest.dsse.json, through the safe bundle archive reader. */
static int read_dsse(const char *bundle, st_buf_t *out, st_error_t *err) {
  st_tgz_reader_t *r = NULL;
  const st_tgz_entry_t *e;
  int rc, found = 0;
  if ((rc = st_tgz_reader_open(bundle, NULL, &r, err)))
    return rc;
  while (!found && (rc = st_tgz_reader_next(r, &e, err)) == 1)
    if (e->type == ST_TGZ_FILE && !strcmp(e->path, "manifest.dsse.json")) {
      found = 1;
      rc = st_tgz_reader_data(r, collect, out, err);
    }
  st_tgz_reader_free(r);
  if (rc < 0)
    return rc;
  return found ? 0 : st_fail(err, ST_EINVAL, "%s: no manifest.dsse.json (not a sealed bundle)",
                             bundle);
}

/* Named after the process (adapter.h), so st_export_sweep removes it if the worker dies. */
static int mk_tmp(st__oci_src_t *s, const char *tmp_root, st_error_t *err) {
  const char *root = tmp_root ? tmp_root : "/tmp";
  st_buf_t b = ST_BUF_INIT;
  if (st_buf_addf(&b, "%s/" ST_EXPORT_OCI_TMP_PREFIX "%ld-XXXXXX", root, (long)getpid()))
    return st_fail(err, ST_ENOMEM, "out of memory");
  s->tmp = st_buf_detach(&b, NULL);
  if (!mkdtemp(s->tmp)) {
    st_free(s->tmp);
    s->tmp = NULL;
    return st_fail(err, ST_EIO, "%s: cannot create a scratch directory", root);
  }
  return 0;
}

static int bundle_layout(const char *bundle, const char *dir, st_error_t *err) {
  st_oci_layout_t *l = NULL;
  st_oci_desc_t cfg = {0}, layer = {0}, man = {0}, dl = {0}, ref = {0};
  st_buf_t dsse;
  const char *base = strrchr(bundle, '/');
  int rc;

  st_buf_init(&dsse, DSSE_MAX);
  base = base ? base + 1 : bundle;
  if ((rc = read_dsse(bundle, &dsse, err)) || (rc = st_oci_layout_new(&l, err)) ||
      (rc = st_oci_layout_add_empty(l, &cfg, err)) ||
      (rc = st_oci_layout_add_file(l, bundle, ST_OCI_MT_BUNDLE, &layer, err)) ||
      (rc = st_oci_desc_annotate(&layer, ST_OCI_ANN_TITLE, base, err)))
    goto done;
  {
    st_oci_manifest_t m = {.artifact_type = ST_OCI_MT_BUNDLE, .config = &cfg, .layers = &layer,
                           .nlayers = 1};
    if ((rc = st_oci_layout_add_manifest(l, &m, &man, err)) ||
        (rc = st_oci_layout_add_mem(l, dsse.data, dsse.len, ST_OCI_MT_DSSE, &dl, err)) ||
        (rc = st_oci_desc_annotate(&dl, ST_OCI_ANN_TITLE, "manifest.dsse.json", err)))
      goto done;
  }
  {
    st_oci_manifest_t m = {.artifact_type = ST_OCI_MT_DSSE, .config = &cfg, .layers = &dl,
                           .nlayers = 1, .subject = &man};
    if ((rc = st_oci_layout_add_manifest(l, &m, &ref, err)) ||
        (rc = st_oci_layout_tag(l, &man, "bundle", err)) ||
        (rc = st_oci_layout_tag(l, &ref, "dsse", err)) ||
        (rc = st_oci_layout_write_dir(l, dir, err)))
      goto done;
  }
done:
  st_oci_desc_release(&cfg);
  st_oci_desc_release(&layer);
  st_oci_desc_release(&man);
  st_oci_desc_release(&dl);
  st_oci_desc_release(&ref);
  st_oci_layout_free(l);
  st_buf_release(&dsse);
  return rc;
}

int st__oci_src_open(st__oci_src_t *s, const char *kind, const char *path, const char *ref,
                     const char *tmp_root, st_error_t *err) {
  struct stat st;
  st_buf_t dir = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  int rc;

  memset(s, 0, sizeof(*s));
  if (stat(path, &st) != 0)
    return st_fail(err, ST_ENOENT, "%s: no such file or directory", path);
  if (S_ISDIR(st.st_mode)) {
    if (strcmp(kind, "layout"))
      return st_fail(err, ST_EINVAL, "bundle: %s is a directory", path);
    rc = st_oci_dir_open(path, NULL, &s->dir, err);
    goto resolve;
  }
  if (!S_ISREG(st.st_mode))
    return st_fail(err, ST_EINVAL, "%s: not a regular file", path);
  if ((rc = st_sha256_file(path, d, NULL, err)))
    return rc;
  st_sha256_hex(d, s->file_sha256);
  if ((rc = mk_tmp(s, tmp_root, err)))
    return rc;
  if (!strcmp(kind, "bundle")) {
    if (st_buf_addf(&dir, "%s/oci", s->tmp)) {
      rc = st_fail(err, ST_ENOMEM, "out of memory");
      goto done;
    }
    if ((rc = bundle_layout(path, dir.data, err)) ||
        (rc = st_oci_dir_open(dir.data, NULL, &s->dir, err)) ||
        (rc = st_oci_dir_resolve(s->dir, "bundle", &s->root, err)))
      goto done;
    rc = st_oci_dir_resolve(s->dir, "dsse", &s->referrer, err);
    goto done;
  }
  if ((rc = st_oci_archive_extract(path, s->tmp, NULL, err)) ||
      (rc = st_oci_dir_open(s->tmp, NULL, &s->dir, err)))
    goto done;
resolve:
  if (!rc)
    rc = st_oci_dir_resolve(s->dir, ref, &s->root, err);
done:
  st_buf_release(&dir);
  return rc;
}

void st__oci_src_close(st__oci_src_t *s) {
  st_oci_dir_free(s->dir);
  st_oci_desc_release(&s->root);
  st_oci_desc_release(&s->referrer);
  if (s->tmp) {
    st_oci_rmtree(s->tmp);
    st_free(s->tmp);
  }
  memset(s, 0, sizeof(*s));
}

int st__oci_src_push(st_oci_client_t *c, const st__oci_src_t *s, const char *repo,
                     const char *tag, st__oci_pushed_t *out, st_error_t *err) {
  int rc;
  memset(out, 0, sizeof(*out));
  if ((rc = st_oci_push_dir(c, s->dir, &s->root, repo, tag, NULL, err)))
    return rc;
  memcpy(out->digest, s->root.digest, sizeof(out->digest));
  if (s->referrer.digest[0]) {
    if ((rc = st_oci_push_dir(c, s->dir, &s->referrer, repo, NULL, NULL, err)))
      return rc;
    memcpy(out->referrer, s->referrer.digest, sizeof(out->referrer));
  }
  out->stats = *st_oci_client_stats(c);
  return 0;
}
