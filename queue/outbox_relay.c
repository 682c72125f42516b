/* outbox_relay.c: the outbox relay thread (see outbox_relay.h for the protocol). States:
 * no session -> connect (backoff); session, not leader -> pg_try_advisory_lock every
 * second; leader -> batches until the outbox is empty, then wait outbox_poll_ms. Any
 * Postgres failure drops the session (and with it the lock); a Redis failure rolls the
 * batch back and reconnects Redis. */
#include "outbox_relay.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgthread.h"
#include "stella/buf.h"
#include "stella/db.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/metrics.h"

/* "STELLAOB" as a bigint: the relay's advisory lock key. */
#define RELAY_LOCK_KEY "6004234345560395586"
#define BACKOFF_MAX_MS 5000
#define FOLLOWER_POLL_MS 1000

struct st_outbox_relay_s {
  st__bg_t bg;
  char *pg_url, *redis_url;
  uint64_t poll_ms;
  PGconn *pg;
  redisContext *redis;
  int leader;
  st_metric_t *m_published, *m_leader;
};

static void drop_pg(st_outbox_relay_t *r) {
  if (r->leader)
    st_warn("outbox relay: lost the Postgres session; no longer the leader");
  if (r->pg)
    PQfinish(r->pg);
  r->pg = NULL;
  r->leader = 0;
  st_metric_set(r->m_leader, 0);
}

static void drop_redis(st_outbox_relay_t *r) {
  if (r->redis)
    redisFree(r->redis);
  r->redis = NULL;
}

/* 1 when leading (connected and holding the lock). */
static int lead(st_outbox_relay_t *r, st_error_t *err) {
  PGresult *res = NULL;
  int got;

  if (!r->pg) {
    r->pg = PQconnectdb(r->pg_url);
    if (PQstatus(r->pg) != CONNECTION_OK) {
      st_fail(err, ST_EDBRETRY, "outbox relay: connect: %s", PQerrorMessage(r->pg));
      drop_pg(r);
      return 0;
    }
  }
  if (r->leader)
    return 1;
  if (st_db_exec(r->pg, "SELECT pg_try_advisory_lock(" RELAY_LOCK_KEY ")", 0, NULL, &res,
                 err)) {
    drop_pg(r);
    return 0;
  }
  got = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  if (got) {
    r->leader = 1;
    st_metric_set(r->m_leader, 1);
    st_info("outbox relay: leader (advisory lock taken)");
  }
  return got;
}

/* Publish one batch; the number of events published, or a negative code. */
static int batch(st_outbox_relay_t *r, st_error_t *err) {
  PGresult *res = NULL, *done = NULL;
  st_buf_t ids = ST_BUF_INIT;
  int rc, n = 0, replies = 0, redis_bad = 0;
  char lim[16];
  const char *p[1] = {lim};

  snprintf(lim, sizeof(lim), "%d", ST_OUTBOX_BATCH);
  if ((rc = st_db_exec(r->pg, "BEGIN", 0, NULL, NULL, err)) ||
      (rc = st_db_exec(r->pg,
                       "SELECT id, event_id, tenant_id, type, payload::text"
                       " FROM stella_outbox_claim($1::int)",
                       1, p, &res, err)))
    goto done;
  n = replies = PQntuples(res);
  if (n == 0)
    goto commit;
  for (int i = 0; i < n; i++) {
    redisAppendCommand(r->redis, "XADD " ST_EVENTS_STREAM " * event_id %s tenant %s type %s event %s",
                       PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                       PQgetvalue(res, i, 4));
    if (!strncmp(PQgetvalue(res, i, 3), "incident.", 9)) {
      redisAppendCommand(r->redis,
                         "XADD " ST_NOTIFY_STREAM " * event_id %s tenant %s type %s event %s",
                         PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                         PQgetvalue(res, i, 4));
      replies++;
    }
  }
  for (int i = 0; i < replies; i++) {
    redisReply *x = NULL;
    if (redisGetReply(r->redis, (void **)&x) != REDIS_OK || !x || x->type != REDIS_REPLY_STRING) {
      rc = st_fail(err, ST_EREDIS, "outbox relay: XADD: %s",
                   x && x->str ? x->str : r->redis->errstr);
      redis_bad = 1;
      freeReplyObject(x);
      break;
    }
    freeReplyObject(x);
  }
  if (redis_bad)
    goto done;
  if (st_buf_addc(&ids, '{')) {
    rc = st_fail(err, ST_ENOMEM, "outbox relay: out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++)
    if (st_buf_addf(&ids, "%s%s", i ? "," : "", PQgetvalue(res, i, 0))) {
      rc = st_fail(err, ST_ENOMEM, "outbox relay: out of memory");
      goto done;
    }
  if (st_buf_addc(&ids, '}')) {
    rc = st_fail(err, ST_ENOMEM, "outbox relay: out of memory");
    goto done;
  }
  p[0] = ids.data;
  if ((rc = st_db_exec(r->pg, "SELECT stella_outbox_mark_published($1::bigint[])", 1, p, &done,
                       err)))
    goto done;
commit:
  rc = st_db_exec(r->pg, "COMMIT", 0, NULL, NULL, err);
done:
  if (rc && r->pg && PQstatus(r->pg) == CONNECTION_OK)
    PQclear(PQexec(r->pg, "ROLLBACK"));
  if (redis_bad)
    drop_redis(r);
  PQclear(res);
  PQclear(done);
  st_buf_release(&ids);
  return rc ? rc : n;
}

static void *relay_main(void *arg) {
  st_outbox_relay_t *r = arg;
  unsigned backoff = 100;

  while (!st__bg_stopping(&r->bg)) {
    st_error_t err = ST_ERROR_INIT;
    int n;
    if (!lead(r, &err)) {
      if (err.code) {
        st_warn("%s; retrying in %u ms", st_error_text(&err), backoff);
        if (st__bg_wait(&r->bg, backoff))
          break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      } else if (st__bg_wait(&r->bg, FOLLOWER_POLL_MS)) {
        break;
      }
      continue;
    }
    if (!r->redis && !(r->redis = st__redis_sync(r->redis_url, &err))) {
      st_warn("outbox relay: %s; retrying in %u ms", st_error_text(&err), backoff);
      if (st__bg_wait(&r->bg, backoff))
        break;
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      continue;
    }
    n = batch(r, &err);
    if (n < 0) {
      st_warn("outbox relay: %s; retrying in %u ms", st_error_text(&err), backoff);
      if (n != ST_EREDIS && (!r->pg || PQstatus(r->pg) != CONNECTION_OK || n == ST_EDBRETRY))
        drop_pg(r);
      if (st__bg_wait(&r->bg, backoff))
        break;
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      continue;
    }
    backoff = 100;
    if (n) {
      st_metric_add(r->m_published, (double)n);
      continue;
    }
    if (st__bg_wait(&r->bg, r->poll_ms))
      break;
  }
  return NULL;
}

int st_outbox_relay_start(const char *pg_url, const char *redis_url, uint64_t poll_ms,
                          st_outbox_relay_t **out, st_error_t *err) {
  st_outbox_relay_t *r = st_calloc(1, sizeof(*r));
  int rc = 0;

  *out = NULL;
  if (!r || !(r->pg_url = st_strdup(pg_url)) || !(r->redis_url = st_strdup(redis_url))) {
    rc = st_fail(err, ST_ENOMEM, "outbox relay: out of memory");
    goto fail;
  }
  r->poll_ms = poll_ms;
  r->m_published = st_metric_counter("stella_outbox_published_total",
                                     "Outbox events published to " ST_EVENTS_STREAM, NULL, NULL);
  r->m_leader = st_metric_gauge("stella_outbox_relay_leader",
                                "1 while this process holds the outbox relay lock", NULL, NULL);
  if ((rc = st__bg_start(&r->bg, relay_main, r, err)))
    goto fail;
  *out = r;
  return 0;
fail:
  if (r) {
    st_free(r->pg_url);
    st_free(r->redis_url);
    st_free(r);
  }
  return rc;
}

void st_outbox_relay_stop(st_outbox_relay_t *r) {
  if (!r)
    return;
  st__bg_stop(&r->bg);
  if (r->leader)
    st_info("outbox relay: stopped; leader lock released");
  r->leader = 0;
  drop_pg(r);
  drop_redis(r);
  st_free(r->pg_url);
  st_free(r->redis_url);
  st_free(r);
}
