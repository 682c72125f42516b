/* tgz_read.c: the safe, bounded .tgz reader (see tgz.h for what is refused).
 *
 * Data path: source (fd or memory) -> zlib inflate here (gzip only, multi-member
 * allowed, every decompressed byte counted against max_total_bytes) -> libarchive with
 * the tar format only and no filters -> entry checks -> caller's callback or the
 * extractor. Gzip is inflated here rather than by libarchive so the decompressed count
 * is exact and checked before libarchive sees a byte, and so the reader can check the
 * stream after the tar end marker (zero padding, then a clean gzip end with its CRC).
 * Memory: two 64 KiB output buffers, one 64 KiB input buffer, libarchive's own bounded
 * header buffers, and the path map (bounded by max_entries * max_path_len).
 */
#include "stella/tgz.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "stella/buf.h"
#include "stella/mem.h"
#include "tgz_internal.h"

enum { GZ_START, GZ_IN, GZ_BETWEEN, GZ_END };
enum { SEEN_FILE = 1, SEEN_DIR, SEEN_PARENT };

struct st_tgz_reader_s {
  int fd; /* -1 for memory */
  const unsigned char *mem;
  size_t mem_len, mem_pos;
  st_tgz_limits_t lim;
  z_stream z;
  int z_ready, gz_state, src_eof;
  unsigned char *inbuf, *out[2];
  size_t out_len[2];
  int cur;
  uint64_t total;     /* decompressed bytes so far */
  struct archive *a;
  st_tgz_entry_t entry;
  char *path;
  int have_entry, data_done, done, spent;
  uint64_t n_entries;
  st__tgz_map_t seen;
  st_error_t perr; /* failure inside the libarchive read callback */
  int prc;
};

void st_tgz_limits_default(st_tgz_limits_t *lim) {
  lim->max_entries = 100000;
  lim->max_total_bytes = (uint64_t)8 << 30;
  lim->max_entry_bytes = (uint64_t)4 << 30;
  lim->max_path_len = ST_TGZ_PATH_MAX;
}

/* ---- gzip ---- */

static int src_fill(st_tgz_reader_t *r) {
  if (r->fd < 0) {
    size_t n = r->mem_len - r->mem_pos;
    if (n > (size_t)1 << 30)
      n = (size_t)1 << 30;
    r->z.next_in = (Bytef *)(uintptr_t)(r->mem + r->mem_pos);
    r->z.avail_in = (uInt)n;
    r->mem_pos += n;
    r->src_eof = n == 0;
    return 0;
  }
  for (;;) {
    ssize_t k = read(r->fd, r->inbuf, ST__TGZ_CHUNK);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return st_fail(&r->perr, ST_EIO, "tgz: read: %s", strerror(errno));
    r->z.next_in = r->inbuf;
    r->z.avail_in = (uInt)k;
    r->src_eof = k == 0;
    return 0;
  }
}

/* Inflate up to cap bytes into buf; *got = 0 only at the clean end of the stream. */
static int inflate_some(st_tgz_reader_t *r, unsigned char *buf, size_t cap, size_t *got) {
  int rc;
  *got = 0;
  for (;;) {
    int zr, first;
    size_t produced;
    if (r->gz_state == GZ_END)
      return 0;
    if (r->z.avail_in == 0 && !r->src_eof && (rc = src_fill(r)) < 0)
      return rc;
    if (r->gz_state == GZ_START || r->gz_state == GZ_BETWEEN) {
      if (r->z.avail_in == 0 && r->src_eof) {
        if (r->gz_state == GZ_START)
          return st_fail(&r->perr, ST_EPARSE, "tgz: empty input, not a gzip stream");
        r->gz_state = GZ_END;
        return 0;
      }
      if (r->gz_state == GZ_BETWEEN && inflateReset(&r->z) != Z_OK)
        return st_fail(&r->perr, ST_EINTERNAL, "tgz: inflateReset failed");
    }
    first = r->total == 0;
    if (r->gz_state != GZ_IN)
      r->gz_state = GZ_IN;
    r->z.next_out = buf;
    r->z.avail_out = (uInt)cap;
    zr = inflate(&r->z, Z_NO_FLUSH);
    produced = cap - r->z.avail_out;
    if (zr == Z_STREAM_END)
      r->gz_state = GZ_BETWEEN;
    else if (zr == Z_MEM_ERROR)
      return st_fail(&r->perr, ST_ENOMEM, "tgz: inflate: out of memory");
    else if (zr != Z_OK && zr != Z_BUF_ERROR)
      return st_fail(&r->perr, ST_EPARSE, "tgz: %s: %s",
                     first && produced == 0 ? "not a gzip stream" : "corrupt gzip data",
                     r->z.msg ? r->z.msg : "inflate error");
    else if (produced == 0 && r->z.avail_in == 0 && r->src_eof)
      return st_fail(&r->perr, ST_EPARSE, "tgz: truncated gzip stream after %llu bytes",
                     (unsigned long long)r->total);
    if (produced) {
      if (produced > r->lim.max_total_bytes - r->total)
        return st_fail(&r->perr, ST_ETOOBIG,
                       "tgz: decompressed size exceeds the limit of %llu bytes",
                       (unsigned long long)r->lim.max_total_bytes);
      r->total += produced;
      *got = produced;
      return 0;
    }
  }
}

static la_ssize_t tar_in(struct archive *a, void *ud, const void **buf) {
  st_tgz_reader_t *r = ud;
  size_t got;
  int rc;

  /* Alternate buffers: the previous one stays intact for the trailer check. */
  r->cur ^= 1;
  if ((rc = inflate_some(r, r->out[r->cur], ST__TGZ_CHUNK, &got)) < 0) {
    r->prc = rc;
    archive_set_error(a, EIO, "%s", r->perr.msg);
    return -1;
  }
  r->out_len[r->cur] = got;
  *buf = r->out[r->cur];
  return (la_ssize_t)got;
}

/* ---- open / free ---- */

static int reader_open(st_tgz_reader_t *r, const st_tgz_limits_t *lim, st_error_t *err) {
  locale_t loc;
  int rc;

  if (lim)
    r->lim = *lim;
  else
    st_tgz_limits_default(&r->lim);
  if (r->lim.max_path_len > ST_TGZ_PATH_MAX)
    r->lim.max_path_len = ST_TGZ_PATH_MAX;
  st__tgz_map_init(&r->seen);
  r->inbuf = st_malloc(ST__TGZ_CHUNK);
  r->out[0] = st_malloc(ST__TGZ_CHUNK);
  r->out[1] = st_malloc(ST__TGZ_CHUNK);
  if (!r->inbuf || !r->out[0] || !r->out[1])
    return st_fail(err, ST_ENOMEM, "tgz: out of memory");
  if (inflateInit2(&r->z, 16 + 15) != Z_OK) /* gzip wrapper only */
    return st_fail(err, ST_ENOMEM, "tgz: inflateInit2 failed");
  r->z_ready = 1;
  if (!(r->a = archive_read_new()) || archive_read_support_format_tar(r->a) != ARCHIVE_OK)
    return st_fail(err, ST_ENOMEM, "tgz: libarchive setup failed");
  if ((rc = st__tgz_locale_enter(&loc, err)) < 0)
    return rc;
  if (archive_read_open(r->a, r, NULL, tar_in, NULL) != ARCHIVE_OK)
    rc = r->prc ? st_fail(err, r->prc, "%s", r->perr.msg)
                : st_fail(err, ST_EPARSE, "tgz: not a tar archive: %s",
                          archive_error_string(r->a));
  st__tgz_locale_leave(loc);
  return rc;
}

static int reader_alloc(st_tgz_reader_t **out, st_error_t *err) {
  if (!(*out = st_calloc(1, sizeof(**out))))
    return st_fail(err, ST_ENOMEM, "tgz: out of memory");
  (*out)->fd = -1;
  return 0;
}

int st_tgz_reader_open(const char *path, const st_tgz_limits_t *lim, st_tgz_reader_t **out,
                       st_error_t *err) {
  st_tgz_reader_t *r = NULL;
  int rc;

  *out = NULL;
  if ((rc = reader_alloc(&r, err)) < 0)
    goto done;
  if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    rc = st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "tgz: %s: %s", path,
                 strerror(errno));
    goto done;
  }
  if ((rc = reader_open(r, lim, err)) < 0) {
    st_error_wrap(err, "%s", path);
    goto done;
  }
  *out = r;
  r = NULL;
done:
  st_tgz_reader_free(r);
  return rc;
}

int st_tgz_reader_open_mem(const void *data, size_t len, const st_tgz_limits_t *lim,
                           st_tgz_reader_t **out, st_error_t *err) {
  st_tgz_reader_t *r = NULL;
  int rc;

  *out = NULL;
  if ((rc = reader_alloc(&r, err)) < 0)
    goto done;
  r->mem = data;
  r->mem_len = len;
  if ((rc = reader_open(r, lim, err)) < 0)
    goto done;
  *out = r;
  r = NULL;
done:
  st_tgz_reader_free(r);
  return rc;
}

void st_tgz_reader_free(st_tgz_reader_t *r) {
  if (!r)
    return;
  if (r->a)
    archive_read_free(r->a);
  if (r->z_ready)
    inflateEnd(&r->z);
  if (r->fd >= 0)
    close(r->fd);
  st_free(r->inbuf);
  st_free(r->out[0]);
  st_free(r->out[1]);
  st_free(r->path);
  st__tgz_map_release(&r->seen);
  st_free(r);
}

/* ---- entries ---- */

/* A failure from libarchive: ours if the read callback failed, else a parse error. */
static int la_fail(st_tgz_reader_t *r, st_error_t *err, const char *what) {
  if (r->prc)
    return st_fail(err, r->prc, "%s", r->perr.msg);
  return st_fail(err, ST_EPARSE, "tgz: %s: %s", what,
                 archive_error_string(r->a) ? archive_error_string(r->a) : "unreadable");
}

static int all_zero(const unsigned char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (p[i])
      return 0;
  return 1;
}

/* After the tar end marker only zero padding may follow, up to a clean gzip end. */
static int check_trailer(st_tgz_reader_t *r, st_error_t *err) {
  la_int64_t consumed = archive_filter_bytes(r->a, 0);
  uint64_t tail;
  size_t cur_len = r->out_len[r->cur], prev_len = r->out_len[r->cur ^ 1], got;
  int rc;

  if (consumed < 0 || (uint64_t)consumed > r->total)
    return st_fail(err, ST_EINTERNAL, "tgz: inconsistent stream position");
  tail = r->total - (uint64_t)consumed;
  if (tail > (uint64_t)cur_len + prev_len)
    return st_fail(err, ST_EPARSE, "tgz: cannot check %llu bytes after the end marker",
                   (unsigned long long)tail);
  if (tail > cur_len) {
    if (!all_zero(r->out[r->cur ^ 1] + prev_len - (tail - cur_len), tail - cur_len))
      goto garbage;
    tail = cur_len;
  }
  if (!all_zero(r->out[r->cur] + cur_len - tail, tail))
    goto garbage;
  do {
    if ((rc = inflate_some(r, r->out[0], ST__TGZ_CHUNK, &got)) < 0)
      return st_fail(err, rc, "%s", r->perr.msg);
    if (!all_zero(r->out[0], got))
      goto garbage;
  } while (got);
  return 0;
garbage:
  return st_fail(err, ST_EPARSE, "tgz: data after the end of the tar archive");
}

/* The path for messages: as is if printable and short, else a placeholder. */
static const char *shown(const char *p) {
  size_t i;
  for (i = 0; p[i]; i++)
    if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || i >= 300)
      return "(unprintable or long path)";
  return p;
}

static int check_type(struct archive_entry *ae, uint64_t n, const char *p, st_error_t *err) {
  const char *kind = NULL;
  if (archive_entry_hardlink(ae))
    kind = "hard link";
  else
    switch (archive_entry_filetype(ae)) {
    case AE_IFREG:
    case AE_IFDIR:
      break;
    case AE_IFLNK:
      kind = "symbolic link";
      break;
    case AE_IFCHR:
    case AE_IFBLK:
      kind = "device node";
      break;
    case AE_IFIFO:
      kind = "FIFO";
      break;
    default:
      kind = "unsupported entry type";
    }
  if (!kind && archive_entry_symlink(ae))
    kind = "symbolic link";
  if (!kind && archive_entry_sparse_count(ae) > 0)
    kind = "sparse file";
  if (kind)
    return st_fail(err, ST_EUNSAFE, "tgz: entry #%llu %s: %s (bundles hold only regular "
                   "files and directories)", (unsigned long long)n, shown(p), kind);
  return 0;
}

/* Duplicates and clashes: a path seen before, a parent that is a file, a file where
 * a directory was implied. Parents are recorded so later entries can be checked. */
static int check_seen(st_tgz_reader_t *r, const char *p, size_t len, int is_dir,
                      st_error_t *err) {
  const char *s = p;
  uint8_t v = st__tgz_map_get(&r->seen, p, len);

  if (v == SEEN_FILE || v == SEEN_DIR || (v == SEEN_PARENT && !is_dir))
    return st_fail(err, ST_EUNSAFE, "tgz: entry %s: duplicate path", shown(p));
  while ((s = strchr(s, '/')) != NULL) {
    size_t n = (size_t)(s - p);
    uint8_t pv = st__tgz_map_get(&r->seen, p, n);
    if (pv == SEEN_FILE)
      return st_fail(err, ST_EUNSAFE, "tgz: entry %s: a parent is a file", shown(p));
    if (!pv && st__tgz_map_put(&r->seen, p, n, SEEN_PARENT) < 0)
      return st_fail(err, ST_ENOMEM, "tgz: out of memory");
    s++;
  }
  if (st__tgz_map_put(&r->seen, p, len, is_dir ? SEEN_DIR : SEEN_FILE) < 0)
    return st_fail(err, ST_ENOMEM, "tgz: out of memory");
  return 0;
}

static int check_entry(st_tgz_reader_t *r, struct archive_entry *ae, st_error_t *err) {
  const char *p = archive_entry_pathname_utf8(ae), *why;
  uint64_t n = r->n_entries;
  size_t len;
  int is_dir, rc;
  la_int64_t size;

  if (!p && !(p = archive_entry_pathname(ae)))
    return st_fail(err, ST_EUNSAFE, "tgz: entry #%llu: unreadable path", (unsigned long long)n);
  if ((rc = check_type(ae, n, p, err)) < 0)
    return rc;
  is_dir = archive_entry_filetype(ae) == AE_IFDIR;
  len = strlen(p);
  if (len > r->lim.max_path_len)
    return st_fail(err, ST_ETOOBIG, "tgz: entry #%llu: path of %zu bytes exceeds %zu",
                   (unsigned long long)n, len, r->lim.max_path_len);
  if (len > 0 && p[len - 1] == '/') {
    if (!is_dir)
      return st_fail(err, ST_EUNSAFE, "tgz: entry %s: trailing slash on a file", shown(p));
    len--;
  }
  if (st__tgz_path_check(p, len, &why) < 0)
    return st_fail(err, ST_EUNSAFE, "tgz: entry #%llu %s: %s", (unsigned long long)n,
                   shown(p), why);
  size = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
  if (size < 0)
    return st_fail(err, ST_EPARSE, "tgz: entry %s: negative size", shown(p));
  /* libarchive reads an old-style "file/" header as a directory */
  if (is_dir && size != 0)
    return st_fail(err, ST_EUNSAFE, "tgz: entry %s: trailing slash on a file (or a "
                   "directory with data)", shown(p));
  if ((uint64_t)size > r->lim.max_entry_bytes)
    return st_fail(err, ST_ETOOBIG, "tgz: entry %s: %lld bytes exceeds the limit of %llu",
                   shown(p), (long long)size, (unsigned long long)r->lim.max_entry_bytes);
  st_free(r->path);
  if (!(r->path = st_strndup(p, len)))
    return st_fail(err, ST_ENOMEM, "tgz: out of memory");
  if ((rc = check_seen(r, r->path, len, is_dir, err)) < 0)
    return rc;
  r->entry.path = r->path;
  r->entry.type = is_dir ? ST_TGZ_DIR : ST_TGZ_FILE;
  r->entry.size = (uint64_t)size;
  return 0;
}

static int reader_next(st_tgz_reader_t *r, const st_tgz_entry_t **entry, st_error_t *err) {
  struct archive_entry *ae;
  int rc, ar;

  *entry = NULL;
  if (r->spent)
    return st_fail(err, ST_EINVAL, "tgz: reader already failed");
  if (r->done)
    return 0;
  r->have_entry = 0;
  ar = archive_read_next_header(r->a, &ae);
  if (ar == ARCHIVE_EOF) {
    if ((rc = check_trailer(r, err)) < 0)
      goto done;
    r->done = 1;
    return 0;
  }
  if (ar != ARCHIVE_OK) {
    rc = la_fail(r, err, "reading a tar header");
    goto done;
  }
  if (++r->n_entries > r->lim.max_entries) {
    rc = st_fail(err, ST_ETOOBIG, "tgz: more than %llu entries",
                 (unsigned long long)r->lim.max_entries);
    goto done;
  }
  if ((rc = check_entry(r, ae, err)) < 0)
    goto done;
  r->have_entry = 1;
  r->data_done = r->entry.type == ST_TGZ_DIR;
  *entry = &r->entry;
  return 1;
done:
  r->spent = 1;
  return rc;
}

int st_tgz_reader_next(st_tgz_reader_t *r, const st_tgz_entry_t **entry, st_error_t *err) {
  locale_t loc;
  int rc;

  *entry = NULL;
  if ((rc = st__tgz_locale_enter(&loc, err)) < 0)
    return rc;
  rc = reader_next(r, entry, err);
  st__tgz_locale_leave(loc);
  return rc;
}

int st_tgz_reader_data(st_tgz_reader_t *r, st_tgz_data_cb cb, void *ud, st_error_t *err) {
  const void *buf;
  size_t size;
  la_int64_t off;
  uint64_t got = 0;
  int rc, ar;

  if (r->spent || !r->have_entry || r->data_done)
    return st_fail(err, ST_EINVAL, "tgz: no file entry data to read");
  r->data_done = 1;
  while ((ar = archive_read_data_block(r->a, &buf, &size, &off)) == ARCHIVE_OK) {
    if (off < 0 || (uint64_t)off != got || size > r->entry.size - got) {
      rc = st_fail(err, ST_EPARSE, "tgz: entry %s: data does not match its size",
                   shown(r->path));
      goto done;
    }
    while (size > 0) {
      size_t n = size > ST__TGZ_CHUNK ? ST__TGZ_CHUNK : size;
      if ((rc = cb(ud, buf, n, err)) < 0) {
        if (err && err->code == 0)
          st_fail(err, rc, "tgz: entry %s: consumer failed", shown(r->path));
        goto done;
      }
      buf = (const char *)buf + n;
      size -= n;
      got += n;
    }
  }
  if (ar != ARCHIVE_EOF) {
    rc = la_fail(r, err, shown(r->path));
    goto done;
  }
  if (got != r->entry.size) {
    rc = st_fail(err, ST_EPARSE, "tgz: entry %s: truncated data", shown(r->path));
    goto done;
  }
  return 0;
done:
  r->spent = 1;
  return rc;
}

/* ---- extraction ---- */

/* Open (creating as 0755 if absent) the directory `name` under dfd, never following a
 * link. */
static int open_dir(int dfd, const char *name, int create, st_error_t *err) {
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
      return st_fail(err, ST_EIO, "tgz: mkdir %s: %s", name, strerror(errno));
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && fchmod(fd, 0755) < 0) {
      close(fd);
      return st_fail(err, ST_EIO, "tgz: chmod %s: %s", name, strerror(errno));
    }
  }
  if (fd < 0)
    return st_fail(err, errno == ELOOP || errno == ENOTDIR ? ST_EUNSAFE : ST_EIO,
                   "tgz: cannot open directory %s: %s", name, strerror(errno));
  return fd;
}

static int write_fd(void *ud, const void *data, size_t len, st_error_t *err) {
  int fd = *(int *)ud;
  while (len > 0) {
    ssize_t k = write(fd, data, len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return st_fail(err, ST_EIO, "tgz: write: %s", k < 0 ? strerror(errno) : "short");
    data = (const char *)data + k;
    len -= (size_t)k;
  }
  return 0;
}

static int extract_one(st_tgz_reader_t *r, int root, st_error_t *err) {
  char *comp = NULL, *slash, *name;
  int dfd = root, fd = -1, rc = 0;

  if (!(comp = st_strdup(r->entry.path)))
    return st_fail(err, ST_ENOMEM, "tgz: out of memory");
  /* Walk the parents one component at a time, each relative to the last. */
  name = comp;
  while ((slash = strchr(name, '/')) != NULL) {
    *slash = '\0';
    if ((rc = open_dir(dfd, name, 1, err)) < 0)
      goto done;
    if (dfd != root)
      close(dfd);
    dfd = rc;
    rc = 0;
    name = slash + 1;
  }
  if (r->entry.type == ST_TGZ_DIR) {
    if ((rc = open_dir(dfd, name, 1, err)) >= 0) {
      close(rc);
      rc = 0;
    }
    goto done;
  }
  fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = st_fail(err, errno == EEXIST ? ST_EEXIST : ST_EIO, "tgz: create %s: %s",
                 shown(r->entry.path), strerror(errno));
    goto done;
  }
  if (fchmod(fd, 0644) < 0) {
    rc = st_fail(err, ST_EIO, "tgz: chmod %s: %s", shown(r->entry.path), strerror(errno));
    goto done;
  }
  if ((rc = st_tgz_reader_data(r, write_fd, &fd, err)) < 0)
    goto done;
  if (close(fd) < 0)
    rc = st_fail(err, ST_EIO, "tgz: close %s: %s", shown(r->entry.path), strerror(errno));
  fd = -1;
done:
  if (fd >= 0)
    close(fd);
  if (dfd != root)
    close(dfd);
  st_free(comp);
  return rc;
}

int st_tgz_reader_extract(st_tgz_reader_t *r, const char *dir, st_error_t *err) {
  const st_tgz_entry_t *e;
  int root, rc;

  if ((root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return st_fail(err, ST_EIO, "tgz: target %s: %s", dir, strerror(errno));
  while ((rc = st_tgz_reader_next(r, &e, err)) == 1)
    if ((rc = extract_one(r, root, err)) < 0)
      break;
  if (rc < 0)
    r->spent = 1;
  close(root);
  return rc;
}
