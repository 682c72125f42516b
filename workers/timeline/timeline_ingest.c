/* timeline_ingest.c: the ingester thread (see timeline_ingest.h). States: no Redis -> connect
 * and create the group (backoff); no pool -> open it (backoff); then batches: pending ones
 * while `pending` is set, new ones otherwise. */
#include "timeline/timeline_ingest.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bgthread.h"
#include "events_source.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/metrics.h"
#include "timeline/timeline_worker.h"
#include "transport.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct st_tl_ingester_s {
  st__bg_t bg;
  char *pg_url, *redis_url;
  char consumer[80];
  char source[ST_TL_SOURCE_MAX + 1];
  redisContext *redis;
  st_db_pool_t *pool;
  int pending; /* re-read our own delivered, unacked entries first */
  st_tl_metrics_t m;
  st_metric_t *m_stored, *m_dup, *m_poison, *m_retry, *m_batch;
};

/* Ack stored/duplicate in one XACK, dead-letter poison; RETRY stays pending. */
static int settle(st_tl_ingester_t *t, const st_events_batch_t *b, const st_tl_result_t *res,
                  st_error_t *err) {
  const char **ids = st_calloc(b->n, sizeof(*ids));
  size_t nack = 0;
  int rc = 0;

  if (!ids)
    return st_fail(err, ST_ENOMEM, "timeline ingest: out of memory");
  for (size_t i = 0; i < b->n && !rc; i++) {
    if (res[i].outcome == ST_TL_STORED || res[i].outcome == ST_TL_DUPLICATE)
      ids[nack++] = b->entries[i].id;
    else if (res[i].outcome == ST_TL_POISON)
      rc = st_events_dead_letter(t->redis, ST_DLQ_STREAM, ST_EVENTS_STREAM, ST_TL_GROUP,
                                 &b->entries[i], res[i].reason ? res[i].reason : "poison", err);
  }
  if (!rc && nack)
    rc = st_events_ack(t->redis, ST_EVENTS_STREAM, ST_TL_GROUP, ids, nack, err);
  st_free(ids);
  return rc;
}

static void count(st_tl_ingester_t *t, const st_tl_result_t *res, size_t n) {
  for (size_t i = 0; i < n; i++)
    st_metric_inc(res[i].outcome == ST_TL_STORED      ? t->m_stored
                  : res[i].outcome == ST_TL_DUPLICATE ? t->m_dup
                  : res[i].outcome == ST_TL_POISON    ? t->m_poison
                                                      : t->m_retry);
  st_metric_inc(t->m_batch);
}

/* One batch: the number of entries read, or a negative code (ST_EREDIS: reconnect). A batch
 * with RETRY entries returns the ingest's transient code after settling the others. */
static int batch(st_tl_ingester_t *t, st_error_t *err) {
  st_events_batch_t b = {0};
  st_tl_raw_t *raw = NULL;
  st_tl_result_t *res = NULL;
  st_error_t ierr = ST_ERROR_INIT;
  int rc, irc = 0;

  if ((rc = st_events_read(t->redis, ST_EVENTS_STREAM, ST_TL_GROUP, t->consumer,
                           ST_TL_INGEST_COUNT, t->pending ? 0 : ST_TL_INGEST_BLOCK_MS,
                           t->pending, &b, err)))
    goto done;
  if (!b.n) {
    t->pending = 0;
    goto done;
  }
  if (!(raw = st_calloc(b.n, sizeof(*raw))) || !(res = st_calloc(b.n, sizeof(*res)))) {
    rc = st_fail(err, ST_ENOMEM, "timeline ingest: out of memory");
    goto done;
  }
  for (size_t i = 0; i < b.n; i++) {
    const st_events_entry_t *e = &b.entries[i];
    raw[i].source = t->source;
    /* an unparsable id or an oversized field leaves body NULL: decoded as poison */
    if (!st_tl_stream_id_parse(e->id, &raw[i].seq, &raw[i].seq_minor) && !e->oversized) {
      raw[i].body = e->event;
      raw[i].body_len = e->event_len;
    }
    raw[i].event_id = e->event_id, raw[i].tenant = e->tenant, raw[i].type = e->type;
  }
  irc = st_tl_ingest_batch(t->pool, raw, b.n, res, &t->m, &ierr);
  count(t, res, b.n);
  if ((rc = settle(t, &b, res, err)))
    goto done;
  for (size_t i = 0; i < b.n; i++)
    if (res[i].outcome == ST_TL_POISON || res[i].outcome == ST_TL_RETRY)
      st_logkv(ST_LOG_WARN, "timeline ingest: entry not stored", "entry", b.entries[i].id,
               "outcome", st_tl_outcome_name(res[i].outcome), "reason",
               res[i].reason ? res[i].reason : "", NULL);
  if (irc) {
    t->pending = 1; /* the RETRY entries are ours, pending: re-read them after the backoff */
    rc = st_fail(err, irc, "timeline ingest: %s", st_error_text(&ierr));
  }
done:
  if (res)
    st_tl_results_release(res, b.n);
  st_free(res);
  st_free(raw);
  rc = rc ? rc : (int)b.n;
  st_events_batch_release(&b);
  return rc;
}

static void drop_redis(st_tl_ingester_t *t) {
  if (t->redis)
    redisFree(t->redis);
  t->redis = NULL;
}

/* 0 when Redis (with the group) and Postgres are both there. */
static int connect_all(st_tl_ingester_t *t, st_error_t *err) {
  if (!t->redis) {
    if (!(t->redis = st__redis_sync(t->redis_url, err)))
      return err->code ? err->code : ST_EREDIS;
    if (st_events_group_create(t->redis, ST_EVENTS_STREAM, ST_TL_GROUP, err)) {
      drop_redis(t);
      return ST_EREDIS;
    }
    t->pending = 1;
  }
  if (!t->pool && st_db_pool_new(t->pg_url, 1, &t->pool, err))
    return err->code;
  return 0;
}

static void *ingest_main(void *arg) {
  st_tl_ingester_t *t = arg;
  unsigned backoff = BACKOFF_MIN_MS;

  while (!st__bg_stopping(&t->bg)) {
    st_error_t err = ST_ERROR_INIT;
    int n = connect_all(t, &err);
    if (!n)
      n = batch(t, &err);
    if (n >= 0) {
      backoff = BACKOFF_MIN_MS;
      continue;
    }
    st_warn("%s; retrying in %u ms", st_error_text(&err), backoff);
    if (n == ST_EREDIS)
      drop_redis(t);
    if (st__bg_wait(&t->bg, backoff))
      break;
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
  }
  return NULL;
}

int st_tl_ingester_start(const char *pg_url, const char *redis_url, st_tl_ingester_t **out,
                         st_error_t *err) {
  st_tl_ingester_t *t = st_calloc(1, sizeof(*t));
  char host[HOST_NAME_MAX + 1] = "";
  int rc = 0;

  *out = NULL;
  if (!t || !(t->pg_url = st_strdup(pg_url)) || !(t->redis_url = st_strdup(redis_url))) {
    rc = st_fail(err, ST_ENOMEM, "timeline ingest: out of memory");
    goto fail;
  }
  if (gethostname(host, sizeof(host)) != 0 || !*host)
    snprintf(host, sizeof(host), "localhost");
  host[sizeof(host) - 1] = '\0';
  snprintf(t->consumer, sizeof(t->consumer), "timeline-%.60s", host);
  snprintf(t->source, sizeof(t->source), "redis:%s", ST_EVENTS_STREAM);
  t->m_stored = st_metric_counter("stella_timeline_ingested_total", "Timeline events by outcome",
                                  NULL, "stored");
  t->m_dup = st_metric_counter("stella_timeline_ingested_total", "Timeline events by outcome",
                               NULL, "duplicate");
  t->m_poison = st_metric_counter("stella_timeline_ingested_total",
                                  "Timeline events by outcome", NULL, "poison");
  t->m_retry = st_metric_counter("stella_timeline_ingested_total", "Timeline events by outcome",
                                 NULL, "retry");
  t->m_batch = st_metric_counter("stella_timeline_batches_total", "Timeline ingest batches",
                                 NULL, NULL);
  if ((rc = st__bg_start(&t->bg, ingest_main, t, err)))
    goto fail;
  st_info("timeline ingest: consumer %s of group " ST_TL_GROUP " on " ST_EVENTS_STREAM,
          t->consumer);
  *out = t;
  return 0;
fail:
  if (t) {
    st_free(t->pg_url);
    st_free(t->redis_url);
    st_free(t);
  }
  return rc;
}

void st_tl_ingester_stop(st_tl_ingester_t *t) {
  if (!t)
    return;
  st__bg_stop(&t->bg);
  drop_redis(t);
  st_db_pool_free(t->pool);
  st_free(t->pg_url);
  st_free(t->redis_url);
  st_free(t);
}
