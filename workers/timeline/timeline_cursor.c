/* timeline_cursor.c: the signed, filter-bound keyset cursor of timeline queries.
 *
 * Token: base64url(body) "." base64url(HMAC-SHA256(key, body)), body the compact JSON
 * {"v":1,"f":"<filter hash hex>","k":[occurred_at, source, seq, seq_minor, event_id]}.
 * The MAC is checked (constant time) before the body is parsed, so unauthenticated bytes
 * never reach the JSON parser.
 */
#include "timeline/timeline_cursor.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

#include "stella/buf.h"
#include "stella/mem.h"
#include "timeline/timeline_event.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_enc(st_buf_t *out, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    size_t k = n - i >= 3 ? 4 : n - i + 1;
    for (size_t j = 0; j < k; j++)
      if (st_buf_addc(out, b64[(v >> (18 - 6 * j)) & 63]))
        return ST_ENOMEM;
  }
  return 0;
}

static int b64url_dec(st_buf_t *out, const char *s, size_t n) {
  unsigned v = 0;
  int bits = 0;
  if (n % 4 == 1)
    return ST_EPARSE;
  for (size_t i = 0; i < n; i++) {
    const char *c = memchr(b64, s[i], 64);
    if (!c || !s[i])
      return ST_EPARSE;
    v = (v << 6) | (unsigned)(c - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (st_buf_addc(out, (char)((v >> bits) & 0xff)))
        return ST_ENOMEM;
    }
  }
  /* Leftover bits must be zero: one encoding per byte string. */
  return (v & ((1u << bits) - 1)) ? ST_EPARSE : 0;
}

static int hash_field(EVP_MD_CTX *md, const char *s) {
  unsigned char len[4] = {0};
  size_t n = s ? strlen(s) : 0;
  /* Absent and empty differ: absent is length 0xffffffff. */
  if (!s)
    memset(len, 0xff, 4);
  else
    len[0] = (unsigned char)(n >> 24), len[1] = (unsigned char)(n >> 16),
    len[2] = (unsigned char)(n >> 8), len[3] = (unsigned char)n;
  return EVP_DigestUpdate(md, len, 4) && (!n || EVP_DigestUpdate(md, s, n));
}

int st__tl_filter_hash(const char *tenant, const st_tl_filter_t *f, char hex[65]) {
  const char *fields[] = {"stella.timeline.cursor/v1", tenant, f->type, f->since, f->until,
                          f->subject, f->digest, f->trace_id, f->actor, f->correlation_id};
  unsigned char h[32];
  unsigned hl = 0;
  int ok;
  EVP_MD_CTX *md = EVP_MD_CTX_new();

  ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  for (size_t i = 0; ok && i < sizeof(fields) / sizeof(fields[0]); i++)
    ok = hash_field(md, fields[i]);
  ok = ok && EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  if (!ok)
    return ST_ECRYPTO;
  for (int i = 0; i < 32; i++)
    hex[2 * i] = "0123456789abcdef"[h[i] >> 4], hex[2 * i + 1] = "0123456789abcdef"[h[i] & 15];
  hex[64] = '\0';
  return 0;
}

static int mac(const st_tl_cursor_key_t *key, const char *body, size_t n,
               unsigned char out[32]) {
  unsigned len = 0;
  return HMAC(EVP_sha256(), key->key, (int)key->len, (const unsigned char *)body, n, out,
              &len) && len == 32
             ? 0
             : ST_ECRYPTO;
}

static int check_key(const st_tl_cursor_key_t *key, st_error_t *err) {
  if (!key || !key->key || key->len < ST_TL_CURSOR_KEY_MIN)
    return st_fail(err, ST_ECONFIG,
                   "timeline_cursor_key: a cursor key of at least %d bytes is required",
                   ST_TL_CURSOR_KEY_MIN);
  return 0;
}

int st__tl_cursor_encode(const st_tl_cursor_key_t *key, const char *fhash,
                         const st_tl_sortkey_t *k, char **out, st_error_t *err) {
  st_buf_t body = ST_BUF_INIT, tok = ST_BUF_INIT;
  unsigned char m[32];
  int rc;

  if ((rc = check_key(key, err)))
    return rc;
  if (st_buf_addf(&body, "{\"v\":1,\"f\":\"%s\",\"k\":[", fhash) ||
      st_buf_add_json_str(&body, k->occurred_at, strlen(k->occurred_at)) ||
      st_buf_addc(&body, ',') || st_buf_add_json_str(&body, k->source, strlen(k->source)) ||
      st_buf_addf(&body, ",%llu,%llu,", (unsigned long long)k->seq,
                  (unsigned long long)k->seq_minor) ||
      st_buf_add_json_str(&body, k->event_id, strlen(k->event_id)) || st_buf_adds(&body, "]}")) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
  if ((rc = mac(key, body.data, body.len, m))) {
    rc = st_fail(err, rc, "timeline: HMAC failed");
    goto done;
  }
  if (b64url_enc(&tok, (unsigned char *)body.data, body.len) || st_buf_addc(&tok, '.') ||
      b64url_enc(&tok, m, sizeof(m))) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
  *out = st_buf_detach(&tok, NULL);
done:
  st_buf_release(&body);
  st_buf_release(&tok);
  return rc;
}

int st__tl_cursor_decode(const st_tl_cursor_key_t *key, const char *fhash, const char *token,
                         st_tl_sortkey_t *k, st_error_t *err) {
  st_buf_t body = ST_BUF_INIT, sig = ST_BUF_INIT;
  const char *dot;
  unsigned char m[32];
  json_t *j = NULL, *arr;
  json_error_t jerr;
  size_t n = strlen(token);
  json_int_t seq, minor;
  const char *occ, *src, *eid;
  int rc;

  memset(k, 0, sizeof(*k));
  if ((rc = check_key(key, err)))
    return rc;
  if (n > ST_TL_CURSOR_MAX || !(dot = strchr(token, '.')))
    return st_fail(err, ST_EVERIFY, "cursor: malformed");
  st_buf_init(&body, ST_TL_CURSOR_MAX);
  st_buf_init(&sig, 64);
  if (b64url_dec(&body, token, (size_t)(dot - token)) ||
      b64url_dec(&sig, dot + 1, strlen(dot + 1)) || sig.len != 32) {
    rc = st_fail(err, ST_EVERIFY, "cursor: malformed");
    goto done;
  }
  if ((rc = mac(key, body.data, body.len, m))) {
    rc = st_fail(err, rc, "timeline: HMAC failed");
    goto done;
  }
  if (CRYPTO_memcmp(m, sig.data, 32)) {
    rc = st_fail(err, ST_EVERIFY, "cursor: signature does not verify (altered or forged)");
    goto done;
  }
  j = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, &jerr);
  arr = json_object_get(j, "k");
  if (!j || json_integer_value(json_object_get(j, "v")) != 1 ||
      !json_is_string(json_object_get(j, "f")) || json_array_size(arr) != 5 ||
      !(occ = json_string_value(json_array_get(arr, 0))) ||
      !(src = json_string_value(json_array_get(arr, 1))) ||
      !json_is_integer(json_array_get(arr, 2)) || !json_is_integer(json_array_get(arr, 3)) ||
      !(eid = json_string_value(json_array_get(arr, 4)))) {
    rc = st_fail(err, ST_EVERIFY, "cursor: unexpected content");
    goto done;
  }
  if (strcmp(json_string_value(json_object_get(j, "f")), fhash)) {
    rc = st_fail(err, ST_EVERIFY,
                 "cursor: issued for another filter or tenant; start again without it");
    goto done;
  }
  seq = json_integer_value(json_array_get(arr, 2));
  minor = json_integer_value(json_array_get(arr, 3));
  if (seq < 0 || minor < 0 || !st_tl_rfc3339_valid(occ)) {
    rc = st_fail(err, ST_EVERIFY, "cursor: unexpected content");
    goto done;
  }
  k->seq = (uint64_t)seq;
  k->seq_minor = (uint64_t)minor;
  if (!(k->occurred_at = st_strdup(occ)) || !(k->source = st_strdup(src)) ||
      !(k->event_id = st_strdup(eid))) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
done:
  if (rc)
    st__tl_sortkey_release(k);
  json_decref(j);
  st_buf_release(&body);
  st_buf_release(&sig);
  return rc;
}

void st__tl_sortkey_release(st_tl_sortkey_t *k) {
  st_free(k->occurred_at);
  st_free(k->source);
  st_free(k->event_id);
  memset(k, 0, sizeof(*k));
}
