/* buf.c: growable, capped, always-terminated byte buffer (see buf.h). */
#include "stella/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "stella/mem.h"

char st_buf_empty[1];

void st_buf_init(st_buf_t *b, size_t max) {
  b->data = st_buf_empty;
  b->len = 0;
  b->cap = 0;
  b->max = max ? max : ST_BUF_MAX_DEFAULT;
}

void st_buf_release(st_buf_t *b) {
  size_t max = b->max;
  if (b->cap)
    st_free(b->data);
  st_buf_init(b, max);
}

void st_buf_reset(st_buf_t *b) {
  b->len = 0;
  b->data[0] = '\0';
}

int st_buf_grow(st_buf_t *b, size_t extra) {
  size_t need, cap;
  char *p;

  if (extra > b->max - b->len)
    return ST_ETOOBIG;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  p = st_realloc(b->cap ? b->data : NULL, cap);
  if (!p)
    return ST_ENOMEM;
  if (!b->cap)
    p[0] = '\0';
  b->data = p;
  b->cap = cap;
  return 0;
}

char *st_buf_detach(st_buf_t *b, size_t *len_out) {
  char *d;
  if (len_out)
    *len_out = b->len;
  if (!b->cap) {
    d = st_malloc(1);
    if (d)
      d[0] = '\0';
  } else {
    d = b->data;
  }
  st_buf_init(b, b->max);
  return d;
}

int st_buf_add(st_buf_t *b, const void *data, size_t len) {
  int rc = st_buf_grow(b, len);
  if (rc)
    return rc;
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int st_buf_adds(st_buf_t *b, const char *s) { return st_buf_add(b, s, strlen(s)); }

int st_buf_addc(st_buf_t *b, char c) { return st_buf_add(b, &c, 1); }

int st_buf_vaddf(st_buf_t *b, const char *fmt, va_list ap) {
  va_list cp;
  int n, rc;

  va_copy(cp, ap);
  n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0)
    return ST_EINVAL;
  rc = st_buf_grow(b, (size_t)n);
  if (rc)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int st_buf_addf(st_buf_t *b, const char *fmt, ...) {
  va_list ap;
  int rc;
  va_start(ap, fmt);
  rc = st_buf_vaddf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int st_buf_add_hex(st_buf_t *b, const void *data, size_t len) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = data;
  int rc;
  size_t i;

  if (len > (SIZE_MAX - 1) / 2)
    return ST_ETOOBIG;
  rc = st_buf_grow(b, len * 2);
  if (rc)
    return rc;
  for (i = 0; i < len; i++) {
    b->data[b->len++] = digits[p[i] >> 4];
    b->data[b->len++] = digits[p[i] & 15];
  }
  b->data[b->len] = '\0';
  return 0;
}

int st_buf_add_json_str(st_buf_t *b, const char *s, size_t len) {
  static const char digits[] = "0123456789abcdef";
  size_t i, run = 0;
  int rc;

  if ((rc = st_buf_addc(b, '"')))
    return rc;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[7];
    size_t n = 2;

    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    if ((rc = st_buf_add(b, s + run, i - run)))
      return rc;
    run = i + 1;
    esc[0] = '\\';
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\t': esc[1] = 't'; break;
    case '\n': esc[1] = 'n'; break;
    case '\f': esc[1] = 'f'; break;
    case '\r': esc[1] = 'r'; break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = digits[c >> 4];
      esc[5] = digits[c & 15];
      n = 6;
    }
    if ((rc = st_buf_add(b, esc, n)))
      return rc;
  }
  if ((rc = st_buf_add(b, s + run, len - run)))
    return rc;
  return st_buf_addc(b, '"');
}

int st_utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;

  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    unsigned long cp;

    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return 0;
    }
    if (len - i <= n)
      return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += n + 1;
  }
  return 1;
}
