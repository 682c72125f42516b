/* tsa_resp.c: decoding a TimeStampResp into st_tsa_info_t, the status check, and mapping
 * OpenSSL's TS verification errors to st_tsa_reason. Shared by tsa_client.c and
 * tsa_verify.c.
 *
 * OpenSSL's own status check (inside TS_RESP_verify_response) reports a refusal only as
 * error-queue data; we check the status first so the caller gets the TSA's status text in
 * err->msg with ST_TSA_NOT_GRANTED. */
#include "tsa_internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "stella/mem.h"

#define TSA_TEXT_MAX 256 /* bytes of each status text string quoted back */
#define TSA_TEXT_COUNT 4 /* status text strings quoted back */

static const char *const reason_texts[] = {
    [ST_TSA_OK] = "ok",
    [ST_TSA_MALFORMED] = "malformed response",
    [ST_TSA_NOT_GRANTED] = "not granted",
    [ST_TSA_IMPRINT_MISMATCH] = "imprint mismatch",
    [ST_TSA_NONCE_MISMATCH] = "nonce mismatch",
    [ST_TSA_POLICY_MISMATCH] = "policy mismatch",
    [ST_TSA_UNTRUSTED_SIGNER] = "untrusted signer",
    [ST_TSA_BAD_SIGNATURE] = "bad signature",
    [ST_TSA_BAD_TOKEN] = "bad token",
};

const char *st_tsa_reason_text(st_tsa_reason r) {
  if ((unsigned)r >= sizeof(reason_texts) / sizeof(reason_texts[0]) || !reason_texts[r])
    return "unknown";
  return reason_texts[r];
}

void st_tsa_info_init(st_tsa_info_t *info) {
  info->reason = ST_TSA_OK;
  info->status = -1;
  info->gen_time = 0;
  st_buf_init(&info->gen_time_text, 64);
  st_buf_init(&info->serial_hex, 256);
  st_buf_init(&info->policy_oid, 1024);
  st_buf_init(&info->tsa_name, 4096);
  st_buf_init(&info->nonce_hex, 256);
}

void st_tsa_info_release(st_tsa_info_t *info) {
  st_buf_release(&info->gen_time_text);
  st_buf_release(&info->serial_hex);
  st_buf_release(&info->policy_oid);
  st_buf_release(&info->tsa_name);
  st_buf_release(&info->nonce_hex);
  info->reason = ST_TSA_OK;
  info->status = -1;
  info->gen_time = 0;
}

static void info_reset(st_tsa_info_t *info) {
  info->reason = ST_TSA_OK;
  info->status = -1;
  info->gen_time = 0;
  st_buf_reset(&info->gen_time_text);
  st_buf_reset(&info->serial_hex);
  st_buf_reset(&info->policy_oid);
  st_buf_reset(&info->tsa_name);
  st_buf_reset(&info->nonce_hex);
}

static st_tsa_reason reason_of(int lib, int reason) {
  if (lib == ERR_LIB_PKCS7 && reason == PKCS7_R_SIGNER_CERTIFICATE_NOT_FOUND)
    return ST_TSA_UNTRUSTED_SIGNER;
  if (lib != ERR_LIB_TS)
    return ST_TSA_BAD_TOKEN;
  switch (reason) {
  case TS_R_MESSAGE_IMPRINT_MISMATCH:
  case TS_R_UNSUPPORTED_MD_ALGORITHM:
    return ST_TSA_IMPRINT_MISMATCH;
  case TS_R_NONCE_MISMATCH:
  case TS_R_NONCE_NOT_RETURNED:
    return ST_TSA_NONCE_MISMATCH;
  case TS_R_POLICY_MISMATCH:
    return ST_TSA_POLICY_MISMATCH;
  case TS_R_CERTIFICATE_VERIFY_ERROR:
  case TS_R_TSA_UNTRUSTED:
  case TS_R_INVALID_SIGNER_CERTIFICATE_PURPOSE:
    return ST_TSA_UNTRUSTED_SIGNER;
  case TS_R_SIGNATURE_FAILURE:
  case TS_R_ESS_SIGNING_CERTIFICATE_ERROR:
    return ST_TSA_BAD_SIGNATURE;
  case TS_R_NO_CONTENT:
  case TS_R_BAD_PKCS7_TYPE:
  case TS_R_WRONG_CONTENT_TYPE:
  case TS_R_THERE_MUST_BE_ONE_SIGNER:
  case TS_R_DETACHED_CONTENT:
  case TS_R_TOKEN_NOT_PRESENT:
  case TS_R_PKCS7_TO_TS_TST_INFO_FAILED:
    return ST_TSA_MALFORMED;
  default:
    return ST_TSA_BAD_TOKEN;
  }
}

int st__tsa_verify_failed(const char *what, st_tsa_info_t *info, st_error_t *err) {
  unsigned long e, first = 0;
  const char *data = NULL, *rs;
  int flags = 0;
  st_tsa_reason reason;
  st_buf_t detail;

  /* The first TS-library error names the failed check; others are context. The data
   * string belongs to the queue, so it is copied while its entry is current. */
  st_buf_init(&detail, 256);
  while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
    if (first && (ERR_GET_LIB(first) == ERR_LIB_TS || ERR_GET_LIB(e) != ERR_LIB_TS))
      continue;
    first = e;
    st_buf_reset(&detail);
    if ((flags & ERR_TXT_STRING) && data && data[0] &&
        (st_buf_adds(&detail, ": ") || st_buf_add(&detail, data, strnlen(data, 200))))
      st_buf_reset(&detail);
  }
  reason = first ? reason_of(ERR_GET_LIB(first), ERR_GET_REASON(first)) : ST_TSA_BAD_TOKEN;
  rs = first ? ERR_reason_error_string(first) : NULL;
  st__tsa_fail(info, reason, err, ST_EVERIFY, "%s: %s (%s%s)", what,
               st_tsa_reason_text(reason), rs ? rs : "no detail", detail.data);
  st_buf_release(&detail);
  ERR_clear_error();
  return ST_EVERIFY;
}

static const char *status_name(long s) {
  static const char *const names[] = {"granted", "grantedWithMods", "rejection",
                                      "waiting", "revocationWarning",
                                      "revocationNotification"};
  return s >= 0 && s < 6 ? names[s] : "unknown status";
}

static const char *const failure_names[] = {
    [TS_INFO_BAD_ALG] = "badAlg",
    [TS_INFO_BAD_REQUEST] = "badRequest",
    [TS_INFO_BAD_DATA_FORMAT] = "badDataFormat",
    [TS_INFO_TIME_NOT_AVAILABLE] = "timeNotAvailable",
    [TS_INFO_UNACCEPTED_POLICY] = "unacceptedPolicy",
    [TS_INFO_UNACCEPTED_EXTENSION] = "unacceptedExtension",
    [TS_INFO_ADD_INFO_NOT_AVAILABLE] = "addInfoNotAvailable",
    [TS_INFO_SYSTEM_FAILURE] = "systemFailure",
};

/* "rejection: text; text [badAlg]" into b, bounded. */
static int status_text(const TS_STATUS_INFO *si, long status, st_buf_t *b) {
  const STACK_OF(ASN1_UTF8STRING) *texts = TS_STATUS_INFO_get0_text(si);
  const ASN1_BIT_STRING *fail = TS_STATUS_INFO_get0_failure_info(si);
  int rc = st_buf_adds(b, status_name(status));

  for (int i = 0; !rc && i < sk_ASN1_UTF8STRING_num(texts) && i < TSA_TEXT_COUNT; i++) {
    const ASN1_UTF8STRING *t = sk_ASN1_UTF8STRING_value(texts, i);
    int n = ASN1_STRING_length(t);
    const unsigned char *p = ASN1_STRING_get0_data(t);

    rc = st_buf_adds(b, i ? "; " : ": ");
    for (int k = 0; !rc && k < n && k < TSA_TEXT_MAX; k++)
      rc = st_buf_addc(b, p[k] >= 0x20 && p[k] < 0x7f ? (char)p[k] : '?');
  }
  for (size_t i = 0; !rc && fail && i < sizeof(failure_names) / sizeof(failure_names[0]);
       i++)
    if (failure_names[i] && ASN1_BIT_STRING_get_bit(fail, (int)i))
      rc = st_buf_addf(b, " [%s]", failure_names[i]);
  return rc;
}

static int add_integer_hex(st_buf_t *b, const ASN1_INTEGER *a) {
  int rc = 0;
  if (!a)
    return 0;
  if (ASN1_STRING_type(a) == V_ASN1_NEG_INTEGER)
    rc = st_buf_addc(b, '-');
  return rc ? rc : st_buf_add_hex(b, ASN1_STRING_get0_data(a), (size_t)ASN1_STRING_length(a));
}

static int add_oid(st_buf_t *b, const ASN1_OBJECT *obj) {
  int n = OBJ_obj2txt(NULL, 0, obj, 1);
  int rc;

  if (n <= 0)
    return ST_EPARSE;
  if ((rc = st_buf_grow(b, (size_t)n)))
    return rc;
  OBJ_obj2txt(b->data + b->len, n + 1, obj, 1);
  b->len += (size_t)n;
  return 0;
}

static int add_bio(st_buf_t *b, BIO *bio) {
  char *p = NULL;
  long n = BIO_get_mem_data(bio, &p);
  return n > 0 ? st_buf_add(b, p, (size_t)n) : 0;
}

static int add_general_name(st_buf_t *b, const GENERAL_NAME *gn) {
  BIO *bio;
  int rc = 0;

  if (!gn)
    return 0;
  if (!(bio = BIO_new(BIO_s_mem())))
    return ST_ENOMEM;
  if (gn->type == GEN_DIRNAME) {
    if (X509_NAME_print_ex(bio, gn->d.directoryName, 0, XN_FLAG_RFC2253) < 0)
      rc = ST_EPARSE;
  } else if (GENERAL_NAME_print(bio, (GENERAL_NAME *)gn) <= 0) {
    rc = ST_EPARSE;
  }
  if (!rc)
    rc = add_bio(b, bio);
  BIO_free(bio);
  return rc;
}

/* genTime as Unix seconds and RFC 3339, keeping a fractional part if the TSA sent one. */
static int add_gen_time(st_tsa_info_t *info, const ASN1_GENERALIZEDTIME *t) {
  struct tm tm;
  const char *raw = (const char *)ASN1_STRING_get0_data(t);
  int n = ASN1_STRING_length(t), rc;
  time_t secs;

  if (!ASN1_TIME_to_tm(t, &tm))
    return ST_EPARSE;
  secs = timegm(&tm);
  if (secs == (time_t)-1)
    return ST_ERANGE;
  info->gen_time = (int64_t)secs;
  rc = st_buf_addf(&info->gen_time_text, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  for (int i = 0; !rc && i < n; i++) {
    if (raw[i] != '.')
      continue;
    rc = st_buf_addc(&info->gen_time_text, '.');
    for (int k = i + 1; !rc && k < n && k <= i + 9 && raw[k] >= '0' && raw[k] <= '9'; k++)
      rc = st_buf_addc(&info->gen_time_text, raw[k]);
    break;
  }
  return rc ? rc : st_buf_addc(&info->gen_time_text, 'Z');
}

static int fill_info(st_tsa_info_t *info, TS_TST_INFO *tst) {
  int rc;
  if ((rc = add_gen_time(info, TS_TST_INFO_get_time(tst))))
    return rc;
  if ((rc = add_integer_hex(&info->serial_hex, TS_TST_INFO_get_serial(tst))))
    return rc;
  if ((rc = add_oid(&info->policy_oid, TS_TST_INFO_get_policy_id(tst))))
    return rc;
  if ((rc = add_general_name(&info->tsa_name, TS_TST_INFO_get_tsa(tst))))
    return rc;
  return add_integer_hex(&info->nonce_hex, TS_TST_INFO_get_nonce(tst));
}

int st__tsa_resp_parse(const void *der, size_t len, TS_RESP **out, st_tsa_info_t *info,
                       st_error_t *err) {
  const unsigned char *p = der;
  TS_RESP *resp = NULL;
  st_buf_t text = ST_BUF_INIT;
  const ASN1_INTEGER *st;
  PKCS7 *token;
  long status;
  int rc = 0;

  *out = NULL;
  if (info)
    info_reset(info);
  if (!der || len == 0) {
    rc = st__tsa_fail(info, ST_TSA_MALFORMED, err, ST_EPARSE, "timestamp response: empty");
    goto done;
  }
  if (len > ST_TSA_MAX_RESPONSE) {
    rc = st__tsa_fail(info, ST_TSA_MALFORMED, err, ST_ETOOBIG,
                      "timestamp response: %zu bytes, limit %zu", len, ST_TSA_MAX_RESPONSE);
    goto done;
  }
  resp = d2i_TS_RESP(NULL, &p, (long)len);
  if (!resp || p != (const unsigned char *)der + len) {
    rc = st__tsa_fail(info, ST_TSA_MALFORMED, err, ST_EPARSE,
                      resp ? "timestamp response: %zu trailing bytes after the DER"
                           : "timestamp response: not a DER TimeStampResp (%zu bytes)",
                      resp ? len - (size_t)(p - (const unsigned char *)der) : len);
    goto done;
  }
  st = TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp));
  status = ASN1_INTEGER_get(st);
  if (info)
    info->status = status >= 0 && status <= INT_MAX ? (int)status : -1;
  if (status != TS_STATUS_GRANTED && status != TS_STATUS_GRANTED_WITH_MODS) {
    st_buf_init(&text, 2048);
    if (status_text(TS_RESP_get_status_info(resp), status, &text))
      st_buf_reset(&text);
    rc = st__tsa_fail(info, ST_TSA_NOT_GRANTED, err, ST_EVERIFY,
                      "timestamp response: not granted: %s", text.data);
    goto done;
  }
  token = TS_RESP_get_token(resp);
  if (!token || !TS_RESP_get_tst_info(resp) || !PKCS7_type_is_signed(token) ||
      !token->d.sign) {
    rc = st__tsa_fail(info, ST_TSA_MALFORMED, err, ST_EPARSE,
                      "timestamp response: granted but no signed token");
    goto done;
  }
  if (sk_X509_num(token->d.sign->cert) > ST_TSA_MAX_CERTS) {
    rc = st__tsa_fail(info, ST_TSA_MALFORMED, err, ST_ETOOBIG,
                      "timestamp token: %d certificates, limit %d",
                      sk_X509_num(token->d.sign->cert), ST_TSA_MAX_CERTS);
    goto done;
  }
  if (info && (rc = fill_info(info, TS_RESP_get_tst_info(resp)))) {
    rc = st__tsa_fail(info, ST_TSA_MALFORMED, err, rc,
                      "timestamp token: unreadable TSTInfo field (%s)", st_strerror(rc));
    goto done;
  }
  *out = resp;
  resp = NULL;
done:
  st_buf_release(&text);
  TS_RESP_free(resp);
  ERR_clear_error();
  return rc;
}

int st__tsa_req_for_data(const void *data, size_t data_len, TS_REQ **out, st_error_t *err) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  TS_REQ *req = NULL;
  TS_MSG_IMPRINT *imprint = NULL;
  X509_ALGOR *alg = NULL;
  int rc = 0;

  *out = NULL;
  if (!data && data_len) {
    rc = st_fail(err, ST_EINVAL, "timestamp: data is NULL");
    goto done;
  }
  if (!EVP_Digest(data_len ? data : "", data_len, md, &md_len, EVP_sha256(), NULL) ||
      !(req = TS_REQ_new()) || !(imprint = TS_MSG_IMPRINT_new()) ||
      !(alg = X509_ALGOR_new()) ||
      !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) ||
      !TS_MSG_IMPRINT_set_algo(imprint, alg) ||
      !TS_MSG_IMPRINT_set_msg(imprint, md, (int)md_len) || !TS_REQ_set_version(req, 1) ||
      !TS_REQ_set_msg_imprint(req, imprint)) {
    rc = st_fail(err, ST_ECRYPTO, "timestamp: cannot build the SHA-256 imprint");
    goto done;
  }
  *out = req;
  req = NULL;
done:
  X509_ALGOR_free(alg);
  TS_MSG_IMPRINT_free(imprint);
  TS_REQ_free(req);
  ERR_clear_error();
  return rc;
}
