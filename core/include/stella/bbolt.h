/* bbolt.h: write a fresh BoltDB (go.etcd.io/bbolt) file bottom-up from sorted input.
 *
 * What for: the Trivy DB adapter produces trivy.db, a bbolt file that stock Trivy opens
 * read-only. There is no Go and no bbolt library in the product: this writer emits the
 * on-disk format directly (page size 4096, little-endian as on x86-64 and arm64).
 *
 * Input model: the caller streams one depth-first walk of the bucket tree. Inside a bucket,
 * keys (st_bbolt_put) and sub-buckets (st_bbolt_bucket_begin ... st_bbolt_bucket_end) are
 * interleaved in strictly increasing bytewise key order (memcmp, a prefix sorts first),
 * which is how bbolt stores them: a sub-bucket's name is a key of its parent. The top level
 * holds buckets only, as in bbolt.
 *
 * Layout (see core/src/bbolt_page.c): pages 0 and 1 are the meta pages (txid 0 and 1,
 * FNV-1a checksums), page 2 an empty freelist, data from page 3 on, written in one forward
 * pass. A bucket's leaf pages are written as they fill and its branch levels as they fill
 * in turn, so a child bucket's pages land before the parent page that points at them, and
 * the root bucket's root page is the last page. A bucket with no sub-buckets whose leaf fits
 * in pageSize/4 bytes is stored inline in its parent (bbolt's own rule); others get pages.
 * Values and keys larger than a page go on overflow pages.
 *
 * Memory: per open bucket, one pending page per tree level plus its last key; never the
 * whole DB. Same input => byte-identical file.
 *
 * Ownership: st_bbolt_writer_new returns a writer the caller frees with
 * st_bbolt_writer_free. Key/value pointers are only read during the call.
 * Thread rules: one writer, one thread at a time; distinct writers are independent.
 *
 * Errors: bad input (ST_EINVAL: empty or out-of-order key, put at the top level, end
 * without begin, finish with an open bucket; ST_ETOOBIG: key over ST_BBOLT_MAX_KEY or value
 * over ST_BBOLT_MAX_VALUE; ST_EDEPTH: nesting past ST_BBOLT_MAX_DEPTH) is refused before
 * anything changes, so the caller may skip that item and go on. ST_EIO and ST_ENOMEM leave
 * the writer failed: every later call returns ST_EIO; only st_bbolt_writer_free remains,
 * and it removes the temporary file. The target path is only created by a successful
 * st_bbolt_writer_finish (temporary file + fsync + rename).
 */
#ifndef STELLA_BBOLT_H
#define STELLA_BBOLT_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"

#define ST_BBOLT_PAGE_SIZE 4096
#define ST_BBOLT_MAX_KEY 32768                          /* bbolt MaxKeySize */
#define ST_BBOLT_MAX_VALUE (((size_t)1 << 31) - 2)      /* bbolt MaxValueSize */
#define ST_BBOLT_MAX_DEPTH 64                           /* nested buckets below the top */

typedef struct st_bbolt_writer_s st_bbolt_writer_t;

/* Counters over every bucket except the root one, defined as bbolt's Bucket.Stats() summed
 * over the top-level buckets (so a test can compare them with bbolt's own view), plus the
 * file's page count (meta pgid). */
typedef struct st_bbolt_stats_s {
  uint64_t buckets;         /* BucketN */
  uint64_t inline_buckets;  /* InlineBucketN */
  uint64_t keys;            /* KeyN: leaf elements, sub-bucket entries included */
  uint64_t leaf_pages;      /* LeafPageN (page-backed leaves, one per node) */
  uint64_t leaf_overflow;   /* LeafOverflowN */
  uint64_t branch_pages;    /* BranchPageN */
  uint64_t branch_overflow; /* BranchOverflowN */
  uint64_t pages;           /* high-water mark: file size / ST_BBOLT_PAGE_SIZE */
} st_bbolt_stats_t;

/* Start a DB that will be published at `path`. Creates `<path>.tmp-XXXXXX` beside it.
 * ST_EINVAL for a NULL/empty path, ST_EIO when the directory is not writable. */
int st_bbolt_writer_new(const char *path, st_bbolt_writer_t **out, st_error_t *err);

/* Open sub-bucket `name` (1..ST_BBOLT_MAX_KEY bytes) in the current bucket (the root at
 * first). The name must sort after the previous key or bucket name at this level. */
int st_bbolt_bucket_begin(st_bbolt_writer_t *w, const void *name, size_t len,
                          st_error_t *err);

/* Add key => value to the current bucket. val may be NULL only when vlen is 0. */
int st_bbolt_put(st_bbolt_writer_t *w, const void *key, size_t klen, const void *val,
                 size_t vlen, st_error_t *err);

/* Close the current bucket and record it in its parent (inline or page-backed). */
int st_bbolt_bucket_end(st_bbolt_writer_t *w, st_error_t *err);

/* Write the root bucket and the meta pages, fsync, rename onto the path, fsync the
 * directory. After success only st_bbolt_writer_stats and st_bbolt_writer_free apply.
 * Every failure but the last step leaves the path untouched; a failed directory fsync
 * (ST_EIO) comes after the rename, with the complete file already in place. */
int st_bbolt_writer_finish(st_bbolt_writer_t *w, st_error_t *err);

/* Counters so far (complete after finish). */
void st_bbolt_writer_stats(const st_bbolt_writer_t *w, st_bbolt_stats_t *out);

/* Free the writer; if it was not finished, remove the temporary file. NULL is a no-op. */
void st_bbolt_writer_free(st_bbolt_writer_t *w);

#endif
