/* tsa_client.c: the RFC 3161 client: build a TimeStampReq, POST it with libcurl, and check
 * that the answer is a granted response to exactly that request (see stella/tsa.h).
 *
 * The request/response match (version, imprint algorithm and value, nonce, policy) is
 * OpenSSL's TS_RESP_verify_response with the flags TS_REQ_to_TS_VERIFY_CTX derives from our
 * own request, which leave out the signature: trust is st_tsa_verify's job.
 * libcurl: one easy handle per call, no redirects, http/https only, the body capped while
 * it streams in (and up front when the server sends Content-Length). */
#include "tsa_internal.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "stella/mem.h"

#define TSA_REQ_MAX 4096 /* our requests are ~80 bytes; a bigger one is not ours */
#define TSA_TIMEOUT_MS 30000L
#define TSA_CONNECT_TIMEOUT_MS 10000L

int st_tsa_request_new(const void *data, size_t data_len, const char *policy_oid,
                       st_buf_t *req_der, st_error_t *err) {
  unsigned char nonce_bytes[8];
  TS_REQ *req = NULL;
  BIGNUM *bn = NULL;
  ASN1_INTEGER *nonce = NULL;
  ASN1_OBJECT *policy = NULL;
  unsigned char *der = NULL;
  int n, rc;

  if ((rc = st__tsa_req_for_data(data, data_len, &req, err)))
    goto done;
  if (policy_oid && !(policy = OBJ_txt2obj(policy_oid, 1))) {
    rc = st_fail(err, ST_EINVAL, "timestamp request: policy '%.100s' is not a dotted OID",
                 policy_oid);
    goto done;
  }
  /* A positive 64-bit nonce: the top bit cleared keeps the DER at 8 bytes or fewer. */
  if (RAND_bytes(nonce_bytes, sizeof(nonce_bytes)) != 1) {
    rc = st_fail(err, ST_ECRYPTO, "timestamp request: no random bytes for the nonce");
    goto done;
  }
  nonce_bytes[0] &= 0x7f;
  if (!(bn = BN_bin2bn(nonce_bytes, sizeof(nonce_bytes), NULL)) ||
      !(nonce = BN_to_ASN1_INTEGER(bn, NULL)) || !TS_REQ_set_nonce(req, nonce) ||
      !TS_REQ_set_cert_req(req, 1) || (policy && !TS_REQ_set_policy_id(req, policy))) {
    rc = st_fail(err, ST_ECRYPTO, "timestamp request: cannot set nonce/certReq/policy");
    goto done;
  }
  if ((n = i2d_TS_REQ(req, &der)) <= 0) {
    rc = st_fail(err, ST_ECRYPTO, "timestamp request: cannot encode DER");
    goto done;
  }
  if ((rc = st_buf_add(req_der, der, (size_t)n)))
    rc = st_fail(err, rc, "timestamp request: %d bytes do not fit the buffer", n);
done:
  OPENSSL_free(der);
  ASN1_OBJECT_free(policy);
  ASN1_INTEGER_free(nonce);
  BN_free(bn);
  TS_REQ_free(req);
  ERR_clear_error();
  return rc;
}

int st_tsa_response_check(const void *req_der, size_t req_len, const void *resp_der,
                          size_t resp_len, st_tsa_info_t *info, st_error_t *err) {
  const unsigned char *p = req_der;
  TS_REQ *req = NULL;
  TS_RESP *resp = NULL;
  TS_VERIFY_CTX *ctx = NULL;
  int rc;

  if (!req_der || req_len == 0 || req_len > TSA_REQ_MAX ||
      !(req = d2i_TS_REQ(NULL, &p, (long)req_len)) ||
      p != (const unsigned char *)req_der + req_len) {
    rc = st_fail(err, ST_EINVAL, "timestamp check: the request is not a DER TimeStampReq");
    goto done;
  }
  if ((rc = st__tsa_resp_parse(resp_der, resp_len, &resp, info, err)))
    goto done;
  if (!(ctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL))) {
    rc = st_fail(err, ST_ENOMEM, "timestamp check: no verify context");
    goto done;
  }
  /* Without a signature check there is no signer, and TS_VFY_SIGNER would compare the TSA
   * name against a NULL certificate: keep only the request-matching checks. */
  TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_IMPRINT |
                                   (TS_REQ_get_nonce(req) ? TS_VFY_NONCE : 0) |
                                   (TS_REQ_get_policy_id(req) ? TS_VFY_POLICY : 0));
  if (TS_RESP_verify_response(ctx, resp) != 1)
    rc = st__tsa_verify_failed("timestamp response does not answer the request", info, err);
done:
  TS_VERIFY_CTX_free(ctx);
  TS_RESP_free(resp);
  TS_REQ_free(req);
  ERR_clear_error();
  return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
  st_buf_t *b = userdata;
  size_t n = size * nmemb;
  /* A short count makes libcurl stop with CURLE_WRITE_ERROR; the cap is checked below. */
  return st_buf_add(b, ptr, n) ? 0 : n;
}

static int content_type_ok(const char *ct) {
  static const char *const ok[] = {"application/timestamp-reply",
                                   "application/timestamp-response"};
  for (size_t i = 0; ct && i < sizeof(ok) / sizeof(ok[0]); i++) {
    size_t n = strlen(ok[i]);
    if (strncasecmp(ct, ok[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
      return 1;
  }
  return 0;
}

/* POST req to url; the body lands in body (capped by body->max). */
static int http_post(const st_tsa_opts_t *opts, const st_buf_t *req, st_buf_t *body,
                     st_error_t *err) {
  CURL *h = NULL;
  struct curl_slist *hdrs = NULL, *tmp;
  char cerr[CURL_ERROR_SIZE] = "";
  long code = 0;
  char *ct = NULL;
  CURLcode cc;
  int rc = 0;

  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK || !(h = curl_easy_init())) {
    rc = st_fail(err, ST_ENOMEM, "timestamp: cannot start libcurl");
    goto done;
  }
  if (!(tmp = curl_slist_append(hdrs, "Content-Type: application/timestamp-query")) ||
      !(hdrs = tmp) ||
      !(tmp = curl_slist_append(hdrs, "Accept: application/timestamp-reply")) ||
      !(hdrs = tmp)) {
    rc = st_fail(err, ST_ENOMEM, "timestamp: no memory for headers");
    goto done;
  }
  if (curl_easy_setopt(h, CURLOPT_URL, opts->url) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_POST, 1L) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->data) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                       opts->timeout_ms > 0 ? opts->timeout_ms : TSA_TIMEOUT_MS) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                       opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
                                                    : TSA_CONNECT_TIMEOUT_MS) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)body->max) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_WRITEDATA, body) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr) != CURLE_OK ||
      (opts->ca_file && curl_easy_setopt(h, CURLOPT_CAINFO, opts->ca_file) != CURLE_OK)) {
    rc = st_fail(err, ST_EINVAL, "timestamp: libcurl refused an option for '%.200s'",
                 opts->url);
    goto done;
  }
  cc = curl_easy_perform(h);
  if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED) {
    rc = st_fail(err, ST_ETOOBIG, "timestamp: response from %.200s exceeds %zu bytes",
                 opts->url, body->max);
    goto done;
  }
  if (cc != CURLE_OK) {
    rc = st_fail(err, cc == CURLE_OPERATION_TIMEDOUT ? ST_ETIMEDOUT : ST_ENET,
                 "timestamp: POST %.200s: %s", opts->url,
                 cerr[0] ? cerr : curl_easy_strerror(cc));
    goto done;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
  if (code != 200) {
    rc = st_fail(err, code >= 500 ? ST_ENET : ST_EVERIFY,
                 "timestamp: POST %.200s: HTTP status %ld", opts->url, code);
    goto done;
  }
  if (!content_type_ok(ct))
    rc = st_fail(err, ST_EPARSE,
                 "timestamp: POST %.200s: Content-Type '%.100s', want "
                 "application/timestamp-reply",
                 opts->url, ct ? ct : "(none)");
done:
  curl_slist_free_all(hdrs);
  if (h)
    curl_easy_cleanup(h);
  return rc;
}

int st_tsa_stamp(const st_tsa_opts_t *opts, const void *data, size_t data_len,
                 st_buf_t *resp_der, st_tsa_info_t *info, st_error_t *err) {
  st_buf_t req, body;
  size_t max;
  int rc;

  st_buf_init(&req, TSA_REQ_MAX);
  max = opts && opts->max_response && opts->max_response < ST_TSA_MAX_RESPONSE
            ? opts->max_response
            : ST_TSA_MAX_RESPONSE;
  st_buf_init(&body, max);
  if (!opts || !opts->url ||
      (strncmp(opts->url, "http://", 7) != 0 && strncmp(opts->url, "https://", 8) != 0)) {
    rc = st_fail(err, ST_EINVAL, "timestamp: TSA url must start with http:// or https://");
    goto done;
  }
  if ((rc = st_tsa_request_new(data, data_len, opts->policy_oid, &req, err)))
    goto done;
  if ((rc = http_post(opts, &req, &body, err)))
    goto done;
  if ((rc = st_tsa_response_check(req.data, req.len, body.data, body.len, info, err))) {
    st_error_wrap(err, "TSA %.200s", opts->url);
    goto done;
  }
  if ((rc = st_buf_add(resp_der, body.data, body.len)))
    rc = st_fail(err, rc, "timestamp: response of %zu bytes does not fit the output buffer",
                 body.len);
done:
  st_buf_release(&body);
  st_buf_release(&req);
  return rc;
}
