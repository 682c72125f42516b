/* events_source.c: consumer-group reads, acks and dead-lettering on the events stream. */
#include "events_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "stella/mem.h"
#include "transport.h"

static void entry_release(st_events_entry_t *e) {
  st_free(e->id);
  st_free(e->event);
  st_free(e->event_id);
  st_free(e->tenant);
  st_free(e->type);
}

void st_events_batch_release(st_events_batch_t *b) {
  for (size_t i = 0; i < b->n; i++)
    entry_release(&b->entries[i]);
  st_free(b->entries);
  b->entries = NULL;
  b->n = 0;
}

static int is_str(const redisReply *r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static int take_field(st_events_entry_t *e, const redisReply *k, const redisReply *v) {
  static const char *const names[] = {"event", "event_id", "tenant", "type"};
  char **slots[] = {&e->event, &e->event_id, &e->tenant, &e->type};
  for (size_t i = 0; i < 4; i++) {
    if (k->len != strlen(names[i]) || memcmp(k->str, names[i], k->len))
      continue;
    if (*slots[i]) /* a repeated field: keep the first, never guess */
      return 0;
    if (v->len > ST_EVENTS_FIELD_MAX) {
      e->oversized = 1;
      return 0;
    }
    if (!(*slots[i] = st_strndup(v->str, v->len)))
      return ST_ENOMEM;
    if (i == 0)
      e->event_len = v->len;
    /* Routing fields with embedded NULs cannot match the envelope: drop them. */
    if (i > 0 && strlen(*slots[i]) != v->len)
      e->oversized = 1;
  }
  return 0;
}

int st_events_parse(const redisReply *reply, st_events_batch_t *out, st_error_t *err) {
  const redisReply *entries = reply;
  int rc = 0;

  out->entries = NULL, out->n = 0;
  if (!reply || reply->type == REDIS_REPLY_NIL)
    return 0;
  /* XREADGROUP: [[stream, entries]] */
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
      reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2 &&
      is_str(reply->element[0]->element[0]))
    entries = reply->element[0]->element[1];
  if (entries->type != REDIS_REPLY_ARRAY)
    return st_fail(err, ST_EPARSE, "events: unexpected reply type %d", entries->type);
  if (!entries->elements)
    return 0;
  if (!(out->entries = st_calloc(entries->elements, sizeof(*out->entries))))
    return st_fail(err, ST_ENOMEM, "events: out of memory");
  for (size_t i = 0; i < entries->elements; i++) {
    const redisReply *en = entries->element[i], *f;
    st_events_entry_t *e = &out->entries[i];
    out->n = i + 1;
    if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 || !is_str(en->element[0])) {
      rc = st_fail(err, ST_EPARSE, "events: entry %zu is not [id, fields]", i);
      goto done;
    }
    if (!(e->id = st_strndup(en->element[0]->str, en->element[0]->len))) {
      rc = st_fail(err, ST_ENOMEM, "events: out of memory");
      goto done;
    }
    f = en->element[1];
    if (f->type == REDIS_REPLY_NIL) /* deleted while pending: no fields */
      continue;
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2) {
      rc = st_fail(err, ST_EPARSE, "events: entry %s: fields are not pairs", e->id);
      goto done;
    }
    for (size_t j = 0; j < f->elements; j += 2) {
      if (!is_str(f->element[j]) || !is_str(f->element[j + 1])) {
        rc = st_fail(err, ST_EPARSE, "events: entry %s: non-string field", e->id);
        goto done;
      }
      if (take_field(e, f->element[j], f->element[j + 1])) {
        rc = st_fail(err, ST_ENOMEM, "events: out of memory");
        goto done;
      }
    }
  }
done:
  if (rc)
    st_events_batch_release(out);
  return rc;
}

static int reply_check(redisContext *c, redisReply *r, const char *what, st_error_t *err) {
  if (!r)
    return st_fail(err, ST_EREDIS, "%s: %s", what, c->errstr[0] ? c->errstr : "no reply");
  if (r->type == REDIS_REPLY_ERROR)
    return st_fail(err, ST_EREDIS, "%s: %s", what, r->str);
  return 0;
}

int st_events_connect(const char *url, redisContext **out, st_error_t *err) {
  struct timeval tv = {5, 0};
  char *host = NULL;
  int port, db, rc = 0;
  redisContext *c = NULL;
  redisReply *r = NULL;

  *out = NULL;
  if ((rc = st_redis_url_parse(url, &host, &port, &db, err)))
    return rc;
  c = redisConnectWithTimeout(host, port, tv);
  if (!c || c->err) {
    rc = st_fail(err, ST_EREDIS, "redis %s: %s", url, c ? c->errstr : "out of memory");
    goto done;
  }
  if (db && (rc = reply_check(c, r = redisCommand(c, "SELECT %d", db), "SELECT", err)))
    goto done;
  *out = c;
  c = NULL;
done:
  if (r)
    freeReplyObject(r);
  if (c)
    redisFree(c);
  st_free(host);
  return rc;
}

int st_events_group_create(redisContext *c, const char *stream, const char *group,
                           st_error_t *err) {
  redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", stream, group);
  int rc = 0;
  if (!(r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "BUSYGROUP", 9)))
    rc = reply_check(c, r, "XGROUP CREATE", err);
  if (r)
    freeReplyObject(r);
  return rc;
}

int st_events_read(redisContext *c, const char *stream, const char *group,
                   const char *consumer, size_t count, int block_ms, int pending,
                   st_events_batch_t *out, st_error_t *err) {
  redisReply *r;
  char cnt[24];
  int rc;

  out->entries = NULL, out->n = 0;
  if (count == 0)
    return st_fail(err, ST_EINVAL, "events: count must be at least 1");
  snprintf(cnt, sizeof(cnt), "%zu", count); /* hiredis formats no %zu */
  if (block_ms > 0 && !pending)
    r = redisCommand(c, "XREADGROUP GROUP %s %s COUNT %s BLOCK %d STREAMS %s >", group,
                     consumer, cnt, block_ms, stream);
  else
    r = redisCommand(c, "XREADGROUP GROUP %s %s COUNT %s STREAMS %s %s", group, consumer,
                     cnt, stream, pending ? "0" : ">");
  if (!(rc = reply_check(c, r, "XREADGROUP", err)))
    rc = st_events_parse(r, out, err);
  if (r)
    freeReplyObject(r);
  return rc;
}

int st_events_claim(redisContext *c, const char *stream, const char *group,
                    const char *consumer, long long min_idle_ms, size_t count, char *cursor,
                    st_events_batch_t *out, st_error_t *err) {
  redisReply *r;
  char cnt[24], idle[24];
  int rc;

  out->entries = NULL, out->n = 0;
  if (count == 0 || min_idle_ms < 0)
    return st_fail(err, ST_EINVAL, "events: claim needs a count and a min idle time >= 0");
  snprintf(cnt, sizeof(cnt), "%zu", count);
  snprintf(idle, sizeof(idle), "%lld", min_idle_ms);
  r = redisCommand(c, "XAUTOCLAIM %s %s %s %s %s COUNT %s", stream, group, consumer, idle,
                   cursor, cnt);
  if ((rc = reply_check(c, r, "XAUTOCLAIM", err)))
    goto done;
  /* [next cursor, [entries], [deleted ids]] */
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !is_str(r->element[0]) ||
      r->element[0]->len >= ST_EVENTS_CURSOR_MAX) {
    rc = st_fail(err, ST_EPARSE, "XAUTOCLAIM: unexpected reply shape");
    goto done;
  }
  if ((rc = st_events_parse(r->element[1], out, err)))
    goto done;
  memcpy(cursor, r->element[0]->str, r->element[0]->len);
  cursor[r->element[0]->len] = '\0';
done:
  if (r)
    freeReplyObject(r);
  return rc;
}

/* The integer value of key in a flat [k, v, k, v ...] reply; -1 when absent or nil. */
static long long map_int(const redisReply *m, const char *key) {
  for (size_t i = 0; i + 1 < m->elements; i += 2) {
    const redisReply *k = m->element[i], *v = m->element[i + 1];
    if (!is_str(k) || k->len != strlen(key) || memcmp(k->str, key, k->len))
      continue;
    if (v->type == REDIS_REPLY_INTEGER)
      return v->integer;
    return -1;
  }
  return -1;
}

static int map_is(const redisReply *m, const char *key, const char *value) {
  for (size_t i = 0; i + 1 < m->elements; i += 2) {
    const redisReply *k = m->element[i], *v = m->element[i + 1];
    if (is_str(k) && k->len == strlen(key) && !memcmp(k->str, key, k->len))
      return is_str(v) && v->len == strlen(value) && !memcmp(v->str, value, v->len);
  }
  return 0;
}

int st_events_group_lag(redisContext *c, const char *stream, const char *group,
                        long long *lag, long long *pending, st_error_t *err) {
  redisReply *r = redisCommand(c, "XINFO GROUPS %s", stream);
  int rc;

  *lag = *pending = -1;
  if ((rc = reply_check(c, r, "XINFO GROUPS", err)))
    goto done;
  if (r->type != REDIS_REPLY_ARRAY) {
    rc = st_fail(err, ST_EPARSE, "XINFO GROUPS: unexpected reply shape");
    goto done;
  }
  for (size_t i = 0; i < r->elements && *pending < 0; i++) {
    const redisReply *g = r->element[i];
    if (g->type == REDIS_REPLY_ARRAY && map_is(g, "name", group)) {
      *lag = map_int(g, "lag");
      *pending = map_int(g, "pending");
    }
  }
  if (*pending < 0)
    rc = st_fail(err, ST_ENOENT, "XINFO GROUPS %s: no group %s", stream, group);
done:
  if (r)
    freeReplyObject(r);
  return rc;
}

int st_events_ack(redisContext *c, const char *stream, const char *group,
                  const char *const *ids, size_t n, st_error_t *err) {
  const char **argv = NULL;
  redisReply *r = NULL;
  int rc;

  if (!n)
    return 0;
  if (!(argv = st_calloc(n + 3, sizeof(*argv))))
    return st_fail(err, ST_ENOMEM, "events: out of memory");
  argv[0] = "XACK", argv[1] = stream, argv[2] = group;
  memcpy(argv + 3, ids, n * sizeof(*ids));
  r = redisCommandArgv(c, (int)(n + 3), argv, NULL);
  rc = reply_check(c, r, "XACK", err);
  if (r)
    freeReplyObject(r);
  st_free(argv);
  return rc;
}

int st_events_dead_letter(redisContext *c, const char *dlq, const char *stream,
                          const char *group, const st_events_entry_t *e, const char *reason,
                          st_error_t *err) {
  redisReply *r = NULL;
  int rc = 0;

  const char *argv[16] = {"XADD", dlq, "*", "reason", reason, "class", "permanent",
                          "stream", stream, "entry_id", e->id};
  size_t lens[16];
  int n = 11;

  if (e->type)
    argv[n++] = "type", argv[n++] = e->type;
  if (e->tenant)
    argv[n++] = "tenant", argv[n++] = e->tenant;
  if (e->event)
    argv[n++] = "event", argv[n++] = e->event;
  for (int i = 0; i < n; i++)
    lens[i] = argv[i] == e->event ? e->event_len : strlen(argv[i]);
  redisAppendCommand(c, "MULTI");
  redisAppendCommandArgv(c, n, argv, lens);
  redisAppendCommand(c, "XACK %s %s %s", stream, group, e->id);
  redisAppendCommand(c, "EXEC");
  for (int i = 0; i < 4; i++) {
    void *p = NULL;
    if (redisGetReply(c, &p) != REDIS_OK)
      return st_fail(err, ST_EREDIS, "dead-letter: %s", c->errstr);
    r = p;
    if (!rc)
      rc = reply_check(c, r, "dead-letter", err);
    if (!rc && i == 3 && r->type != REDIS_REPLY_ARRAY)
      rc = st_fail(err, ST_EREDIS, "dead-letter: transaction aborted");
    freeReplyObject(r);
  }
  return rc;
}
