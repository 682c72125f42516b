/* ledger.h: the source ledger, what exports read: OSV advisories, OpenVEX documents,
 * policy packs and policy evaluation results (tables of schemas/postgres/0030_ledger.sql),
 * and the Maven artifact index (0060_ledger_maven.sql); this module is the only one with
 * SQL on them.
 *
 * Three parts:
 *   - st_ledger_doc_parse: detect a JSON document's kind by content and validate it
 *     (ledger_osv.c, ledger_vex.c, ledger_policy.c). No I/O. A reject says why, naming the
 *     field by its JSON path (`affected[2].ranges[0].events[1]: ...`).
 *   - st_ledger_loader: load validated documents for one tenant. Advisories go in batched
 *     multi-row inserts (one tenant transaction per batch; COPY cannot target RLS tables);
 *     the other kinds one transaction per document. Idempotent: same canonical digest = no
 *     change; a later `modified` (VEX: last_updated, else timestamp; policy results:
 *     evaluated_at) replaces; policy packs are immutable per name@version.
 *   - st_ledger_iter: ordered reads for the planner and the adapters. Keyset pagination on
 *     the id in byte order (columns are COLLATE "C", so the order is the same on every
 *     database), one READ ONLY tenant transaction per page, filtered by a scope.
 *
 * Ownership: a doc owns its buffers (st_ledger_doc_release); the loader takes each doc
 * given to it; iterator items are borrowed until the next st_ledger_iter_next call.
 * Thread rules: loader and iterator calls block on Postgres (worker threads only, never the
 * libuv loop); one loader or iterator belongs to one thread at a time.
 * Errors: ST_EPARSE/ST_EINVAL/ST_EUTF8/ST_EDEPTH/ST_ERANGE/ST_ETOOBIG from parsing are
 * rejects; from the loader ST_ENOENT (a policy results file names a pack not in the ledger)
 * and ST_ECONFLICT (a policy pack name@version already holds other content) are rejects of
 * that document and nothing of it is written; other codes are st_db.h's.
 */
#ifndef STELLA_LEDGER_H
#define STELLA_LEDGER_H

#include <stddef.h>

#include "stella/buf.h"
#include "stella/db.h"
#include "stella/err.h"
#include "stella/sha256.h"

typedef enum st_ledger_kind {
  ST_LEDGER_ADVISORY = 0,     /* OSV */
  ST_LEDGER_VEX = 1,          /* OpenVEX document */
  ST_LEDGER_POLICY_PACK = 2,  /* stella.policy-pack/v1 */
  ST_LEDGER_POLICY_RESULT = 3, /* stella.policy-results/v1 (a file of many results) */
  ST_LEDGER_MAVEN = 4,        /* a Maven index file row (group, artifact, version, sha1) */
  ST_LEDGER_NKINDS = 5
} st_ledger_kind;

/* "advisory", "vex", "policy_pack", "policy_result", "maven_artifact" (the
 * export_source_kind labels). */
const char *st_ledger_kind_name(st_ledger_kind k);

#define ST_LEDGER_DOC_MAX_BYTES ((size_t)16 << 20)
#define ST_LEDGER_ID_MAX 256

/* A validated document. `row` is a JSON object text holding the table columns (for the
 * batch insert); `key` names the document in messages (its id, @id, name@version). */
typedef struct st_ledger_doc_s {
  st_ledger_kind kind;
  char *key;
  char sha256[ST_SHA256_HEX_LEN + 1]; /* of the RFC 8785 form of the whole document */
  st_buf_t row;
} st_ledger_doc_t;

/* Parse s[0..len), detect the kind (OSV: `id` and `modified`; OpenVEX: an `@context` under
 * https://openvex.dev/ns; policy: `schema` "stella.policy-pack/v1" or
 * "stella.policy-results/v1") and validate it. On failure *out is left empty and err
 * says why; st_ledger_doc_release is safe either way. */
int st_ledger_doc_parse(const char *s, size_t len, st_ledger_doc_t *out, st_error_t *err)
    ST_MUST_CHECK;
void st_ledger_doc_release(st_ledger_doc_t *d);

/* Whether s is an RFC 3339 date-time (`2024-05-01T12:00:00Z`, fractions and offsets
 * allowed, fields in range). */
int st_ledger_rfc3339_valid(const char *s);

/* Qualitative severity of a CVSS v3.x vector ("CVSS:3.1/AV:N/..."): "none", "low",
 * "medium", "high" or "critical"; NULL if the vector is malformed. */
const char *st_ledger_cvss3_severity(const char *vector);
/* The CVSS v3.x base score (0.0..10.0, rounded up to one decimal as the specification
 * says) of a vector; ST_EINVAL if it is malformed. */
int st_ledger_cvss3_score(const char *vector, double *out) ST_MUST_CHECK;

/* ---- Loading ---- */

typedef struct st_ledger_stats_s {
  long long added[ST_LEDGER_NKINDS];
  long long replaced[ST_LEDGER_NKINDS];
  long long unchanged[ST_LEDGER_NKINDS]; /* same digest, or not newer than the stored one */
} st_ledger_stats_t;

typedef struct st_ledger_loader_s st_ledger_loader_t;

#define ST_LEDGER_BATCH_DEFAULT 500

/* A loader for `tenant` (checked) with advisory batches of `batch` (0 = default, max
 * 5000). The pool is borrowed and must outlive the loader. */
int st_ledger_loader_new(st_db_pool_t *pool, const char *tenant, size_t batch,
                         st_ledger_loader_t **out, st_error_t *err) ST_MUST_CHECK;
/* Take doc (its contents move into the loader; *doc is left empty). An advisory may only
 * be queued; other kinds are written now. ST_ENOENT/ST_ECONFLICT reject this document
 * only (see top); any other failure may have lost the queued batch: stop. */
int st_ledger_loader_add(st_ledger_loader_t *l, st_ledger_doc_t *doc, st_error_t *err)
    ST_MUST_CHECK;
/* Write whatever is queued. */
int st_ledger_loader_flush(st_ledger_loader_t *l, st_error_t *err) ST_MUST_CHECK;
const st_ledger_stats_t *st_ledger_loader_stats(const st_ledger_loader_t *l);
/* Free the loader; queued documents not flushed are dropped. NULL is a no-op. */
void st_ledger_loader_free(st_ledger_loader_t *l);

/* ---- Maven artifact index (ledger_maven.c) ----
 * A Maven index file (docs/trivy.md) is text: the header line ST_LEDGER_MAVEN_HEADER,
 * optionally followed by ",modified", then one row per line
 * `group_id,artifact_id,version,sha1,archive_type[,modified]` (LF or CRLF; empty lines
 * skipped; at most ST_LEDGER_MAVEN_LINE_MAX bytes a line). Fields: group and artifact
 * 1..256 bytes of [A-Za-z0-9._-]; version 1..128 printable ASCII bytes without spaces or
 * commas; sha1 40 hex digits (stored lower-case); archive_type (the packaging) "jar" or
 * "aar"; modified an RFC 3339 time or empty. Rows are queued and written in batched
 * multi-row upserts keyed by (group, artifact, version, sha1): the same row again changes
 * nothing, another packaging or a later modified replaces it. */

#define ST_LEDGER_MAVEN_HEADER "group_id,artifact_id,version,sha1,archive_type"
#define ST_LEDGER_MAVEN_LINE_MAX 4096

typedef struct st_ledger_maven_row_s {
  const char *group_id, *artifact_id, *version, *sha1, *packaging;
  const char *modified; /* NULL or "" = none */
} st_ledger_maven_row_t;

/* Check a row; the error names the field. */
int st_ledger_maven_check(const st_ledger_maven_row_t *r, st_error_t *err) ST_MUST_CHECK;
/* Whether text (a file's first bytes) starts with the Maven index header line. */
int st_ledger_maven_detect(const char *text, size_t len);
/* Split one line (no newline; modified in place, fields point into it) into *out and
 * check it. with_modified: the header named the sixth column. */
int st_ledger_maven_parse_line(char *line, int with_modified, st_ledger_maven_row_t *out,
                               st_error_t *err) ST_MUST_CHECK;
/* Queue one row (copied); written by st_ledger_loader_flush or when a batch fills. */
int st_ledger_loader_add_maven(st_ledger_loader_t *l, const st_ledger_maven_row_t *r,
                               st_error_t *err) ST_MUST_CHECK;
/* Load a Maven index file: every good row is queued, every bad one passed to on_reject
 * (line number, reason) and skipped. ST_EPARSE if the header is missing, ST_EIO, or a
 * loader failure (stop). *rejected counts rejected rows (may be NULL). */
int st_ledger_maven_load_file(st_ledger_loader_t *l, const char *path,
                              void (*on_reject)(void *ud, size_t line, const st_error_t *e),
                              void *ud, long long *rejected, st_error_t *err) ST_MUST_CHECK;

/* ---- Reading ---- */

/* What to read. Arrays may be NULL with n = 0 (no restriction). Times are RFC 3339.
 *   ecosystems, severities: advisories only (ecosystem names as given or their base
 *     names: "Debian" matches "Debian:12");
 *   since/until: inclusive bounds on advisories' modified, VEX documents' last update,
 *     policy results' evaluated_at and Maven rows' modified (rows without one are out);
 *   ids: advisory ids or aliases; VEX documents with a statement about one of them; policy
 *     results for one of them (and the packs those results reference); Maven rows whose
 *     "group:artifact" is one of them;
 *   sample_rate in (0, 1]: keep an item iff st_ledger_sample_keep(seed, id, rate). */
typedef struct st_ledger_scope_s {
  const char *const *ecosystems;
  size_t n_ecosystems;
  const char *const *severities;
  size_t n_severities;
  const char *since, *until;
  const char *const *ids;
  size_t n_ids;
  double sample_rate; /* 0 is taken as 1 (everything) */
  const char *seed;   /* "" when NULL */
} st_ledger_scope_t;

/* Deterministic sampling: the first 4 bytes of SHA-256(seed || "\n" || id), big-endian,
 * below floor(rate * 2^32). The same test runs in SQL inside the iterator. */
int st_ledger_sample_keep(const char *seed, const char *id, double rate);

typedef struct st_ledger_item_s {
  st_ledger_kind kind;
  const char *id;       /* advisory id; VEX @id; "name@version"; "name@version\nvuln\npurl";
                         * "group:artifact:version:sha1" */
  const char *digest;   /* doc_sha256 (row_sha256 for a policy result or Maven row) */
  const char *modified; /* RFC 3339 in UTC, as the database prints it ("...+00") */
  const char *doc;      /* JSON text when the iterator reads documents, else NULL (a Maven
                         * row: {group_id, artifact_id, version, sha1, packaging, modified}) */
} st_ledger_item_t;

typedef struct st_ledger_iter_s st_ledger_iter_t;

#define ST_LEDGER_PAGE_DEFAULT 1000

/* An iterator over `tenant`'s items of one kind in scope, in id byte order. with_docs:
 * also read each document (a policy result's "doc" is its row as JSON). page: rows per
 * query (0 = default, max 10000). The scope is copied. */
int st_ledger_iter_new(st_db_pool_t *pool, const char *tenant, st_ledger_kind kind,
                       const st_ledger_scope_t *scope, int with_docs, size_t page,
                       st_ledger_iter_t **out, st_error_t *err) ST_MUST_CHECK;
/* 1 with *item set, 0 at the end, or a negative code. */
int st_ledger_iter_next(st_ledger_iter_t *it, const st_ledger_item_t **item, st_error_t *err)
    ST_MUST_CHECK;
void st_ledger_iter_free(st_ledger_iter_t *it);

#endif
