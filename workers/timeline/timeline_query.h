/* timeline_query.h: read the timeline: filtered lists with keyset pagination, one event by
 * id, and the evidence linked to an event.
 *
 * Order: every list is sorted by (occurred_at, source, source_seq, source_seq_minor,
 * event_id): time, then the position in the source, never arrival order. Pagination is
 * keyset: a page's next_cursor carries the last row's sort key, so a page costs the same at
 * any depth and concurrent inserts never shift rows between pages.
 *
 * Cursors are opaque: base64url(JSON {v, f, k}) "." base64url(HMAC-SHA256(key, JSON)), where
 * k is the sort key and f a SHA-256 of the tenant and every filter field (not the limit).
 * A cursor whose MAC does not verify under the server key (forged, altered, truncated) or
 * whose f differs from the query's (another filter, another tenant) is refused with
 * ST_EVERIFY, never silently reinterpreted.
 *
 * Tenancy: every call runs in a read-only st_db_tenant_txf for `tenant` (RLS) and also
 * filters on it. Another tenant's event is simply not found (ST_ENOENT), never "forbidden".
 *
 * Ownership: results are allocated by the call; release with the matching _release.
 * Threads: blocking (libpq); worker threads only. Errors: ST_EINVAL (a bad filter field,
 * named), ST_EVERIFY (cursor), ST_ENOENT (no such event), the st_db_* codes.
 */
#ifndef STELLA_TIMELINE_QUERY_H
#define STELLA_TIMELINE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "stella/db.h"
#include "stella/err.h"

#define ST_TL_LIMIT_DEFAULT 50
#define ST_TL_LIMIT_MAX 500
#define ST_TL_CURSOR_MAX 2048    /* bytes of a cursor string */
#define ST_TL_CURSOR_KEY_MIN 16  /* bytes of the server's cursor key */

/* Filters; NULL fields are not applied. since is inclusive, until exclusive (RFC 3339). */
typedef struct st_tl_filter_s {
  const char *type, *since, *until, *subject, *digest, *trace_id, *actor, *correlation_id;
  size_t limit; /* 1..ST_TL_LIMIT_MAX; 0 = ST_TL_LIMIT_DEFAULT */
} st_tl_filter_t;

/* One event's list fields; optional ones NULL when absent. Times are UTC,
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
typedef struct st_tl_row_s {
  char *event_id, *source, *type, *occurred_at, *subject, *actor, *trace_id,
      *correlation_id, *ingested_at;
  uint64_t seq, seq_minor;
  int legal_hold; /* 1 when a bundle the event links is under an active legal hold */
} st_tl_row_t;

typedef struct st_tl_page_s {
  st_tl_row_t *rows;
  size_t n;
  char *next_cursor; /* NULL on the last page */
} st_tl_page_t;

/* The server's cursor key (HMAC), at least ST_TL_CURSOR_KEY_MIN bytes. Borrowed. */
typedef struct st_tl_cursor_key_s {
  const unsigned char *key;
  size_t len;
} st_tl_cursor_key_t;

/* One page of events of `tenant` matching f, after `cursor` (NULL = from the start). */
int st_tl_query(st_db_pool_t *pool, const char *tenant, const st_tl_filter_t *f,
                const char *cursor, const st_tl_cursor_key_t *key, st_tl_page_t *page,
                st_error_t *err) ST_MUST_CHECK;
void st_tl_page_release(st_tl_page_t *page);

/* One event with its payload (JSON object text, caller frees *payload with st_free). */
int st_tl_get(st_db_pool_t *pool, const char *tenant, const char *event_id, st_tl_row_t *row,
              char **payload, st_error_t *err) ST_MUST_CHECK;
void st_tl_row_release(st_tl_row_t *row);
/* The row as the API and `stella timeline --json` show it: event_id, type, occurred_at,
 * source, source_seq, source_seq_minor, subject, actor, trace_id, correlation_id,
 * ingested_at (absent ones null), legal_hold (boolean). New reference (json_decref); NULL
 * when out of memory. */
json_t *st_tl_row_json(const st_tl_row_t *r);

/* Evidence linked to an event, sorted by digest. legal_hold is 1 when the linked bundle is
 * under an active legal hold: a case of the tenant in evidence_holds, not released, whose
 * evidence_hold_items name the bundle (schemas/postgres/0050_evidence.sql). A link without
 * a bundle_id is never held. */
typedef struct st_tl_link_s {
  char *digest, *bundle_id, *manifest_ref; /* bundle_id, manifest_ref may be NULL */
  int legal_hold;
} st_tl_link_t;

/* ST_ENOENT when the tenant has no such event; an event without links gives *n = 0. */
int st_tl_evidence(st_db_pool_t *pool, const char *tenant, const char *event_id,
                   st_tl_link_t **links, size_t *n, st_error_t *err) ST_MUST_CHECK;
void st_tl_links_free(st_tl_link_t *links, size_t n);

#endif
