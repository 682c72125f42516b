/* timeline_cursor.c: the signed, filter-bound keyset cursor of timeline queries.
 *
 * Token: base64url(body) "." base64url(HMAC-SHA256(key, body)), body the compact JSON
 * {"v":1,"f":"<filter hash hex>","k":[occurred_at, source, seq, seq_minor, event_id]}.
 * The MAC is checked (constant time, st_sha256_equal) before the body is parsed, so unauthenticated bytes
 * never reach the JSON parser.
 */
#include "timeline/timeline_cursor.h"

#include <jansson.h>
#include <string.h>

#include "stella/base64.h"
#include "stella/buf.h"
#include "stella/hmac.h"
#include "stella/mem.h"
#include "timeline/timeline_event.h"

/* base64url without padding, from core's strict standard encoder. */
static int b64url_enc(st_buf_t *out, const unsigned char *p, size_t n) {
  size_t start = out->len;
  if (st_base64_encode(out, p, n))
    return ST_ENOMEM;
  for (size_t i = start; i < out->len; i++)
    out->data[i] = out->data[i] == '+' ? '-' : out->data[i] == '/' ? '_' : out->data[i];
  while (out->len > start && out->data[out->len - 1] == '=')
    out->data[--out->len] = '\0';
  return 0;
}

/* Only the unpadded URL-safe spelling a server issued is accepted. */
static int b64url_dec(st_buf_t *out, const char *s, size_t n) {
  if (n == 0 || memchr(s, '=', n) || memchr(s, '+', n) || memchr(s, '/', n))
    return ST_EPARSE;
  return st_base64_decode(out, s, n, NULL);
}

static int hash_field(st_sha256_t *h, const char *s) {
  unsigned char len[4] = {0xff, 0xff, 0xff, 0xff}; /* absent differs from empty */
  size_t n = s ? strlen(s) : 0;
  if (s)
    len[0] = (unsigned char)(n >> 24), len[1] = (unsigned char)(n >> 16),
    len[2] = (unsigned char)(n >> 8), len[3] = (unsigned char)n;
  return st_sha256_update(h, len, 4) || (n && st_sha256_update(h, s, n)) ? ST_ECRYPTO : 0;
}

int st__tl_filter_hash(const char *tenant, const st_tl_filter_t *f, char hex[65]) {
  const char *fields[] = {"stella.timeline.cursor/v1", tenant, f->type, f->since, f->until,
                          f->subject, f->digest, f->trace_id, f->actor, f->correlation_id};
  uint8_t d[ST_SHA256_LEN];
  st_sha256_t h = {0};
  int rc = st_sha256_init(&h);

  for (size_t i = 0; !rc && i < sizeof(fields) / sizeof(fields[0]); i++)
    rc = hash_field(&h, fields[i]);
  if (!rc)
    rc = st_sha256_final(&h, d);
  st_sha256_release(&h);
  if (!rc)
    st_sha256_hex(d, hex);
  return rc ? ST_ECRYPTO : 0;
}

static int mac(const st_tl_cursor_key_t *key, const char *body, size_t n,
               uint8_t out[ST_SHA256_LEN]) {
  return st_hmac_sha256(key->key, key->len, body, n, out) ? ST_ECRYPTO : 0;
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
  uint8_t m[ST_SHA256_LEN];
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
  uint8_t m[ST_SHA256_LEN];
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
  if (!st_sha256_equal(m, (const uint8_t *)sig.data)) {
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
