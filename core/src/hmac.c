/* hmac.c: HMAC-SHA256 over OpenSSL's one-shot HMAC(). */
#include "stella/hmac.h"

#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

int st_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                   uint8_t out[ST_SHA256_LEN]) {
  unsigned int n = 0;
  if (key_len > INT_MAX)
    return ST_EINVAL;
  if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) || n != ST_SHA256_LEN)
    return ST_ECRYPTO;
  return 0;
}
