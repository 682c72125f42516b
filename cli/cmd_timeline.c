/* cmd_timeline.c: `stella timeline query|get|evidence|ingest`.
 *
 *   query    --tenant T [--type X] [--since RFC3339] [--until RFC3339] [--subject S]
 *            [--digest D] [--trace ID] [--actor A] [--correlation ID] [--limit N]
 *            [--cursor C] [--json]
 *   get      --tenant T ID [--json]
 *   evidence --tenant T ID [--json]
 *   ingest   --once [--count N] [--block MS] [--consumer NAME] [--group G] [--stream S]
 *   validate FILE   decode FILE (JSON or msgpack envelope) as an event: "ok" or the error
 *
 * Reads run directly against Postgres (pg_url) as the tenant (RLS); cursors need
 * timeline_cursor_key. `ingest --once` reads one batch from the events stream (this
 * consumer's unacknowledged entries first, so a failed run's entries are retried), stores
 * it, acks what committed, dead-letters poison, and prints a JSON summary; it exits 1 when
 * some entries are left for redelivery. The supervisor does the same continuously.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "events_source.h"
#include "stella/buf.h"
#include "stella/config.h"
#include "stella/db.h"
#include "stella/mem.h"
#include "timeline/timeline_query.h"
#include "timeline/timeline_redis.h"
#include "transport.h"

typedef struct opts_s {
  const char *config, *tenant, *cursor, *id;
  st_tl_filter_t f;
  int json, once, block_ms;
  long count;
  const char *consumer, *group, *stream;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o) {
  struct {
    const char *flag;
    const char **dst;
  } strs[] = {{"--config", &o->config},     {"--tenant", &o->tenant},
              {"--cursor", &o->cursor},     {"--type", &o->f.type},
              {"--since", &o->f.since},     {"--until", &o->f.until},
              {"--subject", &o->f.subject}, {"--digest", &o->f.digest},
              {"--trace", &o->f.trace_id},  {"--actor", &o->f.actor},
              {"--correlation", &o->f.correlation_id},
              {"--consumer", &o->consumer}, {"--group", &o->group},
              {"--stream", &o->stream}};
  for (int i = 2; i < argc; i++) {
    size_t k = 0, ns = sizeof(strs) / sizeof(strs[0]);
    while (k < ns && strcmp(argv[i], strs[k].flag))
      k++;
    if (k < ns && i + 1 < argc)
      *strs[k].dst = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      o->json = 1;
    else if (!strcmp(argv[i], "--once"))
      o->once = 1;
    else if ((!strcmp(argv[i], "--limit") || !strcmp(argv[i], "--count") ||
              !strcmp(argv[i], "--block")) && i + 1 < argc) {
      char *end;
      long v = strtol(argv[i + 1], &end, 10);
      if (*end || v < 0 || v > 100000)
        return -1;
      if (argv[i][2] == 'l')
        o->f.limit = (size_t)v;
      else if (argv[i][2] == 'c')
        o->count = v;
      else
        o->block_ms = (int)v;
      i++;
    } else if (argv[i][0] != '-' && !o->id)
      o->id = argv[i];
    else
      return -1;
  }
  return 0;
}

static void put(json_t *o, const char *k, const char *v) {
  json_object_set_new(o, k, v ? json_string(v) : json_null());
}

static void print_json(json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (s)
    puts(s);
  free(s); /* jansson's allocation */
  json_decref(j);
}

static int fail(const st_error_t *err) {
  fprintf(stderr, "stella: timeline: %s\n", st_error_text(err));
  return err->code == ST_EINVAL || err->code == ST_ECONFIG ? ST_EXIT_USAGE : ST_EXIT_FAIL;
}

static int do_query(st_db_pool_t *pool, const st_config_t *cfg, opts_t *o) {
  const char *k = st_config_str(cfg, "timeline_cursor_key");
  st_tl_cursor_key_t key = {(const unsigned char *)k, k ? strlen(k) : 0};
  st_tl_page_t page = {0};
  st_error_t err = ST_ERROR_INIT;

  if (st_tl_query(pool, o->tenant, &o->f, o->cursor, &key, &page, &err))
    return fail(&err);
  if (o->json) {
    json_t *arr = json_array(), *doc = json_object();
    for (size_t i = 0; i < page.n; i++)
      json_array_append_new(arr, st_tl_row_json(&page.rows[i]));
    json_object_set_new(doc, "items", arr);
    put(doc, "next_cursor", page.next_cursor);
    print_json(doc);
  } else {
    printf("%-27s  %-24s  %-28s  %-24s  %-4s  %s\n", "OCCURRED_AT", "TYPE", "EVENT_ID",
           "SUBJECT", "HOLD", "SOURCE");
    for (size_t i = 0; i < page.n; i++) {
      const st_tl_row_t *r = &page.rows[i];
      printf("%-27s  %-24s  %-28s  %-24s  %-4s  %s#%llu-%llu\n", r->occurred_at, r->type,
             r->event_id, r->subject ? r->subject : "-", r->legal_hold ? "yes" : "-",
             r->source, (unsigned long long)r->seq, (unsigned long long)r->seq_minor);
    }
    if (page.next_cursor)
      printf("next: --cursor %s\n", page.next_cursor);
  }
  st_tl_page_release(&page);
  return ST_EXIT_OK;
}

static int do_get(st_db_pool_t *pool, opts_t *o) {
  st_tl_row_t row;
  char *payload = NULL;
  st_error_t err = ST_ERROR_INIT;
  json_t *j;

  if (st_tl_get(pool, o->tenant, o->id, &row, &payload, &err))
    return fail(&err);
  j = st_tl_row_json(&row);
  json_object_set_new(j, "payload", json_loads(payload, 0, NULL));
  print_json(j);
  st_tl_row_release(&row);
  st_free(payload);
  return ST_EXIT_OK;
}

static int do_evidence(st_db_pool_t *pool, opts_t *o) {
  st_tl_link_t *links = NULL;
  size_t n = 0;
  st_error_t err = ST_ERROR_INIT;
  json_t *arr, *doc;

  if (st_tl_evidence(pool, o->tenant, o->id, &links, &n, &err))
    return fail(&err);
  arr = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *l = json_object();
    put(l, "digest", links[i].digest);
    put(l, "bundle_id", links[i].bundle_id);
    put(l, "manifest_ref", links[i].manifest_ref);
    json_object_set_new(l, "legal_hold", json_boolean(links[i].legal_hold));
    json_array_append_new(arr, l);
  }
  doc = json_object();
  put(doc, "event_id", o->id);
  json_object_set_new(doc, "evidence", arr);
  print_json(doc);
  st_tl_links_free(links, n);
  return ST_EXIT_OK;
}

/* Reads before connecting to Postgres: with the database down the batch stays pending in
 * the group (delivered, unacked) and the next run re-reads it. */
static int do_ingest(const st_config_t *cfg, opts_t *o) {
  st_db_pool_t *pool = NULL;
  redisContext *rc = NULL;
  st_events_batch_t b = {0};
  st_tl_result_t *res = NULL;
  st_tl_metrics_t m = {0};
  st_error_t err = ST_ERROR_INIT, ierr = ST_ERROR_INIT;
  int ret = ST_EXIT_FAIL;

  if (!o->once)
    return st_cli_usage("timeline ingest: only --once is supported (stellad ingests "
                        "continuously)");
  if (o->count <= 0 || o->count > ST_TL_BATCH_MAX)
    o->count = o->count ? -1 : 500;
  if (o->count < 0)
    return st_cli_usage("timeline ingest: --count must be 1..%d", ST_TL_BATCH_MAX);
  if (strlen(o->stream) > ST_TL_SOURCE_MAX - strlen("redis:"))
    return st_cli_usage("timeline ingest: stream name too long");
  if (st_events_connect(st_config_str(cfg, "redis_url"), &rc, &err) ||
      st_events_group_create(rc, o->stream, o->group, &err) ||
      st_events_read(rc, o->stream, o->group, o->consumer, (size_t)o->count, 0, 1, &b, &err))
    goto fail;
  if (!b.n && st_events_read(rc, o->stream, o->group, o->consumer, (size_t)o->count,
                             o->block_ms, 0, &b, &err))
    goto fail;
  if (b.n && st_db_pool_new(st_config_str(cfg, "pg_url"), 1, &pool, &err))
    goto fail;
  if (b.n) {
    st_tl_redis_dest_t d = {o->stream, o->group, ST_DLQ_STREAM};
    size_t dead = 0;
    if (!(res = st_calloc(b.n, sizeof(*res)))) {
      st_fail(&err, ST_ENOMEM, "out of memory");
      goto fail;
    }
    if (st_tl_redis_ingest(rc, pool, &d, &b, res, &m, &dead, &ierr, &err))
      goto fail;
  }
  printf("{\"read\":%zu,\"stored\":%llu,\"duplicates\":%llu,\"poison\":%llu,\"retry\":%llu}\n",
         b.n, (unsigned long long)m.stored, (unsigned long long)m.duplicates,
         (unsigned long long)m.poison, (unsigned long long)m.retried);
  for (size_t i = 0; i < b.n; i++)
    if (res[i].reason)
      fprintf(stderr, "stella: timeline: entry %s: %s: %s\n", b.entries[i].id,
              st_tl_outcome_name(res[i].outcome), res[i].reason);
  ret = ierr.code ? ST_EXIT_FAIL : ST_EXIT_OK;
  goto done;
fail:
  fprintf(stderr, "stella: timeline ingest: %s\n", st_error_text(&err));
done:
  if (res)
    st_tl_results_release(res, b.n);
  st_free(res);
  st_events_batch_release(&b);
  if (rc)
    redisFree(rc);
  st_db_pool_free(pool);
  return ret;
}

static int do_validate(const char *path) {
  st_buf_t body = ST_BUF_INIT;
  st_tl_event_t ev;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_OK;

  /* One byte over the cap still reads, so decoding reports the size, not the reader. */
  if (st_cli_read_file(path, ST_TL_EVENT_MAX_BYTES + 1, &body))
    return ST_EXIT_USAGE;
  st_tl_raw_t raw = {"file", 0, 0, body.data, body.len, NULL, NULL, NULL};
  st_tl_event_init(&ev);
  if (st_tl_event_decode(&raw, &ev, &err)) {
    printf("invalid: %s\n", st_error_text(&err));
    rc = ST_EXIT_FAIL;
  } else {
    printf("ok: %s %s %s\n", ev.tenant, ev.event_id, ev.type);
  }
  st_tl_event_release(&ev);
  st_buf_release(&body);
  return rc;
}

int st_cmd_timeline(int argc, char **argv) {
  opts_t o = {0};
  st_config_t *cfg = NULL;
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  const char *sub = argc > 1 ? argv[1] : "";
  int rc;

  o.consumer = "stella-cli", o.group = "timeline", o.stream = ST_EVENTS_STREAM;
  if (parse_opts(argc, argv, &o))
    return st_cli_usage("usage: stella timeline query|get|evidence|ingest ... (see docs/timeline.md)");
  if (!strcmp(sub, "validate"))
    return o.id ? do_validate(o.id) : st_cli_usage("usage: stella timeline validate FILE");
  if (strcmp(sub, "ingest") && (!o.tenant || ((!strcmp(sub, "get") ||
                                               !strcmp(sub, "evidence")) && !o.id)))
    return st_cli_usage("timeline %s: --tenant%s required", sub,
                        strcmp(sub, "query") ? " and an event id are" : " is");
  if (st_config_load(&cfg, o.config, &err))
    return st_cli_usage("%s", st_error_text(&err));
  if (!st_config_str(cfg, "pg_url")) {
    rc = st_cli_usage("timeline: pg_url is not set (config file or STELLA_PG_URL)");
    goto done;
  }
  if (!strcmp(sub, "ingest")) {
    rc = do_ingest(cfg, &o);
    goto done;
  }
  if (st_db_pool_new(st_config_str(cfg, "pg_url"), 1, &pool, &err)) {
    rc = fail(&err);
    goto done;
  }
  if (!strcmp(sub, "query"))
    rc = do_query(pool, cfg, &o);
  else if (!strcmp(sub, "get"))
    rc = do_get(pool, &o);
  else if (!strcmp(sub, "evidence"))
    rc = do_evidence(pool, &o);
  else
    rc = st_cli_usage("timeline: unknown subcommand '%s' (query, get, evidence, ingest)", sub);
done:
  st_db_pool_free(pool);
  st_config_free(cfg);
  return rc;
}
