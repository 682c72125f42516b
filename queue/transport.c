/* transport.c: the two Redis connections (connect, set up, reconnect with backoff),
 * claiming with XREADGROUP and XAUTOCLAIM under the free-slot bound, and shutdown.
 * XAUTOCLAIM runs on the claim connection between two blocking reads (a read reserves
 * the free slots while it blocks). Settle operations, the delayed-retry mover and queue statistics are in
 * transport_ops.c. Everything runs on the loop thread. */
#include "transport_int.h"

#include <hiredis/adapters/libuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "stella/log.h"
#include "stella/mem.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 1000

static void conn_start(st__conn_t *c);
static void read_next(st_transport_t *t);
static int claim_next(st_transport_t *t, int from);

void st_delivery_free(st_delivery_t *d) {
  if (!d)
    return;
  st_free(d->stream);
  st_free(d->entry_id);
  st_free(d->data);
  st_free(d);
}

int st_redis_url_parse(const char *url, char **host, int *port, int *db, st_error_t *err) {
  const char *p, *colon, *slash;
  char *end;
  long v;

  *host = NULL;
  *port = 6379;
  *db = 0;
  if (!url || strncmp(url, "redis://", 8))
    return st_fail(err, ST_ECONFIG, "redis_url: expected redis://host[:port][/db]");
  p = url + 8;
  slash = strchr(p, '/');
  colon = strchr(p, ':');
  if (colon && slash && colon > slash)
    colon = NULL;
  if ((colon ? colon : slash ? slash : p + strlen(p)) == p)
    return st_fail(err, ST_ECONFIG, "redis_url: host is empty");
  if (colon) {
    v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || v < 1 || v > 65535 || (*end && *end != '/'))
      return st_fail(err, ST_ECONFIG, "redis_url: bad port");
    *port = (int)v;
  }
  if (slash && slash[1]) {
    v = strtol(slash + 1, &end, 10);
    if (*end || v < 0 || v > 15)
      return st_fail(err, ST_ECONFIG, "redis_url: bad database number");
    *db = (int)v;
  }
  *host = st_strndup(p, (size_t)((colon ? colon : slash ? slash : p + strlen(p)) - p));
  return *host ? 0 : st_fail(err, ST_ENOMEM, "redis_url: out of memory");
}

/* ---- connections --------------------------------------------------------- */

uint64_t st__now_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void set_ready(st_transport_t *t) {
  int ready = t->cmd.up && t->blk.up && !t->groups_missing && !t->stopped;
  if (t->cbs.on_ready)
    t->cbs.on_ready(t->cbs.ud, ready,
                    ready ? "ok" : t->stopped ? "draining" : "redis not connected");
}

static void reconnect_cb(uv_timer_t *h) { conn_start(h->data); }

static void schedule_reconnect(st__conn_t *c) {
  st_transport_t *t = c->t;
  if (t->closing || (c->blocking && t->stopped))
    return;
  st_metric_inc(t->m_reconnects);
  uv_timer_start(&c->timer, reconnect_cb, c->backoff_ms, 0);
  c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void group_cb(redisAsyncContext *ac, void *r, void *priv) {
  st_transport_t *t = priv;
  redisReply *reply = r;
  if (!reply)
    return; /* disconnected: set-up runs again on reconnect */
  if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9))
    st_error("redis: XGROUP CREATE failed: %s", reply->str);
  if (t->groups_missing > 0 && --t->groups_missing == 0) {
    set_ready(t);
    st__ops_flush(t);
    read_next(t);
  }
}

static void select_cb(redisAsyncContext *ac, void *r, void *priv) {
  redisReply *reply = r;
  if (reply && reply->type == REDIS_REPLY_ERROR)
    st_error("redis: SELECT failed: %s", reply->str);
}

/* hiredis 0.14's libuv adapter drops poll errors, so a refused connection would never
 * call on_connect: give up on it after a while and start over. */
static void connect_timeout_cb(uv_timer_t *h) {
  st__conn_t *c = h->data;
  if (!c->ac || c->up)
    return;
  st_warn("redis: connect to %s:%d did not complete; retrying in %u ms", c->t->host, c->t->port,
          c->backoff_ms);
  redisAsyncFree(c->ac); /* not connected yet: no disconnect callback */
  c->ac = NULL;
  schedule_reconnect(c);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  st__conn_t *c = ac->data;
  st_transport_t *t = c->t;

  uv_timer_stop(&c->timer);
  if (status != REDIS_OK) {
    st_warn("redis: connect to %s:%d failed: %s; retrying in %u ms", t->host, t->port,
            ac->errstr, c->backoff_ms);
    c->ac = NULL; /* hiredis frees the context after this callback */
    schedule_reconnect(c);
    return;
  }
  c->backoff_ms = BACKOFF_MIN_MS;
  c->up = 1;
  st_info("redis: %s connection up", c->blocking ? "claim" : "command");
  if (c->blocking) {
    set_ready(t);
    read_next(t);
    return;
  }
  t->groups_missing = t->ntypes;
  for (int i = 0; i < t->ntypes; i++)
    redisAsyncCommand(c->ac, group_cb, t, "XGROUP CREATE %s " ST_GROUP " 0 MKSTREAM",
                      t->types[i].stream);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  st__conn_t *c = ac->data;
  st_transport_t *t = c->t;

  c->ac = NULL;
  c->up = 0;
  c->probe_out = 0;
  if (c->blocking) {
    t->reading = t->claiming = 0;
    for (int i = 0; i < t->ntypes; i++)
      t->types[i].reserved = 0;
  } else {
    t->moving = 0;
    for (st__op_t *op = t->ops; op; op = op->next)
      op->sent = 0;
  }
  if (!t->closing)
    st_warn("redis: %s connection lost (%s)", c->blocking ? "claim" : "command",
            status == REDIS_OK ? "closed" : ac->errstr);
  set_ready(t);
  schedule_reconnect(c);
  if (t->closing && !t->cmd.ac && !t->blk.ac && t->close_done && t->timers_closed >= 5) {
    void (*done)(void *) = t->close_done;
    t->close_done = NULL;
    done(t->close_ud);
  }
}

static void conn_start(st__conn_t *c) {
  st_transport_t *t = c->t;
  redisAsyncContext *ac;

  if (t->closing || c->ac)
    return;
  ac = redisAsyncConnect(t->host, t->port);
  if (!ac || ac->err) {
    st_warn("redis: cannot connect to %s:%d: %s", t->host, t->port, ac ? ac->errstr : "no memory");
    if (ac)
      redisAsyncFree(ac);
    schedule_reconnect(c);
    return;
  }
  ac->data = c;
  if (redisLibuvAttach(ac, t->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    schedule_reconnect(c);
    return;
  }
  c->ac = ac;
  uv_timer_start(&c->timer, connect_timeout_cb, CONNECT_TIMEOUT_MS, 0);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  if (t->db)
    redisAsyncCommand(ac, select_cb, t, "SELECT %d", t->db);
}

/* ---- claiming ------------------------------------------------------------ */

st_delivery_t *st__delivery_from(st_transport_t *t, int ti, const redisReply *entry) {
  st_delivery_t *d;
  const redisReply *fields;

  if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
      entry->element[0]->type != REDIS_REPLY_STRING)
    return NULL;
  if (!(d = st_calloc(1, sizeof(*d))))
    return NULL;
  d->type_index = ti;
  d->type = t->types[ti].name;
  d->stream = st_strdup(t->types[ti].stream);
  d->entry_id = st_strndup(entry->element[0]->str, entry->element[0]->len);
  fields = entry->element[1];
  if (fields->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
      const redisReply *k = fields->element[i], *v = fields->element[i + 1];
      if (k->type == REDIS_REPLY_STRING && k->len == 1 && k->str[0] == 'e' &&
          v->type == REDIS_REPLY_STRING && !d->data) {
        if ((d->data = st_malloc(v->len ? v->len : 1))) {
          memcpy(d->data, v->str, v->len);
          d->len = v->len;
        }
      }
    }
  }
  if (!d->stream || !d->entry_id) {
    st_delivery_free(d);
    return NULL;
  }
  return d;
}

static int type_of_stream(st_transport_t *t, const char *s, size_t n) {
  for (int i = 0; i < t->ntypes; i++)
    if (strlen(t->types[i].stream) == n && memcmp(t->types[i].stream, s, n) == 0)
      return i;
  return -1;
}

/* counts (XAUTOCLAIM through claim_lua only): the delivery count of each entry. */
static void deliver_entries(st_transport_t *t, int ti, const redisReply *entries,
                            const redisReply *counts) {
  for (size_t j = 0; j < entries->elements; j++) {
    const redisReply *e = entries->element[j];
    st_delivery_t *d;
    st__held_t *h;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
      continue;
    /* reclaimed while still ours (running, or its settle waits for a reconnect): skip */
    if (st__is_held(t, t->types[ti].stream, e->element[0]->str, e->element[0]->len))
      continue;
    if (!(d = st__delivery_from(t, ti, e)) || !(h = st_calloc(1, sizeof(*h))) ||
        !(h->stream = st_strdup(d->stream)) || !(h->entry_id = st_strdup(d->entry_id))) {
      st_error("redis: cannot take stream entry in %s (out of memory); it stays pending",
               t->types[ti].stream);
      if (d && h) {
        st_free(h->stream);
        st_free(h);
      }
      st_delivery_free(d);
      continue;
    }
    h->next = t->held;
    t->held = h;
    d->deliveries = 1;
    if (counts && j < counts->elements && counts->element[j]->type == REDIS_REPLY_INTEGER &&
        counts->element[j]->integer > 0)
      d->deliveries = (unsigned)(counts->element[j]->integer > 1000000
                                     ? 1000000 : counts->element[j]->integer);
    t->cbs.on_delivery(t->cbs.ud, d);
  }
}

/* Deliver a read reply ([[stream, entries], ...]); the number of entries it held. */
static size_t take_read_reply(st_transport_t *t, const redisReply *reply) {
  size_t got = 0;

  t->reading = 0;
  for (int i = 0; i < t->ntypes; i++)
    t->types[i].reserved = 0;
  if (!reply)
    return 0;
  if (reply->type == REDIS_REPLY_ERROR) {
    st_error("redis: reading the job streams failed: %s", reply->str);
    if (strstr(reply->str, "NOGROUP") && t->cmd.ac) {
      t->groups_missing = t->ntypes; /* the data set was lost (FLUSHALL, no AOF): recreate */
      for (int i = 0; i < t->ntypes; i++)
        redisAsyncCommand(t->cmd.ac, group_cb, t, "XGROUP CREATE %s " ST_GROUP " 0 MKSTREAM",
                          t->types[i].stream);
    }
  } else if (reply->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < reply->elements; i++) {
      const redisReply *s = reply->element[i];
      int ti;
      if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
          s->element[0]->type != REDIS_REPLY_STRING || s->element[1]->type != REDIS_REPLY_ARRAY)
        continue;
      got += s->element[1]->elements;
      if ((ti = type_of_stream(t, s->element[0]->str, s->element[0]->len)) >= 0)
        deliver_entries(t, ti, s->element[1], NULL);
    }
  }
  return got;
}

static void read_cb(redisAsyncContext *ac, void *r, void *priv) {
  st_transport_t *t = priv;
  size_t got = take_read_reply(t, r);

  (void)ac;
  if (!r)
    return;
  t->block_next = t->read_drains && got == 0;
  read_next(t);
}

/* Free slots for type i not yet promised to a read or claim in flight. */
static unsigned slots_for(st_transport_t *t, int i) {
  unsigned f = t->cbs.free_slots(t->cbs.ud, i);
  return f > t->types[i].reserved ? f - t->types[i].reserved : 0;
}

static unsigned slots_total(st_transport_t *t) {
  unsigned f = t->cbs.free_total(t->cbs.ud), r = 0;
  for (int i = 0; i < t->ntypes; i++)
    r += t->types[i].reserved;
  return f > r ? f - r : 0;
}

/* Non-blocking and exact: fills up to ARGV[2] free slots from the streams in KEYS, in the
 * given (round-robin) order, each stream at most its own free slots (ARGV[2 + i]), in one
 * round trip. A blocking XREADGROUP over several streams could only bound entries per
 * stream, so with fewer free slots than streams it would either over-claim or wait on a
 * subset of the streams while jobs sit in the others. */
static const char drain_lua[] =
    "local out, left = {}, tonumber(ARGV[2]) "
    "for i, k in ipairs(KEYS) do "
    "if left <= 0 then break end "
    "local n = math.min(left, tonumber(ARGV[2 + i])) "
    "local r = redis.call('XREADGROUP', 'GROUP', '" ST_GROUP "', ARGV[1], 'COUNT', n, "
    "'STREAMS', k, '>') "
    "if r then out[#out + 1] = r[1] left = left - #r[1][2] end end "
    "return out";

#define READ_MAX_TYPES 64

/* The types with free slots, in round-robin order: their number, and the smallest slot
 * count among them. */
static int pick_types(st_transport_t *t, int pick[READ_MAX_TYPES], unsigned slots[],
                      unsigned *min_free) {
  int n = 0;
  *min_free = UINT32_MAX;
  for (int k = 0; k < t->ntypes && n < READ_MAX_TYPES; k++) {
    int i = (int)((t->rr + (unsigned)k) % (unsigned)t->ntypes);
    unsigned f = slots_for(t, i);
    if (f == 0)
      continue;
    slots[n] = f;
    pick[n++] = i;
    if (f < *min_free)
      *min_free = f;
  }
  return n;
}

/* Drain what is waiting first; only when a drain found nothing, block on every stream with
 * a free slot. A blocked XREADGROUP is served by the one stream that woke it, so its COUNT
 * (at most the free slots over the streams, at least 1) bounds what it takes; only entries
 * landing in several streams between the drain and the block can exceed the free slots,
 * and those wait in the pool queue. */
static void read_next(st_transport_t *t) {
  int pick[READ_MAX_TYPES], n, argc = 0;
  unsigned slots[READ_MAX_TYPES], total, count;
  const char *argv[8 + 2 * READ_MAX_TYPES];
  char nbuf[READ_MAX_TYPES + 2][16];
  int rc;

  if (t->reading || t->claiming || t->stopped || t->closing || !t->blk.up || t->groups_missing)
    return;
  if (t->claim_due) {
    t->claim_due = 0;
    if (claim_next(t, 0))
      return;
  }
  total = slots_total(t);
  if (total == 0 || (n = pick_types(t, pick, slots, &count)) == 0)
    return;
  t->rr++;
  if (!t->block_next) {
    argv[argc++] = "EVAL";
    argv[argc++] = drain_lua;
    snprintf(nbuf[0], sizeof(nbuf[0]), "%d", n);
    argv[argc++] = nbuf[0];
    for (int k = 0; k < n; k++)
      argv[argc++] = t->types[pick[k]].stream;
    argv[argc++] = t->consumer;
    snprintf(nbuf[1], sizeof(nbuf[1]), "%u", total);
    argv[argc++] = nbuf[1];
    for (int k = 0; k < n; k++) {
      snprintf(nbuf[2 + k], sizeof(nbuf[2 + k]), "%u", slots[k]);
      argv[argc++] = nbuf[2 + k];
      t->types[pick[k]].reserved += slots[k];
    }
  } else {
    if (count > total / (unsigned)n) /* COUNT applies per stream */
      count = total / (unsigned)n ? total / (unsigned)n : 1;
    snprintf(nbuf[0], sizeof(nbuf[0]), "%u", count);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = ST_GROUP;
    argv[argc++] = t->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = nbuf[0];
    argv[argc++] = "BLOCK";
    argv[argc++] = t->block_ms;
    argv[argc++] = "STREAMS";
    for (int k = 0; k < n; k++)
      argv[argc++] = t->types[pick[k]].stream;
    for (int k = 0; k < n; k++) {
      argv[argc++] = ">";
      t->types[pick[k]].reserved += count;
    }
  }
  t->reading = 1;
  t->read_drains = !t->block_next;
  t->blk.probe_ms = st__now_mono_ms();
  rc = redisAsyncCommandArgv(t->blk.ac, read_cb, t, argc, argv, NULL);
  if (rc != REDIS_OK) {
    t->reading = 0;
    for (int k = 0; k < n; k++)
      t->types[pick[k]].reserved = 0;
  }
}

void st_transport_poke(st_transport_t *t) { read_next(t); }

typedef struct {
  st_transport_t *t;
  int ti;
  unsigned count;
} claim_t;

/* XAUTOCLAIM plus each claimed entry's delivery count (XPENDING), for the crash-loop
 * guard: {cursor, entries, counts}. */
static const char claim_lua[] =
    "local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], "
    "'COUNT', ARGV[5]) "
    "local counts = {} "
    "for i, e in ipairs(r[2]) do "
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1) "
    "counts[i] = (p[1] and p[1][4]) or 1 end "
    "return {r[1], r[2], counts}";


static void claim_cb(redisAsyncContext *ac, void *r, void *priv) {
  claim_t *c = priv;
  st_transport_t *t = c->t;
  redisReply *reply = r;
  int ti = c->ti;

  t->types[ti].reserved -= t->types[ti].reserved >= c->count ? c->count : t->types[ti].reserved;
  st_free(c);
  t->claiming = 0;
  if (!reply)
    return;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3 &&
      reply->element[0]->type == REDIS_REPLY_STRING &&
      reply->element[1]->type == REDIS_REPLY_ARRAY &&
      reply->element[2]->type == REDIS_REPLY_ARRAY) {
    snprintf(t->types[ti].cursor, sizeof(t->types[ti].cursor), "%.*s",
             (int)reply->element[0]->len, reply->element[0]->str);
    if (reply->element[1]->elements)
      st_info("redis: reclaimed %zu entries idle past the lease from %s",
              reply->element[1]->elements, t->types[ti].stream);
    deliver_entries(t, ti, reply->element[1], reply->element[2]);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    st_error("redis: XAUTOCLAIM on %s failed: %s", t->types[ti].stream, reply->str);
  }
  if (!claim_next(t, ti + 1))
    read_next(t);
}

/* XAUTOCLAIM for the first type from `from` on that has free slots, on the claim
 * connection between two blocking reads. 1 if a command was sent. */
static int claim_next(st_transport_t *t, int from) {
  char idle[24], count[16];
  for (int i = from; i < t->ntypes; i++) {
    unsigned f = slots_for(t, i), total = slots_total(t);
    claim_t *c;
    if (f > total)
      f = total;
    if (t->stopped || t->closing || !t->blk.up || t->groups_missing)
      return 0;
    if (f == 0)
      continue;
    if (!(c = st_malloc(sizeof(*c))))
      return 0;
    c->t = t;
    c->ti = i;
    c->count = f;
    snprintf(idle, sizeof(idle), "%llu", (unsigned long long)t->lease_ms);
    snprintf(count, sizeof(count), "%u", f);
    t->types[i].reserved += f;
    t->claiming = 1;
    t->blk.probe_ms = st__now_mono_ms();
    if (redisAsyncCommand(t->blk.ac, claim_cb, c, "EVAL %s 1 %s " ST_GROUP " %s %s %s %s",
                          claim_lua, t->types[i].stream, t->consumer, idle,
                          t->types[i].cursor, count) != REDIS_OK) {
      t->types[i].reserved -= f;
      t->claiming = 0;
      st_free(c);
      return 0;
    }
    return 1;
  }
  return 0;
}

/* Reclaiming is due; it runs when the current blocking read returns. */
static void reclaim_tick(uv_timer_t *h) {
  st_transport_t *t = h->data;
  t->claim_due = 1;
  read_next(t);
}

/* ---- life cycle ---------------------------------------------------------- */

static void conn_init(st_transport_t *t, st__conn_t *c, int blocking) {
  c->t = t;
  c->blocking = blocking;
  c->backoff_ms = BACKOFF_MIN_MS;
  uv_timer_init(t->loop, &c->timer);
  c->timer.data = c;
}

int st_transport_new(st_transport_t **out, uv_loop_t *loop, const st_transport_opts_t *opts,
                     const st_transport_cbs_t *cbs, st_error_t *err) {
  st_transport_t *t = NULL;
  int rc = 0, n = 0;
  uint64_t every;

  *out = NULL;
  while (opts->types[n])
    n++;
  if (n == 0 || n > 64)
    return st_fail(err, ST_EINVAL, "transport: between 1 and 64 job types, got %d", n);
  if (!(t = st_calloc(1, sizeof(*t))))
    return st_fail(err, ST_ENOMEM, "transport: out of memory");
  t->loop = loop;
  t->cbs = *cbs;
  t->lease_ms = opts->lease_ms;
  if ((rc = st_redis_url_parse(opts->redis_url, &t->host, &t->port, &t->db, err)))
    goto done;
  t->consumer = st_strdup(opts->consumer);
  t->types = st_calloc((size_t)n, sizeof(*t->types));
  if (!t->consumer || !t->types) {
    rc = st_fail(err, ST_ENOMEM, "transport: out of memory");
    goto done;
  }
  t->ntypes = n;
  for (int i = 0; i < n; i++) {
    st_buf_t s = ST_BUF_INIT;
    st__type_t *ty = &t->types[i];
    ty->name = st_strdup(opts->types[i]);
    if (!ty->name || st_envelope_stream(opts->types[i], &s)) {
      st_buf_release(&s);
      rc = st_fail(err, ST_ENOMEM, "transport: out of memory");
      goto done;
    }
    ty->stream = st_buf_detach(&s, NULL);
    strcpy(ty->cursor, "0-0");
    ty->m_depth = st_metric_gauge("stella_queue_depth_entries",
                                  "Entries in the job stream (not yet acknowledged)", ty->name, NULL);
    ty->m_pending = st_metric_gauge("stella_queue_pending_entries",
                                    "Entries delivered to a consumer and not acknowledged",
                                    ty->name, NULL);
    ty->m_lag = st_metric_gauge("stella_queue_lag_entries",
                                "Entries not yet delivered to the consumer group", ty->name, NULL);
    ty->m_consumers = st_metric_gauge("stella_queue_consumers",
                                      "Consumers in the job type's group", ty->name, NULL);
  }
  t->m_delayed = st_metric_gauge("stella_queue_delayed_entries",
                                 "Retries waiting for their backoff in stella:delayed", NULL, NULL);
  t->m_dlq = st_metric_gauge("stella_queue_dead_letter_entries", "Entries in stella:dlq", NULL,
                             NULL);
  t->m_reconnects = st_metric_counter("stella_redis_reconnects_total",
                                      "Redis reconnection attempts", NULL, NULL);
  conn_init(t, &t->cmd, 0);
  conn_init(t, &t->blk, 1);
  uv_timer_init(loop, &t->reclaim_timer);
  uv_timer_init(loop, &t->mover_timer);
  uv_timer_init(loop, &t->stats_timer);
  t->reclaim_timer.data = t->mover_timer.data = t->stats_timer.data = t;
  every = t->lease_ms / 2 ? t->lease_ms / 2 : 1;
  /* a read blocks at most half a lease, so reclaiming is never held up longer */
  snprintf(t->block_ms, sizeof(t->block_ms), "%llu",
           (unsigned long long)(every < 100 ? 100 : every > 2000 ? 2000 : every));
  uv_timer_start(&t->reclaim_timer, reclaim_tick, every, every);
  uv_timer_start(&t->mover_timer, st__mover_tick, 200, 200);
  uv_timer_start(&t->stats_timer, st__stats_tick, 100, 2000);
  conn_start(&t->cmd);
  conn_start(&t->blk);
  *out = t;
  t = NULL;
done:
  st_transport_free(t); /* only on failure, before any handle was initialised */
  return rc;
}

void st_transport_stop_claiming(st_transport_t *t) {
  if (t->stopped)
    return;
  t->stopped = 1;
  uv_timer_stop(&t->reclaim_timer);
  uv_timer_stop(&t->blk.timer);
  if (t->blk.ac)
    redisAsyncFree(t->blk.ac); /* drops the blocked read at once; its entries stay pending */
  t->blk.ac = NULL; /* (no disconnect callback when it was still connecting) */
  t->blk.up = 0;
  set_ready(t);
}

static void timer_closed(uv_handle_t *h) {
  st_transport_t *t = h->data;
  if (++t->timers_closed == 5 && !t->cmd.ac && !t->blk.ac && t->close_done) {
    void (*done)(void *) = t->close_done;
    t->close_done = NULL;
    done(t->close_ud);
  }
}

void st_transport_close(st_transport_t *t, void (*done)(void *ud), void *ud) {
  st_transport_stop_claiming(t);
  t->closing = 1;
  t->close_done = done;
  t->close_ud = ud;
  if (t->nops)
    st_warn("redis: closing with %zu unsettled entries (they stay pending and are reclaimed)",
            t->nops);
  uv_timer_stop(&t->cmd.timer);
  if (t->cmd.ac && t->cmd.up) {
    redisAsyncDisconnect(t->cmd.ac); /* sends what is queued, then closes */
  } else if (t->cmd.ac) {
    redisAsyncFree(t->cmd.ac);
    t->cmd.ac = NULL;
  }
  uv_close((uv_handle_t *)&t->reclaim_timer, timer_closed);
  uv_close((uv_handle_t *)&t->mover_timer, timer_closed);
  uv_close((uv_handle_t *)&t->stats_timer, timer_closed);
  t->cmd.timer.data = t->blk.timer.data = t;
  uv_close((uv_handle_t *)&t->cmd.timer, timer_closed);
  uv_close((uv_handle_t *)&t->blk.timer, timer_closed);
}

void st_transport_free(st_transport_t *t) {
  if (!t)
    return;
  st__ops_free_all(t);
  for (int i = 0; i < t->ntypes; i++) {
    st_free(t->types[i].name);
    st_free(t->types[i].stream);
  }
  st_free(t->types);
  st_free(t->host);
  st_free(t->consumer);
  st_free(t);
}

size_t st_transport_unsettled(const st_transport_t *t) { return t->nops; }
