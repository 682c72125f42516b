/* bbolt_internal.h: state shared by the bbolt writer's two files.
 *
 * bbolt_writer.c owns the public API: input validation, the stack of open buckets and the
 * temporary file's lifecycle. bbolt_page.c owns the on-disk format: the B+tree levels of
 * one bucket, page images, inline bucket values and the meta pages.
 */
#ifndef STELLA_BBOLT_INTERNAL_H
#define STELLA_BBOLT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "stella/bbolt.h"

/* A branch page holds at least two children, so a tree over 2^64 pages stays below this. */
#define ST__BBOLT_MAX_LEVELS 66

#define ST__BBOLT_HDR 16  /* page header: id u64, flags u16, count u16, overflow u32 */
#define ST__BBOLT_ELEM 16 /* leaf and branch element headers are both 16 bytes */
#define ST__BBOLT_INLINE_MAX (ST_BBOLT_PAGE_SIZE / 4)

/* One pending element: key (and value) bytes live at `off` in the level's data. */
typedef struct st__bbolt_elem_s {
  uint32_t flags; /* leaf: 0 or 1 (sub-bucket) */
  uint32_t klen;
  uint32_t vlen;  /* leaf only */
  uint64_t pgid;  /* branch only */
  size_t off;
} st__bbolt_elem_t;

/* The page being filled at one level of one bucket's tree (0 = leaves). */
typedef struct st__bbolt_level_s {
  st__bbolt_elem_t *elems;
  size_t count, elems_cap;
  unsigned char *data;
  size_t dlen, dcap;
  size_t size;      /* bytes of the page if written now */
  uint64_t flushed; /* pages already written at this level */
} st__bbolt_level_t;

/* One open bucket (frame 0 is the root bucket). */
typedef struct st__bbolt_frame_s {
  unsigned char *name; /* NULL for the root */
  size_t name_len;
  unsigned char *last; /* previous key or bucket name here, for the order check */
  size_t last_len, last_cap;
  int has_last;
  int has_sub;         /* holds a sub-bucket: never inline */
  size_t nlevels;
  st__bbolt_level_t levels[ST__BBOLT_MAX_LEVELS];
} st__bbolt_frame_t;

struct st_bbolt_writer_s {
  char *path;
  char *dir; /* directory of path, synced after the rename */
  char *tmp_path;
  FILE *fp;
  uint64_t next_pgid;
  size_t depth; /* open buckets below the root; frames[depth] is the current one */
  st__bbolt_frame_t frames[ST_BBOLT_MAX_DEPTH + 1];
  unsigned char *scratch; /* one page image being assembled */
  size_t scratch_cap;
  unsigned char inline_val[ST__BBOLT_HDR + ST__BBOLT_INLINE_MAX];
  st_bbolt_stats_t stats;
  int failed;
  int finished;
};

/* Add a leaf element (li 0) or branch element (li > 0) to frame f, flushing the level's
 * page first when the element does not fit. */
int st__bbolt_level_add(st_bbolt_writer_t *w, st__bbolt_frame_t *f, size_t li,
                        uint32_t flags, const void *key, size_t klen, const void *val,
                        size_t vlen, uint64_t pgid, st_error_t *err);

/* Finish frame f's tree and return its root page id in *root. */
int st__bbolt_close_tree(st_bbolt_writer_t *w, st__bbolt_frame_t *f, uint64_t *root,
                         st_error_t *err);

/* Whether frame f (not the root) is stored inline, and if so its value in w->inline_val. */
int st__bbolt_inline_value(st_bbolt_writer_t *w, st__bbolt_frame_t *f, size_t *vlen);

/* The free-list page (page 2) and the two meta pages. */
int st__bbolt_write_freelist(st_bbolt_writer_t *w, st_error_t *err);
int st__bbolt_write_metas(st_bbolt_writer_t *w, uint64_t root, st_error_t *err);

/* Drop a frame's pending pages (buffers kept for reuse) / free everything it holds. */
void st__bbolt_frame_reset(st__bbolt_frame_t *f);
void st__bbolt_frame_release(st__bbolt_frame_t *f);

#endif
