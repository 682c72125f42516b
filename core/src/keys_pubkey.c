/* keys_pubkey.c: public keys: SPKI parsing, the SSH-style keyid, PEM form, verification.
 *
 * A key is accepted only if it is Ed25519 or EC on P-256; everything callers see (SPKI
 * DER, PEM, keyid) is re-derived from the parsed key, so two spellings of one key give
 * identical output. */
#include "keys_internal.h"
#include "stella/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "stella/base64.h"
#include "stella/mem.h"

struct st_pubkey_s {
  EVP_PKEY *pkey;
  st_key_type type;
  unsigned char *spki;
  size_t spki_len;
  char *pem;
  char *keyid;
};

int st_key_type_parse(const char *s, st_key_type *out) {
  if (strcmp(s, "ed25519") == 0)
    return *out = ST_KEY_ED25519, 0;
  if (strcmp(s, "p256") == 0)
    return *out = ST_KEY_P256, 0;
  return ST_EINVAL;
}

int st__keys_read_file(const char *path, size_t max, st_buf_t *out, st_error_t *err) {
  struct stat st;
  int fd = -1, rc = 0;

  st_buf_reset(out);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "%s: %s", path, strerror(errno));
    goto done;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = st_fail(err, ST_EIO, "%s: not a regular file", path);
    goto done;
  }
  if ((size_t)st.st_size > max) {
    rc = st_fail(err, ST_ETOOBIG, "%s: larger than %zu bytes", path, max);
    goto done;
  }
  /* Room for one byte more than allowed, to notice a file that grew since fstat. */
  if ((rc = st_buf_grow(out, max + 1))) {
    st_fail(err, rc, "%s: %s", path, st_strerror(rc));
    goto done;
  }
  for (;;) {
    ssize_t n = read(fd, out->data + out->len, max + 1 - out->len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
      goto done;
    }
    if (n == 0)
      break;
    out->len += (size_t)n;
    if (out->len > max) {
      rc = st_fail(err, ST_ETOOBIG, "%s: larger than %zu bytes", path, max);
      goto done;
    }
  }
  out->data[out->len] = '\0';
done:
  if (fd >= 0)
    close(fd);
  return rc;
}

static int put_ssh_string(st_buf_t *b, const void *s, size_t len) {
  unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                         (unsigned char)(len >> 8), (unsigned char)len};
  int rc = st_buf_add(b, be, 4);
  return rc ? rc : st_buf_add(b, s, len);
}

/* SSH wire blob (RFC 8709 / RFC 5656) of the key, then its fingerprint. */
static int make_keyid(st_pubkey_t *k, st_error_t *err) {
  st_buf_t blob = ST_BUF_INIT, out = ST_BUF_INIT;
  unsigned char raw[133], md[EVP_MAX_MD_SIZE];
  size_t raw_len = 0;
  unsigned md_len = 0;
  int rc = 0;

  if (k->type == ST_KEY_ED25519) {
    raw_len = 32;
    if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &raw_len) != 1 || raw_len != 32) {
      rc = st_fail(err, ST_ECRYPTO, "public key: cannot read the Ed25519 point");
      goto done;
    }
    rc = put_ssh_string(&blob, "ssh-ed25519", 11);
  } else {
    if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, raw,
                                        sizeof(raw), &raw_len) != 1 ||
        raw_len != 65 || raw[0] != 0x04) {
      rc = st_fail(err, ST_ECRYPTO, "public key: cannot read the uncompressed P-256 point");
      goto done;
    }
    rc = put_ssh_string(&blob, "ecdsa-sha2-nistp256", 19);
    if (!rc)
      rc = put_ssh_string(&blob, "nistp256", 8);
  }
  if (!rc)
    rc = put_ssh_string(&blob, raw, raw_len);
  if (!rc && EVP_Digest(blob.data, blob.len, md, &md_len, EVP_sha256(), NULL) != 1)
    rc = ST_ECRYPTO;
  if (!rc)
    rc = st_buf_adds(&out, "SHA256:");
  if (!rc)
    rc = st_base64_encode(&out, md, md_len);
  if (rc) {
    st_fail(err, rc, "public key: computing the keyid: %s", st_strerror(rc));
    goto done;
  }
  while (out.len && out.data[out.len - 1] == '=')
    out.data[--out.len] = '\0';
  k->keyid = st_buf_detach(&out, NULL);
  if (!k->keyid)
    rc = st_fail(err, ST_ENOMEM, "public key: out of memory");
done:
  st_buf_release(&blob);
  st_buf_release(&out);
  return rc;
}

static int make_pem(st_pubkey_t *k, st_error_t *err) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *data = NULL;
  long n;
  int rc = 0;

  if (!bio || PEM_write_bio_PUBKEY(bio, k->pkey) != 1) {
    rc = st_fail(err, ST_ECRYPTO, "public key: PEM encoding failed");
    goto done;
  }
  n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || !(k->pem = st_strndup(data, (size_t)n)))
    rc = st_fail(err, ST_ENOMEM, "public key: out of memory");
done:
  BIO_free(bio);
  return rc;
}

/* Takes ownership of pkey. */
static int pubkey_from_pkey(st_pubkey_t **out, EVP_PKEY *pkey, st_error_t *err) {
  st_pubkey_t *k = NULL;
  unsigned char *der = NULL;
  char group[32];
  int rc = 0, n;

  *out = NULL;
  if (!(k = st_calloc(1, sizeof(*k)))) {
    rc = st_fail(err, ST_ENOMEM, "public key: out of memory");
    goto done;
  }
  k->pkey = pkey;
  pkey = NULL;
  if (EVP_PKEY_is_a(k->pkey, "ED25519")) {
    k->type = ST_KEY_ED25519;
  } else if (EVP_PKEY_is_a(k->pkey, "EC") &&
             EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), NULL) == 1 &&
             strcmp(group, "prime256v1") == 0) {
    k->type = ST_KEY_P256;
  } else {
    rc = st_fail(err, ST_EUNSUPPORTED, "public key: type %s is not Ed25519 or ECDSA P-256",
                 EVP_PKEY_get0_type_name(k->pkey) ? EVP_PKEY_get0_type_name(k->pkey) : "?");
    goto done;
  }
  n = i2d_PUBKEY(k->pkey, &der);
  if (n <= 0 || !(k->spki = st_malloc((size_t)n))) {
    rc = st_fail(err, ST_ECRYPTO, "public key: SPKI encoding failed");
    goto done;
  }
  memcpy(k->spki, der, (size_t)n);
  k->spki_len = (size_t)n;
  if ((rc = make_pem(k, err)) || (rc = make_keyid(k, err)))
    goto done;
  *out = k;
  k = NULL;
done:
  OPENSSL_free(der);
  EVP_PKEY_free(pkey);
  st_pubkey_free(k);
  return rc;
}

int st_pubkey_from_spki(st_pubkey_t **out, const void *der, size_t len, st_error_t *err) {
  const unsigned char *p = der;
  EVP_PKEY *pkey;

  *out = NULL;
  if (len > ST_PUBKEY_PEM_MAX || len > LONG_MAX)
    return st_fail(err, ST_ETOOBIG, "public key: SPKI larger than %d bytes", ST_PUBKEY_PEM_MAX);
  pkey = d2i_PUBKEY(NULL, &p, (long)len);
  if (!pkey || p != (const unsigned char *)der + len) {
    EVP_PKEY_free(pkey);
    return st_fail(err, ST_EPARSE, "public key: not a DER SubjectPublicKeyInfo");
  }
  return pubkey_from_pkey(out, pkey, err);
}

int st_pubkey_from_pem(st_pubkey_t **out, const char *pem, size_t len, st_error_t *err) {
  BIO *bio = NULL;
  EVP_PKEY *pkey = NULL;

  *out = NULL;
  if (len > ST_PUBKEY_PEM_MAX || len > INT_MAX)
    return st_fail(err, ST_ETOOBIG, "public key: PEM larger than %d bytes", ST_PUBKEY_PEM_MAX);
  bio = BIO_new_mem_buf(pem, (int)len);
  if (bio)
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!pkey)
    return st_fail(err, ST_EPARSE, "public key: no PEM PUBLIC KEY block found");
  return pubkey_from_pkey(out, pkey, err);
}

int st_pubkey_load(st_pubkey_t **out, const char *path, st_error_t *err) {
  st_buf_t b = ST_BUF_INIT;
  int rc;

  *out = NULL;
  rc = st__keys_read_file(path, ST_PUBKEY_PEM_MAX, &b, err);
  if (!rc && (rc = st_pubkey_from_pem(out, b.data, b.len, err)))
    st_error_wrap(err, "%s", path);
  st_buf_release(&b);
  return rc;
}

void st_pubkey_free(st_pubkey_t *k) {
  if (!k)
    return;
  EVP_PKEY_free(k->pkey);
  st_free(k->spki);
  st_free(k->pem);
  st_free(k->keyid);
  st_free(k);
}

st_key_type st_pubkey_type(const st_pubkey_t *k) { return k->type; }

const char *st_pubkey_alg(const st_pubkey_t *k) {
  return k->type == ST_KEY_ED25519 ? "ed25519" : "ecdsa-p256-sha256";
}

const char *st_pubkey_keyid(const st_pubkey_t *k) { return k->keyid; }

const char *st_pubkey_pem(const st_pubkey_t *k) { return k->pem; }

const unsigned char *st_pubkey_spki(const st_pubkey_t *k, size_t *len) {
  *len = k->spki_len;
  return k->spki;
}

int st_pubkey_verify(const st_pubkey_t *k, const void *msg, size_t len, const void *sig,
                     size_t sig_len, st_error_t *err) {
  EVP_MD_CTX *ctx = NULL;
  int rc = 0, ok;

  if (sig_len == 0 || sig_len > ST_SIG_MAX ||
      (k->type == ST_KEY_ED25519 && sig_len != 64)) {
    rc = st_fail(err, ST_EVERIFY, "signature length %zu is wrong for %s", sig_len,
                 st_pubkey_alg(k));
    goto done;
  }
  if (!(ctx = EVP_MD_CTX_new()) ||
      EVP_DigestVerifyInit(ctx, NULL, k->type == ST_KEY_ED25519 ? NULL : EVP_sha256(), NULL,
                           k->pkey) != 1) {
    rc = st_fail(err, ST_ECRYPTO, "%s: cannot set up verification", st_pubkey_alg(k));
    goto done;
  }
  ok = EVP_DigestVerify(ctx, sig, sig_len, msg, len);
  if (ok != 1)
    rc = st_fail(err, ST_EVERIFY, "%s signature does not verify with key %s",
                 st_pubkey_alg(k), k->keyid);
done:
  EVP_MD_CTX_free(ctx);
  return rc;
}
