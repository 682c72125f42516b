/* timeline_ingest.c: the ingester thread (see timeline_ingest.h). States: no Redis -> connect
 * and create the group (backoff); no pool -> open it (backoff); then batches: our own
 * pending ones while `pending` is set, a claim of dead consumers' entries when one is due,
 * new ones otherwise. */
#include "timeline/timeline_ingest.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bgthread.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "timeline/timeline_metrics.h"
#include "timeline/timeline_redis.h"
#include "transport.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct st_tl_ingester_s {
  st__bg_t bg;
  char *pg_url, *redis_url, *stream, *group, *dlq, *consumer;
  st_tl_redis_dest_t dest;
  long long claim_idle_ms;
  uint64_t next_claim_ms;
  char cursor[ST_EVENTS_CURSOR_MAX]; /* XAUTOCLAIM position */
  redisContext *redis;
  st_db_pool_t *pool;
  int pending; /* re-read our own delivered, unacked entries first */
  st_tl_metrics_t m;
  st_tl_prom_t prom;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read the next batch: pending, claimed or new entries. */
static int read_batch(st_tl_ingester_t *t, st_events_batch_t *b, int *claimed,
                      st_error_t *err) {
  int rc;
  *claimed = 0;
  if (t->pending)
    return st_events_read(t->redis, t->stream, t->group, t->consumer, ST_TL_INGEST_COUNT, 0,
                          1, b, err);
  if (now_ms() >= t->next_claim_ms) {
    if ((rc = st_events_claim(t->redis, t->stream, t->group, t->consumer, t->claim_idle_ms,
                              ST_TL_INGEST_COUNT, t->cursor, b, err)))
      return rc;
    if (!strcmp(t->cursor, "0-0")) /* scanned the whole PEL: rest until the next round */
      t->next_claim_ms = now_ms() + (uint64_t)t->claim_idle_ms / 2;
    if (b->n) {
      *claimed = 1;
      return 0;
    }
  }
  return st_events_read(t->redis, t->stream, t->group, t->consumer, ST_TL_INGEST_COUNT,
                        ST_TL_INGEST_BLOCK_MS, 0, b, err);
}

static void backlog(st_tl_ingester_t *t) {
  st_error_t err = ST_ERROR_INIT;
  long long lag, pending;
  if (st_events_group_lag(t->redis, t->stream, t->group, &lag, &pending, &err))
    st_debug("timeline ingest: %s", st_error_text(&err));
  else
    st_tl_prom_backlog(&t->prom, lag, pending);
}

/* One batch: the number of entries read, or a negative code (ST_EREDIS: reconnect). A batch
 * with RETRY entries returns the ingest's transient code after settling the others. */
static int batch(st_tl_ingester_t *t, st_error_t *err) {
  st_events_batch_t b = {0};
  st_tl_result_t *res = NULL;
  st_error_t ierr = ST_ERROR_INIT;
  size_t dead = 0;
  int rc, claimed = 0;

  if ((rc = read_batch(t, &b, &claimed, err)))
    goto done;
  backlog(t);
  if (!b.n) {
    t->pending = 0;
    goto done;
  }
  if (!(res = st_calloc(b.n, sizeof(*res)))) {
    rc = st_fail(err, ST_ENOMEM, "timeline ingest: out of memory");
    goto done;
  }
  if (claimed) {
    st_metric_add(t->prom.claimed, (double)b.n);
    st_logkv(ST_LOG_INFO, "timeline ingest: took over idle entries", "consumer", t->consumer,
             "first", b.entries[0].id, NULL);
  }
  rc = st_tl_redis_ingest(t->redis, t->pool, &t->dest, &b, res, &t->m, &dead, &ierr, err);
  st_tl_prom_batch(&t->prom, res, b.n, dead);
  if (rc)
    goto done;
  for (size_t i = 0; i < b.n; i++)
    if (res[i].outcome == ST_TL_POISON || res[i].outcome == ST_TL_RETRY)
      st_logkv(ST_LOG_WARN, "timeline ingest: entry not stored", "entry", b.entries[i].id,
               "outcome", st_tl_outcome_name(res[i].outcome), "reason",
               res[i].reason ? res[i].reason : "", NULL);
  if (ierr.code) {
    t->pending = 1; /* the RETRY entries are ours, pending: re-read them after the backoff */
    rc = st_fail(err, ierr.code, "timeline ingest: %s", st_error_text(&ierr));
  }
done:
  if (res)
    st_tl_results_release(res, b.n);
  st_free(res);
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
    if (st_events_group_create(t->redis, t->stream, t->group, err)) {
      drop_redis(t);
      return ST_EREDIS;
    }
    t->pending = 1;
  }
  if (!t->pool && st_db_pool_new(t->pg_url, 1, &t->pool, err))
    return err->code;
  return 0;
}

void st__tl_run(st__bg_t *bg, int (*connect)(void *, st_error_t *),
                int (*step)(void *, st_error_t *), void (*drop)(void *, int), void *arg) {
  unsigned backoff = BACKOFF_MIN_MS;

  while (!st__bg_stopping(bg)) {
    st_error_t err = ST_ERROR_INIT;
    int n = connect(arg, &err);
    if (!n)
      n = step(arg, &err);
    if (n >= 0) {
      backoff = BACKOFF_MIN_MS;
      continue;
    }
    st_warn("%s; retrying in %u ms", st_error_text(&err), backoff);
    drop(arg, n);
    if (st__bg_wait(bg, backoff))
      break;
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
  }
}

static int connect_cb(void *t, st_error_t *err) { return connect_all(t, err); }
static int batch_cb(void *t, st_error_t *err) { return batch(t, err); }
static void drop_cb(void *t, int rc) {
  if (rc == ST_EREDIS)
    drop_redis(t);
}

static void *ingest_main(void *arg) {
  st_tl_ingester_t *t = arg;
  st__tl_run(&t->bg, connect_cb, batch_cb, drop_cb, t);
  return NULL;
}

static void ingester_free(st_tl_ingester_t *t) {
  if (!t)
    return;
  drop_redis(t);
  st_db_pool_free(t->pool);
  st_free(t->pg_url);
  st_free(t->redis_url);
  st_free(t->stream);
  st_free(t->group);
  st_free(t->dlq);
  st_free(t->consumer);
  st_free(t);
}

static char *dup_or(const char *v, const char *dflt) { return st_strdup(v ? v : dflt); }

int st_tl_ingester_start(const st_tl_ingest_opts_t *o, st_tl_ingester_t **out,
                         st_error_t *err) {
  st_tl_ingester_t *t = NULL;
  char host[HOST_NAME_MAX + 1] = "", consumer[80];
  int rc = 0;

  *out = NULL;
  if (!o->pg_url || !o->redis_url || o->claim_idle_ms < 0)
    return st_fail(err, ST_EINVAL, "timeline ingest: pg_url and redis_url are required");
  if (gethostname(host, sizeof(host)) != 0 || !*host)
    snprintf(host, sizeof(host), "localhost");
  host[sizeof(host) - 1] = '\0';
  snprintf(consumer, sizeof(consumer), "timeline-%.60s", host);
  if (!(t = st_calloc(1, sizeof(*t))) || !(t->pg_url = st_strdup(o->pg_url)) ||
      !(t->redis_url = st_strdup(o->redis_url)) ||
      !(t->stream = dup_or(o->stream, ST_EVENTS_STREAM)) ||
      !(t->group = dup_or(o->group, ST_TL_GROUP)) || !(t->dlq = dup_or(o->dlq, ST_DLQ_STREAM)) ||
      !(t->consumer = dup_or(o->consumer, consumer))) {
    rc = st_fail(err, ST_ENOMEM, "timeline ingest: out of memory");
    goto fail;
  }
  t->dest = (st_tl_redis_dest_t){t->stream, t->group, t->dlq};
  t->claim_idle_ms = o->claim_idle_ms ? o->claim_idle_ms : ST_TL_CLAIM_IDLE_MS;
  strcpy(t->cursor, "0-0");
  st_tl_prom_init(&t->prom, "redis");
  if ((rc = st__bg_start(&t->bg, ingest_main, t, err)))
    goto fail;
  st_logkv(ST_LOG_INFO, "timeline ingest: started", "consumer", t->consumer, "group",
           t->group, "stream", t->stream, NULL);
  *out = t;
  return 0;
fail:
  ingester_free(t);
  return rc;
}

void st_tl_ingester_stop(st_tl_ingester_t *t) {
  if (!t)
    return;
  st__bg_stop(&t->bg);
  ingester_free(t);
}
