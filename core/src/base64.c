/* base64.c: padded standard encoder and strict two-alphabet decoder (see base64.h). */
#include "stella/base64.h"

#include <stdint.h>

static const char enc_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t st_base64_encoded_len(size_t n) {
  size_t groups = n / 3 + (n % 3 != 0);
  if (groups > SIZE_MAX / 4)
    return 0;
  return groups * 4;
}

int st_base64_encode(st_buf_t *out, const void *data, size_t len) {
  const unsigned char *p = data;
  size_t need = st_base64_encoded_len(len), i;
  char *w;
  int rc;

  if (need == 0 && len != 0)
    return ST_ETOOBIG;
  if ((rc = st_buf_grow(out, need)))
    return rc;
  w = out->data + out->len;
  for (i = 0; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *w++ = enc_std[v >> 18];
    *w++ = enc_std[(v >> 12) & 63];
    *w++ = enc_std[(v >> 6) & 63];
    *w++ = enc_std[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    *w++ = enc_std[v >> 18];
    *w++ = enc_std[(v >> 12) & 63];
    *w++ = '=';
    *w++ = '=';
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    *w++ = enc_std[v >> 18];
    *w++ = enc_std[(v >> 12) & 63];
    *w++ = enc_std[(v >> 6) & 63];
    *w++ = '=';
  }
  out->len += need;
  out->data[out->len] = '\0';
  return 0;
}

/* Value of c in either alphabet; *alpha gets 1 for standard-only, 2 for URL-only, 0 for
 * characters shared by both. -1 if c is in neither. */
static int dec_char(unsigned char c, int *alpha) {
  *alpha = 0;
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '/')
    return *alpha = 1, c == '+' ? 62 : 63;
  if (c == '-' || c == '_')
    return *alpha = 2, c == '-' ? 62 : 63;
  return -1;
}

int st_base64_decode(st_buf_t *out, const char *s, size_t len, st_error_t *err) {
  size_t body = len, pad = 0, i, start = out->len;
  int alphabet = 0, rc = 0;
  uint32_t acc = 0;
  unsigned bits = 0;

  while (body > 0 && s[body - 1] == '=' && pad < 2)
    body--, pad++;
  /* Padded input must be whole quanta; then the padding always matches the length. */
  if (pad && len % 4 != 0)
    return st_fail(err, ST_EPARSE, "base64: padding on a length (%zu) not a multiple of 4",
                   len);
  if (body % 4 == 1)
    return st_fail(err, ST_EPARSE, "base64: impossible length %zu", body);
  if ((rc = st_buf_grow(out, body / 4 * 3 + 2)))
    return st_fail(err, rc, "base64: decoded size over the limit");
  for (i = 0; i < body; i++) {
    int alpha, v = dec_char((unsigned char)s[i], &alpha);
    if (v < 0) {
      rc = st_fail(err, ST_EPARSE, "base64: invalid character at offset %zu", i);
      goto done;
    }
    if (alpha) {
      if (alphabet && alphabet != alpha) {
        rc = st_fail(err, ST_EPARSE, "base64: standard and URL-safe alphabets mixed "
                                     "(offset %zu)", i);
        goto done;
      }
      alphabet = alpha;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->data[out->len++] = (char)(acc >> bits & 0xff);
    }
  }
  if (acc & ((1u << bits) - 1)) {
    rc = st_fail(err, ST_EPARSE, "base64: non-zero trailing bits (non-canonical encoding)");
    goto done;
  }
  out->data[out->len] = '\0';
done:
  if (rc) {
    out->len = start;
    out->data[out->len] = '\0';
  }
  return rc;
}
