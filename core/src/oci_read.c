/* oci_read.c: reading OCI layouts someone else made (oci.h): safe extraction of a tar
 * (oci-archive, docker-archive) and a bounded, verifying reader of a layout directory.
 * Nothing here trusts a name: tar paths are checked before anything is created, every
 * file is created relative to a directory fd without following links, and a blob's
 * bytes are hashed whenever they are read. */
#define _GNU_SOURCE /* memrchr */
#include "stella/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci_internal.h"
#include "stella/json.h"
#include "stella/mem.h"

#define PATH_MAX_LEN 1024
#define LAYOUT_FILE_MAX 4096

void st_oci_limits_default(st_oci_limits_t *lim) {
  lim->max_blob_bytes = (uint64_t)16 << 30;
  lim->max_total_bytes = (uint64_t)64 << 30;
  lim->max_json_bytes = (size_t)4 << 20;
  lim->max_entries = 100000;
  lim->max_depth = 8;
}

static void limits_fill(const st_oci_limits_t *in, st_oci_limits_t *out) {
  st_oci_limits_default(out);
  if (!in)
    return;
  if (in->max_blob_bytes)
    out->max_blob_bytes = in->max_blob_bytes;
  if (in->max_total_bytes)
    out->max_total_bytes = in->max_total_bytes;
  if (in->max_json_bytes)
    out->max_json_bytes = in->max_json_bytes;
  if (in->max_entries)
    out->max_entries = in->max_entries;
  if (in->max_depth)
    out->max_depth = in->max_depth;
}

/* A clean relative path over [A-Za-z0-9._-/]; 0 or a static reason. */
const char *st__oci_path_problem(const char *p, size_t len) {
  size_t start = 0;
  if (len == 0)
    return "empty path";
  if (len > PATH_MAX_LEN)
    return "path too long";
  for (size_t i = 0; i <= len; i++) {
    if (i == len || p[i] == '/') {
      size_t n = i - start;
      if (n == 0)
        return "empty component or absolute path";
      if ((n == 1 && p[start] == '.') || (n == 2 && p[start] == '.' && p[start + 1] == '.'))
        return "'.' or '..' component";
      start = i + 1;
      continue;
    }
    char c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return "character outside [A-Za-z0-9._-/]";
  }
  return NULL;
}

/* Open (creating when missing) the directory rel[0..len) under root, never following a
 * link. Returns an fd or -1 with err set. */
static int open_dirs(int root, const char *rel, size_t len, st_error_t *err) {
  int cur = dup(root);
  size_t start = 0;
  char comp[PATH_MAX_LEN + 1];
  if (cur < 0) {
    st_fail(err, ST_EIO, "oci extract: dup: %s", strerror(errno));
    return -1;
  }
  while (start < len) {
    size_t end = start;
    int next;
    while (end < len && rel[end] != '/')
      end++;
    memcpy(comp, rel + start, end - start);
    comp[end - start] = '\0';
    if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST) {
      st_fail(err, ST_EIO, "oci extract: mkdir %.*s: %s", (int)end, rel, strerror(errno));
      close(cur);
      return -1;
    }
    next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(cur);
    if (next < 0) {
      st_fail(err, ST_EUNSAFE, "oci extract: %.*s is not a directory", (int)end, rel);
      return -1;
    }
    cur = next;
    start = end + 1;
  }
  return cur;
}

static int is_blob_path(const char *p, size_t len) {
  char dg[ST_OCI_DIGEST_LEN + 1];
  if (len != 13 + 64 || strncmp(p, "blobs/sha256/", 13))
    return 0;
  memcpy(dg, "sha256:", 7);
  memcpy(dg + 7, p + 13, 65);
  return st_oci_digest_valid(dg);
}

static int extract_file(struct archive *a, int root, const char *p, size_t len,
                        uint64_t *total, const st_oci_limits_t *lim, st_error_t *err) {
  const char *slash = memrchr(p, '/', len);
  int dfd = -1, fd = -1, rc = 0, blob = is_blob_path(p, len);
  st_sha256_t h = {0};
  uint8_t d[ST_SHA256_LEN];
  char got[ST_OCI_DIGEST_LEN + 1];
  const void *chunk;
  size_t n;
  la_int64_t off;
  int r;

  if ((dfd = slash ? open_dirs(root, p, (size_t)(slash - p), err) : dup(root)) < 0) {
    rc = err && err->code ? err->code : ST_EIO;
    goto done;
  }
  if ((fd = openat(dfd, slash ? slash + 1 : p,
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
    rc = st_fail(err, errno == EEXIST ? ST_EUNSAFE : ST_EIO, "oci extract: %s: %s%s", p,
                 strerror(errno), errno == EEXIST ? " (duplicate entry)" : "");
    goto done;
  }
  if (blob && (rc = st_sha256_init(&h)))
    goto done;
  while ((r = archive_read_data_block(a, &chunk, &n, &off)) == ARCHIVE_OK) {
    const char *q = chunk;
    *total += n;
    if (*total > lim->max_total_bytes) {
      rc = st_fail(err, ST_ETOOBIG, "oci extract: archive past %llu bytes",
                   (unsigned long long)lim->max_total_bytes);
      goto done;
    }
    if (blob && (rc = st_sha256_update(&h, chunk, n)))
      goto done;
    while (n) {
      ssize_t w = write(fd, q, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        rc = st_fail(err, ST_EIO, "oci extract: writing %s: %s", p, strerror(errno));
        goto done;
      }
      q += w;
      n -= (size_t)w;
    }
  }
  if (r != ARCHIVE_EOF) {
    rc = st_fail(err, ST_EPARSE, "oci extract: %s: %s", p, archive_error_string(a));
    goto done;
  }
  if (blob) {
    if ((rc = st_sha256_final(&h, d)))
      goto done;
    st__oci_digest_str(d, got);
    if (strcmp(got + 7, p + 13))
      rc = st_fail(err, ST_EVERIFY, "oci extract: %s holds %s", p, got);
  }
done:
  st_sha256_release(&h);
  if (fd >= 0 && close(fd) != 0 && !rc)
    rc = st_fail(err, ST_EIO, "oci extract: closing %s", p);
  if (dfd >= 0)
    close(dfd);
  return rc;
}

int st_oci_archive_extract(const char *tar_path, const char *dir, const st_oci_limits_t *lim_in,
                           st_error_t *err) {
  st_oci_limits_t lim;
  struct archive *a = NULL;
  struct archive_entry *e;
  uint64_t total = 0;
  size_t entries = 0;
  int root = -1, rc = 0, r;

  limits_fill(lim_in, &lim);
  if ((root = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    rc = st_fail(err, ST_EIO, "oci extract: %s: %s", dir, strerror(errno));
    goto done;
  }
  if (!(a = archive_read_new()) || archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_open_filename(a, tar_path, ST__OCI_CHUNK) != ARCHIVE_OK) {
    rc = st_fail(err, ST_EIO, "oci extract: cannot open %s: %s", tar_path,
                 a ? archive_error_string(a) : "out of memory");
    goto done;
  }
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *p = archive_entry_pathname(e), *why;
    size_t len;
    mode_t type = archive_entry_filetype(e);
    if (++entries > lim.max_entries) {
      rc = st_fail(err, ST_ETOOBIG, "oci extract: more than %zu entries", lim.max_entries);
      goto done;
    }
    if (!p) {
      rc = st_fail(err, ST_EUNSAFE, "oci extract: entry %zu has no usable path", entries);
      goto done;
    }
    if (!strncmp(p, "./", 2))
      p += 2;
    len = strlen(p);
    while (len && p[len - 1] == '/' && type == AE_IFDIR)
      len--;
    if (len == 0 && type == AE_IFDIR)
      continue; /* "./" itself */
    if ((why = st__oci_path_problem(p, len))) {
      rc = st_fail(err, ST_EUNSAFE, "oci extract: '%.200s': %s", p, why);
      goto done;
    }
    if (archive_entry_hardlink(e) || (type != AE_IFREG && type != AE_IFDIR)) {
      rc = st_fail(err, ST_EUNSAFE, "oci extract: %.*s is a link or special file", (int)len,
                   p);
      goto done;
    }
    if (type == AE_IFDIR) {
      int fd = open_dirs(root, p, len, err);
      if (fd < 0) {
        rc = err && err->code ? err->code : ST_EIO;
        goto done;
      }
      close(fd);
      continue;
    }
    if (archive_entry_size(e) < 0 || (uint64_t)archive_entry_size(e) > lim.max_blob_bytes) {
      rc = st_fail(err, ST_ETOOBIG, "oci extract: %.*s is larger than %llu bytes", (int)len, p,
                   (unsigned long long)lim.max_blob_bytes);
      goto done;
    }
    {
      char *path = st_strndup(p, len);
      if (!path) {
        rc = st_fail(err, ST_ENOMEM, "oci extract: out of memory");
        goto done;
      }
      rc = extract_file(a, root, path, len, &total, &lim, err);
      st_free(path);
      if (rc)
        goto done;
    }
  }
  if (r != ARCHIVE_EOF)
    rc = st_fail(err, ST_EPARSE, "oci extract: %s: %s", tar_path, archive_error_string(a));
done:
  if (a)
    archive_read_free(a);
  if (root >= 0)
    close(root);
  return rc;
}

/* ---- layout directory ---- */

struct st_oci_dir_s {
  int root, blobs;
  st_oci_limits_t lim;
  st_oci_desc_t *ents;
  size_t n;
};

static int read_all_fd(int fd, size_t max, const char *what, st_buf_t *out, st_error_t *err) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return st_fail(err, ST_EUNSAFE, "oci layout: %s is not a regular file", what);
  if ((uint64_t)st.st_size > max)
    return st_fail(err, ST_ETOOBIG, "oci layout: %s is larger than %zu bytes", what, max);
  st_buf_reset(out);
  if (st_buf_grow(out, (size_t)st.st_size + 1))
    return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  for (;;) {
    ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return st_fail(err, ST_EIO, "oci layout: reading %s: %s", what, strerror(errno));
    if (r == 0)
      break;
    out->len += (size_t)r;
    if (out->len > max)
      return st_fail(err, ST_ETOOBIG, "oci layout: %s grew past %zu bytes", what, max);
    if (out->len + 1 == out->cap && st_buf_grow(out, 4096))
      return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  }
  out->data[out->len] = '\0';
  return 0;
}

static int read_small(int dirfd, const char *name, size_t max, st_buf_t *out, st_error_t *err) {
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;
  if (fd < 0)
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EUNSAFE, "oci layout: %s: %s", name,
                   strerror(errno));
  rc = read_all_fd(fd, max, name, out, err);
  close(fd);
  return rc;
}

int st__oci_read_file(const char *path, size_t max, char **out, size_t *len, st_error_t *err) {
  st_buf_t b = ST_BUF_INIT;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc;
  *out = NULL;
  if (fd < 0)
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "%s: %s", path, strerror(errno));
  rc = read_all_fd(fd, max, path, &b, err);
  close(fd);
  if (rc) {
    st_buf_release(&b);
    return rc;
  }
  if (!b.cap && st_buf_grow(&b, 1)) /* an empty file: still hand back an allocation */
    return st_fail(err, ST_ENOMEM, "out of memory");
  *out = st_buf_detach(&b, len);
  return 0;
}

void st_oci_dir_free(st_oci_dir_t *d) {
  if (!d)
    return;
  for (size_t i = 0; i < d->n; i++)
    st_oci_desc_release(&d->ents[i]);
  st_free(d->ents);
  if (d->blobs >= 0)
    close(d->blobs);
  if (d->root >= 0)
    close(d->root);
  st_free(d);
}

static int parse_index(st_oci_dir_t *d, const st_buf_t *text, st_error_t *err) {
  st_json_limits_t jl = {d->lim.max_json_bytes, 32};
  json_t *doc = NULL, *arr;
  long long sv;
  int rc;
  if ((rc = st_json_parse(text->data, text->len, &jl, &doc, err)))
    goto done;
  if (!json_is_object(doc) || st_json_get_int(doc, "schemaVersion", &sv, NULL) || sv != 2 ||
      !json_is_array(arr = json_object_get(doc, "manifests"))) {
    rc = st_fail(err, ST_EPARSE, "oci layout: index.json is not an image index "
                 "(schemaVersion 2 with manifests)");
    goto done;
  }
  if (json_array_size(arr) > d->lim.max_entries) {
    rc = st_fail(err, ST_ETOOBIG, "oci layout: index.json lists too many manifests");
    goto done;
  }
  if (json_array_size(arr) &&
      !(d->ents = st_calloc(json_array_size(arr), sizeof(*d->ents)))) {
    rc = st_fail(err, ST_ENOMEM, "oci layout: out of memory");
    goto done;
  }
  for (size_t i = 0; i < json_array_size(arr); i++) {
    if ((rc = st_oci_desc_from_json(json_array_get(arr, i), &d->ents[i], err))) {
      st_error_wrap(err, "index.json manifests[%zu]", i);
      goto done;
    }
    d->n++;
  }
done:
  json_decref(doc);
  return rc;
}

int st_oci_dir_open(const char *dir, const st_oci_limits_t *lim, st_oci_dir_t **out,
                    st_error_t *err) {
  st_oci_dir_t *d = NULL;
  st_buf_t text = ST_BUF_INIT;
  json_t *lj = NULL;
  const char *ver;
  int b = -1, rc;

  *out = NULL;
  if (!(d = st_calloc(1, sizeof(*d)))) {
    rc = st_fail(err, ST_ENOMEM, "oci layout: out of memory");
    goto done;
  }
  d->root = d->blobs = -1;
  limits_fill(lim, &d->lim);
  if ((d->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    rc = st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "oci layout: %s: %s", dir,
                 strerror(errno));
    goto done;
  }
  if ((rc = read_small(d->root, "oci-layout", LAYOUT_FILE_MAX, &text, err)))
    goto done;
  if (st_json_parse(text.data, text.len, NULL, &lj, NULL) || !json_is_object(lj) ||
      !(ver = json_string_value(json_object_get(lj, "imageLayoutVersion"))) ||
      strncmp(ver, "1.", 2)) {
    rc = st_fail(err, ST_EPARSE, "oci layout: %s/oci-layout has no imageLayoutVersion 1.x",
                 dir);
    goto done;
  }
  if ((rc = read_small(d->root, "index.json", d->lim.max_json_bytes, &text, err)) ||
      (rc = parse_index(d, &text, err)))
    goto done;
  if ((b = openat(d->root, "blobs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
      (d->blobs = openat(b, "sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    rc = st_fail(err, ST_EPARSE, "oci layout: %s has no blobs/sha256 directory", dir);
    goto done;
  }
  *out = d;
  d = NULL;
done:
  if (b >= 0)
    close(b);
  json_decref(lj);
  st_buf_release(&text);
  st_oci_dir_free(d);
  return rc;
}

size_t st_oci_dir_count(const st_oci_dir_t *d) { return d->n; }

int st_oci_dir_entry(const st_oci_dir_t *d, size_t i, st_oci_desc_t *out, st_error_t *err) {
  if (i >= d->n)
    return st_fail(err, ST_ERANGE, "oci layout: no index entry %zu", i);
  return st_oci_desc_copy(out, &d->ents[i], err);
}

int st_oci_dir_resolve(const st_oci_dir_t *d, const char *ref, st_oci_desc_t *out,
                       st_error_t *err) {
  if (!ref) {
    if (d->n != 1)
      return st_fail(err, d->n ? ST_EINVAL : ST_ENOENT,
                     "oci layout: %zu entries in index.json; name one", d->n);
    return st_oci_desc_copy(out, &d->ents[0], err);
  }
  for (size_t i = 0; i < d->n; i++) {
    const json_t *a = d->ents[i].annotations;
    const char *name = a ? json_string_value(json_object_get(a, ST_OCI_ANN_REF_NAME)) : NULL;
    if ((name && !strcmp(name, ref)) || !strcmp(d->ents[i].digest, ref))
      return st_oci_desc_copy(out, &d->ents[i], err);
  }
  return st_fail(err, ST_ENOENT, "oci layout: no entry named '%.200s'", ref);
}

static int open_blob(const st_oci_dir_t *d, const st_oci_desc_t *desc, st_error_t *err) {
  struct stat st;
  int fd;
  if (!st_oci_digest_valid(desc->digest)) {
    st_fail(err, ST_EINVAL, "oci layout: '%.80s' is not a sha256 digest", desc->digest);
    return -1;
  }
  if ((fd = openat(d->blobs, desc->digest + 7, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EUNSAFE, "oci layout: blob %s: %s",
            desc->digest, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != desc->size) {
    st_fail(err, ST_EVERIFY, "oci layout: blob %s is not a regular file of %llu bytes",
            desc->digest, (unsigned long long)desc->size);
    close(fd);
    return -1;
  }
  return fd;
}

static int check_digest(const void *data, size_t len, const st_oci_desc_t *desc,
                        st_error_t *err) {
  uint8_t d[ST_SHA256_LEN];
  char got[ST_OCI_DIGEST_LEN + 1];
  int rc = st_sha256(data, len, d);
  if (rc)
    return st_fail(err, rc, "oci layout: cannot hash %s", desc->digest);
  st__oci_digest_str(d, got);
  if (strcmp(got, desc->digest))
    return st_fail(err, ST_EVERIFY, "oci layout: blob %s holds %s", desc->digest, got);
  return 0;
}

int st_oci_dir_read_blob(const st_oci_dir_t *d, const st_oci_desc_t *desc, size_t max,
                         st_buf_t *out, st_error_t *err) {
  int fd = open_blob(d, desc, err), rc;
  if (fd < 0)
    return err && err->code ? err->code : ST_EIO;
  rc = read_all_fd(fd, max ? max : d->lim.max_json_bytes, desc->digest, out, err);
  close(fd);
  if (!rc && out->len != desc->size)
    rc = st_fail(err, ST_EVERIFY, "oci layout: blob %s changed size", desc->digest);
  if (!rc)
    rc = check_digest(out->data, out->len, desc, err);
  if (rc)
    st_buf_reset(out);
  return rc;
}

int st_oci_dir_blob_fd(const st_oci_dir_t *d, const st_oci_desc_t *desc, int *fd,
                       st_error_t *err) {
  if ((*fd = open_blob(d, desc, err)) < 0)
    return err && err->code ? err->code : ST_EIO;
  return 0;
}

int st_oci_dir_blob_path(const st_oci_dir_t *d, const st_oci_desc_t *desc, const char *dir,
                         st_buf_t *out, st_error_t *err) {
  int fd = open_blob(d, desc, err);
  if (fd < 0)
    return err && err->code ? err->code : ST_EIO;
  close(fd);
  if (st_buf_addf(out, "%s/blobs/sha256/%s", dir, desc->digest + 7))
    return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  return 0;
}

static int hash_fd(int fd, const st_oci_desc_t *desc, st_error_t *err) {
  st_sha256_t h = {0};
  uint8_t dg[ST_SHA256_LEN];
  char got[ST_OCI_DIGEST_LEN + 1];
  unsigned char *buf = st_malloc(ST__OCI_CHUNK);
  uint64_t total = 0;
  ssize_t r;
  int rc;
  if (!buf)
    return st_fail(err, ST_ENOMEM, "oci layout: out of memory");
  if ((rc = st_sha256_init(&h)))
    goto done;
  while ((r = read(fd, buf, ST__OCI_CHUNK)) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = st_fail(err, ST_EIO, "oci layout: reading %s: %s", desc->digest, strerror(errno));
      goto done;
    }
    total += (uint64_t)r;
    if ((rc = st_sha256_update(&h, buf, (size_t)r)))
      goto done;
  }
  if ((rc = st_sha256_final(&h, dg)))
    goto done;
  st__oci_digest_str(dg, got);
  if (total != desc->size || strcmp(got, desc->digest))
    rc = st_fail(err, ST_EVERIFY, "oci layout: blob %s holds %s (%llu bytes)", desc->digest,
                 got, (unsigned long long)total);
done:
  st_sha256_release(&h);
  st_free(buf);
  return rc;
}

int st__oci_is_manifest_type(const char *mt) {
  return !strcmp(mt, ST_OCI_MT_MANIFEST) || !strcmp(mt, ST_OCI_MT_INDEX) ||
         !strcmp(mt, ST_OCI_MT_DOCKER_MANIFEST) || !strcmp(mt, ST_OCI_MT_DOCKER_LIST);
}

static int verify_desc(const st_oci_dir_t *d, const st_oci_desc_t *desc, int depth,
                       size_t *count, st_error_t *err) {
  st_buf_t json = ST_BUF_INIT;
  st_oci_desc_t *kids = NULL;
  size_t nk = 0;
  int fd = -1, rc = 0;

  if (++*count > d->lim.max_entries)
    return st_fail(err, ST_ETOOBIG, "oci layout: more than %zu descriptors",
                   d->lim.max_entries);
  if (!st__oci_is_manifest_type(desc->media_type)) {
    if ((fd = open_blob(d, desc, err)) < 0)
      return err && err->code ? err->code : ST_EIO;
    rc = hash_fd(fd, desc, err);
    close(fd);
    return rc;
  }
  if (depth > d->lim.max_depth)
    return st_fail(err, ST_EDEPTH, "oci layout: indexes nested deeper than %d",
                   d->lim.max_depth);
  if ((rc = st_oci_dir_read_blob(d, desc, 0, &json, err)) ||
      (rc = st_oci_children(json.data, json.len, desc->media_type, &d->lim, &kids, &nk, NULL,
                            err)))
    goto done;
  for (size_t i = 0; i < nk && !rc; i++)
    rc = verify_desc(d, &kids[i], depth + 1, count, err);
done:
  for (size_t i = 0; i < nk; i++)
    st_oci_desc_release(&kids[i]);
  st_free(kids);
  st_buf_release(&json);
  return rc;
}

int st_oci_dir_verify(const st_oci_dir_t *d, size_t *nblobs, st_error_t *err) {
  size_t count = 0;
  int rc = 0;
  for (size_t i = 0; i < d->n && !rc; i++)
    rc = verify_desc(d, &d->ents[i], 0, &count, err);
  if (nblobs)
    *nblobs = rc ? 0 : count;
  return rc;
}
