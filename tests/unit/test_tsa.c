/* test_tsa.c: RFC 3161 client checks, verifier and certificate extraction against a TSA
 * built in-process (OpenSSL TS_RESP_CTX) with certificates made here: a CA, a timestamping
 * leaf (critical EKU timeStamping alone), a foreign CA, an expired leaf. */
#include "st_test.h"

#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include "stella/buf.h"
#include "stella/tsa.h"

typedef struct pki_s {
  EVP_PKEY *ca_key, *key;
  X509 *ca, *leaf;
  st_buf_t ca_pem, leaf_pem;
} pki_t;

static pki_t good, foreign, expired;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX v3;
  X509_EXTENSION *ext;
  X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  assert_non_null(ext);
  assert_true(X509_add_ext(x, ext, -1));
  X509_EXTENSION_free(ext);
}

/* A certificate for `cn` with key `key`, signed by issuer/issuer_key (NULL: self-signed CA),
 * valid from now+from to now+to seconds. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long from, long to) {
  static long serial = 1;
  X509 *x = X509_new();
  X509_NAME *name = X509_NAME_new();

  assert_non_null(x);
  assert_true(X509_set_version(x, 2));
  assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++));
  assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from));
  assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to));
  assert_true(X509_set_pubkey(x, key));
  assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
                                         -1, -1, 0));
  assert_true(X509_set_subject_name(x, name));
  assert_true(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name));
  X509_NAME_free(name);
  if (!issuer) {
    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
    add_ext(x, issuer, NID_ext_key_usage, "critical,timeStamping");
  }
  assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return x;
}

static void to_pem(X509 *x, st_buf_t *out) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long n;
  assert_true(PEM_write_bio_X509(b, x));
  n = BIO_get_mem_data(b, &p);
  assert_int_equal(st_buf_add(out, p, (size_t)n), 0);
  BIO_free(b);
}

static void pki_make(pki_t *p, const char *label, long leaf_from, long leaf_to) {
  char cn[64];
  memset(p, 0, sizeof(*p));
  st_buf_init(&p->ca_pem, 0);
  st_buf_init(&p->leaf_pem, 0);
  p->ca_key = EVP_EC_gen("P-256");
  p->key = EVP_EC_gen("P-256");
  assert_non_null(p->ca_key);
  assert_non_null(p->key);
  snprintf(cn, sizeof(cn), "%s Root", label);
  p->ca = make_cert(cn, p->ca_key, NULL, NULL, -3600, 86400);
  snprintf(cn, sizeof(cn), "%s TSA", label);
  p->leaf = make_cert(cn, p->key, p->ca, p->ca_key, leaf_from, leaf_to);
  to_pem(p->ca, &p->ca_pem);
  to_pem(p->leaf, &p->leaf_pem);
}

static void pki_free(pki_t *p) {
  X509_free(p->leaf);
  X509_free(p->ca);
  EVP_PKEY_free(p->key);
  EVP_PKEY_free(p->ca_key);
  st_buf_release(&p->ca_pem);
  st_buf_release(&p->leaf_pem);
}

static ASN1_INTEGER *serial_cb(TS_RESP_CTX *ctx, void *data) {
  static uint64_t n = 1000;
  ASN1_INTEGER *s = ASN1_INTEGER_new();
  ASN1_INTEGER_set_uint64(s, ++n);
  return s;
}

/* The TSA's answer to req; with_md = 0 makes a TSA accepting no digest (a rejection). */
static void tsa_answer(const pki_t *p, const st_buf_t *req, int with_md, st_buf_t *out) {
  TS_RESP_CTX *ctx = TS_RESP_CTX_new();
  ASN1_OBJECT *pol = OBJ_txt2obj("1.2.3.4.1", 1);
  STACK_OF(X509) *chain = sk_X509_new_null();
  BIO *in = BIO_new_mem_buf(req->data, (int)req->len);
  TS_RESP *resp;
  unsigned char *der = NULL;
  int n;

  assert_true(sk_X509_push(chain, p->ca));
  assert_true(TS_RESP_CTX_set_signer_cert(ctx, p->leaf));
  assert_true(TS_RESP_CTX_set_signer_key(ctx, p->key));
  assert_true(TS_RESP_CTX_set_certs(ctx, chain));
  assert_true(TS_RESP_CTX_set_def_policy(ctx, pol));
  assert_true(TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256()));
  if (with_md)
    assert_true(TS_RESP_CTX_add_md(ctx, EVP_sha256()));
  TS_RESP_CTX_add_flags(ctx, TS_TSA_NAME);
  TS_RESP_CTX_set_serial_cb(ctx, serial_cb, NULL);
  resp = TS_RESP_create_response(ctx, in);
  assert_non_null(resp);
  n = i2d_TS_RESP(resp, &der);
  assert_true(n > 0);
  assert_int_equal(st_buf_add(out, der, (size_t)n), 0);
  OPENSSL_free(der);
  TS_RESP_free(resp);
  BIO_free(in);
  sk_X509_free(chain);
  ASN1_OBJECT_free(pol);
  TS_RESP_CTX_free(ctx);
}

static const char DATA[] = "raw DSSE signature bytes";
static const char OTHER[] = "raw DSSE signature byteS";

/* A granted response from `p` over DATA, and the request it answers. */
static void stamp(const pki_t *p, st_buf_t *req, st_buf_t *resp) {
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_tsa_request_new(DATA, strlen(DATA), NULL, req, &err), 0);
  tsa_answer(p, req, 1, resp);
}

static int verify(const st_buf_t *resp, const char *data, const pki_t *trust,
                  st_tsa_info_t *info, st_error_t *err) {
  return st_tsa_verify(resp->data, resp->len, data, strlen(data), trust->ca_pem.data,
                       trust->ca_pem.len, NULL, 0, info, err);
}

static void good_token_verifies(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT;
  st_tsa_info_t info;
  st_error_t err = ST_ERROR_INIT;
  const unsigned char *p;
  TS_REQ *r;
  char nonce[64];

  st_tsa_info_init(&info);
  stamp(&good, &req, &resp);
  assert_int_equal(st_tsa_response_check(req.data, req.len, resp.data, resp.len, &info, &err),
                   0);
  /* The request is what the header promises: v1, SHA-256, nonce, certReq. */
  p = (const unsigned char *)req.data;
  r = d2i_TS_REQ(NULL, &p, (long)req.len);
  assert_non_null(r);
  assert_int_equal(TS_REQ_get_version(r), 1);
  assert_int_equal(OBJ_obj2nid(TS_MSG_IMPRINT_get_algo(TS_REQ_get_msg_imprint(r))->algorithm),
                   NID_sha256);
  assert_true(TS_REQ_get_cert_req(r));
  assert_non_null(TS_REQ_get_nonce(r));
  TS_REQ_free(r);
  snprintf(nonce, sizeof(nonce), "%s", info.nonce_hex.data);
  assert_true(strlen(nonce) >= 2);

  assert_int_equal(verify(&resp, DATA, &good, &info, &err), 0);
  assert_int_equal(info.reason, ST_TSA_OK);
  assert_int_equal(info.status, 0);
  assert_string_equal(info.policy_oid.data, "1.2.3.4.1");
  assert_string_equal(info.nonce_hex.data, nonce);
  assert_string_equal(info.serial_hex.data + strlen(info.serial_hex.data) - 2, "e9"); /* > 1000 */
  assert_non_null(strstr(info.tsa_name.data, "CN=Good TSA"));
  assert_true(llabs((long long)(info.gen_time - (int64_t)time(NULL))) < 86400);
  assert_int_equal(info.gen_time_text.len, 20);
  assert_int_equal(info.gen_time_text.data[19], 'Z');
  st_tsa_info_release(&info);
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void expect_fail(const st_buf_t *resp, const char *data, const pki_t *trust, int code,
                        st_tsa_reason reason, const char *needle) {
  st_tsa_info_t info;
  st_error_t err = ST_ERROR_INIT;
  st_tsa_info_init(&info);
  assert_int_equal(verify(resp, data, trust, &info, &err), code);
  assert_int_equal(info.reason, reason);
  if (needle && !strstr(err.msg, needle))
    fail_msg("'%s' not in '%s'", needle, err.msg);
  st_tsa_info_release(&info);
}

static void imprint_over_other_data_fails(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT;
  stamp(&good, &req, &resp);
  expect_fail(&resp, OTHER, &good, ST_EVERIFY, ST_TSA_IMPRINT_MISMATCH, "imprint mismatch");
  expect_fail(&resp, "", &good, ST_EVERIFY, ST_TSA_IMPRINT_MISMATCH, NULL);
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void foreign_ca_fails(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT;
  stamp(&foreign, &req, &resp);
  expect_fail(&resp, DATA, &good, ST_EVERIFY, ST_TSA_UNTRUSTED_SIGNER, "untrusted signer");
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void expired_tsa_cert_fails(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT;
  stamp(&expired, &req, &resp);
  expect_fail(&resp, DATA, &expired, ST_EVERIFY, ST_TSA_UNTRUSTED_SIGNER, "expired");
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void garbage_der_fails(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT, junk = ST_BUF_INIT;
  stamp(&good, &req, &resp);
  assert_int_equal(st_buf_adds(&junk, "\x30\x03\x02\x01\x00 this is not DER"), 0);
  expect_fail(&junk, DATA, &good, ST_EPARSE, ST_TSA_MALFORMED, "not a DER TimeStampResp");
  st_buf_reset(&junk);
  expect_fail(&junk, DATA, &good, ST_EPARSE, ST_TSA_MALFORMED, "empty");
  /* A good response with a byte after it is not one DER object. */
  assert_int_equal(st_buf_add(&junk, resp.data, resp.len), 0);
  assert_int_equal(st_buf_addc(&junk, 0), 0);
  expect_fail(&junk, DATA, &good, ST_EPARSE, ST_TSA_MALFORMED, "trailing");
  st_buf_release(&junk);
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void rejection_status_fails(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT;
  st_tsa_info_t info;
  st_error_t err = ST_ERROR_INIT;

  st_tsa_info_init(&info);
  assert_int_equal(st_tsa_request_new(DATA, strlen(DATA), NULL, &req, &err), 0);
  tsa_answer(&good, &req, 0, &resp);
  expect_fail(&resp, DATA, &good, ST_EVERIFY, ST_TSA_NOT_GRANTED, "rejection");
  assert_int_equal(
      st_tsa_response_check(req.data, req.len, resp.data, resp.len, &info, &err), ST_EVERIFY);
  assert_int_equal(info.reason, ST_TSA_NOT_GRANTED);
  assert_int_equal(info.status, 2);
  /* OpenSSL's status text and failure bit come back to the caller. */
  if (!strstr(err.msg, "rejection: Message digest algorithm is not supported.") ||
      !strstr(err.msg, "[badAlg]"))
    fail_msg("status text missing: %s", err.msg);
  st_tsa_info_release(&info);
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void truncated_response_fails(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT, cut = ST_BUF_INIT;
  stamp(&good, &req, &resp);
  for (size_t n = 1; n < resp.len; n += resp.len / 7 + 1) {
    st_buf_reset(&cut);
    assert_int_equal(st_buf_add(&cut, resp.data, n), 0);
    expect_fail(&cut, DATA, &good, ST_EPARSE, ST_TSA_MALFORMED, NULL);
  }
  st_buf_reset(&cut);
  assert_int_equal(st_buf_add(&cut, resp.data, resp.len - 1), 0);
  expect_fail(&cut, DATA, &good, ST_EPARSE, ST_TSA_MALFORMED, NULL);
  st_buf_release(&cut);
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void tampered_signature_fails(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT;
  stamp(&good, &req, &resp);
  /* The DER ends with the ECDSA signature's last integer byte. */
  resp.data[resp.len - 1] ^= 0x01;
  expect_fail(&resp, DATA, &good, ST_EVERIFY, ST_TSA_BAD_SIGNATURE, "bad signature");
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void nonce_mismatch_fails_client(void **state) {
  st_buf_t req = ST_BUF_INIT, req2 = ST_BUF_INIT, resp = ST_BUF_INIT;
  st_tsa_info_t info;
  st_error_t err = ST_ERROR_INIT;

  st_tsa_info_init(&info);
  stamp(&good, &req, &resp);
  assert_int_equal(st_tsa_request_new(DATA, strlen(DATA), NULL, &req2, &err), 0);
  assert_int_equal(
      st_tsa_response_check(req2.data, req2.len, resp.data, resp.len, &info, &err),
      ST_EVERIFY);
  assert_int_equal(info.reason, ST_TSA_NONCE_MISMATCH);
  st_buf_reset(&req2);
  assert_int_equal(st_tsa_request_new(OTHER, strlen(OTHER), NULL, &req2, &err), 0);
  assert_int_equal(
      st_tsa_response_check(req2.data, req2.len, resp.data, resp.len, &info, &err),
      ST_EVERIFY);
  assert_int_equal(info.reason, ST_TSA_IMPRINT_MISMATCH);
  assert_int_equal(st_tsa_response_check("x", 1, resp.data, resp.len, &info, &err), ST_EINVAL);
  assert_int_equal(st_tsa_request_new(DATA, 1, "not.an oid", &req2, &err), ST_EINVAL);
  st_tsa_info_release(&info);
  st_buf_release(&resp);
  st_buf_release(&req2);
  st_buf_release(&req);
}

/* certReq false: no certificate in the token, so the signer must come from chain_pem. */
static void chain_pem_supplies_signer(void **state) {
  st_buf_t req = ST_BUF_INIT, req0 = ST_BUF_INIT, resp = ST_BUF_INIT, pem = ST_BUF_INIT;
  st_tsa_info_t info;
  st_error_t err = ST_ERROR_INIT;
  const unsigned char *p;
  unsigned char *der = NULL;
  size_t count = 99;
  TS_REQ *r;
  int n;

  st_tsa_info_init(&info);
  assert_int_equal(st_tsa_request_new(DATA, strlen(DATA), NULL, &req, &err), 0);
  p = (const unsigned char *)req.data;
  r = d2i_TS_REQ(NULL, &p, (long)req.len);
  assert_true(TS_REQ_set_cert_req(r, 0));
  n = i2d_TS_REQ(r, &der);
  assert_int_equal(st_buf_add(&req0, der, (size_t)n), 0);
  OPENSSL_free(der);
  TS_REQ_free(r);
  tsa_answer(&good, &req0, 1, &resp);
  assert_int_equal(st_tsa_certs_pem(resp.data, resp.len, &pem, &count, &err), 0);
  assert_int_equal(count, 0);
  expect_fail(&resp, DATA, &good, ST_EVERIFY, ST_TSA_UNTRUSTED_SIGNER, NULL);
  assert_int_equal(st_tsa_verify(resp.data, resp.len, DATA, strlen(DATA), good.ca_pem.data,
                                 good.ca_pem.len, good.leaf_pem.data, good.leaf_pem.len,
                                 &info, &err),
                   0);
  st_tsa_info_release(&info);
  st_buf_release(&pem);
  st_buf_release(&resp);
  st_buf_release(&req0);
  st_buf_release(&req);
}

static void certs_extracted_signer_first(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT, pem = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  size_t count = 0;

  stamp(&good, &req, &resp);
  assert_int_equal(st_tsa_certs_pem(resp.data, resp.len, &pem, &count, &err), 0);
  assert_int_equal(count, 2);
  assert_int_equal(pem.len, good.leaf_pem.len + good.ca_pem.len);
  assert_memory_equal(pem.data, good.leaf_pem.data, good.leaf_pem.len);
  assert_memory_equal(pem.data + good.leaf_pem.len, good.ca_pem.data, good.ca_pem.len);
  /* The extracted chain is usable as chain_pem. */
  assert_int_equal(st_tsa_verify(resp.data, resp.len, DATA, strlen(DATA), good.ca_pem.data,
                                 good.ca_pem.len, pem.data, pem.len, NULL, &err),
                   0);
  st_buf_release(&pem);
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void bounds_enforced(void **state) {
  st_buf_t req = ST_BUF_INIT, resp = ST_BUF_INIT, many = ST_BUF_INIT, big = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  st_tsa_info_t info;

  st_tsa_info_init(&info);
  stamp(&good, &req, &resp);
  for (int i = 0; i <= ST_TSA_MAX_CERTS; i++)
    assert_int_equal(st_buf_add(&many, good.ca_pem.data, good.ca_pem.len), 0);
  assert_int_equal(st_tsa_verify(resp.data, resp.len, DATA, strlen(DATA), many.data, many.len,
                                 NULL, 0, &info, &err),
                   ST_ETOOBIG);
  assert_int_equal(st_tsa_verify(resp.data, resp.len, DATA, strlen(DATA), good.ca_pem.data,
                                 good.ca_pem.len, many.data, many.len, &info, &err),
                   ST_ETOOBIG);
  assert_int_equal(st_tsa_verify(resp.data, resp.len, DATA, strlen(DATA), "junk", 4, NULL, 0,
                                 &info, &err),
                   ST_EPARSE);
  assert_int_equal(st_buf_add(&big, resp.data, resp.len), 0);
  while (big.len <= ST_TSA_MAX_RESPONSE)
    assert_int_equal(st_buf_add(&big, resp.data, resp.len), 0);
  expect_fail(&big, DATA, &good, ST_ETOOBIG, ST_TSA_MALFORMED, "limit");
  st_tsa_info_release(&info);
  st_buf_release(&big);
  st_buf_release(&many);
  st_buf_release(&resp);
  st_buf_release(&req);
}

static void client_transport_errors(void **state) {
  st_tsa_opts_t opts = {0};
  st_buf_t resp = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;

  opts.url = "file:///etc/passwd";
  assert_int_equal(st_tsa_stamp(&opts, DATA, strlen(DATA), &resp, NULL, &err), ST_EINVAL);
  /* Port 1 on loopback: nothing listens, the connection is refused at once. */
  opts.url = "http://127.0.0.1:1/";
  assert_int_equal(st_tsa_stamp(&opts, DATA, strlen(DATA), &resp, NULL, &err), ST_ENET);
  assert_int_equal(resp.len, 0);
  st_buf_release(&resp);
}

static int setup(void **state) {
  pki_make(&good, "Good", -3600, 86400);
  pki_make(&foreign, "Foreign", -3600, 86400);
  pki_make(&expired, "Expired", -7200, -3600);
  return 0;
}

static int teardown(void **state) {
  pki_free(&good);
  pki_free(&foreign);
  pki_free(&expired);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(good_token_verifies),
      cmocka_unit_test(imprint_over_other_data_fails),
      cmocka_unit_test(foreign_ca_fails),
      cmocka_unit_test(expired_tsa_cert_fails),
      cmocka_unit_test(garbage_der_fails),
      cmocka_unit_test(rejection_status_fails),
      cmocka_unit_test(truncated_response_fails),
      cmocka_unit_test(tampered_signature_fails),
      cmocka_unit_test(nonce_mismatch_fails_client),
      cmocka_unit_test(chain_pem_supplies_signer),
      cmocka_unit_test(certs_extracted_signer_first),
      cmocka_unit_test(bounds_enforced),
      cmocka_unit_test(client_transport_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
