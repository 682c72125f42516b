/* objstore_int.h: what the object store's dispatch (objstore.c) shares with its
 * backends (objstore_fs.c, objstore_s3.c): the vtable, and the hashing and key helpers.
 * The dispatch validates the tenant, key and digest before any backend call, so a
 * backend receives only well-formed keys inside the caller's tenant. */
#ifndef STELLA_OBJSTORE_INT_H
#define STELLA_OBJSTORE_INT_H

#include <stdint.h>

#include "stella/objstore.h"

typedef struct st__objstore_vt_s {
  const char *name;
  int (*put)(st_objstore_t *s, const char *key, const char *sha256_hex, uint64_t size,
             st_objstore_read_fn read_fn, void *ctx, int replayable,
             const st_objstore_lock_t *lock, st_error_t *err);
  int (*get)(st_objstore_t *s, const char *key, uint64_t offset, uint64_t length,
             st_objstore_write_fn write_fn, void *ctx, st_error_t *err);
  int (*stat)(st_objstore_t *s, const char *key, st_objstore_stat_t *out, st_error_t *err);
  int (*del)(st_objstore_t *s, const char *key, st_error_t *err);
  int (*set_retention)(st_objstore_t *s, const char *key, int64_t until, st_error_t *err);
  int (*set_legal_hold)(st_objstore_t *s, const char *key, int on, st_error_t *err);
  int (*list)(st_objstore_t *s, const char *prefix, const char *start_after, size_t max,
              st_objstore_page_t *page, st_error_t *err);
  int (*gc_temp)(st_objstore_t *s, int64_t older_than_s, size_t *removed, st_error_t *err);
  void (*free)(st_objstore_t *s);
} st__objstore_vt_t;

/* put: a replayable source rewinds when read_fn is called with len 0. */

/* Every backend struct starts with this header. */
struct st_objstore_s {
  const st__objstore_vt_t *vt;
  int64_t (*now)(void *ctx);
  void *now_ctx;
};

/* Current time by the store's clock. */
int64_t st__objstore_now(const st_objstore_t *s);

/* SHA-256, the one place the object store hashes (switches to stella/sha256.h later).
 * A context is caller-allocated; release it on every path. */
typedef struct st__os_hash_s {
  void *md; /* EVP_MD_CTX */
} st__os_hash_t;
int st__os_hash_init(st__os_hash_t *h) ST_MUST_CHECK;
int st__os_hash_update(st__os_hash_t *h, const void *data, size_t len) ST_MUST_CHECK;
/* Finish into hex (65 bytes with NUL). */
int st__os_hash_final_hex(st__os_hash_t *h, char hex[65]) ST_MUST_CHECK;
void st__os_hash_release(st__os_hash_t *h);

/* Whether s is 64 lower-case hex digits. */
int st__objstore_digest_ok(const char *s);
/* Constant-time equality of two NUL-terminated digests of equal length. */
int st__objstore_digest_eq(const char *a, const char *b);

/* Sorted insertion of key into a bounded page (keeps the max smallest keys; sets
 * truncated when one is dropped). The page's key array has room for max + 1. */
int st__objstore_page_offer(st_objstore_page_t *page, size_t max, const char *key,
                            size_t len) ST_MUST_CHECK;

/* RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SSZ" of t (21 bytes with NUL), and its parser
 * (accepts fractional seconds and "Z" only); ST_EPARSE on anything else. */
void st__objstore_rfc3339(int64_t t, char out[21]);
int st__objstore_parse_rfc3339(const char *s, size_t len, int64_t *out) ST_MUST_CHECK;

#endif
