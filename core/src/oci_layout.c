/* oci_layout.c: the OCI image layout writer (oci.h): blobs from memory or files,
 * manifests and indexes encoded canonically, index.json with ref names, written as a
 * directory (built aside, renamed into place) or as one deterministic uncompressed tar.
 * File blobs are streamed in 64 KiB chunks and re-hashed on the way out, so what lands
 * in the output is exactly what the descriptor names. */
#define _GNU_SOURCE /* mkdtemp, nftw */
#include "stella/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci_internal.h"
#include "stella/jcs.h"
#include "stella/mem.h"
#include "stella/sha256.h"

typedef struct blob_s {
  char digest[ST_OCI_DIGEST_LEN + 1];
  uint64_t size;
  void *mem;  /* owned copy, or NULL for a file blob */
  char *path; /* file blob */
  int64_t mtime_ns; /* file blob hashed at add time: must not change; -1 = not checked */
} blob_t;

struct st_oci_layout_s {
  blob_t *blobs;
  size_t n, cap;
  st_oci_desc_t *tags;
  size_t ntags, tcap;
};

int st_oci_layout_new(st_oci_layout_t **out, st_error_t *err) {
  if (!(*out = st_calloc(1, sizeof(**out))))
    return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  return 0;
}

void st_oci_layout_free(st_oci_layout_t *l) {
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++) {
    st_free(l->blobs[i].mem);
    st_free(l->blobs[i].path);
  }
  for (size_t i = 0; i < l->ntags; i++)
    st_oci_desc_release(&l->tags[i]);
  st_free(l->blobs);
  st_free(l->tags);
  st_free(l);
}

static blob_t *find_blob(const st_oci_layout_t *l, const char *digest) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->blobs[i].digest, digest))
      return &l->blobs[i];
  return NULL;
}

static int push_blob(st_oci_layout_t *l, const blob_t *b, st_error_t *err) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    blob_t *nb = st_realloc(l->blobs, cap * sizeof(*nb));
    if (!nb)
      return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
    l->blobs = nb;
    l->cap = cap;
  }
  l->blobs[l->n++] = *b;
  return 0;
}

static int fill_desc(st_oci_desc_t *desc, const char *media_type, const char *digest,
                     uint64_t size, st_error_t *err) {
  if (!desc)
    return 0;
  memset(desc, 0, sizeof(*desc));
  memcpy(desc->digest, digest, ST_OCI_DIGEST_LEN + 1);
  desc->size = size;
  if (!(desc->media_type = st_strdup(media_type)))
    return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  return 0;
}

void st__oci_digest_str(const uint8_t d[ST_SHA256_LEN], char out[ST_OCI_DIGEST_LEN + 1]) {
  memcpy(out, "sha256:", 7);
  st_sha256_hex(d, out + 7);
}

int st_oci_layout_add_mem(st_oci_layout_t *l, const void *data, size_t len,
                          const char *media_type, st_oci_desc_t *desc, st_error_t *err) {
  uint8_t d[ST_SHA256_LEN];
  blob_t b = {0};
  int rc;
  if (!st_oci_media_type_valid(media_type))
    return st_fail(err, ST_EINVAL, "oci layout: '%.100s' is not a media type",
                   media_type ? media_type : "(null)");
  if ((rc = st_sha256(data, len, d)))
    return st_fail(err, rc, "oci layout: cannot hash a blob");
  st__oci_digest_str(d, b.digest);
  b.size = len;
  b.mtime_ns = -1;
  if (!find_blob(l, b.digest)) {
    if (!(b.mem = st_malloc(len ? len : 1)))
      return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
    if (len)
      memcpy(b.mem, data, len);
    if ((rc = push_blob(l, &b, err))) {
      st_free(b.mem);
      return rc;
    }
  }
  return fill_desc(desc, media_type, b.digest, len, err);
}

static int add_path_blob(st_oci_layout_t *l, const char *path, const char *digest,
                         uint64_t size, int64_t mtime_ns, st_error_t *err) {
  blob_t b = {0};
  int rc;
  if (find_blob(l, digest))
    return 0;
  memcpy(b.digest, digest, ST_OCI_DIGEST_LEN + 1);
  b.size = size;
  b.mtime_ns = mtime_ns;
  if (!(b.path = st_strdup(path)))
    return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  if ((rc = push_blob(l, &b, err)))
    st_free(b.path);
  return rc;
}

int st_oci_layout_add_file(st_oci_layout_t *l, const char *path, const char *media_type,
                           st_oci_desc_t *desc, st_error_t *err) {
  uint8_t d[ST_SHA256_LEN];
  char digest[ST_OCI_DIGEST_LEN + 1];
  uint64_t size;
  struct stat st;
  int rc;
  if (!st_oci_media_type_valid(media_type))
    return st_fail(err, ST_EINVAL, "oci layout: '%.100s' is not a media type",
                   media_type ? media_type : "(null)");
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EUNSAFE,
                   "oci layout: %s is not a regular file", path);
  if ((rc = st_sha256_file(path, d, &size, err)))
    return rc;
  if (size != (uint64_t)st.st_size)
    return st_fail(err, ST_ECONFLICT, "oci layout: %s changed while it was hashed", path);
  st__oci_digest_str(d, digest);
  if ((rc = add_path_blob(l, path, digest, size,
                          (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, err)))
    return rc;
  return fill_desc(desc, media_type, digest, size, err);
}

int st_oci_layout_add_known(st_oci_layout_t *l, const char *path, const st_oci_desc_t *d,
                            st_error_t *err) {
  if (!st_oci_digest_valid(d->digest))
    return st_fail(err, ST_EINVAL, "oci layout: '%.80s' is not a sha256 digest", d->digest);
  return add_path_blob(l, path, d->digest, d->size, -1, err);
}

int st_oci_layout_add_empty(st_oci_layout_t *l, st_oci_desc_t *desc, st_error_t *err) {
  return st_oci_layout_add_mem(l, "{}", 2, ST_OCI_MT_EMPTY, desc, err);
}

static int add_doc(st_oci_layout_t *l, st_buf_t *json, const char *mt, const char *at,
                   st_oci_desc_t *desc, st_error_t *err) {
  int rc = st_oci_layout_add_mem(l, json->data, json->len, mt, desc, err);
  if (!rc && desc && at && !(desc->artifact_type = st_strdup(at)))
    rc = st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  st_buf_release(json);
  return rc;
}

int st_oci_layout_add_manifest(st_oci_layout_t *l, const st_oci_manifest_t *m,
                               st_oci_desc_t *desc, st_error_t *err) {
  st_buf_t json = ST_BUF_INIT;
  int rc = st_oci_manifest_encode(m, &json, err);
  if (rc) {
    st_buf_release(&json);
    return rc;
  }
  return add_doc(l, &json, ST_OCI_MT_MANIFEST, m->artifact_type, desc, err);
}

int st_oci_layout_add_index(st_oci_layout_t *l, const st_oci_index_t *ix, st_oci_desc_t *desc,
                            st_error_t *err) {
  st_buf_t json = ST_BUF_INIT;
  int rc = st_oci_index_encode(ix, &json, err);
  if (rc) {
    st_buf_release(&json);
    return rc;
  }
  return add_doc(l, &json, ST_OCI_MT_INDEX, ix->artifact_type, desc, err);
}

int st_oci_layout_tag(st_oci_layout_t *l, const st_oci_desc_t *d, const char *ref_name,
                      st_error_t *err) {
  st_oci_desc_t copy;
  int rc;
  if (ref_name) {
    size_t len = strlen(ref_name);
    if (len == 0 || len > ST_OCI_REF_NAME_MAX || !st_utf8_valid(ref_name, len))
      return st_fail(err, ST_EINVAL, "oci layout: ref name '%.100s' is empty, too long or "
                     "not UTF-8", ref_name);
    for (size_t i = 0; i < l->ntags; i++) {
      json_t *a = l->tags[i].annotations;
      const char *old = a ? json_string_value(json_object_get(a, ST_OCI_ANN_REF_NAME)) : NULL;
      if (old && !strcmp(old, ref_name))
        return st_fail(err, ST_EEXIST, "oci layout: ref name '%s' already used", ref_name);
    }
  }
  if (!find_blob(l, d->digest))
    return st_fail(err, ST_ENOENT, "oci layout: %s is not a blob of this layout", d->digest);
  if (l->ntags == l->tcap) {
    size_t cap = l->tcap ? l->tcap * 2 : 8;
    st_oci_desc_t *nt = st_realloc(l->tags, cap * sizeof(*nt));
    if (!nt)
      return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
    l->tags = nt;
    l->tcap = cap;
  }
  if ((rc = st_oci_desc_copy(&copy, d, err)))
    return rc;
  if (ref_name && (rc = st_oci_desc_annotate(&copy, ST_OCI_ANN_REF_NAME, ref_name, err))) {
    st_oci_desc_release(&copy);
    return rc;
  }
  l->tags[l->ntags++] = copy;
  return 0;
}

int st_oci_layout_index_json(const st_oci_layout_t *l, st_buf_t *out, st_error_t *err) {
  st_oci_index_t ix = {.manifests = l->tags, .nmanifests = l->ntags};
  return st_oci_index_encode(&ix, out, err);
}

/* ---- output ---- */

typedef int (*sink_fn)(void *ud, const void *data, size_t len, st_error_t *err);

/* Stream a blob to sink, re-hashing file blobs and checking them against the digest. */
static int blob_stream(const blob_t *b, sink_fn sink, void *ud, st_error_t *err) {
  st_sha256_t h = {0};
  uint8_t d[ST_SHA256_LEN];
  char got[ST_OCI_DIGEST_LEN + 1];
  unsigned char *buf = NULL;
  uint64_t total = 0;
  struct stat st;
  int fd = -1, rc;
  ssize_t r;

  if (b->mem)
    return sink(ud, b->mem, (size_t)b->size, err);
  if ((fd = open(b->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    rc = st_fail(err, ST_EIO, "oci layout: cannot open %s: %s", b->path, strerror(errno));
    goto done;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != b->size ||
      (b->mtime_ns >= 0 &&
       (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != b->mtime_ns)) {
    rc = st_fail(err, ST_ECONFLICT, "oci layout: %s changed since it was added", b->path);
    goto done;
  }
  if ((rc = st_sha256_init(&h)) || !(buf = st_malloc(ST__OCI_CHUNK))) {
    rc = st_fail(err, rc ? rc : ST_ENOMEM, "oci layout: out of memory");
    goto done;
  }
  while ((r = read(fd, buf, ST__OCI_CHUNK)) != 0) {
    if (r < 0) {
      if (errno == EINTR)
        continue;
      rc = st_fail(err, ST_EIO, "oci layout: reading %s: %s", b->path, strerror(errno));
      goto done;
    }
    total += (uint64_t)r;
    if (total > b->size) {
      rc = st_fail(err, ST_ECONFLICT, "oci layout: %s grew since it was added", b->path);
      goto done;
    }
    if ((rc = st_sha256_update(&h, buf, (size_t)r)) || (rc = sink(ud, buf, (size_t)r, err)))
      goto done;
  }
  if ((rc = st_sha256_final(&h, d)))
    goto done;
  st__oci_digest_str(d, got);
  if (total != b->size || strcmp(got, b->digest)) {
    rc = st_fail(err, ST_ECONFLICT, "oci layout: %s is not %s any more", b->path, b->digest);
    goto done;
  }
done:
  st_sha256_release(&h);
  st_free(buf);
  if (fd >= 0)
    close(fd);
  return rc;
}

static int fd_sink(void *ud, const void *data, size_t len, st_error_t *err) {
  const char *p = data;
  int fd = *(int *)ud;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return st_fail(err, ST_EIO, "oci layout: write: %s", strerror(errno));
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static int write_file_at(int dirfd, const char *name, const blob_t *b, const void *mem,
                         size_t len, st_error_t *err) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  int rc;
  if (fd < 0)
    return st_fail(err, ST_EIO, "oci layout: cannot create %s: %s", name, strerror(errno));
  rc = b ? blob_stream(b, fd_sink, &fd, err) : fd_sink(&fd, mem, len, err);
  if (close(fd) != 0 && !rc)
    rc = st_fail(err, ST_EIO, "oci layout: closing %s: %s", name, strerror(errno));
  return rc;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

void st_oci_rmtree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static const char layout_file[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

int st_oci_layout_write_dir(st_oci_layout_t *l, const char *dir, st_error_t *err) {
  st_buf_t index = ST_BUF_INIT, tmp = ST_BUF_INIT;
  int root = -1, blobs = -1, rc;
  struct stat st;

  if (lstat(dir, &st) == 0)
    return st_fail(err, ST_EEXIST, "oci layout: %s already exists", dir);
  if ((rc = st_oci_layout_index_json(l, &index, err)))
    goto done;
  if ((rc = st_buf_addf(&tmp, "%s.tmp.XXXXXX", dir)) || !mkdtemp(tmp.data)) {
    rc = st_fail(err, rc ? rc : ST_EIO, "oci layout: cannot create a directory next to %s",
                 dir);
    st_buf_reset(&tmp);
    goto done;
  }
  if ((root = open(tmp.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
      mkdirat(root, "blobs", 0755) != 0 || mkdirat(root, "blobs/sha256", 0755) != 0 ||
      (blobs = openat(root, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    rc = st_fail(err, ST_EIO, "oci layout: %s: %s", tmp.data, strerror(errno));
    goto done;
  }
  for (size_t i = 0; i < l->n; i++)
    if ((rc = write_file_at(blobs, l->blobs[i].digest + 7, &l->blobs[i], NULL, 0, err)))
      goto done;
  if ((rc = write_file_at(root, "oci-layout", NULL, layout_file, sizeof(layout_file) - 1,
                          err)) ||
      (rc = write_file_at(root, "index.json", NULL, index.data, index.len, err)))
    goto done;
  if (rename(tmp.data, dir) != 0)
    rc = st_fail(err, errno == EEXIST || errno == ENOTEMPTY ? ST_EEXIST : ST_EIO,
                 "oci layout: cannot publish %s: %s", dir, strerror(errno));
done:
  if (blobs >= 0)
    close(blobs);
  if (root >= 0)
    close(root);
  if (rc && tmp.len)
    st_oci_rmtree(tmp.data);
  st_buf_release(&tmp);
  st_buf_release(&index);
  return rc;
}

static int cmp_blob(const void *a, const void *b) {
  return strcmp((*(const blob_t *const *)a)->digest, (*(const blob_t *const *)b)->digest);
}

typedef struct tarw_s {
  struct archive *a;
  struct archive_entry *e;
  int64_t mtime;
} tarw_t;

static int tar_header(tarw_t *t, const char *path, int dir, uint64_t size, st_error_t *err) {
  archive_entry_clear(t->e);
  archive_entry_set_pathname(t->e, path);
  archive_entry_set_filetype(t->e, dir ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(t->e, dir ? 0755 : 0644);
  archive_entry_set_size(t->e, dir ? 0 : (la_int64_t)size);
  archive_entry_set_mtime(t->e, (time_t)t->mtime, 0);
  archive_entry_set_uid(t->e, 0);
  archive_entry_set_gid(t->e, 0);
  if (archive_write_header(t->a, t->e) != ARCHIVE_OK)
    return st_fail(err, ST_EIO, "oci archive: header %s: %s", path,
                   archive_error_string(t->a));
  return 0;
}

static int tar_sink(void *ud, const void *data, size_t len, st_error_t *err) {
  tarw_t *t = ud;
  if (len && archive_write_data(t->a, data, len) != (la_ssize_t)len)
    return st_fail(err, ST_EIO, "oci archive: %s", archive_error_string(t->a));
  return 0;
}

int st_oci_layout_write_tar(st_oci_layout_t *l, const char *path, int64_t mtime,
                            st_error_t *err) {
  st_buf_t index = ST_BUF_INIT, tmp = ST_BUF_INIT, name = ST_BUF_INIT;
  const blob_t **sorted = NULL;
  tarw_t t = {NULL, NULL, mtime};
  int fd = -1, rc;

  if ((rc = st_oci_layout_index_json(l, &index, err)))
    goto done;
  if (l->n && !(sorted = st_malloc(l->n * sizeof(*sorted)))) {
    rc = st_fail(err, ST_ENOMEM, "oci archive: out of memory");
    goto done;
  }
  for (size_t i = 0; i < l->n; i++)
    sorted[i] = &l->blobs[i];
  if (l->n)
    qsort(sorted, l->n, sizeof(*sorted), cmp_blob);
  if ((rc = st_buf_addf(&tmp, "%s.tmp.XXXXXX", path)) ||
      (fd = mkostemp(tmp.data, O_CLOEXEC)) < 0) {
    rc = st_fail(err, rc ? rc : ST_EIO, "oci archive: cannot create a file next to %s: %s",
                 path, strerror(errno));
    st_buf_reset(&tmp);
    goto done;
  }
  if (fchmod(fd, 0644) != 0 || !(t.a = archive_write_new()) ||
      !(t.e = archive_entry_new()) ||
      archive_write_set_format_pax_restricted(t.a) != ARCHIVE_OK ||
      archive_write_add_filter_none(t.a) != ARCHIVE_OK ||
      archive_write_open_fd(t.a, fd) != ARCHIVE_OK) {
    rc = st_fail(err, ST_EIO, "oci archive: cannot start the tar writer");
    goto done;
  }
  if ((rc = tar_header(&t, "blobs", 1, 0, err)) ||
      (rc = tar_header(&t, "blobs/sha256", 1, 0, err)))
    goto done;
  for (size_t i = 0; i < l->n; i++) {
    st_buf_reset(&name);
    if ((rc = st_buf_addf(&name, "blobs/sha256/%s", sorted[i]->digest + 7)) ||
        (rc = tar_header(&t, name.data, 0, sorted[i]->size, err)) ||
        (rc = blob_stream(sorted[i], tar_sink, &t, err)))
      goto done;
  }
  if ((rc = tar_header(&t, "index.json", 0, index.len, err)) ||
      (rc = tar_sink(&t, index.data, index.len, err)) ||
      (rc = tar_header(&t, "oci-layout", 0, sizeof(layout_file) - 1, err)) ||
      (rc = tar_sink(&t, layout_file, sizeof(layout_file) - 1, err)))
    goto done;
  if (archive_write_close(t.a) != ARCHIVE_OK) {
    rc = st_fail(err, ST_EIO, "oci archive: %s", archive_error_string(t.a));
    goto done;
  }
  if (fsync(fd) != 0 || rename(tmp.data, path) != 0)
    rc = st_fail(err, ST_EIO, "oci archive: cannot publish %s: %s", path, strerror(errno));
done:
  if (t.a)
    archive_write_free(t.a);
  archive_entry_free(t.e);
  if (fd >= 0)
    close(fd);
  if (rc && tmp.len)
    unlink(tmp.data);
  st_free(sorted);
  st_buf_release(&name);
  st_buf_release(&tmp);
  st_buf_release(&index);
  return rc;
}
