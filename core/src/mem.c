/* mem.c: allocation wrappers with test-time failure injection. */
#include "stella/mem.h"

#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown = -1;

static int should_fail(void) {
  long n = atomic_load(&fail_countdown);
  if (n < 0)
    return 0;
  if (atomic_fetch_sub(&fail_countdown, 1) == 0) {
    atomic_store(&fail_countdown, -1);
    return 1;
  }
  return 0;
}

void st_mem_fail_after(long n) { atomic_store(&fail_countdown, n); }

void *st_malloc(size_t n) {
  if (should_fail())
    return NULL;
  return malloc(n ? n : 1);
}

void *st_calloc(size_t count, size_t size) {
  if (should_fail())
    return NULL;
  return calloc(count ? count : 1, size ? size : 1);
}

void *st_realloc(void *p, size_t n) {
  if (should_fail())
    return NULL;
  return realloc(p, n ? n : 1);
}

void st_free(void *p) { free(p); }

char *st_strndup(const char *s, size_t n) {
  char *d = st_malloc(n + 1);
  if (!d)
    return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *st_strdup(const char *s) { return st_strndup(s, strlen(s)); }

void st_memzero(void *p, size_t n) { OPENSSL_cleanse(p, n); }
