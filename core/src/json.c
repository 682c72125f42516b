/* json.c: bounded JSON parsing over jansson and typed getters (see json.h).
 *
 * jansson's parser recurses once per nesting level and has only a compile-time bound
 * (2048), so a pre-scan walks the text first: it counts brackets outside strings and
 * stops at the first level past the limit, and it checks \u escapes for lone surrogates
 * (jansson reports those as a generic syntax error). The scan is one pass with no
 * allocation; line and column are only computed when an error is reported. Everything
 * else (UTF-8 validity, syntax, duplicate keys, number range) is jansson's, with its
 * error code mapped to ours.
 */
#include "stella/json.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "stella/mem.h"

static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;
/* jansson's lexer reports a failed allocation as a syntax error, so the allocator hook
 * notes failures itself and a failed parse after one is reported as ST_ENOMEM. */
static _Thread_local int alloc_failed;

static void *json_alloc(size_t n) {
  void *p = st_malloc(n);
  if (!p)
    alloc_failed = 1;
  return p;
}

static void route_alloc(void) { json_set_alloc_funcs(json_alloc, st_free); }

static void line_col(const char *s, size_t off, size_t *line, size_t *col) {
  const char *nl;
  size_t start = 0;
  *line = 1;
  while ((nl = memchr(s + start, '\n', off - start)) != NULL) {
    (*line)++;
    start = (size_t)(nl - s) + 1;
  }
  *col = off - start + 1;
}

static int scan_fail(st_error_t *err, int code, const char *s, size_t off, const char *what) {
  size_t line, col;
  line_col(s, off, &line, &col);
  return st_fail(err, code, "json: line %zu, column %zu: %s", line, col, what);
}

/* Value of 4 hex digits at p (the caller checked they exist), -1 if not hex. */
static long hex4(const unsigned char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  return v;
}

/* A \u escape starts at s[i] == '\\', s[i+1] == 'u'. Returns how many bytes it spans
 * (12 for a surrogate pair, else 6; malformed hex is left for jansson to report, 2), or
 * 0 if it is a lone surrogate. */
static size_t u_escape_len(const unsigned char *s, size_t len, size_t i) {
  long v, lo;
  if (len - i < 6 || (v = hex4(s + i + 2)) < 0)
    return 2;
  if (v >= 0xdc00 && v <= 0xdfff)
    return 0;
  if (v < 0xd800 || v > 0xdbff)
    return 6;
  if (len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u')
    return 0;
  lo = hex4(s + i + 8);
  return lo >= 0xdc00 && lo <= 0xdfff ? 12 : 0;
}

static int prescan(const char *text, size_t len, int max_depth, st_error_t *err) {
  const unsigned char *s = (const unsigned char *)text;
  int depth = 0;
  size_t i = 0;

  while (i < len) {
    unsigned char c = s[i];
    if (c == '"') {
      for (i++; i < len && s[i] != '"'; i++) {
        size_t n;
        if (s[i] != '\\')
          continue;
        if (i + 1 >= len || s[i + 1] != 'u') {
          i++; /* skip the escaped character */
          continue;
        }
        if ((n = u_escape_len(s, len, i)) == 0)
          return scan_fail(err, ST_EUTF8, text, i, "\\u escape is a lone UTF-16 surrogate");
        i += n - 1;
      }
      i++;
      continue;
    }
    if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        char what[64];
        snprintf(what, sizeof(what), "nesting deeper than %d levels", max_depth);
        return scan_fail(err, ST_EDEPTH, text, i, what);
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
    i++;
  }
  return 0;
}

static int map_jansson(enum json_error_code code) {
  switch (code) {
  case json_error_out_of_memory:
    return ST_ENOMEM;
  case json_error_stack_overflow:
    return ST_EDEPTH;
  case json_error_invalid_utf8:
    return ST_EUTF8;
  case json_error_numeric_overflow:
    return ST_ERANGE;
  default:
    return ST_EPARSE;
  }
}

int st_json_parse(const char *s, size_t len, const st_json_limits_t *lim, json_t **out,
                  st_error_t *err) {
  size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : ST_JSON_MAX_BYTES_DEFAULT;
  int max_depth = lim && lim->max_depth > 0 ? lim->max_depth : ST_JSON_MAX_DEPTH_DEFAULT;
  json_error_t jerr;
  json_t *v;
  int rc;

  *out = NULL;
  pthread_once(&alloc_once, route_alloc);
  if (max_depth > ST_JSON_MAX_DEPTH_CEILING)
    max_depth = ST_JSON_MAX_DEPTH_CEILING;
  if (len > max_bytes)
    return st_fail(err, ST_ETOOBIG, "json: document of %zu bytes exceeds the limit of %zu",
                   len, max_bytes);
  if ((rc = prescan(s, len, max_depth, err)))
    return rc;
  alloc_failed = 0;
  v = json_loadb(s, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
  if (!v && alloc_failed)
    return st_fail(err, ST_ENOMEM, "json: out of memory while parsing");
  if (!v)
    return st_fail(err, map_jansson(json_error_code(&jerr)), "json: line %d, column %d: %s",
                   jerr.line, jerr.column, jerr.text);
  *out = v;
  return 0;
}

static int get_member(const json_t *obj, const char *key, json_t **out, st_error_t *err) {
  *out = NULL;
  if (!json_is_object(obj))
    return st_fail(err, ST_EINVAL, "json: cannot read field %s: not in an object", key);
  *out = json_object_get(obj, key);
  if (!*out)
    return st_fail(err, ST_ENOENT, "json: field %s is missing", key);
  return 0;
}

static int wrong_type(st_error_t *err, const char *key, const char *want) {
  return st_fail(err, ST_EINVAL, "json: field %s must be %s", key, want);
}

int st_json_get_obj(const json_t *obj, const char *key, json_t **out, st_error_t *err) {
  int rc = get_member(obj, key, out, err);
  if (!rc && !json_is_object(*out)) {
    *out = NULL;
    rc = wrong_type(err, key, "an object");
  }
  return rc;
}

int st_json_get_arr(const json_t *obj, const char *key, json_t **out, st_error_t *err) {
  int rc = get_member(obj, key, out, err);
  if (!rc && !json_is_array(*out)) {
    *out = NULL;
    rc = wrong_type(err, key, "an array");
  }
  return rc;
}

int st_json_get_str(const json_t *obj, const char *key, const char **out, size_t *len_out,
                    st_error_t *err) {
  json_t *v;
  int rc = get_member(obj, key, &v, err);
  *out = NULL;
  if (rc)
    return rc;
  if (!json_is_string(v))
    return wrong_type(err, key, "a string");
  *out = json_string_value(v);
  if (len_out)
    *len_out = json_string_length(v);
  return 0;
}

int st_json_get_int(const json_t *obj, const char *key, long long *out, st_error_t *err) {
  json_t *v;
  int rc = get_member(obj, key, &v, err);
  if (rc)
    return rc;
  if (!json_is_integer(v))
    return wrong_type(err, key, "an integer");
  *out = json_integer_value(v);
  return 0;
}

int st_json_get_bool(const json_t *obj, const char *key, int *out, st_error_t *err) {
  json_t *v;
  int rc = get_member(obj, key, &v, err);
  if (rc)
    return rc;
  if (!json_is_boolean(v))
    return wrong_type(err, key, "true or false");
  *out = json_is_true(v);
  return 0;
}
