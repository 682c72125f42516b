/* timeline_store.h: write decoded timeline events to Postgres, deduplicated.
 *
 * A batch is split by tenant; each tenant's events go in one tenant transaction
 * (st_db_tenant_tx: RLS sees that tenant only) as ONE statement: the rows travel as a JSON
 * array expanded by jsonb_to_recordset (COPY cannot target an RLS table; docs/timeline.md
 * compares this with staging through a temp table), inserted with ON CONFLICT DO NOTHING on
 * (tenant_id, event_id), with their payloads and evidence links. The statement returns the
 * rows it inserted; every other event of the group was already stored (or repeated within
 * the batch): a duplicate. Events are stored with their source and source sequence, never
 * with an arrival counter.
 *
 * Failures: if a tenant's transaction fails transiently (lost connection, serialization,
 * pool timeout: st_err_classify says transient) its events are marked ST_TL_RETRY and nothing
 * of them is stored: the caller must not acknowledge them, so the transport redelivers. If it
 * fails permanently (a row the database refuses), the group is retried one event at a time
 * and the refused events become ST_TL_POISON; the rest are stored. Other tenants' groups go
 * on either way.
 *
 * Threads: blocking (libpq); worker threads only. The pool may be shared.
 */
#ifndef STELLA_TIMELINE_STORE_H
#define STELLA_TIMELINE_STORE_H

#include <stddef.h>

#include "stella/db.h"
#include "stella/err.h"
#include "timeline/timeline_event.h"

typedef enum st_tl_outcome {
  ST_TL_PENDING = 0, /* not decided yet (input to st_tl_store_batch: store it) */
  ST_TL_STORED,      /* new: inserted now -> ack */
  ST_TL_DUPLICATE,   /* already stored, or repeated in this batch -> ack */
  ST_TL_POISON,      /* can never be stored -> dead-letter, then ack */
  ST_TL_RETRY,       /* transient failure, nothing stored -> do NOT ack (redelivered) */
} st_tl_outcome;

const char *st_tl_outcome_name(st_tl_outcome o);

/* Store events[i] for which outcome[i] == ST_TL_PENDING; set each such outcome[i] to
 * STORED, DUPLICATE, POISON or RETRY. reason[i] (an array of n, may be NULL) receives a
 * message for POISON and RETRY outcomes (caller frees with st_free; NULL otherwise).
 * Returns 0 when every group committed or was settled (POISON included), else the code of
 * the first transient failure (ST_EDBRETRY, ST_ETIMEDOUT, ...) with detail in err; the
 * outcomes are set either way. */
int st_tl_store_batch(st_db_pool_t *pool, const st_tl_event_t *events, size_t n,
                      st_tl_outcome *outcome, char **reason, st_error_t *err) ST_MUST_CHECK;

#endif
