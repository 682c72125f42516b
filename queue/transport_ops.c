/* transport_ops.c: settle operations (ack, retry, dead-letter) as idempotent Lua
 * scripts queued until Redis confirms them, the delayed-retry mover, lease touches and
 * the queue statistics timer, which is also the connections' watchdog. Loop thread only. */
#include "transport_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "stella/log.h"
#include "stella/mem.h"

/* Each settle script acts only when its XACK removed the entry from the pending list,
 * so running it twice (a resend after a lost reply) changes nothing the second time. */
static const char ack_lua[] =
    "if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "redis.call('XDEL', KEYS[1], ARGV[2]) return 1 end return 0";
static const char retry_lua[] =
    "if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1] .. '\\n' .. ARGV[4]) "
    "redis.call('XDEL', KEYS[1], ARGV[2]) return 1 end return 0";
static const char dlq_lua[] =
    "if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "redis.call('XADD', KEYS[2], '*', 'reason', ARGV[3], 'class', ARGV[4], 'stream', KEYS[1], "
    "'entry_id', ARGV[2], 'type', ARGV[5], 'job_id', ARGV[6], 'tenant', ARGV[7], "
    "'envelope', ARGV[8]) "
    "redis.call('XDEL', KEYS[1], ARGV[2]) return 1 end return 0";
/* Move due retries back to their stream; XADD and ZREM in one script. */
static const char move_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100) "
    "for _, m in ipairs(due) do "
    "local nl = string.find(m, '\\n', 1, true) "
    "if nl then redis.call('XADD', string.sub(m, 1, nl - 1), '*', 'e', string.sub(m, nl + 1)) end "
    "redis.call('ZREM', KEYS[1], m) end return #due";
/* Refresh the idle time of an entry this consumer still owns (lease heartbeat). */
static const char touch_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1) "
    "if p[1] and p[1][2] == ARGV[2] then "
    "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID') return 1 end return 0";

static uint64_t now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void op_free(st__op_t *op) {
  for (int i = 0; op->argv && i < op->argc; i++)
    st_free(op->argv[i]);
  st_free(op->argv);
  st_free(op->argvlen);
  st_free(op);
}

static void op_unlink(st_transport_t *t, st__op_t *op) {
  *op->prev = op->next;
  if (op->next)
    op->next->prev = op->prev;
  t->nops--;
}

/* Build an EVAL op from (ptr, len) pairs; len SIZE_MAX means strlen. */
static st__op_t *op_new(int argc, const void *const *ptrs, const size_t *lens) {
  st__op_t *op = st_calloc(1, sizeof(*op));
  if (!op)
    return NULL;
  op->argc = argc;
  op->argv = st_calloc((size_t)argc, sizeof(char *));
  op->argvlen = st_calloc((size_t)argc, sizeof(size_t));
  if (!op->argv || !op->argvlen)
    goto fail;
  for (int i = 0; i < argc; i++) {
    size_t n = lens[i] == SIZE_MAX ? strlen(ptrs[i]) : lens[i];
    if (!(op->argv[i] = st_malloc(n + 1)))
      goto fail;
    memcpy(op->argv[i], ptrs[i], n);
    op->argv[i][n] = '\0';
    op->argvlen[i] = n;
  }
  return op;
fail:
  op_free(op);
  return NULL;
}

static void op_cb(redisAsyncContext *ac, void *r, void *priv) {
  st__op_t *op = priv;
  redisReply *reply = r;
  st_transport_t *t = ac->data ? ((st__conn_t *)ac->data)->t : NULL;

  if (!reply) {
    op->sent = 0; /* connection lost: resent after the reconnect */
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR)
    st_error("redis: settling %s failed: %s", op->entry_id, reply->str);
  if (t)
    op_unlink(t, op);
  op_free(op);
}

static void op_send(st_transport_t *t, st__op_t *op) {
  if (op->sent || !t->cmd.up || t->groups_missing)
    return;
  if (redisAsyncCommandArgv(t->cmd.ac, op_cb, op, op->argc, (const char **)op->argv,
                            op->argvlen) == REDIS_OK)
    op->sent = 1;
}

void st__ops_flush(st_transport_t *t) {
  for (st__op_t *op = t->ops; op; op = op->next)
    op_send(t, op);
}

void st__ops_free_all(st_transport_t *t) {
  while (t->held)
    st__unhold(t, t->held->stream, t->held->entry_id);
  while (t->ops) {
    st__op_t *op = t->ops;
    op_unlink(t, op);
    op_free(op);
  }
}

int st__is_held(st_transport_t *t, const char *stream, const char *entry_id, size_t id_len) {
  for (st__held_t *h = t->held; h; h = h->next)
    if (strlen(h->entry_id) == id_len && !memcmp(h->entry_id, entry_id, id_len) &&
        !strcmp(h->stream, stream))
      return 1;
  for (st__op_t *op = t->ops; op; op = op->next)
    if (strlen(op->entry_id) == id_len && !memcmp(op->entry_id, entry_id, id_len) &&
        !strcmp(op->stream, stream))
      return 1;
  return 0;
}

void st__unhold(st_transport_t *t, const char *stream, const char *entry_id) {
  for (st__held_t **p = &t->held; *p; p = &(*p)->next) {
    st__held_t *h = *p;
    if (!strcmp(h->entry_id, entry_id) && !strcmp(h->stream, stream)) {
      *p = h->next;
      st_free(h->stream);
      st_free(h->entry_id);
      st_free(h);
      return;
    }
  }
}

void st_transport_release(st_transport_t *t, const char *stream, const char *entry_id) {
  st__unhold(t, stream, entry_id);
}

static void op_enqueue(st_transport_t *t, int argc, const void *const *ptrs, const size_t *lens) {
  st__op_t *op = op_new(argc, ptrs, lens);
  st__unhold(t, (const char *)ptrs[3], (const char *)ptrs[argc == 6 ? 5 : 6]);
  if (!op) {
    st_error("redis: out of memory queueing a settle of %s; the entry stays pending",
             (const char *)ptrs[argc == 6 ? 5 : 6]);
    return;
  }
  op->stream = op->argv[3];
  op->entry_id = op->argv[argc == 6 ? 5 : 6];
  op->next = t->ops;
  op->prev = &t->ops;
  if (t->ops)
    t->ops->prev = &op->next;
  t->ops = op;
  t->nops++;
  op_send(t, op);
}

#define S SIZE_MAX

void st_transport_ack(st_transport_t *t, const char *stream, const char *entry_id) {
  const void *p[] = {"EVAL", ack_lua, "1", stream, ST_GROUP, entry_id};
  const size_t l[] = {S, S, S, S, S, S};
  op_enqueue(t, 6, p, l);
}

void st_transport_retry(st_transport_t *t, const char *stream, const char *entry_id,
                        const void *envelope, size_t len, uint64_t due_ms) {
  char due[24];
  snprintf(due, sizeof(due), "%llu", (unsigned long long)due_ms);
  const void *p[] = {"EVAL", retry_lua, "2", stream, ST_DELAYED_KEY, ST_GROUP, entry_id, due,
                     envelope};
  const size_t l[] = {S, S, S, S, S, S, S, S, len};
  op_enqueue(t, 9, p, l);
}

void st_transport_dead_letter(st_transport_t *t, const char *stream, const char *entry_id,
                              const char *type, const char *job_id, const char *tenant,
                              const char *reason, const char *klass, const void *envelope,
                              size_t len) {
  const void *p[] = {"EVAL", dlq_lua, "2", stream, ST_DLQ_STREAM, ST_GROUP, entry_id, reason,
                     klass, type, job_id ? job_id : "", tenant ? tenant : "",
                     envelope ? envelope : ""};
  const size_t l[] = {S, S, S, S, S, S, S, S, S, S, S, S, envelope ? len : 0};
  op_enqueue(t, 13, p, l);
}

static void ignore_cb(redisAsyncContext *ac, void *r, void *priv) {}

void st_transport_touch(st_transport_t *t, const char *stream, const char *entry_id) {
  if (t->cmd.up && !t->groups_missing)
    redisAsyncCommand(t->cmd.ac, ignore_cb, NULL, "EVAL %s 1 %s " ST_GROUP " %s %s", touch_lua,
                      stream, t->consumer, entry_id);
}

static void move_cb(redisAsyncContext *ac, void *r, void *priv) {
  st_transport_t *t = priv;
  redisReply *reply = r;
  if (!reply)
    return;
  t->moving = 0;
  if (reply->type == REDIS_REPLY_ERROR)
    st_error("redis: moving delayed retries failed: %s", reply->str);
  else if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
    st_debug("redis: %lld delayed retries due", reply->integer);
}

void st__mover_tick(uv_timer_t *h) {
  st_transport_t *t = h->data;
  char now[24];
  if (t->moving || !t->cmd.up || t->closing)
    return;
  snprintf(now, sizeof(now), "%llu", (unsigned long long)now_ms());
  if (redisAsyncCommand(t->cmd.ac, move_cb, t, "EVAL %s 1 " ST_DELAYED_KEY " %s", move_lua,
                        now) == REDIS_OK)
    t->moving = 1;
}

/* ---- statistics ---------------------------------------------------------- */

static void int_cb(redisAsyncContext *ac, void *r, void *priv) {
  st_metric_t *m = priv;
  redisReply *reply = r;
  if (reply && reply->type == REDIS_REPLY_INTEGER)
    st_metric_set(m, (double)reply->integer);
}

static void groups_cb(redisAsyncContext *ac, void *r, void *priv) {
  st__type_t *ty = priv;
  redisReply *reply = r;
  if (!reply || reply->type != REDIS_REPLY_ARRAY)
    return;
  for (size_t i = 0; i < reply->elements; i++) {
    const redisReply *g = reply->element[i];
    int ours = 0;
    if (g->type != REDIS_REPLY_ARRAY)
      continue;
    for (size_t k = 0; k + 1 < g->elements; k += 2)
      if (g->element[k]->type == REDIS_REPLY_STRING && !strcmp(g->element[k]->str, "name") &&
          g->element[k + 1]->type == REDIS_REPLY_STRING && !strcmp(g->element[k + 1]->str, ST_GROUP))
        ours = 1;
    if (!ours)
      continue;
    for (size_t k = 0; k + 1 < g->elements; k += 2) {
      const redisReply *key = g->element[k], *v = g->element[k + 1];
      if (key->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_INTEGER)
        continue;
      if (!strcmp(key->str, "pending"))
        st_metric_set(ty->m_pending, (double)v->integer);
      else if (!strcmp(key->str, "lag"))
        st_metric_set(ty->m_lag, (double)v->integer);
      else if (!strcmp(key->str, "consumers"))
        st_metric_set(ty->m_consumers, (double)v->integer);
    }
  }
}

#define STALL_MS 5000

static void pong_cb(redisAsyncContext *ac, void *r, void *priv) {
  st__conn_t *c = priv;
  if (r)
    c->probe_out = 0;
}

/* Free a context that stopped answering; its disconnect callback reconnects. */
static void stalled(st__conn_t *c, uint64_t ms) {
  st_warn("redis: %s connection unanswered for %llu ms; reconnecting",
          c->blocking ? "claim" : "command", (unsigned long long)ms);
  redisAsyncFree(c->ac);
}

static void watchdog(st_transport_t *t) {
  uint64_t now = st__now_mono_ms(), block = strtoull(t->block_ms, NULL, 10);
  if (t->closing)
    return;
  if (t->cmd.up && t->cmd.probe_out && now - t->cmd.probe_ms > STALL_MS) {
    stalled(&t->cmd, now - t->cmd.probe_ms);
  } else if (t->cmd.up && !t->cmd.probe_out &&
             redisAsyncCommand(t->cmd.ac, pong_cb, &t->cmd, "PING") == REDIS_OK) {
    t->cmd.probe_out = 1;
    t->cmd.probe_ms = now;
  }
  if (t->blk.up && (t->reading || t->claiming) && now - t->blk.probe_ms > block + STALL_MS)
    stalled(&t->blk, now - t->blk.probe_ms);
}

void st__stats_tick(uv_timer_t *h) {
  st_transport_t *t = h->data;
  watchdog(t);
  if (!t->cmd.up || t->closing || t->groups_missing)
    return;
  for (int i = 0; i < t->ntypes; i++) {
    redisAsyncCommand(t->cmd.ac, int_cb, t->types[i].m_depth, "XLEN %s", t->types[i].stream);
    redisAsyncCommand(t->cmd.ac, groups_cb, &t->types[i], "XINFO GROUPS %s", t->types[i].stream);
  }
  redisAsyncCommand(t->cmd.ac, int_cb, t->m_delayed, "ZCARD " ST_DELAYED_KEY);
  redisAsyncCommand(t->cmd.ac, int_cb, t->m_dlq, "XLEN " ST_DLQ_STREAM);
}
