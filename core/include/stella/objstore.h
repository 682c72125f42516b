/* objstore.h: the object store, one interface over two backends.
 *
 * Objects are immutable byte strings under keys `tenants/<tenant>/<name>[/<name>...]`;
 * content-addressed keys are `tenants/<tenant>/sha256/<64 lower-hex>` (st_objstore_key).
 * Backends: the filesystem under a root directory (default; atomic publish by rename,
 * retention and legal hold in a sidecar) and an S3-compatible bucket over libcurl with
 * SigV4 (Object Lock headers when WORM is configured). Both pass one conformance suite
 * (tests/integration/test_objstore_conformance.c).
 *
 * Tenancy: every call names the tenant. A key or prefix outside `tenants/<tenant>/` is
 * answered ST_ENOENT, exactly as a missing object is, so nothing leaks about another
 * tenant's objects. A malformed key (empty segment, `.`/`..`, a segment starting with
 * `.` or longer than 200, a byte outside [A-Za-z0-9._-], a key longer than
 * ST_OBJSTORE_KEY_MAX) is ST_EUNSAFE; a malformed tenant (not [A-Za-z0-9._-]{1,64}, or
 * starting with `.`) is ST_EINVAL.
 *
 * Writes: st_objstore_put streams `size` bytes and checks them against the expected
 * SHA-256 while streaming; on a mismatch (or a byte count other than `size`) nothing
 * becomes visible and the call fails with ST_EVERIFY. A put of an existing key with the
 * same digest succeeds without reading the source; with another digest it is ST_EEXIST.
 * A key under `sha256/` must name the expected digest (ST_EINVAL otherwise).
 *
 * Deletion is ST_EPERM while the object is under a legal hold or its retain-until time
 * is in the future. Retention can be extended, never shortened (ST_EPERM), like S3
 * Object Lock's COMPLIANCE mode.
 *
 * Errors: ST_ENOENT (missing or another tenant's), ST_EPERM (retained/held, or the
 * server said 403), ST_ENET (network or 5xx after retries: transient), ST_ERANGE (range
 * start past the end), ST_EIO (local I/O or an unexpected server answer), ST_EUNSUPPORTED
 * (lock calls on an S3 store without WORM). If a call fails, no callback is called after
 * the failure; a get may have delivered a prefix of the bytes before a network failure.
 *
 * Ownership and threads: st_objstore_open / _fs_new / _s3_new allocate; st_objstore_free
 * frees. A store may be used by several threads at once (each call is independent); the
 * callbacks run on the calling thread. st_objstore_list fills a caller-owned page that
 * st_objstore_page_release frees.
 */
#ifndef STELLA_OBJSTORE_H
#define STELLA_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stella/buf.h"
#include "stella/config.h"
#include "stella/err.h"

#define ST_OBJSTORE_KEY_MAX 1024
#define ST_OBJSTORE_TENANT_MAX 64
/* st_objstore_get length meaning "to the end of the object". */
#define ST_OBJSTORE_TO_END UINT64_MAX
/* Largest page st_objstore_list returns (S3's own cap). */
#define ST_OBJSTORE_PAGE_MAX 1000

typedef struct st_objstore_s st_objstore_t;

/* Source of a put: copy up to len bytes into buf; return the count, 0 at the end, or a
 * negative ST_E* code to abort the put (which then fails with that code). */
typedef ssize_t (*st_objstore_read_fn)(void *ctx, void *buf, size_t len);
/* Sink of a get: take len bytes; return 0, or a negative ST_E* code to stop the get. */
typedef int (*st_objstore_write_fn)(void *ctx, const void *buf, size_t len);

typedef struct st_objstore_stat_s {
  uint64_t size;
  char sha256[65];      /* lower-case hex */
  int64_t retain_until; /* Unix seconds; 0 = no retention */
  int legal_hold;       /* 1 while held */
} st_objstore_stat_t;

/* Lock to place on an object as it is written (S3: Object Lock headers on the PUT,
 * which needs s3_worm_mode; fs: in the sidecar published with the object). On a put
 * that finds the object already there, the lock is applied as by set_retention /
 * set_legal_hold. */
typedef struct st_objstore_lock_s {
  int64_t retain_until; /* Unix seconds, 0 = none */
  int legal_hold;
} st_objstore_lock_t;

typedef struct st_objstore_page_s {
  char **keys;    /* `count` full keys in byte order; owned by the page */
  size_t count;
  int truncated;  /* more keys follow: pass keys[count - 1] as start_after */
} st_objstore_page_t;

#define ST_OBJSTORE_PAGE_INIT {NULL, 0, 0}

typedef struct st_objstore_s3_opts_s {
  const char *endpoint;   /* http(s)://host[:port], path-style requests */
  const char *region;     /* e.g. us-east-1 */
  const char *bucket;
  const char *access_key;
  const char *secret_key; /* copied and wiped on free */
  const char *worm_mode;  /* NULL/"" = off, "GOVERNANCE" or "COMPLIANCE" */
  const char *ca_file;    /* PEM bundle for https, NULL = system store */
  int max_attempts;       /* per request for transient failures; 0 = 4 */
  long timeout_ms;        /* per request without progress; 0 = 30000 */
} st_objstore_s3_opts_t;

/* Put the content-addressed key of digest (64 lower-hex) for tenant in out (appended).
 * ST_EINVAL for a bad tenant or digest. */
int st_objstore_key(st_buf_t *out, const char *tenant, const char *sha256_hex,
                    st_error_t *err) ST_MUST_CHECK;

/* The store the configuration names: `objstore` = fs (root `data_dir`) or s3 (the s3_*
 * keys). ST_ECONFIG names the missing or bad key. */
int st_objstore_open(st_objstore_t **out, const st_config_t *cfg, st_error_t *err)
    ST_MUST_CHECK;
/* Filesystem store rooted at root (created if missing, mode 0750). */
int st_objstore_fs_new(st_objstore_t **out, const char *root, st_error_t *err) ST_MUST_CHECK;
/* S3 store; no request is made until the first call. */
int st_objstore_s3_new(st_objstore_t **out, const st_objstore_s3_opts_t *opts,
                       st_error_t *err) ST_MUST_CHECK;
void st_objstore_free(st_objstore_t *s);

/* Backend name, "fs" or "s3". */
const char *st_objstore_backend(const st_objstore_t *s);
/* Replace the clock used for retention decisions (tests, simulations); NULL restores
 * time(2). Call before sharing the store between threads. */
void st_objstore_set_clock(st_objstore_t *s, int64_t (*now)(void *ctx), void *ctx);

/* Store size bytes read from read_fn under key, with lock if non-NULL; see the top
 * comment. The source is read once, front to back; a failed put is not retried. */
int st_objstore_put(st_objstore_t *s, const char *tenant, const char *key,
                    const char *sha256_hex, uint64_t size, st_objstore_read_fn read_fn,
                    void *ctx, const st_objstore_lock_t *lock, st_error_t *err) ST_MUST_CHECK;
/* Same, from a regular file (never a symlink); the size is the file's. Retried on
 * transient failures (S3), which a callback source cannot be. */
int st_objstore_put_file(st_objstore_t *s, const char *tenant, const char *key,
                         const char *sha256_hex, const char *path,
                         const st_objstore_lock_t *lock, st_error_t *err) ST_MUST_CHECK;
/* Stream bytes [offset, offset + length) (clamped to the end; ST_OBJSTORE_TO_END for
 * all) to write_fn. offset == size delivers nothing; offset > size is ST_ERANGE. */
int st_objstore_get(st_objstore_t *s, const char *tenant, const char *key, uint64_t offset,
                    uint64_t length, st_objstore_write_fn write_fn, void *ctx,
                    st_error_t *err) ST_MUST_CHECK;
int st_objstore_stat(st_objstore_t *s, const char *tenant, const char *key,
                     st_objstore_stat_t *out, st_error_t *err) ST_MUST_CHECK;
int st_objstore_delete(st_objstore_t *s, const char *tenant, const char *key,
                       st_error_t *err) ST_MUST_CHECK;
/* Keep the object until retain_until (Unix seconds, UTC). */
int st_objstore_set_retention(st_objstore_t *s, const char *tenant, const char *key,
                              int64_t retain_until, st_error_t *err) ST_MUST_CHECK;
int st_objstore_set_legal_hold(st_objstore_t *s, const char *tenant, const char *key,
                               int on, st_error_t *err) ST_MUST_CHECK;
/* Keys starting with prefix (itself under `tenants/<tenant>/`) and sorting after
 * start_after (NULL = from the start), at most max_keys (1..ST_OBJSTORE_PAGE_MAX).
 * page must be ST_OBJSTORE_PAGE_INIT or released; it is filled only on success. */
int st_objstore_list(st_objstore_t *s, const char *tenant, const char *prefix,
                     const char *start_after, size_t max_keys, st_objstore_page_t *page,
                     st_error_t *err) ST_MUST_CHECK;
void st_objstore_page_release(st_objstore_page_t *page);
/* Remove what interrupted puts left behind (temp files and orphan sidecars) last
 * modified more than older_than_s seconds ago; *removed (may be NULL) gets the count.
 * A no-op on S3, where an interrupted PUT leaves nothing. */
int st_objstore_gc_temp(st_objstore_t *s, int64_t older_than_s, size_t *removed,
                        st_error_t *err) ST_MUST_CHECK;

#endif
