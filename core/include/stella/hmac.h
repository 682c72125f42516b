/* hmac.h: HMAC-SHA256 (RFC 2104) for server-side tokens (timeline query cursors).
 *
 * One-shot, OpenSSL underneath; compare tags with st_sha256_equal (constant time).
 * Thread rules: safe from any thread. Errors: ST_EINVAL (key longer than INT_MAX),
 * ST_ECRYPTO (OpenSSL refused).
 */
#ifndef STELLA_HMAC_H
#define STELLA_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"
#include "stella/sha256.h"

int st_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                   uint8_t out[ST_SHA256_LEN]) ST_MUST_CHECK;

#endif
