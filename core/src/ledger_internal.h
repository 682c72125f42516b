/* ledger_internal.h: pieces shared by the ledger's validators (ledger_osv.c, ledger_vex.c,
 * ledger_policy.c), its kind detection (ledger_doc.c) and its loader. */
#ifndef STELLA_LEDGER_INTERNAL_H
#define STELLA_LEDGER_INTERNAL_H

#include <jansson.h>

#include "stella/ledger.h"

#define ST__LEDGER_BATCH_BYTES ((size_t)32 << 20)

/* A loader (ledger_load.c); the Maven queue is ledger_maven.c's. */
struct st_ledger_loader_s {
  st_db_pool_t *pool;
  char tenant[ST_DB_TENANT_MAX + 1];
  size_t batch, queued;
  st_buf_t rows; /* "[row,row,..." while queued > 0 */
  size_t mqueued;
  st_buf_t maven; /* Maven rows, the same way */
  st_ledger_stats_t stats;
};

/* Write the queued Maven rows (one tenant transaction). */
int st__ledger_maven_flush(st_ledger_loader_t *l, st_error_t *err);

/* Validators: set d->key and *row (a new object of the table columns, without "doc") from
 * the parsed document. Error messages start with the JSON path of the offending field. */
int st__ledger_osv(const json_t *doc, st_ledger_doc_t *d, json_t **row, st_error_t *err);
int st__ledger_vex(const json_t *doc, st_ledger_doc_t *d, json_t **row, st_error_t *err);
int st__ledger_policy_pack(const json_t *doc, st_ledger_doc_t *d, json_t **row,
                           st_error_t *err);
int st__ledger_policy_results(const json_t *doc, st_ledger_doc_t *d, json_t **row,
                              st_error_t *err);

/* obj[key] as a non-empty string of at most max bytes without control characters: 0 and
 * *out set; ST_ENOENT if absent (when optional, no error is recorded); ST_EINVAL naming
 * `path.key` otherwise. */
int st__ledger_str(const json_t *obj, const char *path, const char *key, size_t max,
                   int optional, const char **out, st_error_t *err);
/* Same for an RFC 3339 date-time. */
int st__ledger_time(const json_t *obj, const char *path, const char *key, int optional,
                    const char **out, st_error_t *err);
/* Append `row` (an object without "doc") with "doc": <canonical document> spliced in, or
 * just `row` when canon is NULL, to out. */
int st__ledger_row(const json_t *row, const st_buf_t *canon, st_buf_t *out, st_error_t *err);

#endif
