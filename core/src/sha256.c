/* sha256.c: SHA-256 over OpenSSL EVP (see sha256.h).
 *
 * The EVP_MD is fetched once per process: in OpenSSL 3 an implicit fetch on every
 * EVP_DigestInit_ex costs more than hashing a Merkle node. File hashing reads 1 MiB at a
 * time after posix_fadvise(SEQUENTIAL), which lets the kernel read ahead aggressively.
 */
#include "stella/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "stella/mem.h"

#define FILE_CHUNK ((size_t)1 << 20)

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

static void md_fetch(void) { md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *md_get(void) {
  pthread_once(&md_once, md_fetch);
  return md_sha256;
}

int st_sha256_init(st_sha256_t *h) {
  const EVP_MD *md = md_get();
  EVP_MD_CTX *c;

  h->md_ctx = NULL;
  if (!md)
    return ST_ECRYPTO;
  c = EVP_MD_CTX_new();
  if (!c)
    return ST_ENOMEM;
  if (EVP_DigestInit_ex(c, md, NULL) != 1) {
    EVP_MD_CTX_free(c);
    return ST_ECRYPTO;
  }
  h->md_ctx = c;
  return 0;
}

int st_sha256_update(st_sha256_t *h, const void *data, size_t len) {
  if (!h->md_ctx)
    return ST_EINVAL;
  if (len && EVP_DigestUpdate(h->md_ctx, data, len) != 1)
    return ST_ECRYPTO;
  return 0;
}

int st_sha256_final(st_sha256_t *h, uint8_t out[ST_SHA256_LEN]) {
  unsigned int n = 0;
  if (!h->md_ctx)
    return ST_EINVAL;
  if (EVP_DigestFinal_ex(h->md_ctx, out, &n) != 1 || n != ST_SHA256_LEN)
    return ST_ECRYPTO;
  if (EVP_DigestInit_ex(h->md_ctx, NULL, NULL) != 1)
    return ST_ECRYPTO;
  return 0;
}

void st_sha256_release(st_sha256_t *h) {
  EVP_MD_CTX_free(h->md_ctx);
  h->md_ctx = NULL;
}

int st_sha256(const void *data, size_t len, uint8_t out[ST_SHA256_LEN]) {
  const EVP_MD *md = md_get();
  if (!md)
    return ST_ECRYPTO;
  return EVP_Digest(data, len, out, NULL, md, NULL) == 1 ? 0 : ST_ECRYPTO;
}

int st_sha256_file(const char *path, uint8_t out[ST_SHA256_LEN], uint64_t *size_out,
                   st_error_t *err) {
  st_sha256_t h = {NULL};
  unsigned char *buf = NULL;
  uint64_t total = 0;
  int fd = -1, rc;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "%s: open: %s", path,
                 strerror(errno));
    goto done;
  }
  /* Advice only: a failure changes speed, not the result. */
  (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  buf = st_malloc(FILE_CHUNK);
  if (!buf) {
    rc = st_fail(err, ST_ENOMEM, "%s: read buffer", path);
    goto done;
  }
  if ((rc = st_sha256_init(&h))) {
    st_fail(err, rc, "%s: digest init", path);
    goto done;
  }
  for (;;) {
    ssize_t n = read(fd, buf, FILE_CHUNK);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = st_fail(err, ST_EIO, "%s: read: %s", path, strerror(errno));
      goto done;
    }
    if (n == 0)
      break;
    if ((rc = st_sha256_update(&h, buf, (size_t)n))) {
      st_fail(err, rc, "%s: digest update", path);
      goto done;
    }
    total += (uint64_t)n;
  }
  if ((rc = st_sha256_final(&h, out))) {
    st_fail(err, rc, "%s: digest final", path);
    goto done;
  }
  if (size_out)
    *size_out = total;
done:
  st_sha256_release(&h);
  st_free(buf);
  if (fd >= 0)
    close(fd);
  return rc;
}

void st_sha256_hex(const uint8_t d[ST_SHA256_LEN], char hex[ST_SHA256_HEX_LEN + 1]) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < ST_SHA256_LEN; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[ST_SHA256_HEX_LEN] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int st_sha256_from_hex(const char *hex, size_t len, uint8_t out[ST_SHA256_LEN]) {
  uint8_t tmp[ST_SHA256_LEN];
  if (len != ST_SHA256_HEX_LEN)
    return ST_EPARSE;
  for (size_t i = 0; i < ST_SHA256_LEN; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return ST_EPARSE;
    tmp[i] = (uint8_t)(hi << 4 | lo);
  }
  memcpy(out, tmp, sizeof(tmp));
  return 0;
}

int st_sha256_equal(const uint8_t a[ST_SHA256_LEN], const uint8_t b[ST_SHA256_LEN]) {
  return CRYPTO_memcmp(a, b, ST_SHA256_LEN) == 0;
}
