/* sha256.h: SHA-256 for bundles, manifests and Merkle trees (OpenSSL EVP underneath).
 *
 * A streaming context is caller-allocated: st_sha256_init gives it an OpenSSL digest
 * context (heap), st_sha256_release frees that. After st_sha256_final the context is
 * ready for a new message, so one context can hash many messages (the Merkle tree does).
 * One-shot helpers hash a buffer or a file; digests are raw 32-byte arrays, shown as
 * lower-case hex. Compare digests only with st_sha256_equal (constant time).
 *
 * Thread rules: a context belongs to one thread at a time; the one-shot helpers are safe
 * from any thread.
 * Errors: ST_ENOMEM, ST_ECRYPTO (OpenSSL refused), ST_EIO/ST_ENOENT for files,
 * ST_EPARSE for malformed hex.
 */
#ifndef STELLA_SHA256_H
#define STELLA_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"

#define ST_SHA256_LEN 32
#define ST_SHA256_HEX_LEN 64

typedef struct st_sha256_s {
  void *md_ctx; /* EVP_MD_CTX*, owned */
} st_sha256_t;

/* Start a message. On failure the context needs no release. */
int st_sha256_init(st_sha256_t *h) ST_MUST_CHECK;
int st_sha256_update(st_sha256_t *h, const void *data, size_t len) ST_MUST_CHECK;
/* Write the digest of everything updated since init (or the last final) and start a
 * new message in the same context. */
int st_sha256_final(st_sha256_t *h, uint8_t out[ST_SHA256_LEN]) ST_MUST_CHECK;
/* Free the context's OpenSSL state; safe on a zeroed or released context. */
void st_sha256_release(st_sha256_t *h);

/* Digest of data[0..len). */
int st_sha256(const void *data, size_t len, uint8_t out[ST_SHA256_LEN]) ST_MUST_CHECK;
/* Digest of a whole file, read sequentially with a large buffer; *size_out (if non-NULL)
 * gets the number of bytes hashed. Errors name the path. */
int st_sha256_file(const char *path, uint8_t out[ST_SHA256_LEN], uint64_t *size_out,
                   st_error_t *err) ST_MUST_CHECK;

/* Lower-case hex of a digest, NUL-terminated (65 bytes). */
void st_sha256_hex(const uint8_t d[ST_SHA256_LEN], char hex[ST_SHA256_HEX_LEN + 1]);
/* Parse exactly 64 hex digits (either case) into a digest; ST_EPARSE otherwise. */
int st_sha256_from_hex(const char *hex, size_t len, uint8_t out[ST_SHA256_LEN]) ST_MUST_CHECK;
/* 1 if equal, 0 if not; time does not depend on where the digests differ. */
int st_sha256_equal(const uint8_t a[ST_SHA256_LEN], const uint8_t b[ST_SHA256_LEN]) ST_MUST_CHECK;

#endif
