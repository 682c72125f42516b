/* tsa_verify.c: offline verification of an RFC 3161 TimeStampResp against data and a
 * trusted CA, and extraction of the certificates a token carries (see stella/tsa.h).
 *
 * Verification is OpenSSL's TS_RESP_verify_response with VERSION | IMPRINT | SIGNATURE |
 * SIGNER: the expected imprint comes from a TimeStampReq we build over the data with SHA-256,
 * so a token made with another hash algorithm is an imprint mismatch (sigstore refuses SHA-1
 * too). The signature step checks the CMS signature, the ESS signing-certificate binding, and
 * the signer chain with the timestamp-signing purpose at the current time. (OpenSSL also
 * turns SIGNATURE on by itself when SIGNER is set and the token names its TSA.)
 *
 * Ownership trap (OpenSSL 3.0-3.3): TS_VERIFY_CTX_free frees the store and the untrusted
 * stack it was given with TS_VERIFY_CTX_set_store/set_certs, although the names say "set",
 * not "set0". We hand both over and forget them; 3.4+ spells this set0_*. */
#include "tsa_internal.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "stella/mem.h"

#define TSA_PEM_MAX ((size_t)1024 * 1024) /* far above ST_TSA_MAX_CERTS certificates */

#if OPENSSL_VERSION_NUMBER >= 0x30400000L
#define TSA_CTX_GIVE_STORE TS_VERIFY_CTX_set0_store
#define TSA_CTX_GIVE_CERTS TS_VERIFY_CTX_set0_certs
#else
#define TSA_CTX_GIVE_STORE TS_VERIFY_CTX_set_store
#define TSA_CTX_GIVE_CERTS TS_VERIFY_CTX_set_certs
#endif

/* Every certificate of a PEM blob (other PEM blocks are an error), at most ST_TSA_MAX_CERTS. */
static int load_pem_certs(const void *pem, size_t len, const char *what, STACK_OF(X509) **out,
                          st_error_t *err) {
  STACK_OF(X509) *certs = NULL;
  BIO *bio = NULL;
  X509 *x = NULL;
  unsigned long e;
  int rc = 0;

  *out = NULL;
  if (len > TSA_PEM_MAX) {
    rc = st_fail(err, ST_ETOOBIG, "%s: %zu bytes of PEM, limit %zu", what, len, TSA_PEM_MAX);
    goto done;
  }
  if (!(certs = sk_X509_new_null()) || !(bio = BIO_new_mem_buf(pem, (int)len))) {
    rc = st_fail(err, ST_ENOMEM, "%s: no memory", what);
    goto done;
  }
  ERR_clear_error();
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (sk_X509_num(certs) >= ST_TSA_MAX_CERTS) {
      rc = st_fail(err, ST_ETOOBIG, "%s: more than %d certificates", what, ST_TSA_MAX_CERTS);
      goto done;
    }
    if (!sk_X509_push(certs, x)) {
      rc = st_fail(err, ST_ENOMEM, "%s: no memory", what);
      goto done;
    }
    x = NULL;
  }
  /* The loop ends at end of input (PEM_R_NO_START_LINE) or at a broken block. */
  e = ERR_peek_last_error();
  if (sk_X509_num(certs) == 0 ||
      !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
    rc = st_fail(err, ST_EPARSE, "%s: %s after %d certificate(s)", what,
                 sk_X509_num(certs) ? "unreadable PEM" : "no PEM certificate",
                 sk_X509_num(certs));
    goto done;
  }
  *out = certs;
  certs = NULL;
done:
  X509_free(x);
  sk_X509_pop_free(certs, X509_free);
  BIO_free(bio);
  ERR_clear_error();
  return rc;
}

int st_tsa_verify(const void *resp_der, size_t resp_len, const void *data, size_t data_len,
                  const void *ca_pem, size_t ca_pem_len, const void *chain_pem,
                  size_t chain_pem_len, st_tsa_info_t *info, st_error_t *err) {
  TS_RESP *resp = NULL;
  TS_REQ *req = NULL;
  TS_VERIFY_CTX *ctx = NULL;
  X509_STORE *store = NULL;
  STACK_OF(X509) *cas = NULL, *chain = NULL;
  int rc;

  if ((rc = st__tsa_resp_parse(resp_der, resp_len, &resp, info, err)))
    goto done;
  if (!ca_pem || !ca_pem_len) {
    rc = st_fail(err, ST_EINVAL, "timestamp verify: no trusted TSA CA given");
    goto done;
  }
  if ((rc = load_pem_certs(ca_pem, ca_pem_len, "TSA CA", &cas, err)))
    goto done;
  if (chain_pem && chain_pem_len &&
      (rc = load_pem_certs(chain_pem, chain_pem_len, "TSA chain", &chain, err)))
    goto done;
  if (!(store = X509_STORE_new())) {
    rc = st_fail(err, ST_ENOMEM, "timestamp verify: no memory for the store");
    goto done;
  }
  for (int i = 0; i < sk_X509_num(cas); i++)
    if (!X509_STORE_add_cert(store, sk_X509_value(cas, i))) {
      rc = st_fail(err, ST_ECRYPTO, "TSA CA: cannot add certificate %d to the store", i);
      goto done;
    }
  if ((rc = st__tsa_req_for_data(data, data_len, &req, err)))
    goto done;
  if (!(ctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL))) {
    rc = st_fail(err, ST_ENOMEM, "timestamp verify: no verify context");
    goto done;
  }
  TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_IMPRINT | TS_VFY_SIGNATURE |
                                   TS_VFY_SIGNER);
  TSA_CTX_GIVE_STORE(ctx, store);
  store = NULL;
  if (chain) {
    TSA_CTX_GIVE_CERTS(ctx, chain);
    chain = NULL;
  }
  ERR_clear_error();
  if (TS_RESP_verify_response(ctx, resp) != 1)
    rc = st__tsa_verify_failed("timestamp verify", info, err);
done:
  TS_VERIFY_CTX_free(ctx);
  X509_STORE_free(store);
  sk_X509_pop_free(chain, X509_free);
  sk_X509_pop_free(cas, X509_free);
  TS_REQ_free(req);
  TS_RESP_free(resp);
  ERR_clear_error();
  return rc;
}

/* Move the certificate of `from` issued-to `name` (subject match) to the end of `to`. */
static int move_subject(STACK_OF(X509) *from, STACK_OF(X509) *to, const X509_NAME *name) {
  for (int i = 0; i < sk_X509_num(from); i++)
    if (X509_NAME_cmp(X509_get_subject_name(sk_X509_value(from, i)), name) == 0)
      return sk_X509_push(to, sk_X509_delete(from, i)) > 0;
  return 0;
}

int st_tsa_certs_pem(const void *resp_der, size_t resp_len, st_buf_t *pem_out, size_t *count,
                     st_error_t *err) {
  TS_RESP *resp = NULL;
  STACK_OF(X509) *rest = NULL, *ordered = NULL, *signers = NULL;
  BIO *bio = NULL;
  PKCS7 *token;
  char *p = NULL;
  long n;
  int rc;

  if (count)
    *count = 0;
  if ((rc = st__tsa_resp_parse(resp_der, resp_len, &resp, NULL, err)))
    goto done;
  token = TS_RESP_get_token(resp);
  if (!(rest = sk_X509_new_null()) || !(ordered = sk_X509_new_null()) ||
      !(bio = BIO_new(BIO_s_mem()))) {
    rc = st_fail(err, ST_ENOMEM, "timestamp certificates: no memory");
    goto done;
  }
  for (int i = 0; i < sk_X509_num(token->d.sign->cert); i++)
    if (!sk_X509_push(rest, sk_X509_value(token->d.sign->cert, i))) {
      rc = st_fail(err, ST_ENOMEM, "timestamp certificates: no memory");
      goto done;
    }
  /* Signer first, then each issuer the token carries (up to a self-issued one), then the
   * rest. Pointers are borrowed from the token; the stacks own nothing. */
  signers = PKCS7_get0_signers(token, NULL, 0);
  if (sk_X509_num(signers) == 1 &&
      move_subject(rest, ordered, X509_get_subject_name(sk_X509_value(signers, 0)))) {
    X509 *last = sk_X509_value(ordered, 0);
    while (X509_NAME_cmp(X509_get_subject_name(last), X509_get_issuer_name(last)) != 0 &&
           move_subject(rest, ordered, X509_get_issuer_name(last)))
      last = sk_X509_value(ordered, sk_X509_num(ordered) - 1);
  }
  while (sk_X509_num(rest))
    if (!sk_X509_push(ordered, sk_X509_shift(rest))) {
      rc = st_fail(err, ST_ENOMEM, "timestamp certificates: no memory");
      goto done;
    }
  for (int i = 0; i < sk_X509_num(ordered); i++)
    if (!PEM_write_bio_X509(bio, sk_X509_value(ordered, i))) {
      rc = st_fail(err, ST_ECRYPTO, "timestamp certificates: cannot write PEM");
      goto done;
    }
  n = BIO_get_mem_data(bio, &p);
  if (n > 0 && (rc = st_buf_add(pem_out, p, (size_t)n))) {
    rc = st_fail(err, rc, "timestamp certificates: %ld bytes of PEM do not fit", n);
    goto done;
  }
  if (count)
    *count = (size_t)sk_X509_num(ordered);
done:
  sk_X509_free(signers);
  sk_X509_free(ordered);
  sk_X509_free(rest);
  BIO_free(bio);
  TS_RESP_free(resp);
  ERR_clear_error();
  return rc;
}
