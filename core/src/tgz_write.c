/* tgz_write.c: the deterministic .tgz writer (see tgz.h for the format contract).
 *
 * Adding an entry records its path and source only. Finish adds the implied parent
 * directories, sorts everything by path bytes (a parent is a prefix of its children,
 * so it sorts first), and has libarchive produce the pax-restricted tar stream into a
 * write callback that deflates it with zlib straight into the output fd. libarchive's
 * own gzip filter costs the same CPU (tests/bench/bench_tgz.sh, docs/benchmarks.md);
 * doing gzip here pins every gzip header byte whatever the libarchive version.
 * Memory stays bounded by the entry list plus fixed 64 KiB buffers, whatever the sizes.
 */
#define _GNU_SOURCE /* mkostemp */
#include "stella/tgz.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "stella/mem.h"
#include "tgz_internal.h"

enum { SRC_DIR = 1, SRC_MEM, SRC_FILE, SRC_CB };

typedef struct wentry_s {
  char *path;
  int src;
  uint64_t size;
  void *mem;     /* SRC_MEM: owned copy */
  char *fs_path; /* SRC_FILE */
  struct stat st;
  st_tgz_read_cb cb; /* SRC_CB */
  void *ud;
} wentry_t;

struct st_tgz_writer_s {
  int fd;
  int own_fd;
  char *out_path, *tmp_path; /* path mode only */
  int spent;
  st_tgz_options_t opt;
  wentry_t *entries;
  size_t n, cap;
  st__tgz_map_t seen; /* path -> SRC_DIR or file source */
  z_stream z;
  int z_ready;
  unsigned char *zbuf, *iobuf;
  st_error_t *err; /* during finish, for the callbacks */
  int io_rc;       /* first failure inside a callback */
};

static int opt_check(const st_tgz_options_t *opt, st_tgz_options_t *out, st_error_t *err) {
  out->mtime = opt ? opt->mtime : 0;
  out->level = opt && opt->level ? opt->level : ST_TGZ_LEVEL_DEFAULT;
  if (out->level < 1 || out->level > 9)
    return st_fail(err, ST_EINVAL, "tgz: compression level %d not in 1..9", out->level);
  if (out->mtime < 0)
    return st_fail(err, ST_EINVAL, "tgz: negative mtime %lld", (long long)out->mtime);
  return 0;
}

static int writer_alloc(const st_tgz_options_t *opt, st_tgz_writer_t **out, st_error_t *err) {
  st_tgz_writer_t *w;
  st_tgz_options_t o;
  int rc;

  *out = NULL;
  if ((rc = opt_check(opt, &o, err)) < 0)
    return rc;
  if (!(w = st_calloc(1, sizeof(*w))))
    return st_fail(err, ST_ENOMEM, "tgz: out of memory");
  w->fd = -1;
  w->opt = o;
  st__tgz_map_init(&w->seen);
  *out = w;
  return 0;
}

int st_tgz_writer_new(const char *out_path, const st_tgz_options_t *opt,
                      st_tgz_writer_t **out, st_error_t *err) {
  st_tgz_writer_t *w = NULL;
  size_t n;
  int rc;

  if ((rc = writer_alloc(opt, &w, err)) < 0)
    goto done;
  n = strlen(out_path);
  w->out_path = st_strdup(out_path);
  w->tmp_path = st_malloc(n + sizeof(".tmp.XXXXXX"));
  if (!w->out_path || !w->tmp_path) {
    rc = st_fail(err, ST_ENOMEM, "tgz: out of memory");
    goto done;
  }
  memcpy(w->tmp_path, out_path, n);
  memcpy(w->tmp_path + n, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
  if ((w->fd = mkostemp(w->tmp_path, O_CLOEXEC)) < 0) {
    rc = st_fail(err, ST_EIO, "tgz: cannot create %s: %s", w->tmp_path, strerror(errno));
    st_free(w->tmp_path);
    w->tmp_path = NULL;
    goto done;
  }
  /* mkostemp makes 0600; a published bundle is world-readable like any file. */
  if (fchmod(w->fd, 0644) < 0) {
    rc = st_fail(err, ST_EIO, "tgz: chmod %s: %s", w->tmp_path, strerror(errno));
    goto done;
  }
  w->own_fd = 1;
  *out = w;
  w = NULL;
  rc = 0;
done:
  st_tgz_writer_abort(w);
  return rc;
}

int st_tgz_writer_new_fd(int fd, const st_tgz_options_t *opt, st_tgz_writer_t **out,
                         st_error_t *err) {
  int rc;
  if (fd < 0)
    return st_fail(err, ST_EINVAL, "tgz: bad fd %d", fd);
  if ((rc = writer_alloc(opt, out, err)) < 0)
    return rc;
  (*out)->fd = fd;
  return 0;
}

/* Validate, reject repeats, and append an entry; on success the writer owns e's
 * allocations, on failure they are freed. */
static int add_entry(st_tgz_writer_t *w, const char *path, wentry_t *e, st_error_t *err) {
  const char *why;
  size_t len = strlen(path);
  int rc;

  if (w->spent) {
    rc = st_fail(err, ST_EINVAL, "tgz: writer already finished");
    goto fail;
  }
  if (st__tgz_path_check(path, len, &why) < 0) {
    rc = st_fail(err, ST_EUNSAFE, "tgz: entry %.300s: %s", path, why);
    goto fail;
  }
  if (st__tgz_map_get(&w->seen, path, len)) {
    rc = st_fail(err, ST_EEXIST, "tgz: entry %.300s added twice", path);
    goto fail;
  }
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 32;
    wentry_t *p = st_realloc(w->entries, cap * sizeof(*p));
    if (!p) {
      rc = st_fail(err, ST_ENOMEM, "tgz: out of memory");
      goto fail;
    }
    w->entries = p;
    w->cap = cap;
  }
  if (!(e->path = st_strdup(path)) ||
      st__tgz_map_put(&w->seen, path, len, (uint8_t)e->src) < 0) {
    st_free(e->path);
    rc = st_fail(err, ST_ENOMEM, "tgz: out of memory");
    goto fail;
  }
  w->entries[w->n++] = *e;
  return 0;
fail:
  st_free(e->mem);
  st_free(e->fs_path);
  return rc;
}

int st_tgz_add_mem(st_tgz_writer_t *w, const char *path, const void *data, size_t len,
                   st_error_t *err) {
  wentry_t e = {0};
  e.src = SRC_MEM;
  e.size = len;
  if (!(e.mem = st_malloc(len ? len : 1)))
    return st_fail(err, ST_ENOMEM, "tgz: out of memory for %.300s", path);
  if (len)
    memcpy(e.mem, data, len);
  return add_entry(w, path, &e, err);
}

int st_tgz_add_file(st_tgz_writer_t *w, const char *path, const char *fs_path,
                    st_error_t *err) {
  wentry_t e = {0};
  e.src = SRC_FILE;
  if (lstat(fs_path, &e.st) < 0)
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "tgz: %s: %s", fs_path,
                   strerror(errno));
  if (!S_ISREG(e.st.st_mode))
    return st_fail(err, ST_EUNSAFE, "tgz: %s is not a regular file", fs_path);
  e.size = (uint64_t)e.st.st_size;
  if (!(e.fs_path = st_strdup(fs_path)))
    return st_fail(err, ST_ENOMEM, "tgz: out of memory");
  return add_entry(w, path, &e, err);
}

int st_tgz_add_cb(st_tgz_writer_t *w, const char *path, uint64_t size, st_tgz_read_cb cb,
                  void *ud, st_error_t *err) {
  wentry_t e = {0};
  if (!cb)
    return st_fail(err, ST_EINVAL, "tgz: entry %.300s: no read callback", path);
  e.src = SRC_CB;
  e.size = size;
  e.cb = cb;
  e.ud = ud;
  return add_entry(w, path, &e, err);
}

int st_tgz_add_dir(st_tgz_writer_t *w, const char *path, st_error_t *err) {
  wentry_t e = {0};
  e.src = SRC_DIR;
  return add_entry(w, path, &e, err);
}

/* ---- finish: implied directories, sort, tar through zlib to the fd ---- */

static int write_all(st_tgz_writer_t *w, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(w->fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return st_fail(w->err, ST_EIO, "tgz: write: %s", k < 0 ? strerror(errno) : "short");
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Deflate into zbuf, writing it out only when full (and at Z_FINISH): one write(2)
 * per 64 KiB of output, not one per tar block. */
static int deflate_some(st_tgz_writer_t *w, const void *data, size_t len, int flush) {
  int zr, rc;
  w->z.next_in = (Bytef *)(uintptr_t)data;
  w->z.avail_in = (uInt)len;
  for (;;) {
    zr = deflate(&w->z, flush);
    if (zr == Z_STREAM_ERROR)
      return st_fail(w->err, ST_EINTERNAL, "tgz: deflate failed");
    if (w->z.avail_out == 0 || zr == Z_STREAM_END) {
      if ((rc = write_all(w, w->zbuf, ST__TGZ_CHUNK - w->z.avail_out)) < 0)
        return rc;
      w->z.next_out = w->zbuf;
      w->z.avail_out = (uInt)ST__TGZ_CHUNK;
    }
    if (zr == Z_STREAM_END || (flush != Z_FINISH && w->z.avail_in == 0))
      return 0;
  }
}

static la_ssize_t tar_out(struct archive *a, void *ud, const void *buf, size_t len) {
  st_tgz_writer_t *w = ud;
  int rc = 0;
  size_t off = 0;
  /* zlib's avail_in is 32-bit: feed in chunks. */
  while (off < len && rc == 0) {
    size_t n = len - off > ST__TGZ_CHUNK ? ST__TGZ_CHUNK : len - off;
    rc = deflate_some(w, (const char *)buf + off, n, Z_NO_FLUSH);
    off += n;
  }
  if (rc < 0) {
    w->io_rc = rc;
    archive_set_error(a, EIO, "%s", w->err ? w->err->msg : "write failed");
    return -1;
  }
  return (la_ssize_t)len;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp((*(wentry_t *const *)a)->path, (*(wentry_t *const *)b)->path);
}

/* Add the parents of every entry as directories; a parent that is a file clashes. */
static int add_parents(st_tgz_writer_t *w, st_error_t *err) {
  size_t i, n = w->n;
  int rc;

  for (i = 0; i < n; i++) {
    const char *p = w->entries[i].path;
    const char *s = p;
    while ((s = strchr(s, '/')) != NULL) {
      size_t len = (size_t)(s - p);
      uint8_t kind = st__tgz_map_get(&w->seen, p, len);
      if (kind && kind != SRC_DIR)
        return st_fail(err, ST_EEXIST, "tgz: %.*s is a file and the parent of %.300s",
                       (int)(len > 300 ? 300 : len), p, w->entries[i].path);
      if (!kind) {
        char *dir = st_strndup(p, len);
        if (!dir)
          return st_fail(err, ST_ENOMEM, "tgz: out of memory");
        rc = add_entry(w, dir, &(wentry_t){.src = SRC_DIR}, err);
        st_free(dir);
        if (rc < 0)
          return rc;
        p = w->entries[i].path; /* entries may have moved */
      }
      s = p + len + 1;
    }
  }
  return 0;
}

static int file_changed(const struct stat *a, const struct stat *b) {
  return a->st_dev != b->st_dev || a->st_ino != b->st_ino || a->st_size != b->st_size ||
         a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec ||
         a->st_ctim.tv_sec != b->st_ctim.tv_sec || a->st_ctim.tv_nsec != b->st_ctim.tv_nsec;
}

static int data_out(st_tgz_writer_t *w, struct archive *a, const void *p, size_t n) {
  if (archive_write_data(a, p, n) != (la_ssize_t)n)
    return w->io_rc ? w->io_rc
                    : st_fail(w->err, ST_EIO, "tgz: %s", archive_error_string(a));
  return 0;
}

static int write_file_data(st_tgz_writer_t *w, struct archive *a, const wentry_t *e) {
  struct stat st;
  uint64_t left = e->size;
  int fd = -1, rc;

  if ((fd = open(e->fs_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    rc = st_fail(w->err, ST_EIO, "tgz: %s: %s", e->fs_path, strerror(errno));
    goto done;
  }
  if (fstat(fd, &st) < 0 || file_changed(&e->st, &st)) {
    rc = st_fail(w->err, ST_ECONFLICT, "tgz: %s changed after it was added", e->fs_path);
    goto done;
  }
  while (left > 0) {
    size_t want = left > ST__TGZ_CHUNK ? ST__TGZ_CHUNK : (size_t)left;
    ssize_t k = read(fd, w->iobuf, want);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      rc = st_fail(w->err, ST_EIO, "tgz: read %s: %s", e->fs_path, strerror(errno));
      goto done;
    }
    if (k == 0) {
      rc = st_fail(w->err, ST_ECONFLICT, "tgz: %s shrank while being archived", e->fs_path);
      goto done;
    }
    if ((rc = data_out(w, a, w->iobuf, (size_t)k)) < 0)
      goto done;
    left -= (uint64_t)k;
  }
  if (read(fd, w->iobuf, 1) != 0 || fstat(fd, &st) < 0 || file_changed(&e->st, &st)) {
    rc = st_fail(w->err, ST_ECONFLICT, "tgz: %s changed while being archived", e->fs_path);
    goto done;
  }
  rc = 0;
done:
  if (fd >= 0)
    close(fd);
  return rc;
}

static int write_cb_data(st_tgz_writer_t *w, struct archive *a, const wentry_t *e) {
  uint64_t left = e->size;
  size_t got;
  int rc;

  for (;;) {
    size_t want = left > ST__TGZ_CHUNK ? ST__TGZ_CHUNK : (size_t)left;
    got = 0;
    /* With nothing left, ask once more with a full buffer: it must report the end. */
    if ((rc = e->cb(e->ud, w->iobuf, want ? want : ST__TGZ_CHUNK, &got, w->err)) < 0)
      return rc;
    if (left == 0) {
      if (got != 0)
        return st_fail(w->err, ST_EIO, "tgz: entry %.300s: source gave more than %llu bytes",
                       e->path, (unsigned long long)e->size);
      return 0;
    }
    if (got == 0 || got > want)
      return st_fail(w->err, ST_EIO, "tgz: entry %.300s: source gave %llu of %llu bytes",
                     e->path, (unsigned long long)(e->size - left + (got > want ? got : 0)),
                     (unsigned long long)e->size);
    if ((rc = data_out(w, a, w->iobuf, got)) < 0)
      return rc;
    left -= got;
  }
}

static int write_entries(st_tgz_writer_t *w, struct archive *a, wentry_t **order) {
  struct archive_entry *ae = NULL;
  size_t i;
  int rc = 0;

  if (!(ae = archive_entry_new())) {
    rc = st_fail(w->err, ST_ENOMEM, "tgz: out of memory");
    goto done;
  }
  for (i = 0; i < w->n && rc == 0; i++) {
    const wentry_t *e = order[i];
    archive_entry_clear(ae);
    archive_entry_set_pathname_utf8(ae, e->path);
    archive_entry_set_filetype(ae, e->src == SRC_DIR ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(ae, e->src == SRC_DIR ? 0755 : 0644);
    archive_entry_set_size(ae, (la_int64_t)e->size);
    archive_entry_set_mtime(ae, (time_t)w->opt.mtime, 0);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    if (archive_write_header(a, ae) != ARCHIVE_OK) {
      rc = w->io_rc ? w->io_rc
                    : st_fail(w->err, ST_EIO, "tgz: entry %.300s: %s", e->path,
                              archive_error_string(a));
      break;
    }
    if (e->src == SRC_MEM && e->size)
      rc = data_out(w, a, e->mem, (size_t)e->size);
    else if (e->src == SRC_FILE)
      rc = write_file_data(w, a, e);
    else if (e->src == SRC_CB)
      rc = write_cb_data(w, a, e);
  }
  if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
    rc = w->io_rc ? w->io_rc : st_fail(w->err, ST_EIO, "tgz: %s", archive_error_string(a));
done:
  archive_entry_free(ae);
  return rc;
}

static int zlib_start(st_tgz_writer_t *w) {
  /* 31 = gzip wrapper; the header is set explicitly so no byte depends on zlib's
   * defaults: MTIME 0, no name or comment, OS 255 (unknown). */
  static gz_header hdr = {.os = 255};
  if (deflateInit2(&w->z, w->opt.level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return st_fail(w->err, ST_ENOMEM, "tgz: deflateInit2 failed");
  w->z_ready = 1;
  w->z.next_out = w->zbuf;
  w->z.avail_out = (uInt)ST__TGZ_CHUNK;
  if (deflateSetHeader(&w->z, &hdr) != Z_OK)
    return st_fail(w->err, ST_EINTERNAL, "tgz: deflateSetHeader failed");
  return 0;
}

static int publish(st_tgz_writer_t *w) {
  char *dir = NULL;
  int dfd = -1, rc = 0;

  if (!w->own_fd)
    return 0; /* the caller's fd: syncing it (or not) is the caller's business */
  if (fsync(w->fd) < 0)
    return st_fail(w->err, ST_EIO, "tgz: fsync %s: %s", w->tmp_path, strerror(errno));
  if (close(w->fd) < 0) {
    w->fd = -1;
    return st_fail(w->err, ST_EIO, "tgz: close %s: %s", w->tmp_path, strerror(errno));
  }
  w->fd = -1;
  if (rename(w->tmp_path, w->out_path) < 0)
    return st_fail(w->err, ST_EIO, "tgz: rename to %s: %s", w->out_path, strerror(errno));
  st_free(w->tmp_path);
  w->tmp_path = NULL;
  /* Make the rename itself durable. */
  if (!(dir = st_strdup(w->out_path)))
    return st_fail(w->err, ST_ENOMEM, "tgz: out of memory");
  if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 && fsync(dfd) < 0)
    rc = st_fail(w->err, ST_EIO, "tgz: fsync directory of %s: %s", w->out_path,
                 strerror(errno));
  if (dfd >= 0)
    close(dfd);
  st_free(dir);
  return rc;
}

int st_tgz_writer_finish(st_tgz_writer_t *w, st_error_t *err) {
  struct archive *a = NULL;
  wentry_t **order = NULL;
  locale_t loc = (locale_t)0;
  size_t i;
  int rc, in_loc = 0;

  if (w->spent)
    return st_fail(err, ST_EINVAL, "tgz: writer already finished");
  w->err = err;
  if ((rc = st__tgz_locale_enter(&loc, err)) < 0)
    goto done;
  in_loc = 1;
  if ((rc = add_parents(w, err)) < 0)
    goto done;
  w->spent = 1;
  order = st_malloc((w->n ? w->n : 1) * sizeof(*order));
  w->zbuf = st_malloc(ST__TGZ_CHUNK);
  w->iobuf = st_malloc(ST__TGZ_CHUNK);
  if (!order || !w->zbuf || !w->iobuf) {
    rc = st_fail(err, ST_ENOMEM, "tgz: out of memory");
    goto done;
  }
  for (i = 0; i < w->n; i++)
    order[i] = &w->entries[i];
  qsort(order, w->n, sizeof(*order), cmp_entry);
  if ((rc = zlib_start(w)) < 0)
    goto done;
  if (!(a = archive_write_new()) || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      archive_write_add_filter_none(a) != ARCHIVE_OK ||
      archive_write_open2(a, w, NULL, tar_out, NULL, NULL) != ARCHIVE_OK) {
    rc = st_fail(err, ST_EINTERNAL, "tgz: libarchive setup: %s",
                 a ? archive_error_string(a) : "out of memory");
    goto done;
  }
  if ((rc = write_entries(w, a, order)) < 0)
    goto done;
  if ((rc = deflate_some(w, NULL, 0, Z_FINISH)) < 0)
    goto done;
  rc = publish(w);
done:
  if (a)
    archive_write_free(a);
  if (in_loc)
    st__tgz_locale_leave(loc);
  st_free(order);
  w->spent = 1;
  w->err = NULL;
  if (rc < 0 && w->tmp_path) {
    unlink(w->tmp_path);
    st_free(w->tmp_path);
    w->tmp_path = NULL;
  }
  return rc;
}

void st_tgz_writer_abort(st_tgz_writer_t *w) {
  size_t i;
  if (!w)
    return;
  if (w->tmp_path)
    unlink(w->tmp_path);
  if (w->own_fd && w->fd >= 0)
    close(w->fd);
  if (w->z_ready)
    deflateEnd(&w->z);
  for (i = 0; i < w->n; i++) {
    st_free(w->entries[i].path);
    st_free(w->entries[i].mem);
    st_free(w->entries[i].fs_path);
  }
  st_free(w->entries);
  st__tgz_map_release(&w->seen);
  st_free(w->zbuf);
  st_free(w->iobuf);
  st_free(w->out_path);
  st_free(w->tmp_path);
  st_free(w);
}

void st_tgz_writer_free(st_tgz_writer_t *w) { st_tgz_writer_abort(w); }
