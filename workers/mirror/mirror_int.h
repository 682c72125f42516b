/* mirror_int.h: what the mirror sources share (mirror_util.c: files, times, indexes and
 * mirror.json; mirror_tuf.c: TUF metadata; mirror_build.c: the builder; mirror_apply.c:
 * import and verification). */
#ifndef STELLA_WORKERS_MIRROR_INT_H
#define STELLA_WORKERS_MIRROR_INT_H

#include <jansson.h>
#include <stdio.h>

#include "mirror.h"
#include "stella/buf.h"

#define ST__MIRROR_SCHEMA "stella.mirror/v1"
#define ST__MIRROR_DELTA_SCHEMA "stella.mirror-delta/v1"
#define ST__MIRROR_STATE_SCHEMA "stella.mirror-state/v1"
#define ST__MIRROR_ID_MAX 1024
#define ST__MIRROR_LINE_MAX ((size_t)ST__MIRROR_ID_MAX * 6 + 256) /* an index line */
#define ST__MIRROR_BLOB_MAX ((size_t)16 << 20) /* a document (ST_LEDGER_DOC_MAX_BYTES) */
#define ST__MIRROR_META_MAX ((size_t)1 << 20)  /* mirror.json, delta.json, TUF files */

/* One index entry. off: where the blob is in the builder's spool (-1: not spooled). */
typedef struct st__mentry_s {
  char *id;
  uint8_t sha[ST_SHA256_LEN];
  long long size;
  long long off;
} st__mentry_t;

typedef struct st__mlist_s {
  st__mentry_t *v;
  size_t n, cap;
} st__mlist_t;

int st__mlist_push(st__mlist_t *l, const char *id, const uint8_t sha[ST_SHA256_LEN], long long size,
                   long long off, st_error_t *err);
/* Sort by id bytes; ST_EEXIST on a repeated id (naming dir). */
int st__mlist_sort(st__mlist_t *l, const char *dir, st_error_t *err);
void st__mlist_release(st__mlist_t *l);

/* Files. */
int st__mirror_mkdirs(const char *path, st_error_t *err);
void st__mirror_rmtree(const char *path);
int st__mirror_write(const char *path, const void *data, size_t len, st_error_t *err);
int st__mirror_read(const char *path, size_t max, st_buf_t *out, st_error_t *err);
int st__mirror_exists(const char *path);
/* "<dir>/<rel>" into out (reset first). */
int st__mirror_path(st_buf_t *out, const char *dir, const char *rel, st_error_t *err);
/* blobs/sha256/<hh>/<hex> relative path for a digest (out: ST__MIRROR_BLOB_REL bytes). */
#define ST__MIRROR_BLOB_REL 96
void st__mirror_blob_rel(const uint8_t sha[ST_SHA256_LEN], char *out);

/* Times: RFC 3339 "YYYY-MM-DDTHH:MM:SSZ" <-> epoch seconds. */
void st__mirror_time_format(int64_t t, char out[21]);
int st__mirror_time_parse(const char *s, int64_t *out);

/* An index line {"id","sha256","size"} (canonical) appended to out, with a newline. */
int st__mirror_index_line(st_buf_t *out, const st__mentry_t *e, st_error_t *err);
/* Parse an index line (or, with ops, a patch line; *del set for "del"). */
int st__mirror_index_parse(const char *line, size_t len, int patch, st__mentry_t *e, int *del,
                           st_error_t *err);
/* Read an index file into l (sorted, unique ids checked). */
int st__mirror_index_load(const char *path, st__mlist_t *l, st_error_t *err);

/* mirror.json: {schema, tenant, created, directories {name: {count, index {path, sha256,
 * size}}}, blobs {count, bytes}} in canonical form: content only (no profile, no signing
 * time), so a full and a delta of the same ledger state give the same file. */
typedef struct st__mirror_sum_s {
  long long count[ST_MIRROR_NDIRS];
  uint8_t index_sha[ST_MIRROR_NDIRS][ST_SHA256_LEN];
  long long index_size[ST_MIRROR_NDIRS];
  long long blobs, blob_bytes;
} st__mirror_sum_t;
int st__mirror_json(const char *tenant, const char *created, const st__mirror_sum_t *s,
                    st_buf_t *out, st_error_t *err);
/* The README.md text for the receiving side. */
const char *st__mirror_readme(void);

/* TUF. Canonical JSON in the OLPC form TUF signs over (keys sorted by bytes, only '"' and
 * '\\' escaped, integers only). */
int st__tuf_canonical(const json_t *v, st_buf_t *out, st_error_t *err);
/* Write tree/tuf/{root,targets,snapshot,timestamp}.json over the tree's targets. */
int st__tuf_write(const char *tree, st_signer_t *signer, const st_mirror_opts_t *o,
                  st_error_t *err);
/* Check tree/tuf against trust (and, when old_tree is set, against its TUF versions). */
int st__tuf_verify(const char *tree, const st_mirror_trust_t *trust, const char *old_tree,
                   st_error_t *err);

#endif
