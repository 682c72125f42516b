/* timeline_redis.c: ingest and settle one Redis batch (see timeline_redis.h). */
#include "timeline/timeline_redis.h"

#include <stdio.h>
#include <string.h>

#include "stella/mem.h"
#include "timeline/timeline_store.h"

/* Ack stored/duplicate in one XACK, dead-letter poison; RETRY stays pending. */
static int settle(redisContext *c, const st_tl_redis_dest_t *d, const st_events_batch_t *b,
                  const st_tl_result_t *res, size_t *dead, st_error_t *err) {
  const char **ids = st_calloc(b->n, sizeof(*ids));
  size_t nack = 0;
  int rc = 0;

  if (!ids)
    return st_fail(err, ST_ENOMEM, "timeline ingest: out of memory");
  for (size_t i = 0; i < b->n && !rc; i++) {
    if (res[i].outcome == ST_TL_STORED || res[i].outcome == ST_TL_DUPLICATE)
      ids[nack++] = b->entries[i].id;
    else if (res[i].outcome == ST_TL_POISON &&
             !(rc = st_events_dead_letter(c, d->dlq, d->stream, d->group, &b->entries[i],
                                          res[i].reason ? res[i].reason : "poison", err)))
      (*dead)++;
  }
  if (!rc && nack)
    rc = st_events_ack(c, d->stream, d->group, ids, nack, err);
  st_free(ids);
  return rc;
}

int st_tl_redis_ingest(redisContext *c, st_db_pool_t *pool, const st_tl_redis_dest_t *d,
                       const st_events_batch_t *b, st_tl_result_t *res,
                       st_tl_metrics_t *metrics, size_t *dead_lettered, st_error_t *ierr,
                       st_error_t *err) {
  char source[ST_TL_SOURCE_MAX + 1];
  st_tl_raw_t *raw = NULL;
  int rc = 0;

  *dead_lettered = 0;
  if (!b->n)
    return 0;
  if (b->n > ST_TL_BATCH_MAX)
    return st_fail(err, ST_EINVAL, "timeline ingest: batch of %zu entries (max %d)", b->n,
                   ST_TL_BATCH_MAX);
  if (snprintf(source, sizeof(source), "redis:%s", d->stream) >= (int)sizeof(source))
    return st_fail(err, ST_EINVAL, "timeline ingest: stream name over %d bytes",
                   ST_TL_SOURCE_MAX - 6);
  if (!(raw = st_calloc(b->n, sizeof(*raw))))
    return st_fail(err, ST_ENOMEM, "timeline ingest: out of memory");
  for (size_t i = 0; i < b->n; i++) {
    const st_events_entry_t *e = &b->entries[i];
    raw[i].source = source;
    /* an unparsable id or an oversized field leaves body NULL: decoded as poison */
    if (!st_tl_stream_id_parse(e->id, &raw[i].seq, &raw[i].seq_minor) && !e->oversized) {
      raw[i].body = e->event;
      raw[i].body_len = e->event_len;
    }
    raw[i].event_id = e->event_id, raw[i].tenant = e->tenant, raw[i].type = e->type;
  }
  /* every entry gets an outcome either way; the code says whether some are RETRY */
  if ((rc = st_tl_ingest_batch(pool, raw, b->n, res, metrics, ierr)))
    ierr->code = rc;
  rc = settle(c, d, b, res, dead_lettered, err);
  st_free(raw);
  return rc;
}
