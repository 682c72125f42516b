/* objstore_fs.c: the filesystem object store backend.
 *
 * Layout under the root: the key's path, e.g. root/tenants/acme/sha256/<digest>. Beside
 * each object `.<name>.meta` holds {"sha256","size","retain_until","legal_hold"} as
 * JSON; temp files are `.<name>.tmp.<random>`. Keys never start a segment with '.', so
 * neither can collide with an object.
 *
 * Publish: stream into a temp file in the object's directory while hashing, check size
 * and digest, chmod 0444, fsync; write the sidecar the same way; then, holding an
 * flock on the directory, link the temp file to the object name (fails if it exists:
 * objects are never replaced), rename the sidecar into place, fsync the directory. A
 * crash leaves at worst temp files and orphan sidecars, which st_objstore_gc_temp
 * sweeps. Sidecar updates (retention, hold) and deletes take the same directory lock.
 *
 * Every path component below the root is opened with openat(O_NOFOLLOW): a symlink
 * planted inside the store is refused (ST_EUNSAFE), never followed. Memory is bounded
 * by one copy buffer per call.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "objstore_int.h"
#include "stella/mem.h"

#define COPY_BUF (256 * 1024)
#define META_MAX 4096

typedef struct fs_store_s {
  st_objstore_t base;
  int rootfd;
} fs_store_t;

typedef struct meta_s {
  char sha256[65];
  uint64_t size;
  int64_t retain_until;
  int legal_hold;
} meta_t;

static int sys_fail(st_error_t *err, const char *what, const char *key) {
  int e = errno;
  /* ENOTDIR: a segment of the key is an object, so the key itself cannot exist. */
  int code = (e == ENOENT || e == ENOTDIR) ? ST_ENOENT : e == ELOOP ? ST_EUNSAFE : ST_EIO;
  if (code == ST_ENOENT)
    return st_fail(err, code, "objstore: %s: not found", key);
  return st_fail(err, code, "objstore: %s: %s: %s", key, what, strerror(e));
}

/* Open the directory holding key's last segment (creating missing ones if create);
 * *name points into key at that segment. */
static int open_parent(fs_store_t *fs, const char *key, int create, int *dfd_out,
                       const char **name, st_error_t *err) {
  char *path = st_strdup(key), *seg, *slash;
  int dfd = -1, rc = 0;

  *dfd_out = -1;
  if (!path)
    return st_fail(err, ST_ENOMEM, "objstore: out of memory");
  dfd = dup(fs->rootfd);
  if (dfd < 0) {
    rc = sys_fail(err, "dup", key);
    goto done;
  }
  for (seg = path; (slash = strchr(seg, '/')); seg = slash + 1) {
    int next;
    *slash = '\0';
    next = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(dfd, seg, 0750) && errno != EEXIST) {
        rc = sys_fail(err, "mkdir", key);
        goto done;
      }
      next = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0 && errno == ENOTDIR) { /* O_DIRECTORY|O_NOFOLLOW on a symlink says so too */
      struct stat lst;
      if (fstatat(dfd, seg, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
        rc = st_fail(err, ST_EUNSAFE, "objstore: %s: symlink in the store refused", key);
        goto done;
      }
      errno = ENOTDIR;
    }
    if (next < 0 && errno == ENOTDIR && create) {
      rc = st_fail(err, ST_ECONFLICT, "objstore: %s: a segment of the key is an object", key);
      goto done;
    }
    if (next < 0) {
      rc = sys_fail(err, "open directory", key);
      goto done;
    }
    close(dfd);
    dfd = next;
  }
  *name = key + (seg - path);
  *dfd_out = dfd;
  dfd = -1;
done:
  if (dfd >= 0)
    close(dfd);
  st_free(path);
  return rc;
}

static int sidecar_name(st_buf_t *b, const char *name, const char *suffix) {
  unsigned char rnd[8];
  st_buf_reset(b);
  if (strcmp(suffix, ".tmp.") != 0)
    return st_buf_addf(b, ".%s%s", name, suffix);
  if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
    return ST_EIO;
  return st_buf_addf(b, ".%s.tmp.", name) || st_buf_add_hex(b, rnd, sizeof(rnd)) ? ST_ENOMEM
                                                                                 : 0;
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return ST_EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Hash an object's bytes (the sidecar is gone only after a crash between publish steps). */
static int hash_fd(int fd, char hex[65]) {
  st__os_hash_t h = {NULL};
  char *buf = st_malloc(COPY_BUF);
  off_t off = 0;
  int rc = buf ? st__os_hash_init(&h) : ST_ENOMEM;
  while (!rc) {
    ssize_t n = pread(fd, buf, COPY_BUF, off);
    if (n < 0) {
      rc = errno == EINTR ? 0 : ST_EIO;
      continue;
    }
    if (n == 0)
      break;
    off += n;
    rc = st__os_hash_update(&h, buf, (size_t)n);
  }
  if (!rc)
    rc = st__os_hash_final_hex(&h, hex);
  st__os_hash_release(&h);
  st_free(buf);
  return rc;
}

/* Read an object's metadata: the sidecar if present, else size and digest from the
 * object itself. ST_ENOENT if the object does not exist. */
static int read_meta(int dfd, const char *name, const char *key, meta_t *m, st_error_t *err) {
  st_buf_t mname = ST_BUF_INIT;
  char *text = NULL;
  json_t *root = NULL;
  struct stat st;
  int ofd = -1, mfd = -1, rc = 0;
  ssize_t n;

  memset(m, 0, sizeof(*m));
  ofd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (ofd < 0 || fstat(ofd, &st)) {
    rc = sys_fail(err, "open", key);
    goto done;
  }
  if (!S_ISREG(st.st_mode)) { /* a directory: a prefix, not an object */
    rc = st_fail(err, ST_ENOENT, "objstore: %s: not found", key);
    goto done;
  }
  m->size = (uint64_t)st.st_size;
  if ((rc = sidecar_name(&mname, name, ".meta")))
    goto done;
  mfd = openat(dfd, mname.data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (mfd < 0 && errno == ENOENT) {
    if ((rc = hash_fd(ofd, m->sha256)))
      rc = st_fail(err, rc, "objstore: %s: cannot hash", key);
    goto done;
  }
  if (mfd < 0) {
    rc = sys_fail(err, "open sidecar", key);
    goto done;
  }
  if (!(text = st_malloc(META_MAX + 1))) {
    rc = st_fail(err, ST_ENOMEM, "objstore: out of memory");
    goto done;
  }
  n = read(mfd, text, META_MAX + 1);
  if (n < 0 || n > META_MAX) {
    rc = st_fail(err, ST_EIO, "objstore: %s: sidecar unreadable or too large", key);
    goto done;
  }
  root = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
  {
    json_t *sha = json_object_get(root, "sha256");
    json_t *until = json_object_get(root, "retain_until");
    json_t *hold = json_object_get(root, "legal_hold");
    if (!json_is_string(sha) || !st__objstore_digest_ok(json_string_value(sha)) ||
        !json_is_integer(until) || !json_is_boolean(hold)) {
      rc = st_fail(err, ST_EPARSE, "objstore: %s: malformed sidecar", key);
      goto done;
    }
    memcpy(m->sha256, json_string_value(sha), 65);
    m->retain_until = (int64_t)json_integer_value(until);
    m->legal_hold = json_is_true(hold);
  }
done:
  json_decref(root);
  st_free(text);
  st_buf_release(&mname);
  if (mfd >= 0)
    close(mfd);
  if (ofd >= 0)
    close(ofd);
  return rc;
}

/* Write the sidecar under a temp name; the caller renames it into place. */
static int write_meta_tmp(int dfd, const char *name, const meta_t *m, st_buf_t *tmpname,
                          const char *key, st_error_t *err) {
  char *text = NULL;
  json_t *root = json_pack("{s:s, s:I, s:I, s:b}", "sha256", m->sha256, "size",
                           (json_int_t)m->size, "retain_until", (json_int_t)m->retain_until,
                           "legal_hold", m->legal_hold);
  int fd = -1, rc = 0;

  if (!root || !(text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS))) {
    rc = st_fail(err, ST_ENOMEM, "objstore: %s: sidecar: out of memory", key);
    goto done;
  }
  if ((rc = sidecar_name(tmpname, name, ".tmp."))) {
    rc = st_fail(err, rc, "objstore: %s: temp name", key);
    goto done;
  }
  fd = openat(dfd, tmpname->data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = sys_fail(err, "create sidecar", key);
    goto done;
  }
  if (write_all(fd, text, strlen(text)) || fchmod(fd, 0444) || fsync(fd)) {
    rc = sys_fail(err, "write sidecar", key);
    unlinkat(dfd, tmpname->data, 0);
  }
done:
  if (fd >= 0)
    close(fd);
  free(text);
  json_decref(root);
  return rc;
}

static int publish_meta(int dfd, const char *name, const meta_t *m, const char *key,
                        st_error_t *err) {
  st_buf_t tmp = ST_BUF_INIT, final = ST_BUF_INIT;
  int rc = write_meta_tmp(dfd, name, m, &tmp, key, err);
  if (!rc && (rc = sidecar_name(&final, name, ".meta")))
    rc = st_fail(err, rc, "objstore: out of memory");
  if (!rc && renameat(dfd, tmp.data, dfd, final.data)) {
    rc = sys_fail(err, "rename sidecar", key);
    unlinkat(dfd, tmp.data, 0);
  }
  if (!rc && fsync(dfd))
    rc = sys_fail(err, "fsync directory", key);
  st_buf_release(&tmp);
  st_buf_release(&final);
  return rc;
}

static int lock_dir(int dfd, const char *key, st_error_t *err) {
  while (flock(dfd, LOCK_EX)) {
    if (errno != EINTR)
      return sys_fail(err, "lock", key);
  }
  return 0;
}

/* Stream the source into fd, hashing; ST_EVERIFY on a size or digest mismatch. */
static int stream_in(int fd, const char *key, const char *digest, uint64_t size,
                     st_objstore_read_fn read_fn, void *ctx, st_error_t *err) {
  st__os_hash_t h = {NULL};
  char *buf = st_malloc(COPY_BUF), hex[65];
  uint64_t total = 0;
  int rc = buf ? st__os_hash_init(&h) : ST_ENOMEM;

  if (rc) {
    rc = st_fail(err, rc, "objstore: %s: out of memory", key);
    goto done;
  }
  for (;;) {
    ssize_t n = read_fn(ctx, buf, COPY_BUF);
    if (n < 0) {
      rc = st_fail(err, (int)n, "objstore: %s: source failed: %s", key, st_strerror((int)n));
      goto done;
    }
    if (n == 0)
      break;
    if ((uint64_t)n > size - total) {
      rc = st_fail(err, ST_EVERIFY, "objstore: %s: source is longer than %llu bytes", key,
                   (unsigned long long)size);
      goto done;
    }
    total += (uint64_t)n;
    if ((rc = st__os_hash_update(&h, buf, (size_t)n)) || (rc = write_all(fd, buf, (size_t)n))) {
      rc = st_fail(err, rc, "objstore: %s: write failed", key);
      goto done;
    }
  }
  if (total != size) {
    rc = st_fail(err, ST_EVERIFY, "objstore: %s: source ended at %llu of %llu bytes", key,
                 (unsigned long long)total, (unsigned long long)size);
    goto done;
  }
  if ((rc = st__os_hash_final_hex(&h, hex)))
    goto done;
  if (!st__objstore_digest_eq(hex, digest))
    rc = st_fail(err, ST_EVERIFY, "objstore: %s: content digest %s, expected %s", key, hex,
                 digest);
done:
  st__os_hash_release(&h);
  st_free(buf);
  return rc;
}

/* 1 if the object exists with digest, 0 if absent, ST_EEXIST if it holds other bytes. */
static int existing(int dfd, const char *name, const char *key, const char *digest,
                    st_error_t *err) {
  meta_t m;
  st_error_t e2 = ST_ERROR_INIT;
  int rc = read_meta(dfd, name, key, &m, &e2);
  if (rc == ST_ENOENT)
    return 0;
  if (rc)
    return st_fail(err, rc, "%s", e2.msg);
  if (!st__objstore_digest_eq(m.sha256, digest))
    return st_fail(err, ST_EEXIST, "objstore: %s: exists with another digest", key);
  return 1;
}

static int update_meta(st_objstore_t *s, const char *key, int64_t until, int hold,
                       st_error_t *err);
static int fs_stat(st_objstore_t *s, const char *key, st_objstore_stat_t *out,
                   st_error_t *err);

/* A put found the object already there: make sure it carries the requested lock. */
static int apply_lock(st_objstore_t *s, const char *key, const st_objstore_lock_t *lock,
                      st_error_t *err) {
  st_objstore_stat_t st;
  int rc = 0;
  if (!lock || (!lock->retain_until && !lock->legal_hold))
    return 0;
  if ((rc = fs_stat(s, key, &st, err)))
    return rc;
  if (lock->retain_until > st.retain_until)
    rc = update_meta(s, key, lock->retain_until, 0, err);
  if (!rc && lock->legal_hold && !st.legal_hold)
    rc = update_meta(s, key, 0, 1, err);
  return rc;
}

static int fs_put(st_objstore_t *s, const char *key, const char *digest, uint64_t size,
                  st_objstore_read_fn read_fn, void *ctx, int replayable,
                  const st_objstore_lock_t *lock, st_error_t *err) {
  fs_store_t *fs = (fs_store_t *)s;
  st_buf_t tmp = ST_BUF_INIT, mtmp = ST_BUF_INIT, mfinal = ST_BUF_INIT;
  const char *name;
  meta_t m;
  int dfd = -1, fd = -1, rc, locked = 0;

  if ((rc = open_parent(fs, key, 1, &dfd, &name, err)))
    goto done;
  if ((rc = existing(dfd, name, key, digest, err)) != 0) {
    if (rc > 0)
      rc = apply_lock(s, key, lock, err);
    goto done;
  }
  if ((rc = sidecar_name(&tmp, name, ".tmp."))) {
    rc = st_fail(err, rc, "objstore: %s: temp name", key);
    goto done;
  }
  fd = openat(dfd, tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = sys_fail(err, "create temp file", key);
    goto done;
  }
  if ((rc = stream_in(fd, key, digest, size, read_fn, ctx, err)))
    goto done;
  if (fchmod(fd, 0444) || fsync(fd)) {
    rc = sys_fail(err, "fsync", key);
    goto done;
  }
  memset(&m, 0, sizeof(m));
  memcpy(m.sha256, digest, 65);
  m.size = size;
  if (lock) {
    m.retain_until = lock->retain_until;
    m.legal_hold = lock->legal_hold ? 1 : 0;
  }
  if ((rc = write_meta_tmp(dfd, name, &m, &mtmp, key, err)))
    goto done;
  if ((rc = lock_dir(dfd, key, err)))
    goto done;
  locked = 1;
  if (linkat(dfd, tmp.data, dfd, name, 0)) {
    if (errno != EEXIST)
      rc = sys_fail(err, "publish", key);
    else if ((rc = existing(dfd, name, key, digest, err)) > 0)
      rc = 1; /* a concurrent put of the same bytes won: lock it below */
    else if (rc == 0)
      rc = st_fail(err, ST_ECONFLICT, "objstore: %s: changed during the put", key);
    goto done;
  }
  if ((rc = sidecar_name(&mfinal, name, ".meta")) ||
      renameat(dfd, mtmp.data, dfd, mfinal.data)) {
    rc = sys_fail(err, "publish sidecar", key);
    goto done;
  }
  if (fsync(dfd))
    rc = sys_fail(err, "fsync directory", key);
done:
  if (locked)
    flock(dfd, LOCK_UN);
  if (rc == 1)
    rc = apply_lock(s, key, lock, err);
  if (fd >= 0)
    close(fd);
  if (tmp.len)
    unlinkat(dfd, tmp.data, 0);
  if (mtmp.len)
    unlinkat(dfd, mtmp.data, 0); /* gone after a successful rename: harmless ENOENT */
  if (dfd >= 0)
    close(dfd);
  st_buf_release(&tmp);
  st_buf_release(&mtmp);
  st_buf_release(&mfinal);
  (void)replayable;
  return rc;
}

static int fs_get(st_objstore_t *s, const char *key, uint64_t offset, uint64_t length,
                  st_objstore_write_fn write_fn, void *ctx, st_error_t *err) {
  fs_store_t *fs = (fs_store_t *)s;
  const char *name;
  char *buf = NULL;
  struct stat st;
  uint64_t end;
  int dfd = -1, fd = -1, rc;

  if ((rc = open_parent(fs, key, 0, &dfd, &name, err)))
    goto done;
  fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st)) {
    rc = sys_fail(err, "open", key);
    goto done;
  }
  if (!S_ISREG(st.st_mode)) { /* a directory: a prefix, not an object */
    rc = st_fail(err, ST_ENOENT, "objstore: %s: not found", key);
    goto done;
  }
  if (offset > (uint64_t)st.st_size) {
    rc = st_fail(err, ST_ERANGE, "objstore: %s: range starts at %llu past size %llu", key,
                 (unsigned long long)offset, (unsigned long long)st.st_size);
    goto done;
  }
  end = length > (uint64_t)st.st_size - offset ? (uint64_t)st.st_size : offset + length;
  if (!(buf = st_malloc(COPY_BUF))) {
    rc = st_fail(err, ST_ENOMEM, "objstore: out of memory");
    goto done;
  }
  while (offset < end) {
    size_t want = end - offset < COPY_BUF ? (size_t)(end - offset) : COPY_BUF;
    ssize_t n = pread(fd, buf, want, (off_t)offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = st_fail(err, ST_EIO, "objstore: %s: read failed at %llu", key,
                   (unsigned long long)offset);
      goto done;
    }
    if ((rc = write_fn(ctx, buf, (size_t)n))) {
      rc = st_fail(err, rc, "objstore: %s: sink failed: %s", key, st_strerror(rc));
      goto done;
    }
    offset += (uint64_t)n;
  }
done:
  st_free(buf);
  if (fd >= 0)
    close(fd);
  if (dfd >= 0)
    close(dfd);
  return rc;
}

static int fs_stat(st_objstore_t *s, const char *key, st_objstore_stat_t *out,
                   st_error_t *err) {
  const char *name;
  meta_t m;
  int dfd = -1, rc = open_parent((fs_store_t *)s, key, 0, &dfd, &name, err);
  if (!rc && !(rc = read_meta(dfd, name, key, &m, err))) {
    out->size = m.size;
    memcpy(out->sha256, m.sha256, 65);
    out->retain_until = m.retain_until;
    out->legal_hold = m.legal_hold;
  }
  if (dfd >= 0)
    close(dfd);
  return rc;
}

static int fs_del(st_objstore_t *s, const char *key, st_error_t *err) {
  st_buf_t mname = ST_BUF_INIT;
  const char *name;
  meta_t m;
  int dfd = -1, rc, locked = 0;
  int64_t now = st__objstore_now(s);

  if ((rc = open_parent((fs_store_t *)s, key, 0, &dfd, &name, err)))
    goto done;
  if ((rc = lock_dir(dfd, key, err)))
    goto done;
  locked = 1;
  if ((rc = read_meta(dfd, name, key, &m, err)))
    goto done;
  if (m.legal_hold) {
    rc = st_fail(err, ST_EPERM, "objstore: %s: under legal hold", key);
    goto done;
  }
  if (m.retain_until > now) {
    rc = st_fail(err, ST_EPERM, "objstore: %s: retained until %lld", key,
                 (long long)m.retain_until);
    goto done;
  }
  if ((rc = sidecar_name(&mname, name, ".meta"))) {
    rc = st_fail(err, rc, "objstore: out of memory");
    goto done;
  }
  if (unlinkat(dfd, name, 0)) {
    rc = sys_fail(err, "unlink", key);
    goto done;
  }
  unlinkat(dfd, mname.data, 0);
  if (fsync(dfd))
    rc = sys_fail(err, "fsync directory", key);
done:
  if (locked)
    flock(dfd, LOCK_UN);
  if (dfd >= 0)
    close(dfd);
  st_buf_release(&mname);
  return rc;
}

/* Read-modify-write of the sidecar under the directory lock. */
static int update_meta(st_objstore_t *s, const char *key, int64_t until, int hold,
                       st_error_t *err) {
  const char *name;
  meta_t m;
  int dfd = -1, rc, locked = 0;

  if ((rc = open_parent((fs_store_t *)s, key, 0, &dfd, &name, err)))
    goto done;
  if ((rc = lock_dir(dfd, key, err)))
    goto done;
  locked = 1;
  if ((rc = read_meta(dfd, name, key, &m, err)))
    goto done;
  if (until) {
    if (until < m.retain_until) {
      rc = st_fail(err, ST_EPERM, "objstore: %s: retention can only be extended (now %lld)",
                   key, (long long)m.retain_until);
      goto done;
    }
    m.retain_until = until;
  } else {
    m.legal_hold = hold;
  }
  rc = publish_meta(dfd, name, &m, key, err);
done:
  if (locked)
    flock(dfd, LOCK_UN);
  if (dfd >= 0)
    close(dfd);
  return rc;
}

static int fs_set_retention(st_objstore_t *s, const char *key, int64_t until,
                            st_error_t *err) {
  return update_meta(s, key, until, 0, err);
}

static int fs_set_legal_hold(st_objstore_t *s, const char *key, int on, st_error_t *err) {
  return update_meta(s, key, 0, on, err);
}

/* ---- directory walks (list, gc) ---- */

typedef struct walk_s {
  const char *prefix;
  size_t prefix_len;
  const char *start_after;
  size_t max;
  st_objstore_page_t *page;
  int64_t cutoff; /* gc: remove leftovers modified before this */
  size_t removed;
  int gc;
} walk_t;

static int is_orphan_meta(int dfd, const char *n) {
  size_t len = strlen(n);
  struct stat st;
  char *obj;
  int orphan;
  if (len < 7 || strcmp(n + len - 5, ".meta") != 0)
    return 0;
  if (!(obj = st_strndup(n + 1, len - 6)))
    return 0;
  orphan = fstatat(dfd, obj, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
  st_free(obj);
  return orphan;
}

static void gc_entry(walk_t *w, int dfd, const char *n) {
  struct stat st;
  if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
      (int64_t)st.st_mtime >= w->cutoff)
    return;
  if (!strstr(n, ".tmp.") && !is_orphan_meta(dfd, n))
    return;
  if (unlinkat(dfd, n, 0) == 0)
    w->removed++;
}

static int walk(walk_t *w, int dfd, st_buf_t *path, int depth) {
  DIR *d = NULL;
  struct dirent *e;
  size_t mark = path->len;
  int fd = dup(dfd), rc = 0, locked = 0;

  if (fd < 0 || !(d = fdopendir(fd))) {
    if (fd >= 0)
      close(fd);
    return ST_EIO;
  }
  if (w->gc && flock(dfd, LOCK_EX) == 0)
    locked = 1; /* a put publishes object and sidecar under this lock */
  while (!rc && (e = readdir(d))) {
    const char *n = e->d_name;
    struct stat st;
    if (n[0] == '.') {
      if (w->gc && strcmp(n, ".") && strcmp(n, ".."))
        gc_entry(w, dfd, n);
      continue;
    }
    if (fstatat(dfd, n, &st, AT_SYMLINK_NOFOLLOW))
      continue;
    path->len = mark;
    path->data[mark] = '\0';
    if ((rc = st_buf_addf(path, "%s%s", mark ? "/" : "", n)))
      break;
    if (S_ISDIR(st.st_mode) && depth < ST_OBJSTORE_KEY_MAX / 2) {
      size_t cmp = path->len < w->prefix_len ? path->len : w->prefix_len;
      int sub;
      if (!w->gc && memcmp(path->data, w->prefix, cmp) != 0)
        continue;
      sub = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        continue;
      rc = walk(w, sub, path, depth + 1);
      close(sub);
    } else if (S_ISREG(st.st_mode) && !w->gc && path->len >= w->prefix_len &&
               memcmp(path->data, w->prefix, w->prefix_len) == 0 &&
               (!w->start_after || strcmp(path->data, w->start_after) > 0)) {
      rc = st__objstore_page_offer(w->page, w->max, path->data, path->len);
    }
  }
  path->len = mark;
  path->data[mark] = '\0';
  if (locked)
    flock(dfd, LOCK_UN);
  closedir(d);
  return rc;
}

static int fs_list(st_objstore_t *s, const char *prefix, const char *start_after, size_t max,
                   st_objstore_page_t *page, st_error_t *err) {
  fs_store_t *fs = (fs_store_t *)s;
  st_objstore_page_t tmp = ST_OBJSTORE_PAGE_INIT;
  st_buf_t path = ST_BUF_INIT;
  walk_t w;
  int dfd = -1, rc;
  const char *slash = strchr(prefix + 8, '/'); /* end of "tenants/<tenant>" */
  char *tdir = st_strndup(prefix, (size_t)(slash - prefix) + 1);

  memset(&w, 0, sizeof(w));
  w.prefix = prefix;
  w.prefix_len = strlen(prefix);
  w.start_after = start_after;
  w.max = max;
  w.page = &tmp;
  if (!tdir) {
    rc = st_fail(err, ST_ENOMEM, "objstore: out of memory");
    goto done;
  }
  /* Open "tenants/<tenant>/" by opening the parent of a dummy last segment. */
  rc = open_parent(fs, tdir, 0, &dfd, &(const char *){NULL}, err);
  if (rc == ST_ENOENT) {
    rc = 0;
    goto publish;
  }
  if (rc)
    goto done;
  if ((rc = st_buf_add(&path, tdir, strlen(tdir) - 1)) || (rc = walk(&w, dfd, &path, 0))) {
    rc = st_fail(err, rc, "objstore: list %s: %s", prefix, st_strerror(rc));
    goto done;
  }
publish:
  *page = tmp;
  tmp = (st_objstore_page_t)ST_OBJSTORE_PAGE_INIT;
done:
  st_objstore_page_release(&tmp);
  st_buf_release(&path);
  st_free(tdir);
  if (dfd >= 0)
    close(dfd);
  return rc;
}

static int fs_gc_temp(st_objstore_t *s, int64_t older_than_s, size_t *removed,
                      st_error_t *err) {
  st_buf_t path = ST_BUF_INIT;
  walk_t w;
  int rc;

  memset(&w, 0, sizeof(w));
  w.gc = 1;
  w.cutoff = st__objstore_now(s) - older_than_s;
  if (older_than_s <= 0)
    w.cutoff = INT64_MAX; /* everything that is a leftover now */
  rc = walk(&w, ((fs_store_t *)s)->rootfd, &path, 0);
  if (removed)
    *removed = w.removed;
  st_buf_release(&path);
  return rc ? st_fail(err, rc, "objstore: gc: %s", st_strerror(rc)) : 0;
}

static void fs_free(st_objstore_t *s) {
  fs_store_t *fs = (fs_store_t *)s;
  close(fs->rootfd);
  st_free(fs);
}

static const st__objstore_vt_t fs_vt = {
    "fs",   fs_put,      fs_get,      fs_stat, fs_del, fs_set_retention, fs_set_legal_hold,
    fs_list, fs_gc_temp, fs_free,
};

int st_objstore_fs_new(st_objstore_t **out, const char *root, st_error_t *err) {
  fs_store_t *fs;
  int fd;

  *out = NULL;
  if (mkdir(root, 0750) && errno != EEXIST)
    return st_fail(err, ST_EIO, "objstore: %s: cannot create: %s", root, strerror(errno));
  fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return st_fail(err, ST_EIO, "objstore: %s: cannot open: %s", root, strerror(errno));
  if (!(fs = st_calloc(1, sizeof(*fs)))) {
    close(fd);
    return st_fail(err, ST_ENOMEM, "objstore: out of memory");
  }
  fs->base.vt = &fs_vt;
  fs->rootfd = fd;
  *out = &fs->base;
  return 0;
}
