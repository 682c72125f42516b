/* jcs.c: RFC 8785 canonical JSON encoder (see jcs.h).
 *
 * Numbers: ECMAScript wants the shortest decimal digits that read back as the same
 * double, nearest to it among the shortest. For a normal double the 15-significant-digit
 * grid is coarser than 4 ulps, so if any string of at most 15 digits round-trips, the
 * correctly rounded 15-digit one does too and equals it padded with zeros: one
 * printf("%.14e") + strtod settles most numbers, then 16 and 17 digits (17 always
 * round-trips). Subnormals lack that margin and try every precision. glibc's printf and
 * strtod round correctly, which this relies on. Integral doubles below 2^53 skip all of
 * that.
 *
 * Keys: UTF-8 byte order equals code point order, and UTF-16 code unit order differs
 * from it only between U+10000.. (UTF-8 lead byte F0..F4, a surrogate pair in UTF-16)
 * and U+E000..U+FFFF (lead EE or EF). The comparator finds the first differing byte and
 * swaps the order only for that pair, so it costs a byte compare loop otherwise. Each
 * object's keys are sorted once (qsort, O(k log k)) into a scratch array that lives on
 * the stack for small objects.
 */
#include "stella/jcs.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stella/mem.h"

#define SMALL_OBJECT 16
#define TWO_POW_53 9007199254740992.0

typedef struct member_s {
  const char *key;
  size_t len;
  json_t *value;
} member_t;

static int add_u64(st_buf_t *out, int neg, unsigned long long u) {
  char tmp[24];
  size_t i = sizeof(tmp);
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg)
    tmp[--i] = '-';
  return st_buf_add(out, tmp + i, sizeof(tmp) - i);
}

/* Shortest round-trip digits of d > 0 (finite): digits without dot or trailing zeros
 * into dig (>= 18 bytes), *k their count, *n the decimal exponent such that
 * d = 0.DIGITS * 10^n. */
static void shortest(double d, char *dig, int *k, int *n) {
  char tmp[40];
  int prec = d >= DBL_MIN ? 14 : 0;
  int len, e;

  for (;; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
    if (prec >= 16 || strtod(tmp, NULL) == d)
      break;
  }
  /* tmp is "D[.DDD]e[+-]XX" */
  len = 0;
  dig[len++] = tmp[0];
  const char *p = tmp + 1;
  if (*p == '.')
    for (p++; *p != 'e'; p++)
      dig[len++] = *p;
  e = atoi(p + 1);
  while (len > 1 && dig[len - 1] == '0')
    len--;
  dig[len] = '\0';
  *k = len;
  *n = e + 1;
}

int st_jcs_number(double d, st_buf_t *out) {
  char dig[24], s[48];
  int k, n, neg = 0;
  size_t o = 0;

  if (!isfinite(d))
    return ST_ERANGE;
  if (d == 0)
    return st_buf_addc(out, '0');
  if (d < 0)
    neg = 1, d = -d;
  if (d < TWO_POW_53 && d == floor(d))
    return add_u64(out, neg, (unsigned long long)d);
  shortest(d, dig, &k, &n);
  if (neg)
    s[o++] = '-';
  if (k <= n && n <= 21) {
    memcpy(s + o, dig, (size_t)k), o += (size_t)k;
    memset(s + o, '0', (size_t)(n - k)), o += (size_t)(n - k);
  } else if (0 < n && n <= 21) {
    memcpy(s + o, dig, (size_t)n), o += (size_t)n;
    s[o++] = '.';
    memcpy(s + o, dig + n, (size_t)(k - n)), o += (size_t)(k - n);
  } else if (-6 < n && n <= 0) {
    s[o++] = '0', s[o++] = '.';
    memset(s + o, '0', (size_t)-n), o += (size_t)-n;
    memcpy(s + o, dig, (size_t)k), o += (size_t)k;
  } else {
    s[o++] = dig[0];
    if (k > 1) {
      s[o++] = '.';
      memcpy(s + o, dig + 1, (size_t)(k - 1)), o += (size_t)(k - 1);
    }
    o += (size_t)snprintf(s + o, sizeof(s) - o, "e%c%d", n - 1 >= 0 ? '+' : '-',
                          abs(n - 1));
  }
  return st_buf_add(out, s, o);
}

static int add_integer(st_buf_t *out, json_int_t v) {
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  if (u <= (1ULL << 53))
    return add_u64(out, v < 0, u);
  return st_jcs_number((double)v, out);
}

static int key_cmp(const void *pa, const void *pb) {
  const member_t *a = pa, *b = pb;
  const unsigned char *x = (const unsigned char *)a->key, *y = (const unsigned char *)b->key;
  size_t n = a->len < b->len ? a->len : b->len, i = 0;
  unsigned char cx, cy;

  while (i < n && x[i] == y[i])
    i++;
  if (i == n)
    return (a->len > b->len) - (a->len < b->len);
  cx = x[i], cy = y[i];
  if (cx >= 0xee && cy >= 0xee && (cx >= 0xf0) != (cy >= 0xf0))
    return cx >= 0xf0 ? -1 : 1; /* surrogate pair sorts below U+E000..U+FFFF */
  return (int)cx - (int)cy;
}

/* Error path: turn "<rest>" into "<seg><rest>" so unwinding builds "$.a[3]: why". */
static int prepend(st_error_t *err, int rc, const char *seg) {
  char old[ST_ERRMSG_MAX];
  if (!err)
    return rc;
  memcpy(old, err->msg, sizeof(old));
  if (snprintf(err->msg, sizeof(err->msg), "%s%s", seg, old) >= (int)sizeof(err->msg))
    err->msg[sizeof(err->msg) - 1] = '\0';
  return rc;
}

static int encode(const json_t *v, st_buf_t *out, int depth, st_error_t *err);

static int encode_object(const json_t *v, st_buf_t *out, int depth, st_error_t *err) {
  member_t small[SMALL_OBJECT], *m = small;
  size_t count = json_object_size(v), i = 0;
  void *it;
  int rc = 0;

  if (count > SMALL_OBJECT) {
    m = st_malloc(count * sizeof(*m));
    if (!m)
      return st_fail(err, ST_ENOMEM, ": out of memory sorting %zu keys", count);
  }
  for (it = json_object_iter((json_t *)v); it && i < count;
       it = json_object_iter_next((json_t *)v, it), i++) {
    m[i].key = json_object_iter_key(it);
    m[i].len = json_object_iter_key_len(it);
    m[i].value = json_object_iter_value(it);
  }
  count = i;
  if (count > 1)
    qsort(m, count, sizeof(*m), key_cmp);
  if ((rc = st_buf_addc(out, '{')))
    goto nospace;
  for (i = 0; i < count; i++) {
    if (!st_utf8_valid(m[i].key, m[i].len)) {
      rc = st_fail(err, ST_EUTF8, ": object key is not valid UTF-8");
      goto done;
    }
    if ((i && (rc = st_buf_addc(out, ','))) ||
        (rc = st_buf_add_json_str(out, m[i].key, m[i].len)) || (rc = st_buf_addc(out, ':')))
      goto nospace;
    if ((rc = encode(m[i].value, out, depth + 1, err))) {
      char seg[64];
      snprintf(seg, sizeof(seg), ".%.*s", (int)(m[i].len > 48 ? 48 : m[i].len), m[i].key);
      prepend(err, rc, seg);
      goto done;
    }
  }
  if ((rc = st_buf_addc(out, '}')))
    goto nospace;
  goto done;
nospace:
  st_fail(err, rc, ": output: %s", st_strerror(rc));
done:
  if (m != small)
    st_free(m);
  return rc;
}

static int encode_array(const json_t *v, st_buf_t *out, int depth, st_error_t *err) {
  size_t n = json_array_size(v);
  int rc;

  if ((rc = st_buf_addc(out, '[')))
    return st_fail(err, rc, ": output: %s", st_strerror(rc));
  for (size_t i = 0; i < n; i++) {
    if (i && (rc = st_buf_addc(out, ',')))
      return st_fail(err, rc, ": output: %s", st_strerror(rc));
    if ((rc = encode(json_array_get(v, i), out, depth + 1, err))) {
      char seg[32];
      snprintf(seg, sizeof(seg), "[%zu]", i);
      return prepend(err, rc, seg);
    }
  }
  if ((rc = st_buf_addc(out, ']')))
    return st_fail(err, rc, ": output: %s", st_strerror(rc));
  return 0;
}

static int encode(const json_t *v, st_buf_t *out, int depth, st_error_t *err) {
  int rc;

  if (depth > ST_JCS_MAX_DEPTH)
    return st_fail(err, ST_EDEPTH, ": nesting deeper than %d levels", ST_JCS_MAX_DEPTH);
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return encode_object(v, out, depth, err);
  case JSON_ARRAY:
    return encode_array(v, out, depth, err);
  case JSON_STRING: {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!st_utf8_valid(s, n))
      return st_fail(err, ST_EUTF8, ": string is not valid UTF-8");
    rc = st_buf_add_json_str(out, s, n);
    break;
  }
  case JSON_INTEGER:
    rc = add_integer(out, json_integer_value(v));
    break;
  case JSON_REAL:
    rc = st_jcs_number(json_real_value(v), out);
    if (rc == ST_ERANGE)
      return st_fail(err, rc, ": number is NaN or infinite");
    break;
  case JSON_TRUE:
    rc = st_buf_add(out, "true", 4);
    break;
  case JSON_FALSE:
    rc = st_buf_add(out, "false", 5);
    break;
  case JSON_NULL:
    rc = st_buf_add(out, "null", 4);
    break;
  default:
    return st_fail(err, ST_EINVAL, ": unknown JSON type");
  }
  if (rc)
    return st_fail(err, rc, ": output: %s", st_strerror(rc));
  return 0;
}

int st_jcs_encode(const json_t *v, st_buf_t *out, st_error_t *err) {
  size_t start = out->len;
  int rc;

  if (!v)
    return st_fail(err, ST_EINVAL, "jcs: no value");
  rc = encode(v, out, 0, err);
  if (rc) {
    prepend(err, rc, "jcs: $");
    if (out->cap) {
      out->len = start;
      out->data[start] = '\0';
    }
  }
  return rc;
}

int st_jcs_canonicalize(const char *s, size_t len, const st_json_limits_t *lim, st_buf_t *out,
                        st_error_t *err) {
  json_t *v = NULL;
  int rc = st_json_parse(s, len, lim, &v, err);
  if (!rc)
    rc = st_jcs_encode(v, out, err);
  json_decref(v);
  return rc;
}
