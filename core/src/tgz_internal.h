/* tgz_internal.h: pieces shared by tgz_write.c and tgz_read.c (path rules, a path map). */
#ifndef STELLA_TGZ_INTERNAL_H
#define STELLA_TGZ_INTERNAL_H

#include <locale.h>
#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"

#define ST__TGZ_CHUNK ((size_t)64 * 1024)

/* Check an entry path (no trailing slash) against the rules in tgz.h. Returns 0 or
 * ST_EUNSAFE with *why set to a static reason. */
int st__tgz_path_check(const char *path, size_t len, const char **why);

/* Switch this thread to a UTF-8 LC_CTYPE around libarchive calls and back, so paths
 * are UTF-8 in pax headers whatever the process locale (libarchive 3.6 crashes on a
 * non-ASCII UTF-8 path in the C locale, and converts through the locale otherwise).
 * enter returns ST_EINTERNAL if the C.UTF-8 locale is missing. */
int st__tgz_locale_enter(locale_t *saved, st_error_t *err) ST_MUST_CHECK;
void st__tgz_locale_leave(locale_t saved);

/* Open-addressing map from path to a small value (the entry kind), for duplicate and
 * file/directory clash detection. Keys are copied. */
typedef struct st__tgz_map_s {
  char **keys;
  uint8_t *vals;
  size_t cap, count;
} st__tgz_map_t;

void st__tgz_map_init(st__tgz_map_t *m);
void st__tgz_map_release(st__tgz_map_t *m);
/* Value stored for key[0..len), or 0 if absent (values must be non-zero). */
uint8_t st__tgz_map_get(const st__tgz_map_t *m, const char *key, size_t len);
/* Insert or overwrite. ST_ENOMEM. */
int st__tgz_map_put(st__tgz_map_t *m, const char *key, size_t len, uint8_t val)
    ST_MUST_CHECK;

#endif
