/* test_timeline.c: the timeline ingester and query engine against a real Postgres:
 * dedupe (within a batch, across batches, after a redelivery), source order despite
 * out-of-order arrival, poison events reported while the rest of the batch is stored,
 * every filter, keyset pagination, cursor binding (other filter, other tenant, tampered,
 * no key), tenant isolation of list/get/evidence, and the Redis events source parsing a
 * real XREADGROUP reply with acks and dead-lettering. */
#include "st_test_db.h"

#include <hiredis.h>
#include <msgpack.h>

#include "events_source.h"
#include "stella/mem.h"
#include "timeline/timeline_query.h"
#include "timeline/timeline_worker.h"

static const char *app_url, *admin_url;
static char ta[32], tb[32];
static st_db_pool_t *pool;
static const st_tl_cursor_key_t key = {(const unsigned char *)"test-cursor-key-0123456789", 26};
static const char *D1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

static void admin_exec(const char *sql, const char *p1) {
  PGconn *c = PQconnectdb(admin_url);
  PGresult *r = PQexecParams(c, sql, 1, NULL, &p1, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

static void cleanup(void) {
  const char *t[2] = {ta, tb};
  for (int i = 0; i < 2; i++)
    admin_exec("DELETE FROM timeline_events WHERE tenant_id = $1", t[i]);
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_test_db_setup(&app_url, &admin_url, "tl", ta, tb, sizeof(ta));
  cleanup();
  if (st_db_pool_new(app_url, 2, &pool, &err))
    fail_msg("pool: %s", st_error_text(&err));
  return 0;
}

static int teardown(void **state) {
  cleanup();
  st_db_pool_free(pool);
  return 0;
}

/* A JSON envelope; extra is spliced in before the closing brace (",\"k\":v" or ""). */
static char *env(const char *tenant, const char *id, const char *type, const char *at,
                 const char *extra) {
  char *s = st_malloc(4096);
  snprintf(s, 4096,
           "{\"event_id\":\"%s\",\"tenant\":\"%s\",\"type\":\"%s\",\"occurred_at\":\"%s\"%s}",
           id, tenant, type, at, extra);
  return s;
}

static st_tl_raw_t raw(const char *body, uint64_t seq) {
  st_tl_raw_t r = {"redis:test", seq, 0, body, strlen(body), NULL, NULL, NULL};
  return r;
}

static void ingest(const st_tl_raw_t *r, size_t n, st_tl_outcome *want) {
  st_tl_result_t *res = st_calloc(n, sizeof(*res));
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_tl_ingest_batch(pool, r, n, res, NULL, &err), 0);
  for (size_t i = 0; i < n; i++)
    if (res[i].outcome != want[i])
      fail_msg("event %zu: %s, want %s (%s)", i, st_tl_outcome_name(res[i].outcome),
               st_tl_outcome_name(want[i]), res[i].reason ? res[i].reason : "");
  st_tl_results_release(res, n);
  st_free(res);
}

static size_t count(const char *tenant, const st_tl_filter_t *f) {
  st_tl_page_t p;
  st_error_t err = ST_ERROR_INIT;
  st_tl_filter_t g = *f;
  g.limit = ST_TL_LIMIT_MAX;
  assert_int_equal(st_tl_query(pool, tenant, &g, NULL, &key, &p, &err), 0);
  size_t n = p.n;
  st_tl_page_release(&p);
  return n;
}

static void dedupe_and_redelivery(void **state) {
  char *a = env(ta, "dup-1", "export.built", "2026-01-01T00:00:00Z", "");
  char *b = env(ta, "dup-2", "export.built", "2026-01-01T00:00:01Z", "");
  st_tl_raw_t batch[3] = {raw(a, 10), raw(a, 11), raw(b, 12)};
  st_tl_outcome w1[3] = {ST_TL_STORED, ST_TL_DUPLICATE, ST_TL_STORED};
  st_tl_outcome w2[3] = {ST_TL_DUPLICATE, ST_TL_DUPLICATE, ST_TL_DUPLICATE};
  st_tl_filter_t f = {.type = "export.built"};
  st_tl_metrics_t m = {0};
  st_tl_result_t res[3];
  st_error_t err = ST_ERROR_INIT;

  ingest(batch, 3, w1);
  /* The same batch redelivered (committed, never acked): nothing new. */
  ingest(batch, 3, w2);
  /* Republished under a new stream id: still a duplicate. */
  st_tl_raw_t again = raw(a, 99);
  ingest(&again, 1, w2);
  assert_int_equal(count(ta, &f), 2);
  assert_int_equal(st_tl_ingest_batch(pool, batch, 3, res, &m, &err), 0);
  assert_int_equal(atomic_load(&m.duplicates), 3);
  assert_int_equal(atomic_load(&m.batch_max), 3);
  st_tl_results_release(res, 3);
  assert_int_equal(st_tl_ingest_batch(pool, batch, 0, res, &m, &err), ST_EINVAL);
  st_free(a);
  st_free(b);
}

static void source_order(void **state) {
  const char *at = "2026-02-01T00:00:00Z";
  char *e[4];
  st_tl_raw_t r[4];
  st_tl_outcome w[2] = {ST_TL_STORED, ST_TL_STORED};
  /* Arrival order 4,2 then 3,1; same occurred_at; the source sequence decides. */
  const uint64_t seqs[4] = {4, 2, 3, 1};
  for (int i = 0; i < 4; i++) {
    char id[16];
    snprintf(id, sizeof(id), "ord-%llu", (unsigned long long)seqs[i]);
    e[i] = env(ta, id, "order.test", at, "");
    r[i] = raw(e[i], 1000);
    r[i].seq_minor = seqs[i]; /* same ms, growing seq part: 1000-1 .. 1000-4 */
  }
  ingest(r, 2, w);
  ingest(r + 2, 2, w);
  st_tl_filter_t f = {.type = "order.test"};
  st_tl_page_t p;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_tl_query(pool, ta, &f, NULL, &key, &p, &err), 0);
  assert_int_equal(p.n, 4);
  for (size_t i = 0; i < 4; i++) {
    char id[16];
    snprintf(id, sizeof(id), "ord-%zu", i + 1);
    assert_string_equal(p.rows[i].event_id, id);
    assert_int_equal(p.rows[i].seq_minor, i + 1);
  }
  st_tl_page_release(&p);
  for (int i = 0; i < 4; i++)
    st_free(e[i]);
}

static void poison_does_not_block(void **state) {
  char big[ST_TL_EVENT_MAX_BYTES + 64];
  char *ok = env(ta, "p-ok", "poison.test", "2026-03-01T00:00:00Z",
                 ",\"subject\":\"s\",\"payload\":{\"n\":1}");
  char *notenant = "{\"event_id\":\"p-1\",\"type\":\"poison.test\",\"occurred_at\":\"2026-03-01T00:00:00Z\"}";
  char *badtime = env(ta, "p-2", "poison.test", "2026-02-30T00:00:00Z", "");
  char *unknown = env(ta, "p-3", "poison.test", "2026-03-01T00:00:00Z", ",\"tracer\":\"x\"");
  char *baddigest = env(ta, "p-4", "poison.test", "2026-03-01T00:00:00Z",
                        ",\"evidence\":[{\"digest\":\"md5:abc\"}]");
  char *mismatch = env(ta, "p-5", "poison.test", "2026-03-01T00:00:00Z", "");
  const unsigned char badmp[] = {0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff}; /* huge array */
  msgpack_sbuffer sb;
  msgpack_packer pk;
  st_tl_raw_t r[9];
  st_tl_outcome w[9] = {ST_TL_STORED, ST_TL_POISON, ST_TL_POISON, ST_TL_POISON, ST_TL_POISON,
                        ST_TL_POISON, ST_TL_POISON, ST_TL_POISON, ST_TL_STORED};

  memset(big, ' ', sizeof(big));
  memcpy(big, "{}", 2);
  r[0] = raw(ok, 1);
  r[1] = raw("{\"event_id\":", 2);
  r[2] = (st_tl_raw_t){"redis:test", 3, 0, badmp, sizeof(badmp), NULL, NULL, NULL};
  r[3] = raw(notenant, 4);
  r[4] = (st_tl_raw_t){"redis:test", 5, 0, big, sizeof(big), NULL, NULL, NULL};
  r[5] = raw(badtime, 6);
  r[6] = raw(unknown, 7);
  r[7] = raw(baddigest, 8);
  r[7].tenant = NULL;
  /* A valid msgpack event. */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 4);
  const char *kv[8] = {"event_id", "p-mp", "tenant", ta, "type", "poison.test",
                       "occurred_at", "2026-03-01T00:00:01+02:00"};
  for (int i = 0; i < 8; i++) {
    msgpack_pack_str(&pk, strlen(kv[i]));
    msgpack_pack_str_body(&pk, kv[i], strlen(kv[i]));
  }
  r[8] = (st_tl_raw_t){"redis:test", 9, 0, sb.data, sb.size, "p-mp", ta, "poison.test"};
  ingest(r, 9, w);

  /* The routing fields must agree with the envelope. */
  st_tl_raw_t mm = raw(mismatch, 10);
  mm.tenant = tb;
  st_tl_outcome wp = ST_TL_POISON;
  ingest(&mm, 1, &wp);

  st_tl_filter_t f = {.type = "poison.test"};
  assert_int_equal(count(ta, &f), 2);
  assert_int_equal(count(tb, &f), 0);

  /* Field-naming errors. */
  st_tl_event_t ev;
  st_error_t err = ST_ERROR_INIT;
  st_tl_event_init(&ev);
  assert_int_equal(st_tl_event_decode(&r[3], &ev, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "\"tenant\""));
  assert_int_equal(st_tl_event_decode(&r[5], &ev, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "occurred_at"));
  assert_int_equal(st_tl_event_decode(&r[6], &ev, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "tracer"));
  assert_int_equal(st_tl_event_decode(&r[4], &ev, &err), ST_ETOOBIG);
  assert_int_equal(st_tl_event_decode(&r[2], &ev, &err), ST_EPARSE);
  assert_int_equal(st_tl_event_decode(&r[7], &ev, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "evidence[0].digest"));
  msgpack_sbuffer_destroy(&sb);
  st_free(ok);
  st_free(badtime);
  st_free(unknown);
  st_free(baddigest);
  st_free(mismatch);
}

static void filters_pages_cursors(void **state) {
  char *e[30];
  st_tl_raw_t r[30];
  st_tl_outcome w[30];
  char extra[512], id[16], at[32];

  for (int i = 0; i < 30; i++) {
    snprintf(extra, sizeof(extra),
             ",\"subject\":\"subj-%d\",\"actor\":\"%s\",\"trace_id\":\"tr-%d\","
             "\"correlation_id\":\"c-%d\"%s",
             i % 3, i % 2 ? "alice" : "bob", i % 5, i % 7,
             i == 7 ? ",\"evidence\":[{\"digest\":\"sha256:1111111111111111111111111111111111"
                      "111111111111111111111111111111\",\"bundle_id\":\"bun-7\","
                      "\"manifest_ref\":\"bundles/bun-7/manifest.dsse.json\"}]"
                    : "");
    snprintf(id, sizeof(id), "f-%02d", i);
    snprintf(at, sizeof(at), "2026-04-01T00:00:%02dZ", i);
    e[i] = env(ta, id, i % 2 ? "filter.a" : "filter.b", at, extra);
    r[i] = raw(e[i], (uint64_t)(100 + i));
    w[i] = ST_TL_STORED;
  }
  ingest(r, 30, w);

  st_tl_filter_t all = {.since = "2026-04-01T00:00:00Z", .until = "2026-04-01T00:01:00Z"};
  assert_int_equal(count(ta, &all), 30);
  st_tl_filter_t f1 = {.type = "filter.a", .since = "2026-04-01T00:00:10Z",
                       .until = "2026-04-01T00:00:20Z"};
  assert_int_equal(count(ta, &f1), 5);
  st_tl_filter_t f2 = {.subject = "subj-1", .since = all.since};
  assert_int_equal(count(ta, &f2), 10);
  st_tl_filter_t f3 = {.trace_id = "tr-2"};
  assert_int_equal(count(ta, &f3), 6);
  st_tl_filter_t f4 = {.actor = "alice", .since = all.since};
  assert_int_equal(count(ta, &f4), 15);
  st_tl_filter_t f5 = {.correlation_id = "c-0"};
  assert_int_equal(count(ta, &f5), 5);
  st_tl_filter_t f6 = {.digest = D1};
  assert_int_equal(count(ta, &f6), 1);

  /* Walk all 30 in pages of 7: in order, no repeats, last page has no cursor. */
  st_tl_filter_t pg = all;
  pg.limit = 7;
  st_tl_page_t p;
  st_error_t err = ST_ERROR_INIT;
  char *cur = NULL, *first = NULL;
  size_t seen = 0;
  do {
    assert_int_equal(st_tl_query(pool, ta, &pg, cur, &key, &p, &err), 0);
    for (size_t i = 0; i < p.n; i++, seen++) {
      snprintf(id, sizeof(id), "f-%02zu", seen);
      assert_string_equal(p.rows[i].event_id, id);
    }
    st_free(cur);
    cur = p.next_cursor ? st_strdup(p.next_cursor) : NULL;
    if (!first && cur)
      first = st_strdup(cur);
    st_tl_page_release(&p);
  } while (cur);
  assert_int_equal(seen, 30);

  /* The same cursor with another filter, another tenant, altered, or without a key. */
  st_tl_filter_t other = pg;
  other.type = "filter.a";
  assert_int_equal(st_tl_query(pool, ta, &other, first, &key, &p, &err), ST_EVERIFY);
  assert_non_null(strstr(err.msg, "another filter"));
  assert_int_equal(st_tl_query(pool, tb, &pg, first, &key, &p, &err), ST_EVERIFY);
  char *bad = st_strdup(first);
  bad[3] = bad[3] == 'A' ? 'B' : 'A';
  assert_int_equal(st_tl_query(pool, ta, &pg, bad, &key, &p, &err), ST_EVERIFY);
  bad[3] = first[3];
  bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
  assert_int_equal(st_tl_query(pool, ta, &pg, bad, &key, &p, &err), ST_EVERIFY);
  assert_int_equal(st_tl_query(pool, ta, &pg, "no-dot", &key, &p, &err), ST_EVERIFY);
  st_tl_cursor_key_t other_key = {(const unsigned char *)"another-key-0123456789", 22};
  assert_int_equal(st_tl_query(pool, ta, &pg, first, &other_key, &p, &err), ST_EVERIFY);
  st_tl_cursor_key_t short_key = {(const unsigned char *)"short", 5};
  assert_int_equal(st_tl_query(pool, ta, &pg, first, &short_key, &p, &err), ST_ECONFIG);
  assert_int_equal(st_tl_query(pool, ta, &pg, first, &key, &p, &err), 0);
  st_tl_page_release(&p);
  st_tl_filter_t badf = {.since = "yesterday"};
  assert_int_equal(st_tl_query(pool, ta, &badf, NULL, &key, &p, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "since"));
  st_free(bad);
  st_free(first);

  /* Get and evidence; tenant B sees none of it. */
  st_tl_row_t row;
  char *payload = NULL;
  st_tl_link_t *links = NULL;
  size_t n = 0;
  assert_int_equal(st_tl_get(pool, ta, "f-07", &row, &payload, &err), 0);
  assert_string_equal(row.trace_id, "tr-2");
  assert_string_equal(payload, "{}");
  st_tl_row_release(&row);
  st_free(payload);
  assert_int_equal(st_tl_evidence(pool, ta, "f-07", &links, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_string_equal(links[0].digest, D1);
  assert_string_equal(links[0].bundle_id, "bun-7");
  assert_string_equal(links[0].manifest_ref, "bundles/bun-7/manifest.dsse.json");
  assert_int_equal(links[0].legal_hold, 0);
  st_tl_links_free(links, n);
  assert_int_equal(st_tl_evidence(pool, ta, "f-08", &links, &n, &err), 0);
  assert_int_equal(n, 0);
  assert_int_equal(st_tl_get(pool, tb, "f-07", &row, &payload, &err), ST_ENOENT);
  assert_int_equal(st_tl_evidence(pool, tb, "f-07", &links, &n, &err), ST_ENOENT);
  assert_int_equal(count(tb, &all), 0);
  assert_int_equal(count(tb, &f6), 0);
  for (int i = 0; i < 30; i++)
    st_free(e[i]);
}

static void redis_source(void **state) {
  const char *url = st_test_env("STELLA_REDIS_URL");
  redisContext *c = NULL;
  st_events_batch_t b = {0};
  st_error_t err = ST_ERROR_INIT;
  char stream[64];
  redisReply *r;

  snprintf(stream, sizeof(stream), "test:tl:%d", (int)getpid());
  assert_int_equal(st_events_connect(url, &c, &err), 0);
  freeReplyObject(redisCommand(c, "DEL %s %s:dlq", stream, stream));
  assert_int_equal(st_events_group_create(c, stream, "g", &err), 0);
  assert_int_equal(st_events_group_create(c, stream, "g", &err), 0); /* BUSYGROUP is fine */
  freeReplyObject(redisCommand(c, "XADD %s 1-1 event %b tenant t1", stream, "{\"a\"\0}", (size_t)7));
  freeReplyObject(redisCommand(c, "XADD %s 1-2 other x", stream));
  assert_int_equal(st_events_read(c, stream, "g", "c1", 10, 0, 0, &b, &err), 0);
  assert_int_equal(b.n, 2);
  assert_string_equal(b.entries[0].id, "1-1");
  assert_int_equal(b.entries[0].event_len, 7);
  assert_memory_equal(b.entries[0].event, "{\"a\"\0}", 7);
  assert_string_equal(b.entries[0].tenant, "t1");
  assert_null(b.entries[1].event);
  /* Dead-letter the first, ack the second: nothing pending, one DLQ entry. */
  char dlq[80];
  snprintf(dlq, sizeof(dlq), "%s:dlq", stream);
  assert_int_equal(st_events_dead_letter(c, dlq, stream, "g", &b.entries[0], "bad", &err), 0);
  const char *ids[1] = {b.entries[1].id};
  assert_int_equal(st_events_ack(c, stream, "g", ids, 1, &err), 0);
  st_events_batch_release(&b);
  assert_int_equal(st_events_read(c, stream, "g", "c1", 10, 0, 1, &b, &err), 0);
  assert_int_equal(b.n, 0);
  r = redisCommand(c, "XLEN %s", dlq);
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  freeReplyObject(redisCommand(c, "DEL %s %s", stream, dlq));
  redisFree(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dedupe_and_redelivery), cmocka_unit_test(source_order),
      cmocka_unit_test(poison_does_not_block), cmocka_unit_test(filters_pages_cursors),
      cmocka_unit_test(redis_source),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
