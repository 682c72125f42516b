/* keys_file.c: the PEM file key provider and key generation.
 *
 * The private key file is read into a wiped buffer, parsed once into an EVP_PKEY (which
 * OpenSSL clears on free) and kept for the signer's life. Signing creates a fresh
 * EVP_MD_CTX per call, so concurrent calls share only the read-only key. */
#include "keys_internal.h"
#include "stella/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "stella/mem.h"

#define PRIVKEY_PEM_MAX 16384

static int file_sign(void *impl, const void *msg, size_t len, st_buf_t *sig,
                     st_error_t *err) {
  EVP_PKEY *pkey = impl;
  EVP_MD_CTX *ctx = NULL;
  size_t n = ST_SIG_MAX;
  int rc = 0, ed = EVP_PKEY_is_a(pkey, "ED25519");

  if ((rc = st_buf_grow(sig, ST_SIG_MAX))) {
    st_fail(err, rc, "file signer: %s", st_strerror(rc));
    goto done;
  }
  if (!(ctx = EVP_MD_CTX_new()) ||
      EVP_DigestSignInit(ctx, NULL, ed ? NULL : EVP_sha256(), NULL, pkey) != 1 ||
      EVP_DigestSign(ctx, (unsigned char *)sig->data + sig->len, &n, msg, len) != 1) {
    rc = st_fail(err, ST_ECRYPTO, "file signer: signing failed");
    goto done;
  }
  sig->len += n;
  sig->data[sig->len] = '\0';
done:
  EVP_MD_CTX_free(ctx);
  return rc;
}

static void file_free(void *impl) { EVP_PKEY_free(impl); }

static const st_signer_ops_t file_ops = {"file", file_sign, file_free};

int st_signer_file_open(st_signer_t **out, const char *path, st_error_t *err) {
  st_buf_t pem = ST_BUF_INIT;
  BIO *bio = NULL;
  EVP_PKEY *pkey = NULL;
  unsigned char *spki = NULL;
  int rc = 0, n;

  *out = NULL;
  if ((rc = st__keys_read_file(path, PRIVKEY_PEM_MAX, &pem, err)))
    goto done;
  if (!(bio = BIO_new_mem_buf(pem.data, (int)pem.len)) ||
      !(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
    rc = st_fail(err, ST_EPARSE, "%s: no unencrypted PEM private key found", path);
    goto done;
  }
  if ((n = i2d_PUBKEY(pkey, &spki)) <= 0) {
    rc = st_fail(err, ST_ECRYPTO, "%s: cannot derive the public key", path);
    goto done;
  }
  rc = st_signer_new(out, &file_ops, pkey, spki, (size_t)n, err);
  pkey = NULL; /* owned by the signer now, even on failure */
  if (rc)
    st_error_wrap(err, "%s", path);
done:
  st_memzero(pem.data, pem.len);
  st_buf_release(&pem);
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  OPENSSL_free(spki);
  return rc;
}

/* Write data to a new file (O_EXCL) with the given mode. */
static int write_new_file(const char *path, const char *data, size_t len, mode_t mode,
                          st_error_t *err) {
  int fd, rc = 0;
  size_t off = 0;

  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return st_fail(err, errno == EEXIST ? ST_EEXIST : ST_EIO, "%s: %s", path,
                   errno == EEXIST ? "already exists, not overwriting" : strerror(errno));
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
      break;
    }
    off += (size_t)n;
  }
  if (!rc && fsync(fd) != 0)
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
  if (close(fd) != 0 && !rc)
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
  if (rc)
    unlink(path);
  return rc;
}

int st_key_generate(st_key_type type, const char *priv_path, const char *pub_path,
                    st_error_t *err) {
  EVP_PKEY *pkey = NULL;
  BIO *priv = NULL, *pub = NULL;
  char *pdata = NULL, *qdata = NULL;
  long plen, qlen;
  int rc = 0, wrote_priv = 0;

  if (access(priv_path, F_OK) == 0 || access(pub_path, F_OK) == 0)
    return st_fail(err, ST_EEXIST, "%s: already exists, not overwriting",
                   access(priv_path, F_OK) == 0 ? priv_path : pub_path);
  if (type == ST_KEY_ED25519)
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  else if (type == ST_KEY_P256)
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  else
    return st_fail(err, ST_EINVAL, "key generate: unknown key type %d", (int)type);
  if (!pkey || !(priv = BIO_new(BIO_s_secmem())) || !(pub = BIO_new(BIO_s_mem())) ||
      PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
      PEM_write_bio_PUBKEY(pub, pkey) != 1) {
    rc = st_fail(err, ST_ECRYPTO, "key generate: OpenSSL failed");
    goto done;
  }
  plen = BIO_get_mem_data(priv, &pdata);
  qlen = BIO_get_mem_data(pub, &qdata);
  if ((rc = write_new_file(priv_path, pdata, (size_t)plen, 0600, err)))
    goto done;
  wrote_priv = 1;
  rc = write_new_file(pub_path, qdata, (size_t)qlen, 0644, err);
done:
  if (rc && wrote_priv)
    unlink(priv_path);
  BIO_free(priv); /* secure-heap BIO: cleared on free */
  BIO_free(pub);
  EVP_PKEY_free(pkey);
  return rc;
}
