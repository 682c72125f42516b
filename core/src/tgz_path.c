/* tgz_path.c: entry path rules and the path map shared by the tgz writer and reader.
 * The rules are the same both ways so that whatever the writer accepts, the reader
 * accepts, and nothing the reader accepts can name a place outside the target. */
#include "tgz_internal.h"

#include <pthread.h>
#include <string.h>

#include "stella/buf.h"
#include "stella/mem.h"
#include "stella/tgz.h"

int st__tgz_path_check(const char *path, size_t len, const char **why) {
  size_t i, start = 0;

  if (len == 0)
    return *why = "empty path", ST_EUNSAFE;
  if (len > ST_TGZ_PATH_MAX)
    return *why = "path too long", ST_EUNSAFE;
  if (path[0] == '/')
    return *why = "absolute path", ST_EUNSAFE;
  if (!st_utf8_valid(path, len))
    return *why = "path is not valid UTF-8", ST_EUNSAFE;
  for (i = 0; i <= len; i++) {
    size_t n;
    if (i < len) {
      unsigned char c = (unsigned char)path[i];
      if (c < 0x20 || c == 0x7f)
        return *why = "control character in path", ST_EUNSAFE;
      if (c != '/')
        continue;
    }
    n = i - start;
    if (n == 0)
      return *why = "empty path component", ST_EUNSAFE;
    if (n == 1 && path[start] == '.')
      return *why = "'.' path component", ST_EUNSAFE;
    if (n == 2 && path[start] == '.' && path[start + 1] == '.')
      return *why = "'..' path component", ST_EUNSAFE;
    start = i + 1;
  }
  return 0;
}

static locale_t g_utf8 = (locale_t)0;
static pthread_once_t g_utf8_once = PTHREAD_ONCE_INIT;

/* Made once and kept for the life of the process. */
static void utf8_init(void) { g_utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

int st__tgz_locale_enter(locale_t *saved, st_error_t *err) {
  pthread_once(&g_utf8_once, utf8_init);
  if (g_utf8 == (locale_t)0)
    return st_fail(err, ST_EINTERNAL, "tgz: the C.UTF-8 locale is not available");
  *saved = uselocale(g_utf8);
  return 0;
}

void st__tgz_locale_leave(locale_t saved) { uselocale(saved); }

static size_t hash(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  size_t i;
  for (i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return (size_t)h;
}

void st__tgz_map_init(st__tgz_map_t *m) { memset(m, 0, sizeof(*m)); }

void st__tgz_map_release(st__tgz_map_t *m) {
  size_t i;
  for (i = 0; i < m->cap; i++)
    st_free(m->keys[i]);
  st_free(m->keys);
  st_free(m->vals);
  st__tgz_map_init(m);
}

static size_t slot(const st__tgz_map_t *m, const char *key, size_t len) {
  size_t i = hash(key, len) & (m->cap - 1);
  while (m->keys[i] && !(strncmp(m->keys[i], key, len) == 0 && m->keys[i][len] == '\0'))
    i = (i + 1) & (m->cap - 1);
  return i;
}

uint8_t st__tgz_map_get(const st__tgz_map_t *m, const char *key, size_t len) {
  size_t i;
  if (m->cap == 0)
    return 0;
  i = slot(m, key, len);
  return m->keys[i] ? m->vals[i] : 0;
}

static int grow(st__tgz_map_t *m) {
  st__tgz_map_t n;
  size_t i;

  n.cap = m->cap ? m->cap * 2 : 64;
  n.count = m->count;
  n.keys = st_calloc(n.cap, sizeof(*n.keys));
  n.vals = st_calloc(n.cap, sizeof(*n.vals));
  if (!n.keys || !n.vals) {
    st_free(n.keys);
    st_free(n.vals);
    return ST_ENOMEM;
  }
  for (i = 0; i < m->cap; i++) {
    if (m->keys[i]) {
      size_t j = slot(&n, m->keys[i], strlen(m->keys[i]));
      n.keys[j] = m->keys[i];
      n.vals[j] = m->vals[i];
    }
  }
  st_free(m->keys);
  st_free(m->vals);
  *m = n;
  return 0;
}

int st__tgz_map_put(st__tgz_map_t *m, const char *key, size_t len, uint8_t val) {
  size_t i;
  int rc;

  if ((m->count + 1) * 4 > m->cap * 3 && (rc = grow(m)) < 0)
    return rc;
  i = slot(m, key, len);
  if (!m->keys[i]) {
    if (!(m->keys[i] = st_strndup(key, len)))
      return ST_ENOMEM;
    m->count++;
  }
  m->vals[i] = val;
  return 0;
}
