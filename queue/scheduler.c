/* scheduler.c: the scheduler thread: cron firings and event triggers (see scheduler.h). */
#include "scheduler.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bgthread.h"
#include "cron.h"
#include "envelope.h"
#include "outbox_relay.h"
#include "stella/buf.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/metrics.h"

#define EVENTS_BATCH "100"
#define EVENTS_RECLAIM_MS "60000"

struct st_scheduler_s {
  st__bg_t bg;
  st_db_pool_t *db;
  char *redis_url, *consumer;
  uint64_t tick_ms;
  int catch_up_one, cron_flags, group_ok;
  size_t max_bytes;
  redisContext *redis;
  st_metric_t *m_fired, *m_triggered;
};

/* XADD a job envelope (attempt 1) to its type's stream. */
static int submit(st_scheduler_t *s, const char *tenant, const char *type, const char *job_id,
                  const char *payload, st_error_t *err) {
  st_envelope_t env;
  st_buf_t bytes = ST_BUF_INIT, stream = ST_BUF_INIT;
  redisReply *r = NULL;
  int rc;

  st_envelope_init(&env);
  env.job_id = st_strdup(job_id);
  env.tenant = st_strdup(tenant);
  env.type = st_strdup(type);
  env.attempt = 1;
  env.payload = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
  if (!env.job_id || !env.tenant || !env.type || !env.payload) {
    rc = st_fail(err, ST_ENOMEM, "scheduler: out of memory building job %s", job_id);
    goto done;
  }
  if ((rc = st_envelope_encode(&env, s->max_bytes, &bytes, err)))
    goto done;
  if ((rc = st_envelope_stream(type, &stream))) {
    rc = st_fail(err, ST_ENOMEM, "scheduler: out of memory");
    goto done;
  }
  r = redisCommand(s->redis, "XADD %s * e %b", stream.data, bytes.data, bytes.len);
  if (!r || r->type != REDIS_REPLY_STRING) {
    rc = st_fail(err, ST_EREDIS, "scheduler: XADD %s: %s", stream.data,
                 r && r->str ? r->str : s->redis->errstr);
    if (!r) {
      redisFree(s->redis);
      s->redis = NULL;
    }
  }
done:
  freeReplyObject(r);
  st_buf_release(&bytes);
  st_buf_release(&stream);
  st_envelope_release(&env);
  return rc;
}

/* ---- cron ---------------------------------------------------------------- */

typedef struct fire_s {
  st_scheduler_t *s;
  const char *id, *tenant, *type, *payload;
  char tick[24], job_id[64];
  int fired;
} fire_t;

static int tx_fire(PGconn *c, void *arg, st_error_t *err) {
  fire_t *f = arg;
  const char *p[3] = {f->id, f->tick, f->job_id};
  PGresult *res = NULL;
  int rc;

  f->fired = 0;
  if ((rc = st_db_exec(c, "SELECT stella_schedule_fire($1::bigint, to_timestamp($2::bigint), $3)",
                       3, p, &res, err)))
    return rc;
  if (PQgetvalue(res, 0, 0)[0] == 't') {
    if (!f->s->redis && !(f->s->redis = st__redis_sync(f->s->redis_url, err)))
      rc = err->code;
    else
      rc = submit(f->s, f->tenant, f->type, f->job_id, f->payload, err);
    f->fired = rc == 0;
  }
  PQclear(res);
  return rc;
}

typedef struct list_s {
  PGresult *res;
} list_t;

static int tx_list(PGconn *c, void *arg, st_error_t *err) {
  list_t *l = arg;
  return st_db_exec(c,
                    "SELECT id, tenant_id, name, cron, job_type, payload::text,"
                    " coalesce(floor(extract(epoch FROM last_fired_at))::bigint, -1),"
                    " ceil(extract(epoch FROM created_at))::bigint"
                    " FROM stella_schedules_enabled()",
                    0, NULL, &l->res, err);
}

static void cron_pass(st_scheduler_t *s) {
  st_error_t err = ST_ERROR_INIT;
  list_t l = {NULL};
  int64_t now = (int64_t)time(NULL), grace = (int64_t)((2 * s->tick_ms + 999) / 1000);

  if (st_db_system_txf(s->db, ST_DB_TX_READ_ONLY, tx_list, &l, &err)) {
    st_warn("scheduler: reading schedules: %s", st_error_text(&err));
    return;
  }
  for (int i = 0; i < PQntuples(l.res); i++) {
    st_cron_t cron;
    int64_t tick, last = strtoll(PQgetvalue(l.res, i, 6), NULL, 10),
                  created = strtoll(PQgetvalue(l.res, i, 7), NULL, 10);
    fire_t f = {s, PQgetvalue(l.res, i, 0), PQgetvalue(l.res, i, 1), PQgetvalue(l.res, i, 4),
                PQgetvalue(l.res, i, 5), "", "", 0};
    err = (st_error_t)ST_ERROR_INIT;
    if (st_cron_parse(PQgetvalue(l.res, i, 3), s->cron_flags, &cron, &err)) {
      st_warn("scheduler: schedule %s of tenant %s: %s", PQgetvalue(l.res, i, 2), f.tenant,
              st_error_text(&err));
      continue;
    }
    if (st_cron_prev(&cron, now, &tick) || tick <= last || tick < created)
      continue;
    if (!s->catch_up_one && now - tick > grace)
      continue; /* missed while no scheduler ran: catch-up none */
    snprintf(f.tick, sizeof(f.tick), "%" PRId64, tick);
    snprintf(f.job_id, sizeof(f.job_id), "sch-%s-%" PRId64, f.id, tick);
    if (st_db_system_tx(s->db, tx_fire, &f, &err)) {
      st_warn("scheduler: firing schedule %s of tenant %s at %s: %s", PQgetvalue(l.res, i, 2),
              f.tenant, f.tick, st_error_text(&err));
      continue;
    }
    if (f.fired) {
      st_metric_inc(s->m_fired);
      st_info("scheduler: schedule %s of tenant %s fired tick %s as job %s",
              PQgetvalue(l.res, i, 2), f.tenant, f.tick, f.job_id);
    }
  }
  PQclear(l.res);
}

/* ---- event triggers ------------------------------------------------------ */

typedef struct trig_s {
  const char *tenant, *type;
  PGresult *res;
} trig_t;

static int tx_triggers(PGconn *c, void *arg, st_error_t *err) {
  trig_t *t = arg;
  const char *p[2] = {t->tenant, t->type};
  return st_db_exec(c, "SELECT id, job_type, payload::text FROM stella_triggers_for($1, $2)", 2,
                    p, &t->res, err);
}

static const char *field_of(const redisReply *fields, const char *name) {
  for (size_t k = 0; k + 1 < fields->elements; k += 2)
    if (fields->element[k]->type == REDIS_REPLY_STRING &&
        fields->element[k + 1]->type == REDIS_REPLY_STRING && !strcmp(fields->element[k]->str, name))
      return fields->element[k + 1]->str;
  return NULL;
}

/* Start the jobs of one event's triggers; 0 when the event may be acknowledged. */
static int handle_event(st_scheduler_t *s, const redisReply *fields) {
  const char *tenant = field_of(fields, "tenant"), *type = field_of(fields, "type"),
             *event_id = field_of(fields, "event_id"), *event = field_of(fields, "event");
  json_t *ev = NULL;
  const char *from_job;
  trig_t t = {tenant, type, NULL};
  st_error_t err = ST_ERROR_INIT;
  int rc = 0;

  if (!tenant || !type || !event_id || st_db_tenant_check(tenant, &err) ||
      strlen(event_id) > 64)
    return 0; /* not an outbox event: nothing can trigger on it */
  if ((rc = st_db_system_txf(s->db, ST_DB_TX_READ_ONLY, tx_triggers, &t, &err))) {
    st_warn("scheduler: triggers for %s of tenant %s: %s", type, tenant, st_error_text(&err));
    return rc;
  }
  ev = event ? json_loads(event, 0, NULL) : NULL;
  from_job = json_string_value(json_object_get(json_object_get(ev, "payload"), "job_id"));
  for (int i = 0; i < PQntuples(t.res) && rc == 0; i++) {
    char job_id[ST_ENVELOPE_MAX_ID + 1], self[96];
    snprintf(self, sizeof(self), "trg-%s-", PQgetvalue(t.res, i, 0));
    if (from_job && !strncmp(from_job, self, strlen(self)))
      continue;
    snprintf(job_id, sizeof(job_id), "trg-%s-%s", PQgetvalue(t.res, i, 0), event_id);
    if ((rc = submit(s, tenant, PQgetvalue(t.res, i, 1), job_id, PQgetvalue(t.res, i, 2), &err)))
      st_warn("scheduler: trigger %s: %s", PQgetvalue(t.res, i, 0), st_error_text(&err));
    else
      st_metric_inc(s->m_triggered);
  }
  json_decref(ev);
  PQclear(t.res);
  return rc;
}

static void handle_entries(st_scheduler_t *s, const redisReply *entries) {
  for (size_t j = 0; j < entries->elements; j++) {
    const redisReply *e = entries->element[j];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
      continue;
    if (e->element[1]->type == REDIS_REPLY_ARRAY && handle_event(s, e->element[1]))
      continue; /* stays pending; reclaimed later */
    freeReplyObject(redisCommand(s->redis, "XACK " ST_EVENTS_STREAM " " ST_SCHEDULER_GROUP " %s",
                                 e->element[0]->str));
  }
}

static void trigger_pass(st_scheduler_t *s) {
  redisReply *r;

  if (!s->group_ok) {
    r = redisCommand(s->redis, "XGROUP CREATE " ST_EVENTS_STREAM " " ST_SCHEDULER_GROUP " $ MKSTREAM");
    s->group_ok = r && (r->type != REDIS_REPLY_ERROR || !strncmp(r->str, "BUSYGROUP", 9));
    freeReplyObject(r);
    if (!s->group_ok)
      return;
  }
  r = redisCommand(s->redis, "XAUTOCLAIM " ST_EVENTS_STREAM " " ST_SCHEDULER_GROUP " %s "
                   EVENTS_RECLAIM_MS " 0-0 COUNT " EVENTS_BATCH, s->consumer);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
      r->element[1]->type == REDIS_REPLY_ARRAY)
    handle_entries(s, r->element[1]);
  freeReplyObject(r);
  r = redisCommand(s->redis, "XREADGROUP GROUP " ST_SCHEDULER_GROUP " %s COUNT " EVENTS_BATCH
                   " STREAMS " ST_EVENTS_STREAM " >", s->consumer);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
      r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
      r->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
    handle_entries(s, r->element[0]->element[1]);
  else if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOGROUP", 7))
    s->group_ok = 0;
  if (!r) {
    redisFree(s->redis);
    s->redis = NULL;
  }
  freeReplyObject(r);
}

static void *sched_main(void *arg) {
  st_scheduler_t *s = arg;
  unsigned backoff = 100;

  do {
    st_error_t err = ST_ERROR_INIT;
    if (!s->redis && !(s->redis = st__redis_sync(s->redis_url, &err))) {
      st_warn("scheduler: %s; retrying in %u ms", st_error_text(&err), backoff);
      backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
      continue;
    }
    backoff = 100;
    st_health_beat(); /* a scheduler-only process has no loop to beat /healthz */
    cron_pass(s);
    if (s->redis)
      trigger_pass(s);
  } while (!st__bg_wait(&s->bg, s->redis ? s->tick_ms : backoff));
  return NULL;
}

int st_scheduler_start(const st_config_t *cfg, st_db_pool_t *db, st_scheduler_t **out,
                       st_error_t *err) {
  st_scheduler_t *s = NULL;
  const char *cu = st_config_str(cfg, "scheduler_catch_up");
  char host[256], consumer[320];
  int rc = 0;

  *out = NULL;
  if (!cu || (strcmp(cu, "none") && strcmp(cu, "one")))
    return st_fail(err, ST_ECONFIG, "scheduler_catch_up: expected none or one");
  if (gethostname(host, sizeof(host)))
    snprintf(host, sizeof(host), "host");
  host[sizeof(host) - 1] = '\0';
  snprintf(consumer, sizeof(consumer), "%s-%ld", host, (long)getpid());
  if (!(s = st_calloc(1, sizeof(*s))) ||
      !(s->redis_url = st_strdup(st_config_str(cfg, "redis_url"))) ||
      !(s->consumer = st_strdup(consumer))) {
    rc = st_fail(err, ST_ENOMEM, "scheduler: out of memory");
    goto fail;
  }
  s->db = db;
  s->tick_ms = (uint64_t)st_config_int(cfg, "scheduler_tick_ms");
  s->catch_up_one = !strcmp(cu, "one");
  s->cron_flags = st_config_bool(cfg, "scheduler_test_seconds") ? ST_CRON_SECONDS : 0;
  s->max_bytes = (size_t)st_config_int(cfg, "max_envelope_bytes");
  s->m_fired = st_metric_counter("stella_scheduler_fired_total",
                                 "Cron ticks fired by this process", NULL, NULL);
  s->m_triggered = st_metric_counter("stella_scheduler_triggered_total",
                                     "Jobs started by event triggers in this process", NULL, NULL);
  if ((rc = st__bg_start(&s->bg, sched_main, s, err)))
    goto fail;
  st_info("scheduler: started (tick %llu ms, catch-up %s%s)", (unsigned long long)s->tick_ms, cu,
          s->cron_flags ? ", TEST seconds field" : "");
  *out = s;
  return 0;
fail:
  if (s) {
    st_free(s->redis_url);
    st_free(s->consumer);
    st_free(s);
  }
  return rc;
}

void st_scheduler_stop(st_scheduler_t *s) {
  if (!s)
    return;
  st__bg_stop(&s->bg);
  if (s->redis)
    redisFree(s->redis);
  st_free(s->redis_url);
  st_free(s->consumer);
  st_free(s);
}
