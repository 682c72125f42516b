/* timeline_nats.c: the NATS ingester thread (see timeline_nats.h). States: no consumer ->
 * open it (backoff); no pool -> open it (backoff); then fetch, ingest, settle. */
#include "timeline/timeline_nats.h"

#include <string.h>

#include "bgthread.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "timeline/timeline_ingest.h"
#include "timeline/timeline_metrics.h"

struct st_tl_nats_ingester_s {
  st__bg_t bg;
  char *pg_url, *url, *stream, *subject, *durable, *dlq_subject;
  st_nats_source_opts_t opts; /* pointing at the copies above */
  st_nats_source_t *src;
  st_db_pool_t *pool;
  st_tl_metrics_t m;
  st_tl_prom_t prom;
};

/* Ack stored/duplicate, dead-letter poison; RETRY stays un-acked (redelivered after
 * ack_wait). *dead counts the dead-lettered. */
static int settle(st_tl_nats_ingester_t *t, st_nats_batch_t *b, const st_tl_result_t *res,
                  size_t *dead, st_error_t *err) {
  int rc = 0;
  for (size_t i = 0; i < b->n && !rc; i++) {
    if (res[i].outcome == ST_TL_STORED || res[i].outcome == ST_TL_DUPLICATE)
      rc = st_nats_ack(b, i, err);
    else if (res[i].outcome == ST_TL_POISON &&
             !(rc = st_nats_dead_letter(t->src, b, i, res[i].reason ? res[i].reason : "poison",
                                        err)))
      (*dead)++;
  }
  return rc;
}

static void backlog(st_tl_nats_ingester_t *t) {
  st_error_t err = ST_ERROR_INIT;
  long long lag, pending;
  if (st_nats_backlog(t->src, &lag, &pending, &err))
    st_debug("timeline nats: %s", st_error_text(&err));
  else
    st_tl_prom_backlog(&t->prom, lag, pending);
}

/* One fetch: the number of messages, or a negative code (ST_ENET: reopen the consumer). */
static int batch(st_tl_nats_ingester_t *t, st_error_t *err) {
  st_nats_batch_t b = {0};
  st_tl_raw_t *raw = NULL;
  st_tl_result_t *res = NULL;
  st_error_t ierr = ST_ERROR_INIT;
  size_t dead = 0;
  int rc, irc;

  if ((rc = st_nats_fetch(t->src, ST_TL_INGEST_COUNT, ST_TL_INGEST_BLOCK_MS, &b, err)))
    return rc;
  backlog(t);
  if (!b.n)
    goto done;
  if (!(raw = st_calloc(b.n, sizeof(*raw))) || !(res = st_calloc(b.n, sizeof(*res)))) {
    rc = st_fail(err, ST_ENOMEM, "timeline nats: out of memory");
    goto done;
  }
  for (size_t i = 0; i < b.n; i++) {
    const st_nats_msg_t *m = &b.msgs[i];
    raw[i] = (st_tl_raw_t){st_nats_source_name(t->src), m->stream_seq, 0, m->data, m->len,
                           m->event_id, m->tenant, m->type};
  }
  irc = st_tl_ingest_batch(t->pool, raw, b.n, res, &t->m, &ierr);
  rc = settle(t, &b, res, &dead, err);
  st_tl_prom_batch(&t->prom, res, b.n, dead);
  if (rc)
    goto done;
  for (size_t i = 0; i < b.n; i++)
    if (res[i].outcome == ST_TL_POISON || res[i].outcome == ST_TL_RETRY) {
      char seq[24];
      snprintf(seq, sizeof(seq), "%llu", (unsigned long long)b.msgs[i].stream_seq);
      st_logkv(ST_LOG_WARN, "timeline nats: message not stored", "seq", seq, "outcome",
               st_tl_outcome_name(res[i].outcome), "reason", res[i].reason ? res[i].reason : "",
               NULL);
    }
  if (irc) /* the RETRY messages come back after ack_wait; back off meanwhile */
    rc = st_fail(err, irc, "timeline nats: %s", st_error_text(&ierr));
done:
  if (res)
    st_tl_results_release(res, b.n);
  st_free(res);
  st_free(raw);
  rc = rc ? rc : (int)b.n;
  st_nats_batch_release(&b);
  return rc;
}

static int connect_all(st_tl_nats_ingester_t *t, st_error_t *err) {
  int rc;
  if (!t->src && (rc = st_nats_source_open(&t->opts, &t->src, err)))
    return rc;
  if (!t->pool && (rc = st_db_pool_new(t->pg_url, 1, &t->pool, err)))
    return rc;
  return 0;
}

static int connect_cb(void *t, st_error_t *err) { return connect_all(t, err); }
static int batch_cb(void *t, st_error_t *err) { return batch(t, err); }
static void drop_cb(void *arg, int rc) {
  st_tl_nats_ingester_t *t = arg;
  if (rc == ST_ENET) {
    st_nats_source_close(t->src);
    t->src = NULL;
  }
}

static void *nats_main(void *arg) {
  st_tl_nats_ingester_t *t = arg;
  st__tl_run(&t->bg, connect_cb, batch_cb, drop_cb, t);
  return NULL;
}

static void ingester_free(st_tl_nats_ingester_t *t) {
  if (!t)
    return;
  st_nats_source_close(t->src);
  st_db_pool_free(t->pool);
  st_free(t->pg_url);
  st_free(t->url);
  st_free(t->stream);
  st_free(t->subject);
  st_free(t->durable);
  st_free(t->dlq_subject);
  st_free(t);
}

int st_tl_nats_ingester_start(const char *pg_url, const st_nats_source_opts_t *o,
                              st_tl_nats_ingester_t **out, st_error_t *err) {
  st_tl_nats_ingester_t *t = NULL;
  int rc;

  *out = NULL;
  if (!pg_url || !o->url || !o->stream || !o->subject || !o->durable ||
      strchr(o->durable, '.'))
    return st_fail(err, ST_EINVAL, "timeline nats: pg_url, nats_url, nats_stream, "
                                   "nats_subject and nats_durable (without '.') are "
                                   "required");
  if (!(t = st_calloc(1, sizeof(*t))) || !(t->pg_url = st_strdup(pg_url)) ||
      !(t->url = st_strdup(o->url)) || !(t->stream = st_strdup(o->stream)) ||
      !(t->subject = st_strdup(o->subject)) || !(t->durable = st_strdup(o->durable)) ||
      (o->dlq_subject && !(t->dlq_subject = st_strdup(o->dlq_subject)))) {
    rc = st_fail(err, ST_ENOMEM, "timeline nats: out of memory");
    goto fail;
  }
  t->opts = *o;
  t->opts.url = t->url, t->opts.stream = t->stream, t->opts.subject = t->subject;
  t->opts.durable = t->durable, t->opts.dlq_subject = t->dlq_subject;
  st_tl_prom_init(&t->prom, "nats");
  if ((rc = st__bg_start(&t->bg, nats_main, t, err)))
    goto fail;
  st_logkv(ST_LOG_INFO, "timeline nats: started", "url", t->url, "stream", t->stream,
           "subject", t->subject, "durable", t->durable, NULL);
  *out = t;
  return 0;
fail:
  ingester_free(t);
  return rc;
}

void st_tl_nats_ingester_stop(st_tl_nats_ingester_t *t) {
  if (!t)
    return;
  st__bg_stop(&t->bg);
  ingester_free(t);
}
