/* mem.h: every allocation in Stella goes through these wrappers.
 *
 * One place to count, fail or hook allocations: tests call st_mem_fail_after(n) to make
 * the nth allocation from now fail (curl's torture mode), proving every caller handles
 * ST_ENOMEM and leaks nothing. The wrappers return NULL on failure and never abort.
 *
 * Thread rules: safe from any thread. The failure counter is process-wide and atomic;
 * use it only in single-threaded tests.
 */
#ifndef STELLA_MEM_H
#define STELLA_MEM_H

#include <stddef.h>

void *st_malloc(size_t n);
void *st_calloc(size_t count, size_t size);
void *st_realloc(void *p, size_t n);
void st_free(void *p);
char *st_strdup(const char *s);
char *st_strndup(const char *s, size_t n);

/* Make the allocation `n` calls from now fail (0 = next); -1 disables injection. */
void st_mem_fail_after(long n);

/* Overwrite n bytes with zeros in a way the compiler cannot elide (for secrets). */
void st_memzero(void *p, size_t n);

#endif
