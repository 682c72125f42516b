/* keys_signer.c: the provider-independent signer: wraps a provider's ops and key handle
 * with the public key derived from its SPKI, and checks every signature it hands out. */
#include "stella/keys.h"

#include <string.h>

#include "stella/mem.h"

struct st_signer_s {
  const st_signer_ops_t *ops;
  void *impl;
  st_pubkey_t *pub;
};

int st_signer_new(st_signer_t **out, const st_signer_ops_t *ops, void *impl,
                  const void *spki_der, size_t spki_len, st_error_t *err) {
  st_signer_t *s = NULL;
  int rc = 0;

  *out = NULL;
  if (!(s = st_calloc(1, sizeof(*s)))) {
    ops->free(impl);
    return st_fail(err, ST_ENOMEM, "signer: out of memory");
  }
  s->ops = ops;
  s->impl = impl;
  if ((rc = st_pubkey_from_spki(&s->pub, spki_der, spki_len, err))) {
    st_error_wrap(err, "%s signer", ops->provider);
    st_signer_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int st_signer_open(st_signer_t **out, const char *ref, st_error_t *err) {
  if (strncmp(ref, "pkcs11:", 7) == 0)
    return st_signer_pkcs11_open(out, ref, err);
  return st_signer_file_open(out, ref, err);
}

int st_signer_sign(st_signer_t *s, const void *msg, size_t len, st_buf_t *sig,
                   st_error_t *err) {
  size_t start = sig->len;
  int rc = s->ops->sign(s->impl, msg, len, sig, err);

  if (!rc && (rc = st_pubkey_verify(s->pub, msg, len, sig->data + start, sig->len - start,
                                    err)))
    st_error_wrap(err, "%s signer produced a signature its public key rejects",
                  s->ops->provider);
  if (rc) {
    sig->len = start;
    sig->data[start] = '\0';
  }
  return rc;
}

const st_pubkey_t *st_signer_pubkey(const st_signer_t *s) { return s->pub; }

const char *st_signer_provider(const st_signer_t *s) { return s->ops->provider; }

void st_signer_free(st_signer_t *s) {
  if (!s)
    return;
  s->ops->free(s->impl);
  st_pubkey_free(s->pub);
  st_free(s);
}
