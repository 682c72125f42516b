/* cmd_queue.c: `stella queue stats [--json]` and `stella queue dlq list|retry ID|drop ID`
 * over a synchronous Redis connection. Dead letters per type are counted by scanning
 * stella:dlq in pages of 500. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "envelope.h"
#include "registry.h"
#include "stella/config.h"
#include "stella/mem.h"
#include "transport.h"

static long long int_reply(redisContext *c, const char *fmt, const char *arg) {
  redisReply *r = redisCommand(c, fmt, arg);
  long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  freeReplyObject(r);
  return v;
}

/* Field `name` of a flat [k, v, ...] reply, or NULL. */
static const redisReply *field(const redisReply *kv, const char *name) {
  for (size_t i = 0; kv && kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2)
    if (kv->element[i]->type == REDIS_REPLY_STRING && !strcmp(kv->element[i]->str, name))
      return kv->element[i + 1];
  return NULL;
}

static json_t *group_info(redisContext *c, const char *stream) {
  redisReply *r = redisCommand(c, "XINFO GROUPS %s", stream);
  json_t *o = json_object();
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *name = field(r->element[i], "name");
    if (!name || strcmp(name->str, ST_GROUP))
      continue;
    const char *keys[] = {"consumers", "pending", "lag"};
    for (int k = 0; k < 3; k++) {
      const redisReply *v = field(r->element[i], keys[k]);
      json_object_set_new(o, keys[k], v && v->type == REDIS_REPLY_INTEGER ? json_integer(v->integer)
                                                                           : json_null());
    }
  }
  freeReplyObject(r);
  return o;
}

static void count_dlq(redisContext *c, json_t *per_type) {
  char start[64] = "-";
  for (;;) {
    redisReply *r = redisCommand(c, "XRANGE " ST_DLQ_STREAM " %s + COUNT 500", start);
    size_t n = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t i = 0; i < n; i++) {
      const redisReply *e = r->element[i], *type = field(e->element[1], "type");
      const char *t = type ? type->str : "?";
      json_object_set_new(per_type, t, json_integer(json_integer_value(json_object_get(per_type, t)) + 1));
      if (i + 1 == n)
        snprintf(start, sizeof(start), "(%s", e->element[0]->str);
    }
    freeReplyObject(r);
    if (n < 500)
      return;
  }
}

static int stats(redisContext *c, int as_json) {
  json_t *out = json_object(), *types = json_object(), *dlq = json_object();
  count_dlq(c, dlq);
  for (const st_worker_t *const *w = st_workers_all(); *w; w++) {
    char stream[128];
    json_t *t;
    snprintf(stream, sizeof(stream), ST_STREAM_PREFIX "%s", (*w)->name);
    t = group_info(c, stream);
    json_object_set_new(t, "depth", json_integer(int_reply(c, "XLEN %s", stream)));
    json_object_set_new(t, "dead_letters",
                        json_integer(json_integer_value(json_object_get(dlq, (*w)->name))));
    json_object_set_new(types, (*w)->name, t);
  }
  json_object_set_new(out, "types", types);
  json_object_set_new(out, "delayed", json_integer(int_reply(c, "ZCARD %s", ST_DELAYED_KEY)));
  json_object_set_new(out, "dead_letters", json_integer(int_reply(c, "XLEN %s", ST_DLQ_STREAM)));
  if (as_json) {
    char *s = json_dumps(out, JSON_SORT_KEYS);
    printf("%s\n", s ? s : "{}");
    free(s);
  } else {
    const char *k;
    json_t *v;
    printf("%-16s %8s %8s %8s %10s %12s\n", "type", "depth", "pending", "lag", "consumers",
           "dead_letters");
    json_object_foreach(types, k, v)
      printf("%-16s %8lld %8lld %8lld %10lld %12lld\n", k,
             json_integer_value(json_object_get(v, "depth")),
             json_integer_value(json_object_get(v, "pending")),
             json_integer_value(json_object_get(v, "lag")),
             json_integer_value(json_object_get(v, "consumers")),
             json_integer_value(json_object_get(v, "dead_letters")));
    printf("delayed retries: %lld, dead letters: %lld\n",
           json_integer_value(json_object_get(out, "delayed")),
           json_integer_value(json_object_get(out, "dead_letters")));
  }
  json_decref(dlq);
  json_decref(out);
  return ST_EXIT_OK;
}

static int dlq_list(redisContext *c, int as_json) {
  redisReply *r = redisCommand(c, "XRANGE " ST_DLQ_STREAM " - + COUNT 1000");
  json_t *arr = json_array();
  const char *keys[] = {"type", "job_id", "tenant", "class", "reason", "stream", "entry_id"};

  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    json_t *o = json_pack("{s:s}", "id", e->element[0]->str);
    for (int k = 0; k < 7; k++) {
      const redisReply *v = field(e->element[1], keys[k]);
      json_object_set_new(o, keys[k], json_stringn(v ? v->str : "", v ? v->len : 0));
    }
    if (as_json)
      json_array_append_new(arr, o);
    else {
      printf("%s %s %s %s %s: %s\n", e->element[0]->str,
             json_string_value(json_object_get(o, "type")),
             json_string_value(json_object_get(o, "job_id")),
             json_string_value(json_object_get(o, "tenant")),
             json_string_value(json_object_get(o, "class")),
             json_string_value(json_object_get(o, "reason")));
      json_decref(o);
    }
  }
  if (as_json) {
    char *s = json_dumps(arr, 0);
    printf("%s\n", s ? s : "[]");
    free(s);
  }
  json_decref(arr);
  freeReplyObject(r);
  return ST_EXIT_OK;
}

/* Put a dead letter back on its stream (attempt reset to 1 when it decodes) and delete
 * it from the DLQ, atomically, only if it is still there. */
static const char requeue_lua[] =
    "if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return 0 end "
    "redis.call('XADD', ARGV[2], '*', 'e', ARGV[3]) redis.call('XDEL', KEYS[1], ARGV[1]) "
    "return 1";

static int dlq_retry(redisContext *c, const st_config_t *cfg, const char *id) {
  redisReply *r = redisCommand(c, "XRANGE " ST_DLQ_STREAM " %s %s", id, id), *r2 = NULL;
  const redisReply *stream, *envb;
  st_envelope_t env;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t bytes = ST_BUF_INIT;
  int rc = ST_EXIT_FAIL;

  st_envelope_init(&env);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
    fprintf(stderr, "stella: dead letter %s not found\n", id);
    goto done;
  }
  stream = field(r->element[0]->element[1], "stream");
  envb = field(r->element[0]->element[1], "envelope");
  if (!stream || !envb || strncmp(stream->str, ST_STREAM_PREFIX, strlen(ST_STREAM_PREFIX))) {
    fprintf(stderr, "stella: dead letter %s has no stream or envelope\n", id);
    goto done;
  }
  if (st_envelope_decode(&env, envb->str, envb->len, NULL, &err) == 0) {
    env.attempt = 1;
    env.not_before = 0;
    if (st_envelope_encode(&env, (size_t)st_config_int(cfg, "max_envelope_bytes"), &bytes, &err))
      goto done;
  } else if (st_buf_add(&bytes, envb->str, envb->len)) {
    goto done;
  }
  r2 = redisCommand(c, "EVAL %s 1 %s %s %s %b", requeue_lua, ST_DLQ_STREAM, id, stream->str,
                    bytes.data, bytes.len);
  if (!r2 || r2->type != REDIS_REPLY_INTEGER || r2->integer != 1) {
    fprintf(stderr, "stella: requeueing %s failed\n", id);
    goto done;
  }
  printf("requeued %s to %s\n", id, stream->str);
  rc = ST_EXIT_OK;
done:
  freeReplyObject(r);
  freeReplyObject(r2);
  st_buf_release(&bytes);
  st_envelope_release(&env);
  return rc;
}

static int dlq_drop(redisContext *c, const char *id) {
  long long n = int_reply(c, "XDEL " ST_DLQ_STREAM " %s", id);
  if (n != 1) {
    fprintf(stderr, "stella: dead letter %s not found\n", id);
    return ST_EXIT_FAIL;
  }
  printf("dropped %s\n", id);
  return ST_EXIT_OK;
}

int st_cmd_queue(int argc, char **argv) {
  st_config_t *cfg = NULL;
  st_error_t err = ST_ERROR_INIT;
  redisContext *c = NULL;
  int as_json = argc >= 2 && !strcmp(argv[argc - 1], "--json"), rc = ST_EXIT_USAGE;
  int n = argc - as_json;

  if (n < 2 || (strcmp(argv[1], "stats") && strcmp(argv[1], "dlq")) ||
      (!strcmp(argv[1], "stats") && n != 2) ||
      (!strcmp(argv[1], "dlq") &&
       !(n == 3 && !strcmp(argv[2], "list")) &&
       !(n == 4 && (!strcmp(argv[2], "retry") || !strcmp(argv[2], "drop")))))
    return st_cli_usage("queue stats [--json] | queue dlq list [--json] | queue dlq retry|drop ID");
  if (st_config_load(&cfg, NULL, &err)) {
    fprintf(stderr, "stella: %s\n", st_error_text(&err));
    return ST_EXIT_USAGE;
  }
  if (!(c = st_cli_redis(cfg)))
    goto done;
  if (!strcmp(argv[1], "stats"))
    rc = stats(c, as_json);
  else if (!strcmp(argv[2], "list"))
    rc = dlq_list(c, as_json);
  else if (!strcmp(argv[2], "retry"))
    rc = dlq_retry(c, cfg, argv[3]);
  else
    rc = dlq_drop(c, argv[3]);
done:
  if (c)
    redisFree(c);
  st_config_free(cfg);
  return rc;
}
