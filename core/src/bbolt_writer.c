/* bbolt_writer.c: the public bbolt writer API (see stella/bbolt.h).
 *
 * Keeps the stack of open buckets, checks every input before it changes any state (so a
 * refused key leaves the writer usable), and owns the temporary file: created beside the
 * target with mkstemp, published by fsync + rename + directory fsync, unlinked by free
 * when not finished. I/O and allocation failures mark the writer failed for good, because
 * a half-written page cannot be taken back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bbolt_internal.h"
#include "stella/buf.h"
#include "stella/mem.h"

#define REPR_MAX 48 /* bytes of a key shown in an error message */
#define IO_BUFFER (1u << 20)

/* Printable rendering of a key for messages: ASCII as is, other bytes as \xHH, cut short. */
static const char *repr(st_buf_t *b, const void *p, size_t n) {
  const unsigned char *s = p;
  size_t shown = n < REPR_MAX ? n : REPR_MAX;
  int rc = st_buf_addc(b, '"');
  for (size_t i = 0; i < shown && !rc; i++)
    rc = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
             ? st_buf_addc(b, (char)s[i])
             : st_buf_addf(b, "\\x%02x", s[i]);
  if (!rc)
    rc = shown < n ? st_buf_addf(b, "\"...(%zu bytes)", n) : st_buf_addc(b, '"');
  return b->data;
}

/* "/"-joined names of the open buckets, for messages. */
static const char *bucket_path(st_buf_t *b, const st_bbolt_writer_t *w) {
  if (w->depth == 0)
    return "(top level)";
  for (size_t i = 1; i <= w->depth; i++) {
    if (i > 1 && st_buf_addc(b, '/'))
      break;
    repr(b, w->frames[i].name, w->frames[i].name_len);
  }
  return b->data;
}

static int check_usable(st_bbolt_writer_t *w, st_error_t *err) {
  if (!w)
    return st_fail(err, ST_EINVAL, "bbolt: no writer");
  if (w->failed)
    return st_fail(err, ST_EIO, "bbolt %s: writer failed earlier", w->path);
  if (w->finished)
    return st_fail(err, ST_EINVAL, "bbolt %s: already finished", w->path);
  return 0;
}

/* Validate a key for the current bucket: length and strict order after the previous one. */
static int check_key(st_bbolt_writer_t *w, const void *key, size_t klen, const char *what,
                     st_error_t *err) {
  const st__bbolt_frame_t *f = &w->frames[w->depth];
  st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT, c = ST_BUF_INIT;
  int rc = 0, cmp;

  if (!key || klen == 0) {
    rc = st_fail(err, ST_EINVAL, "bbolt bucket %s: empty %s", bucket_path(&a, w), what);
  } else if (klen > ST_BBOLT_MAX_KEY) {
    rc = st_fail(err, ST_ETOOBIG, "bbolt bucket %s: %s %s is %zu bytes (max %d)",
                 bucket_path(&a, w), what, repr(&b, key, klen), klen, ST_BBOLT_MAX_KEY);
  } else if (f->has_last) {
    size_t m = klen < f->last_len ? klen : f->last_len;
    cmp = memcmp(key, f->last, m);
    if (cmp < 0 || (cmp == 0 && klen <= f->last_len))
      rc = st_fail(err, ST_EINVAL, "bbolt bucket %s: %s %s is not after previous key %s",
                   bucket_path(&a, w), what, repr(&b, key, klen),
                   repr(&c, f->last, f->last_len));
  }
  st_buf_release(&a);
  st_buf_release(&b);
  st_buf_release(&c);
  return rc;
}

static int remember_key(st__bbolt_frame_t *f, const void *key, size_t klen, st_error_t *err) {
  if (klen > f->last_cap) {
    size_t cap = klen < 256 ? 256 : klen;
    unsigned char *n = st_realloc(f->last, cap);
    if (!n)
      return st_fail(err, ST_ENOMEM, "bbolt: key buffer of %zu bytes", cap);
    f->last = n;
    f->last_cap = cap;
  }
  memcpy(f->last, key, klen);
  f->last_len = klen;
  f->has_last = 1;
  return 0;
}

/* Mark the writer failed when rc is not an input error. */
static int settle(st_bbolt_writer_t *w, int rc) {
  if (rc && rc != ST_EINVAL && rc != ST_ETOOBIG && rc != ST_EDEPTH)
    w->failed = 1;
  return rc;
}

/* The directory holding path ("." for a bare name), to fsync after the rename. */
static char *dir_of(const char *path) {
  char *dir = st_strdup(path), *slash;
  if (!dir)
    return NULL;
  slash = strrchr(dir, '/');
  if (!slash)
    strcpy(dir, ".");
  else if (slash == dir)
    slash[1] = '\0';
  else
    *slash = '\0';
  return dir;
}

static int sync_dir(const st_bbolt_writer_t *w, st_error_t *err) {
  int fd = open(w->dir, O_RDONLY | O_DIRECTORY), rc = 0;
  if (fd < 0 || fsync(fd) != 0)
    rc = st_fail(err, ST_EIO, "bbolt %s: cannot sync directory %s: %s", w->path, w->dir,
                 strerror(errno));
  if (fd >= 0)
    close(fd);
  return rc;
}

int st_bbolt_writer_new(const char *path, st_bbolt_writer_t **out, st_error_t *err) {
  st_bbolt_writer_t *w = NULL;
  st_buf_t tmp = ST_BUF_INIT;
  int fd = -1, rc = 0;

  if (out)
    *out = NULL;
  if (!out || !path || !*path)
    return st_fail(err, ST_EINVAL, "bbolt: no output path");
  if (!(w = st_calloc(1, sizeof(*w))) || !(w->path = st_strdup(path)) ||
      !(w->dir = dir_of(path)) || st_buf_addf(&tmp, "%s.tmp-XXXXXX", path)) {
    rc = st_fail(err, ST_ENOMEM, "bbolt %s: no memory for the writer", path);
    goto done;
  }
  if ((fd = mkstemp(tmp.data)) < 0) {
    rc = st_fail(err, ST_EIO, "bbolt %s: cannot create a temporary file: %s", path,
                 strerror(errno));
    goto done;
  }
  w->tmp_path = st_buf_detach(&tmp, NULL);
  if (fchmod(fd, 0644) != 0 || !(w->fp = fdopen(fd, "wb"))) {
    rc = st_fail(err, ST_EIO, "bbolt %s: cannot open: %s", w->tmp_path, strerror(errno));
    goto done;
  }
  fd = -1;
  if (setvbuf(w->fp, NULL, _IOFBF, IO_BUFFER) != 0) {
    rc = st_fail(err, ST_EIO, "bbolt %s: cannot set a write buffer", w->tmp_path);
    goto done;
  }
  if ((rc = st__bbolt_write_freelist(w, err)))
    goto done;
  *out = w;
  w = NULL;
done:
  if (fd >= 0)
    close(fd);
  st_buf_release(&tmp);
  st_bbolt_writer_free(w);
  return rc;
}

int st_bbolt_bucket_begin(st_bbolt_writer_t *w, const void *name, size_t len,
                          st_error_t *err) {
  st__bbolt_frame_t *parent, *child;
  st_buf_t a = ST_BUF_INIT;
  int rc;

  if ((rc = check_usable(w, err)))
    return rc;
  if (w->depth >= ST_BBOLT_MAX_DEPTH) {
    rc = st_fail(err, ST_EDEPTH, "bbolt bucket %s: more than %d nested buckets",
                 bucket_path(&a, w), ST_BBOLT_MAX_DEPTH);
    st_buf_release(&a);
    return rc;
  }
  if ((rc = check_key(w, name, len, "bucket name", err)))
    return rc;
  parent = &w->frames[w->depth];
  child = &w->frames[w->depth + 1];
  if (!(child->name = st_malloc(len)))
    return settle(w, st_fail(err, ST_ENOMEM, "bbolt: bucket name of %zu bytes", len));
  memcpy(child->name, name, len);
  child->name_len = len;
  if ((rc = remember_key(parent, name, len, err)))
    return settle(w, rc);
  parent->has_sub = 1;
  w->depth++;
  return 0;
}

int st_bbolt_put(st_bbolt_writer_t *w, const void *key, size_t klen, const void *val,
                 size_t vlen, st_error_t *err) {
  st__bbolt_frame_t *f;
  st_buf_t a = ST_BUF_INIT;
  int rc;

  if ((rc = check_usable(w, err)))
    return rc;
  if (w->depth == 0)
    rc = st_fail(err, ST_EINVAL, "bbolt: key %s at the top level (only buckets go there)",
                 repr(&a, key, key ? klen : 0));
  else if (vlen > ST_BBOLT_MAX_VALUE)
    rc = st_fail(err, ST_ETOOBIG, "bbolt bucket %s: value of %zu bytes (max %zu)",
                 bucket_path(&a, w), vlen, ST_BBOLT_MAX_VALUE);
  else if (!val && vlen)
    rc = st_fail(err, ST_EINVAL, "bbolt bucket %s: NULL value of %zu bytes",
                 bucket_path(&a, w), vlen);
  st_buf_release(&a);
  if (rc || (rc = check_key(w, key, klen, "key", err)))
    return rc;
  f = &w->frames[w->depth];
  if ((rc = remember_key(f, key, klen, err)))
    return settle(w, rc);
  return settle(w, st__bbolt_level_add(w, f, 0, 0, key, klen, val, vlen, 0, err));
}

int st_bbolt_bucket_end(st_bbolt_writer_t *w, st_error_t *err) {
  st__bbolt_frame_t *f;
  unsigned char header[ST__BBOLT_HDR];
  const unsigned char *val = header;
  size_t vlen = sizeof(header);
  uint64_t root = 0;
  int rc;

  if ((rc = check_usable(w, err)))
    return rc;
  if (w->depth == 0)
    return st_fail(err, ST_EINVAL, "bbolt: bucket end without a matching begin");
  f = &w->frames[w->depth];
  if (st__bbolt_inline_value(w, f, &vlen)) {
    val = w->inline_val;
    w->stats.inline_buckets++;
  } else {
    if ((rc = st__bbolt_close_tree(w, f, &root, err)))
      return settle(w, rc);
    memset(header, 0, sizeof(header));
    for (int i = 0; i < 8; i++) /* {root pgid, sequence 0}, little-endian */
      header[i] = (unsigned char)(root >> (8 * i));
  }
  w->stats.buckets++;
  w->depth--;
  rc = st__bbolt_level_add(w, &w->frames[w->depth], 0, 0x01, f->name, f->name_len, val,
                           vlen, 0, err);
  st__bbolt_frame_reset(f);
  return settle(w, rc);
}

int st_bbolt_writer_finish(st_bbolt_writer_t *w, st_error_t *err) {
  st_buf_t a = ST_BUF_INIT;
  uint64_t root = 0;
  FILE *fp;
  int rc;

  if ((rc = check_usable(w, err)))
    return rc;
  if (w->depth > 0) {
    rc = st_fail(err, ST_EINVAL, "bbolt: finish with bucket %s still open",
                 bucket_path(&a, w));
    st_buf_release(&a);
    return rc;
  }
  if ((rc = st__bbolt_close_tree(w, &w->frames[0], &root, err)))
    return settle(w, rc);
  if (fflush(w->fp) != 0)
    return settle(w, st_fail(err, ST_EIO, "bbolt %s: write failed: %s", w->tmp_path,
                             strerror(errno)));
  if ((rc = st__bbolt_write_metas(w, root, err)))
    return settle(w, rc);
  w->stats.pages = w->next_pgid;
  if (fsync(fileno(w->fp)) != 0) {
    rc = st_fail(err, ST_EIO, "bbolt %s: fsync: %s", w->tmp_path, strerror(errno));
    return settle(w, rc);
  }
  fp = w->fp;
  w->fp = NULL;
  if (fclose(fp) != 0)
    return settle(w, st_fail(err, ST_EIO, "bbolt %s: close: %s", w->tmp_path,
                             strerror(errno)));
  if (rename(w->tmp_path, w->path) != 0)
    return settle(w, st_fail(err, ST_EIO, "bbolt %s: cannot rename %s into place: %s",
                             w->path, w->tmp_path, strerror(errno)));
  w->finished = 1;
  return settle(w, sync_dir(w, err));
}

void st_bbolt_writer_stats(const st_bbolt_writer_t *w, st_bbolt_stats_t *out) {
  *out = w->stats;
  out->pages = w->next_pgid;
}

void st_bbolt_writer_free(st_bbolt_writer_t *w) {
  if (!w)
    return;
  if (w->fp)
    fclose(w->fp);
  if (w->tmp_path && !w->finished)
    unlink(w->tmp_path);
  for (size_t i = 0; i <= ST_BBOLT_MAX_DEPTH; i++)
    st__bbolt_frame_release(&w->frames[i]);
  st_free(w->scratch);
  st_free(w->tmp_path);
  st_free(w->dir);
  st_free(w->path);
  st_free(w);
}
