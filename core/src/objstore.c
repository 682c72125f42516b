/* objstore.c: the object store's front door. Validates tenant, key and digest once for
 * every backend (so the tenancy rule lives in one place), then dispatches through the
 * backend's vtable. Also the small shared pieces: hashing, key building, bounded list
 * pages, RFC 3339 times, and opening the store the configuration names. */
#define _GNU_SOURCE
#include "objstore_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stella/mem.h"

/* ---- hashing: the one place the store computes SHA-256 ---- */

int st__os_hash_init(st__os_hash_t *h) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  h->md = md;
  if (!md)
    return ST_ENOMEM;
  if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
    return ST_ECRYPTO;
  return 0;
}

int st__os_hash_update(st__os_hash_t *h, const void *data, size_t len) {
  return EVP_DigestUpdate(h->md, data, len) == 1 ? 0 : ST_ECRYPTO;
}

int st__os_hash_final_hex(st__os_hash_t *h, char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char d[32];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(h->md, d, &n) != 1 || n != 32)
    return ST_ECRYPTO;
  for (unsigned i = 0; i < 32; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[64] = '\0';
  return 0;
}

void st__os_hash_release(st__os_hash_t *h) {
  EVP_MD_CTX_free(h->md);
  h->md = NULL;
}

int st__objstore_digest_ok(const char *s) {
  size_t i;
  for (i = 0; i < 64; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return s[64] == '\0';
}

int st__objstore_digest_eq(const char *a, const char *b) {
  unsigned char diff = 0;
  for (size_t i = 0; i < 64; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

/* ---- keys ---- */

static int name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

static int tenant_ok(const char *t) {
  size_t n = 0;
  if (!t || t[0] == '.')
    return 0;
  for (; t[n]; n++)
    if (n >= ST_OBJSTORE_TENANT_MAX || !name_char(t[n]))
      return 0;
  return n > 0;
}

/* Syntax of a key (all segments complete) or of a prefix (the last segment may be
 * partial or empty). Segments: 1..200 name characters (so sidecar names stay within
 * NAME_MAX), not starting with '.' (sidecars and temp files do). */
static int key_syntax_ok(const char *k, size_t len, int is_prefix) {
  size_t seg = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i == len || k[i] == '/') {
      if (seg == 0 && !(is_prefix && i == len))
        return 0;
      seg = 0;
      continue;
    }
    if (!name_char(k[i]) || (seg == 0 && k[i] == '.') || ++seg > 200)
      return 0;
  }
  return 1;
}

/* The tenancy rule. Returns the length of "tenants/<tenant>/" on success. */
static int check_key(const char *tenant, const char *key, int is_prefix, size_t *base,
                     st_error_t *err) {
  size_t len, tl;
  if (!tenant_ok(tenant))
    return st_fail(err, ST_EINVAL, "objstore: tenant \"%.80s\" is not [A-Za-z0-9._-]{1,64}",
                   tenant ? tenant : "(null)");
  if (!key)
    return st_fail(err, ST_EINVAL, "objstore: key is NULL");
  len = strnlen(key, ST_OBJSTORE_KEY_MAX + 1);
  if (len > ST_OBJSTORE_KEY_MAX)
    return st_fail(err, ST_EUNSAFE, "objstore: key longer than %d bytes", ST_OBJSTORE_KEY_MAX);
  if (!key_syntax_ok(key, len, is_prefix))
    return st_fail(err, ST_EUNSAFE, "objstore: key \"%.200s\" is not a safe object key", key);
  tl = strlen(tenant);
  if (len < 8 + tl + 1 || memcmp(key, "tenants/", 8) || memcmp(key + 8, tenant, tl) ||
      key[8 + tl] != '/' || (!is_prefix && len == 8 + tl + 1))
    return st_fail(err, ST_ENOENT, "objstore: %s: not found", key);
  *base = 8 + tl + 1;
  return 0;
}

int st_objstore_key(st_buf_t *out, const char *tenant, const char *sha256_hex,
                    st_error_t *err) {
  if (!tenant_ok(tenant))
    return st_fail(err, ST_EINVAL, "objstore: tenant \"%.80s\" is not [A-Za-z0-9._-]{1,64}",
                   tenant ? tenant : "(null)");
  if (!sha256_hex || !st__objstore_digest_ok(sha256_hex))
    return st_fail(err, ST_EINVAL, "objstore: digest is not 64 lower-case hex digits");
  if (st_buf_addf(out, "tenants/%s/sha256/%s", tenant, sha256_hex))
    return st_fail(err, ST_ENOMEM, "objstore: key: out of memory");
  return 0;
}

/* ---- dispatch ---- */

static int64_t system_now(void *ctx) {
  (void)ctx;
  return (int64_t)time(NULL);
}

int64_t st__objstore_now(const st_objstore_t *s) {
  return s->now ? s->now(s->now_ctx) : system_now(NULL);
}

void st_objstore_set_clock(st_objstore_t *s, int64_t (*now)(void *ctx), void *ctx) {
  s->now = now;
  s->now_ctx = ctx;
}

const char *st_objstore_backend(const st_objstore_t *s) { return s->vt->name; }

void st_objstore_free(st_objstore_t *s) {
  if (s)
    s->vt->free(s);
}

static int check_put(const char *tenant, const char *key, const char *digest,
                     const st_objstore_lock_t *lock, st_error_t *err) {
  size_t base;
  int rc = check_key(tenant, key, 0, &base, err);
  if (rc)
    return rc;
  if (!digest || !st__objstore_digest_ok(digest))
    return st_fail(err, ST_EINVAL, "objstore: %s: expected digest is not 64 lower-case hex",
                   key);
  if (strncmp(key + base, "sha256/", 7) == 0 && strcmp(key + base + 7, digest) != 0)
    return st_fail(err, ST_EINVAL, "objstore: %s: key names another digest than %s", key,
                   digest);
  if (lock && lock->retain_until < 0)
    return st_fail(err, ST_EINVAL, "objstore: %s: negative retain-until", key);
  return 0;
}

int st_objstore_put(st_objstore_t *s, const char *tenant, const char *key,
                    const char *sha256_hex, uint64_t size, st_objstore_read_fn read_fn,
                    void *ctx, const st_objstore_lock_t *lock, st_error_t *err) {
  int rc = check_put(tenant, key, sha256_hex, lock, err);
  if (rc)
    return rc;
  return s->vt->put(s, key, sha256_hex, size, read_fn, ctx, 0, lock, err);
}

typedef struct file_src_s {
  FILE *f;
} file_src_t;

static ssize_t file_read(void *ctx, void *buf, size_t len) {
  file_src_t *src = ctx;
  size_t n = fread(buf, 1, len, src->f);
  if (n == 0 && ferror(src->f))
    return ST_EIO;
  return (ssize_t)n;
}

/* A replayable source: the backend rewinds it by calling the reader with len 0. */
static ssize_t file_read_rewindable(void *ctx, void *buf, size_t len) {
  file_src_t *src = ctx;
  if (len == 0) {
    clearerr(src->f);
    return fseeko(src->f, 0, SEEK_SET) == 0 ? 0 : ST_EIO;
  }
  return file_read(ctx, buf, len);
}

int st_objstore_put_file(st_objstore_t *s, const char *tenant, const char *key,
                         const char *sha256_hex, const char *path,
                         const st_objstore_lock_t *lock, st_error_t *err) {
  file_src_t src = {NULL};
  struct stat stbuf;
  int fd = -1, rc;

  if ((rc = check_put(tenant, key, sha256_hex, lock, err)))
    return rc;
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    rc = st_fail(err, ST_EIO, "objstore: %s: cannot open: %s", path, strerror(errno));
    goto done;
  }
  if (fstat(fd, &stbuf) || !S_ISREG(stbuf.st_mode)) {
    rc = st_fail(err, ST_EIO, "objstore: %s: not a regular file", path);
    goto done;
  }
  src.f = fdopen(fd, "rb");
  if (!src.f) {
    rc = st_fail(err, ST_EIO, "objstore: %s: %s", path, strerror(errno));
    goto done;
  }
  fd = -1;
  rc = s->vt->put(s, key, sha256_hex, (uint64_t)stbuf.st_size, file_read_rewindable, &src, 1,
                  lock, err);
done:
  if (src.f)
    fclose(src.f);
  if (fd >= 0)
    close(fd);
  return rc;
}

int st_objstore_get(st_objstore_t *s, const char *tenant, const char *key, uint64_t offset,
                    uint64_t length, st_objstore_write_fn write_fn, void *ctx,
                    st_error_t *err) {
  size_t base;
  int rc = check_key(tenant, key, 0, &base, err);
  return rc ? rc : s->vt->get(s, key, offset, length, write_fn, ctx, err);
}

int st_objstore_stat(st_objstore_t *s, const char *tenant, const char *key,
                     st_objstore_stat_t *out, st_error_t *err) {
  size_t base;
  int rc = check_key(tenant, key, 0, &base, err);
  memset(out, 0, sizeof(*out));
  return rc ? rc : s->vt->stat(s, key, out, err);
}

int st_objstore_delete(st_objstore_t *s, const char *tenant, const char *key,
                       st_error_t *err) {
  size_t base;
  int rc = check_key(tenant, key, 0, &base, err);
  return rc ? rc : s->vt->del(s, key, err);
}

int st_objstore_set_retention(st_objstore_t *s, const char *tenant, const char *key,
                              int64_t retain_until, st_error_t *err) {
  size_t base;
  int rc = check_key(tenant, key, 0, &base, err);
  if (!rc && retain_until <= 0)
    rc = st_fail(err, ST_EINVAL, "objstore: %s: retain-until must be a positive time", key);
  return rc ? rc : s->vt->set_retention(s, key, retain_until, err);
}

int st_objstore_set_legal_hold(st_objstore_t *s, const char *tenant, const char *key, int on,
                               st_error_t *err) {
  size_t base;
  int rc = check_key(tenant, key, 0, &base, err);
  return rc ? rc : s->vt->set_legal_hold(s, key, on ? 1 : 0, err);
}

int st_objstore_list(st_objstore_t *s, const char *tenant, const char *prefix,
                     const char *start_after, size_t max_keys, st_objstore_page_t *page,
                     st_error_t *err) {
  size_t base;
  int rc = check_key(tenant, prefix, 1, &base, err);
  if (rc)
    return rc;
  if (max_keys < 1 || max_keys > ST_OBJSTORE_PAGE_MAX)
    return st_fail(err, ST_EINVAL, "objstore: list: max_keys %zu outside [1, %d]", max_keys,
                   ST_OBJSTORE_PAGE_MAX);
  if (start_after && strnlen(start_after, ST_OBJSTORE_KEY_MAX + 1) > ST_OBJSTORE_KEY_MAX)
    return st_fail(err, ST_EUNSAFE, "objstore: list: start_after too long");
  return s->vt->list(s, prefix, start_after, max_keys, page, err);
}

int st_objstore_gc_temp(st_objstore_t *s, int64_t older_than_s, size_t *removed,
                        st_error_t *err) {
  if (removed)
    *removed = 0;
  return s->vt->gc_temp ? s->vt->gc_temp(s, older_than_s, removed, err) : 0;
}

/* ---- list pages ---- */

void st_objstore_page_release(st_objstore_page_t *page) {
  for (size_t i = 0; i < page->count; i++)
    st_free(page->keys[i]);
  st_free(page->keys);
  page->keys = NULL;
  page->count = 0;
  page->truncated = 0;
}

int st__objstore_page_offer(st_objstore_page_t *page, size_t max, const char *key,
                            size_t len) {
  size_t lo = 0, hi = page->count;
  char *copy;

  if (!page->keys && !(page->keys = st_calloc(max + 1, sizeof(char *))))
    return ST_ENOMEM;
  if (page->count == max && strcmp(key, page->keys[max - 1]) > 0) {
    page->truncated = 1;
    return 0;
  }
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (strcmp(page->keys[mid], key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < page->count && strcmp(page->keys[lo], key) == 0)
    return 0;
  if (!(copy = st_strndup(key, len)))
    return ST_ENOMEM;
  memmove(page->keys + lo + 1, page->keys + lo, (page->count - lo) * sizeof(char *));
  page->keys[lo] = copy;
  if (++page->count > max) {
    st_free(page->keys[max]);
    page->count = max;
    page->truncated = 1;
  }
  return 0;
}

/* ---- RFC 3339 ---- */

void st__objstore_rfc3339(int64_t t, char out[21]) {
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int st__objstore_parse_rfc3339(const char *s, size_t len, int64_t *out) {
  struct tm tm;
  char tmp[32];
  const char *end;
  size_t i;

  if (len < 20 || len >= sizeof(tmp))
    return ST_EPARSE;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  memset(&tm, 0, sizeof(tm));
  end = strptime(tmp, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end)
    return ST_EPARSE;
  i = (size_t)(end - tmp);
  if (tmp[i] == '.')
    for (i++; tmp[i] >= '0' && tmp[i] <= '9'; i++)
      ;
  if (tmp[i] != 'Z' || tmp[i + 1] != '\0')
    return ST_EPARSE;
  *out = (int64_t)timegm(&tm);
  return 0;
}

/* ---- configuration ---- */

int st_objstore_open(st_objstore_t **out, const st_config_t *cfg, st_error_t *err) {
  const char *kind = st_config_str(cfg, "objstore");
  st_objstore_s3_opts_t o;
  static const char *const required[] = {"s3_endpoint", "s3_bucket", "s3_access_key",
                                         "s3_secret_key"};

  *out = NULL;
  if (!kind || strcmp(kind, "fs") == 0) {
    const char *root = st_config_str(cfg, "data_dir");
    if (!root || !*root)
      return st_fail(err, ST_ECONFIG, "data_dir: required by objstore = fs");
    return st_objstore_fs_new(out, root, err);
  }
  if (strcmp(kind, "s3") != 0)
    return st_fail(err, ST_ECONFIG, "objstore: expected fs or s3, got \"%s\"", kind);
  for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
    const char *v = st_config_str(cfg, required[i]);
    if (!v || !*v)
      return st_fail(err, ST_ECONFIG, "%s: required by objstore = s3", required[i]);
  }
  memset(&o, 0, sizeof(o));
  o.endpoint = st_config_str(cfg, "s3_endpoint");
  o.region = st_config_str(cfg, "s3_region");
  o.bucket = st_config_str(cfg, "s3_bucket");
  o.access_key = st_config_str(cfg, "s3_access_key");
  o.secret_key = st_config_str(cfg, "s3_secret_key");
  o.worm_mode = st_config_str(cfg, "s3_worm_mode");
  o.ca_file = st_config_str(cfg, "s3_ca_file");
  return st_objstore_s3_new(out, &o, err);
}
