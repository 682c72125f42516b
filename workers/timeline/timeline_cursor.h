/* timeline_cursor.h (internal to workers/timeline): the query cursor codec.
 * See timeline_query.h for the cursor's contract; timeline_cursor.c for the format. */
#ifndef STELLA_TIMELINE_CURSOR_H
#define STELLA_TIMELINE_CURSOR_H

#include "timeline/timeline_query.h"

/* The sort key of one row; strings owned (st__tl_sortkey_release). */
typedef struct st_tl_sortkey_s {
  char *occurred_at, *source, *event_id;
  uint64_t seq, seq_minor;
} st_tl_sortkey_t;

/* Hex SHA-256 binding a cursor to the tenant and every filter field. ST_ECRYPTO. */
int st__tl_filter_hash(const char *tenant, const st_tl_filter_t *f, char hex[65]);
/* *out: the token (st_free). ST_ECONFIG without a usable key. */
int st__tl_cursor_encode(const st_tl_cursor_key_t *key, const char *fhash,
                         const st_tl_sortkey_t *k, char **out, st_error_t *err);
/* ST_EVERIFY for any token that is malformed, not signed by key, or bound to another
 * filter hash; on success k is filled. */
int st__tl_cursor_decode(const st_tl_cursor_key_t *key, const char *fhash, const char *token,
                         st_tl_sortkey_t *k, st_error_t *err);
void st__tl_sortkey_release(st_tl_sortkey_t *k);

#endif
