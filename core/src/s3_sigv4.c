/* s3_sigv4.c: AWS Signature Version 4, written by hand from the AWS documentation:
 * canonical request -> string to sign -> HMAC chain over date/region/service ->
 * signature. Hashing and HMAC use OpenSSL directly; the derived keys are wiped. */
#include "s3_sigv4.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "stella/mem.h"

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32]) {
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n) ||
      n != 32)
    return ST_ECRYPTO;
  return 0;
}

static int sha256_hex(const char *data, size_t len, char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char d[32];
  unsigned int n = 0;
  if (EVP_Digest(data, len, d, &n, EVP_sha256(), NULL) != 1 || n != 32)
    return ST_ECRYPTO;
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[d[i] >> 4];
    hex[2 * i + 1] = digits[d[i] & 15];
  }
  hex[64] = '\0';
  return 0;
}

int st__sigv4_uri_encode(st_buf_t *out, const char *s, size_t len, int keep_slash) {
  static const char digits[] = "0123456789ABCDEF";
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    int rc;
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
      rc = st_buf_addc(out, (char)c);
    else
      rc = st_buf_addc(out, '%') || st_buf_addc(out, digits[c >> 4]) ||
                   st_buf_addc(out, digits[c & 15])
               ? ST_ENOMEM
               : 0;
    if (rc)
      return rc;
  }
  return 0;
}

typedef struct qpair_s {
  st_buf_t k, v; /* encoded */
} qpair_t;

static int qpair_cmp(const void *a, const void *b) {
  const qpair_t *x = a, *y = b;
  int c = strcmp(x->k.data, y->k.data);
  return c ? c : strcmp(x->v.data, y->v.data);
}

int st__sigv4_query(st_buf_t *out, const char *const *kv, size_t n) {
  qpair_t *p = st_calloc(n ? n : 1, sizeof(*p));
  int rc = p ? 0 : ST_ENOMEM;
  for (size_t i = 0; i < n && p; i++) {
    st_buf_init(&p[i].k, 0);
    st_buf_init(&p[i].v, 0);
  }
  for (size_t i = 0; i < n && !rc; i++)
    if (!(rc = st__sigv4_uri_encode(&p[i].k, kv[2 * i], strlen(kv[2 * i]), 0)))
      rc = st__sigv4_uri_encode(&p[i].v, kv[2 * i + 1], strlen(kv[2 * i + 1]), 0);
  if (!rc && n) /* sorted by encoded name, then encoded value */
    qsort(p, n, sizeof(*p), qpair_cmp);
  for (size_t i = 0; i < n && !rc; i++)
    rc = st_buf_addf(out, "%s%s=%s", i ? "&" : "", p[i].k.data, p[i].v.data);
  for (size_t i = 0; i < n && p; i++) {
    st_buf_release(&p[i].k);
    st_buf_release(&p[i].v);
  }
  st_free(p);
  return rc;
}

void st__sigv4_amz_date(int64_t t, char out[17]) {
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int hdr_cmp(const void *a, const void *b) {
  const st__sigv4_header_t *x = a, *y = b;
  return strcasecmp(x->name, y->name);
}

static int add_lower(st_buf_t *b, const char *s) {
  for (; *s; s++)
    if (st_buf_addc(b, (char)tolower((unsigned char)*s)))
      return ST_ENOMEM;
  return 0;
}

/* Trimmed value with inner runs of spaces collapsed to one. */
static int add_value(st_buf_t *b, const char *v) {
  int space = 0;
  while (*v == ' ' || *v == '\t')
    v++;
  for (; *v; v++) {
    if (*v == ' ' || *v == '\t') {
      space = 1;
      continue;
    }
    if ((space && st_buf_addc(b, ' ')) || st_buf_addc(b, *v))
      return ST_ENOMEM;
    space = 0;
  }
  return 0;
}

int st__sigv4_authorization(const st__sigv4_req_t *r, st_buf_t *out, st_buf_t *canonical) {
  st_buf_t creq = ST_BUF_INIT, signed_hdrs = ST_BUF_INIT, sts = ST_BUF_INIT, k = ST_BUF_INIT;
  st__sigv4_header_t *h = st_calloc(r->nheaders ? r->nheaders : 1, sizeof(*h));
  unsigned char kdate[32], kregion[32], kservice[32], ksigning[32], sig[32];
  char date[9], creq_hash[65];
  int rc = h ? 0 : ST_ENOMEM;

  if (rc)
    goto done;
  memcpy(h, r->headers, r->nheaders * sizeof(*h));
  qsort(h, r->nheaders, sizeof(*h), hdr_cmp);
  rc = st_buf_addf(&creq, "%s\n%s\n%s\n", r->method, r->canonical_uri, r->canonical_query);
  for (size_t i = 0; i < r->nheaders && !rc; i++) {
    if ((rc = add_lower(&creq, h[i].name)) || (rc = st_buf_addc(&creq, ':')) ||
        (rc = add_value(&creq, h[i].value)) || (rc = st_buf_addc(&creq, '\n')) ||
        (i && (rc = st_buf_addc(&signed_hdrs, ';'))) || (rc = add_lower(&signed_hdrs, h[i].name)))
      break;
  }
  if (rc || (rc = st_buf_addf(&creq, "\n%s\n%s", signed_hdrs.data, r->payload_hash)))
    goto done;
  if ((rc = sha256_hex(creq.data, creq.len, creq_hash)))
    goto done;
  if (strlen(r->amz_date) != 16) {
    rc = ST_EINVAL;
    goto done;
  }
  memcpy(date, r->amz_date, 8);
  date[8] = '\0';
  if ((rc = st_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", r->amz_date,
                        date, r->region, r->service, creq_hash)) ||
      (rc = st_buf_addf(&k, "AWS4%s", r->secret_key)))
    goto done;
  if ((rc = hmac(k.data, k.len, date, kdate)) || (rc = hmac(kdate, 32, r->region, kregion)) ||
      (rc = hmac(kregion, 32, r->service, kservice)) ||
      (rc = hmac(kservice, 32, "aws4_request", ksigning)) ||
      (rc = hmac(ksigning, 32, sts.data, sig)))
    goto done;
  if ((rc = st_buf_addf(out, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
                             "SignedHeaders=%s, Signature=",
                        r->access_key, date, r->region, r->service, signed_hdrs.data)) ||
      (rc = st_buf_add_hex(out, sig, sizeof(sig))))
    goto done;
  if (canonical)
    rc = st_buf_add(canonical, creq.data, creq.len);
done:
  st_memzero(kdate, sizeof(kdate));
  st_memzero(kregion, sizeof(kregion));
  st_memzero(kservice, sizeof(kservice));
  st_memzero(ksigning, sizeof(ksigning));
  if (k.len)
    st_memzero(k.data, k.len);
  st_buf_release(&k);
  st_buf_release(&creq);
  st_buf_release(&signed_hdrs);
  st_buf_release(&sts);
  st_free(h);
  return rc;
}
