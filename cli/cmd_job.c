/* cmd_job.c: `stella job submit`: build a job envelope and XADD it to the job type's
 * stream (the orchestrator path). With pg_url set the jobs row is written first (state
 * queued), so `job get|watch|cancel` (cmd_job_state.c) see the job at once; a repeated
 * idempotency key prints the job id that holds it and submits nothing. Prints the job id. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "envelope.h"
#include "registry.h"
#include "stella/config.h"
#include "stella/mem.h"
#include "transport.h"

redisContext *st_cli_redis(const st_config_t *cfg) {
  st_error_t err = ST_ERROR_INIT;
  char *host = NULL;
  int port, db;
  struct timeval tv = {5, 0};
  redisContext *c = NULL;

  if (st_redis_url_parse(st_config_str(cfg, "redis_url"), &host, &port, &db, &err)) {
    fprintf(stderr, "stella: %s\n", st_error_text(&err));
    return NULL;
  }
  c = redisConnectWithTimeout(host, port, tv);
  st_free(host);
  if (!c || c->err) {
    fprintf(stderr, "stella: redis: %s\n", c ? c->errstr : "out of memory");
    redisFree(c);
    return NULL;
  }
  if (db) {
    redisReply *r = redisCommand(c, "SELECT %d", db);
    int bad = !r || r->type == REDIS_REPLY_ERROR;
    freeReplyObject(r);
    if (bad) {
      fprintf(stderr, "stella: redis: SELECT %d failed\n", db);
      redisFree(c);
      return NULL;
    }
  }
  return c;
}

static int submit(int argc, char **argv) {
  const char *type = NULL, *tenant = NULL, *payload = "{}", *idem = NULL, *trace = NULL;
  st_envelope_t env;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t bytes = ST_BUF_INIT, stream = ST_BUF_INIT;
  st_config_t *cfg = NULL;
  json_error_t jerr;
  const st_worker_t *w;
  redisContext *c = NULL;
  redisReply *r = NULL;
  int rc = ST_EXIT_USAGE;

  st_envelope_init(&env);
  for (int i = 1; i < argc; i++) {
    const char **slot = !strcmp(argv[i], "--type")              ? &type
                        : !strcmp(argv[i], "--tenant")          ? &tenant
                        : !strcmp(argv[i], "--payload")         ? &payload
                        : !strcmp(argv[i], "--idempotency-key") ? &idem
                        : !strcmp(argv[i], "--trace")           ? &trace
                                                                : NULL;
    if (!slot || i + 1 >= argc) {
      rc = st_cli_usage("job submit --type T --tenant X [--payload JSON|@file] "
                        "[--idempotency-key K] [--trace TRACEPARENT]");
      goto done;
    }
    *slot = argv[++i];
  }
  if (!type || !tenant) {
    rc = st_cli_usage("job submit: --type and --tenant are required");
    goto done;
  }
  if (!(w = st_worker_find(type))) {
    rc = st_cli_usage("job submit: unknown job type \"%s\"", type);
    goto done;
  }
  env.payload = payload[0] == '@' ? json_load_file(payload + 1, JSON_REJECT_DUPLICATES, &jerr)
                                  : json_loads(payload, JSON_REJECT_DUPLICATES, &jerr);
  if (!env.payload || !json_is_object(env.payload)) {
    rc = st_cli_usage("job submit: --payload: %s", env.payload ? "expected an object" : jerr.text);
    goto done;
  }
  if (w->validate && w->validate(env.payload, &err)) {
    rc = st_cli_usage("job submit: payload: %s", st_error_text(&err));
    goto done;
  }
  env.type = st_strdup(type);
  env.tenant = st_strdup(tenant);
  env.idempotency_key = idem ? st_strdup(idem) : NULL;
  env.trace = trace ? st_strdup(trace) : NULL;
  env.attempt = 1;
  if (st_config_load(&cfg, NULL, &err) || st_envelope_new_id(&env, &err) ||
      st_envelope_encode(&env, (size_t)st_config_int(cfg, "max_envelope_bytes"), &bytes, &err) ||
      st_envelope_stream(type, &stream)) {
    fprintf(stderr, "stella: %s\n", st_error_text(&err));
    goto done;
  }
  if (st_config_str(cfg, "pg_url")) {
    char *text = json_dumps(env.payload, JSON_COMPACT), *existing = NULL;
    rc = text ? st_cli_job_record_queued(tenant, env.job_id, type, idem, text, &existing)
              : ST_EXIT_FAIL;
    free(text);
    if (rc == ST_EXIT_OK && existing) {
      fprintf(stderr, "stella: idempotency key already used by job %s; not submitted again\n",
              existing);
      printf("%s\n", existing);
      st_free(existing);
      goto done;
    }
    if (rc != ST_EXIT_OK)
      goto done;
    rc = ST_EXIT_USAGE;
  }
  if (!(c = st_cli_redis(cfg)))
    goto done;
  r = redisCommand(c, "XADD %s * e %b", stream.data, bytes.data, bytes.len);
  if (!r || r->type != REDIS_REPLY_STRING) {
    fprintf(stderr, "stella: redis: XADD failed: %s\n", r && r->str ? r->str : c->errstr);
    goto done;
  }
  printf("%s\n", env.job_id);
  rc = ST_EXIT_OK;
done:
  freeReplyObject(r);
  if (c)
    redisFree(c);
  st_config_free(cfg);
  st_buf_release(&bytes);
  st_buf_release(&stream);
  st_envelope_release(&env);
  return rc;
}

int st_cmd_job(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "submit"))
    return submit(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "get"))
    return st_cli_job_get(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "watch"))
    return st_cli_job_watch(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "cancel"))
    return st_cli_job_cancel(argc - 1, argv + 1);
  return st_cli_usage("job submit|get|watch|cancel ...");
}
