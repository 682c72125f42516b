/* trivy_internal.h: pieces shared by the Trivy adapters: the bounded external sort
 * (trivy_sort.c), the OSV-to-Trivy mapping (trivy_osv.c) and the metadata/tarball
 * writer (trivy_meta.c). */
#ifndef STELLA_WORKERS_TRIVY_INTERNAL_H
#define STELLA_WORKERS_TRIVY_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "stella/buf.h"
#include "trivy.h"

/* ---- external sort of (key, tie, value) records ----
 * Records are ordered by key bytes (memcmp, a prefix first), then by tie bytes. Adding
 * copies the record into a buffer of `mem` bytes; a full buffer is sorted and written to
 * an unlinked temporary file in dir (a run). Reading merges the runs. */
typedef struct st__tsort_s st__tsort_t;

typedef struct st__trec_s {
  const uint8_t *key, *tie, *val;
  size_t klen, tlen, vlen;
} st__trec_t;

int st__tsort_new(const char *dir, size_t mem, st__tsort_t **out, st_error_t *err);
int st__tsort_add(st__tsort_t *s, const st__trec_t *r, st_error_t *err);
/* Switch to reading (no more adds). */
int st__tsort_start(st__tsort_t *s, st_error_t *err);
/* 1 with *r set (valid until the next call), 0 at the end, or a negative code. */
int st__tsort_next(st__tsort_t *s, st__trec_t *r, st_error_t *err);
uint64_t st__tsort_runs(const st__tsort_t *s);
void st__tsort_free(st__tsort_t *s);

/* Serialised records of one document before they go to the sorter: u32 klen, tlen, vlen,
 * then the bytes. Keys are the bucket path and key joined by NUL bytes (names never hold
 * NUL), so bytewise order of the joined form is the order bbolt needs level by level. */
int st__trec_append(st_buf_t *b, const st_buf_t *key, const char *tie, const char *val,
                    size_t vlen, st_error_t *err);

/* ---- OSV mapping ---- */

typedef struct st__tmap_opts_s {
  const char *source_id, *source_name, *source_url;
} st__tmap_opts_t;

/* Map a validated OSV document to records appended to out (nothing appended on error).
 * *withdrawn = 1 (and nothing appended) for a withdrawn advisory. modified_out gets the
 * document's `modified` normalised to UTC seconds ("YYYY-MM-DDTHH:MM:SSZ"). */
int st__trivy_map_osv(const json_t *doc, const st__tmap_opts_t *o, st_buf_t *out,
                      int *withdrawn, char modified_out[32], st_error_t *err);

/* ---- times, metadata, tarball ---- */

/* RFC 3339 -> seconds since the epoch (UTC), fractions dropped. ST_EINVAL if malformed. */
int st__trivy_time(const char *s, int64_t *out);
/* Seconds -> "YYYY-MM-DDTHH:MM:SSZ" (out holds 32 bytes). */
void st__trivy_time_fmt(int64_t t, char out[32]);
/* The options' UpdatedAt or `latest` (seconds), checked. */
int st__trivy_updated_at(const st_trivy_opts_t *o, int64_t latest, int64_t *out,
                         st_error_t *err);
/* Write metadata.json {"Version","NextUpdate","UpdatedAt","DownloadedAt"} (Go's field
 * order) and `tarball` holding `db_name` and metadata.json, atomically, in dir. */
int st__trivy_publish(const char *dir, const char *db_name, const char *tarball,
                      int version, int64_t updated, const st_trivy_opts_t *o,
                      st_trivy_result_t *res, st_error_t *err);
/* asprintf through st_malloc: 0 and *out (st_free it), or -1 with *out NULL. */
int st__trivy_fmt(char **out, const char *fmt, ...) ST_PRINTF(2, 3);
/* dir/name in a new string (NULL on allocation failure). */
char *st__trivy_path(const char *dir, const char *name);
/* Create dir (and no parents) unless it exists as a directory. */
int st__trivy_mkdir(const char *dir, st_error_t *err);

#endif
