/* test_timeline_ingester.c: stellad's two timeline ingester threads against the real
 * services (ops/services.sh: Postgres, Redis, nats-server with JetStream).
 *
 * Redis: a consumer reads a batch, commits part of it and dies before acking; the ingester
 * thread (another consumer of the group) takes the entries over with XAUTOCLAIM, stores
 * what was missing, acks the rest as duplicates and dead-letters the poison: every event
 * stored once, nothing left pending, metrics (claimed, duplicate, dead-lettered, lag,
 * pending) say so; the group's lag and pending are read back from XINFO GROUPS.
 * NATS: a durable consumer fetches and commits a batch, then crashes without acking; the
 * ingester thread bound to the same durable gets the redelivery: stored once, the two
 * poison messages published to the DLQ subject with their reasons and terminated, an event
 * published after them still ingested, nothing pending on the server. */
#include "st_test_db.h"

#include <nats/nats.h>

#include "events_source.h"
#include "nats_source.h"
#include "stella/mem.h"
#include "timeline/timeline_ingest.h"
#include "timeline/timeline_metrics.h"
#include "timeline/timeline_nats.h"

static const char *app_url, *admin_url;
static char ta[32], tb[32];
static st_db_pool_t *pool;

static long long admin_count(const char *sql, const char *p1) {
  PGconn *c = PQconnectdb(admin_url);
  PGresult *r = PQexecParams(c, sql, 1, NULL, &p1, NULL, NULL, 0);
  long long n = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
  PQclear(r);
  PQfinish(c);
  return n;
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  (void)state;
  st_test_db_setup(&app_url, &admin_url, "tli", ta, tb, sizeof(ta));
  admin_count("DELETE FROM timeline_events WHERE tenant_id = $1", ta);
  if (st_db_pool_new(app_url, 2, &pool, &err))
    fail_msg("pool: %s", st_error_text(&err));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  admin_count("DELETE FROM timeline_events WHERE tenant_id = $1", ta);
  st_db_pool_free(pool);
  st_nats_shutdown();
  return 0;
}

static long long stored(const char *type) {
  char sql[160];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM timeline_events WHERE tenant_id = $1 AND type = '%s'", type);
  return admin_count(sql, ta);
}

static char *event(const char *id, const char *type) {
  char *s = st_malloc(256);
  snprintf(s, 256,
           "{\"event_id\":\"%s\",\"tenant\":\"%s\",\"type\":\"%s\","
           "\"occurred_at\":\"2026-07-01T00:00:00Z\"}",
           id, ta, type);
  return s;
}

/* Wait (bounded: 600 x 50 ms) for done(arg); fail when it never happens. */
static void await(int (*done)(void *), void *arg, const char *what) {
  for (int i = 0; i < 600; i++) {
    if (done(arg))
      return;
    usleep(50000);
  }
  fail_msg("timed out waiting for %s", what);
}

typedef struct rctx_s {
  redisContext *c;
  const char *stream;
  st_tl_prom_t prom;
} rctx_t;

static int redis_settled(void *arg) {
  rctx_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  long long lag, pending;
  assert_int_equal(st_events_group_lag(x->c, x->stream, "g", &lag, &pending, &err), 0);
  return pending == 0 && lag == 0 && st_metric_value(x->prom.pending) == 0 &&
         st_metric_value(x->prom.lag) == 0;
}

static void redis_claim(void **state) {
  const char *url = st_test_env("STELLA_REDIS_URL");
  char stream[64], dlq[80], *ev[3];
  redisContext *c = NULL;
  st_events_batch_t b = {0};
  st_error_t err = ST_ERROR_INIT;
  st_tl_ingester_t *ing = NULL;
  long long lag, pending;
  rctx_t x = {0};
  double claimed0, dup0, dead0, stored0;

  (void)state;
  snprintf(stream, sizeof(stream), "test:tli:%d", (int)getpid());
  snprintf(dlq, sizeof(dlq), "%s:dlq", stream);
  assert_int_equal(st_events_connect(url, &c, &err), 0);
  freeReplyObject(redisCommand(c, "DEL %s %s", stream, dlq));
  assert_int_equal(st_events_group_create(c, stream, "g", &err), 0);
  assert_int_equal(st_events_group_lag(c, stream, "nope", &lag, &pending, &err), ST_ENOENT);
  for (int i = 0; i < 3; i++) {
    char id[16];
    snprintf(id, sizeof(id), "r-%d", i);
    ev[i] = event(id, "claim.test");
    freeReplyObject(redisCommand(c, "XADD %s * event %s", stream, ev[i]));
  }
  freeReplyObject(redisCommand(c, "XADD %s * event {bad", stream));
  assert_int_equal(st_events_group_lag(c, stream, "g", &lag, &pending, &err), 0);
  assert_int_equal(lag, 4);
  assert_int_equal(pending, 0);

  /* The dead consumer: reads all four, commits the first, dies before any ack. */
  assert_int_equal(st_events_read(c, stream, "g", "dead", 10, 0, 0, &b, &err), 0);
  assert_int_equal(b.n, 4);
  assert_int_equal(st_events_group_lag(c, stream, "g", &lag, &pending, &err), 0);
  assert_int_equal(lag, 0);
  assert_int_equal(pending, 4);
  {
    char source[96];
    st_tl_raw_t raw = {source, 0, 0, b.entries[0].event, b.entries[0].event_len,
                       NULL, NULL, NULL};
    st_tl_result_t res;
    snprintf(source, sizeof(source), "redis:%s", stream);
    assert_int_equal(st_tl_stream_id_parse(b.entries[0].id, &raw.seq, &raw.seq_minor), 0);
    assert_int_equal(st_tl_ingest_batch(pool, &raw, 1, &res, NULL, &err), 0);
    assert_int_equal(res.outcome, ST_TL_STORED);
  }
  st_events_batch_release(&b);
  assert_int_equal(stored("claim.test"), 1);

  st_tl_prom_init(&x.prom, "redis");
  claimed0 = st_metric_value(x.prom.claimed), dup0 = st_metric_value(x.prom.duplicate);
  dead0 = st_metric_value(x.prom.dead_lettered), stored0 = st_metric_value(x.prom.stored);
  st_tl_ingest_opts_t o = {app_url, url, stream, "g", dlq, "alive", 100};
  assert_int_equal(st_tl_ingester_start(&o, &ing, &err), 0);
  x.c = c, x.stream = stream;
  await(redis_settled, &x, "the dead consumer's entries to be taken over and settled");
  st_tl_ingester_stop(ing);

  assert_int_equal(stored("claim.test"), 3);
  assert_int_equal(admin_count("SELECT count(*) FROM timeline_events WHERE tenant_id = $1"
                               " AND event_id = 'r-0'", ta), 1);
  assert_int_equal(st_metric_value(x.prom.claimed) - claimed0, 4);
  assert_int_equal(st_metric_value(x.prom.duplicate) - dup0, 1);
  assert_int_equal(st_metric_value(x.prom.stored) - stored0, 2);
  assert_int_equal(st_metric_value(x.prom.dead_lettered) - dead0, 1);
  redisReply *r = redisCommand(c, "XLEN %s", dlq);
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  r = redisCommand(c, "XPENDING %s g", stream);
  assert_int_equal(r->element[0]->integer, 0);
  freeReplyObject(r);
  freeReplyObject(redisCommand(c, "DEL %s %s", stream, dlq));
  redisFree(c);
  for (int i = 0; i < 3; i++)
    st_free(ev[i]);
}

typedef struct nctx_s {
  jsCtx *js;
  const char *stream;
} nctx_t;

static int nats_settled(void *arg) {
  nctx_t *x = arg;
  jsConsumerInfo *ci = NULL;
  jsErrCode jerr = 0;
  int done;
  if (js_GetConsumerInfo(&ci, x->js, x->stream, "timeline", NULL, &jerr) != NATS_OK)
    return 0;
  done = ci->NumPending == 0 && ci->NumAckPending == 0 && stored("nats.ingest") == 3;
  jsConsumerInfo_Destroy(ci);
  return done;
}

static void publish(jsCtx *js, const char *subject, const char *body, const char *tenant) {
  natsMsg *m = NULL;
  jsErrCode jerr = 0;
  assert_int_equal(natsMsg_Create(&m, subject, NULL, body, (int)strlen(body)), NATS_OK);
  if (tenant)
    assert_int_equal(natsMsgHeader_Set(m, "Stella-Tenant", tenant), NATS_OK);
  assert_int_equal(js_PublishMsg(NULL, js, m, NULL, &jerr), NATS_OK);
  natsMsg_Destroy(m);
}

static void nats_ingester(void **state) {
  const char *url = getenv("STELLA_NATS_URL"), *req = getenv("STELLA_TEST_REQUIRE_SERVICES");
  char stream[32], subj[48], filter[48], dlq[48];
  char *e1, *e3, *e4;
  natsConnection *nc = NULL;
  natsSubscription *dsub = NULL;
  jsCtx *js = NULL;
  st_nats_source_t *src = NULL;
  st_nats_batch_t b;
  st_tl_result_t res[8];
  st_tl_raw_t raw[8];
  st_tl_nats_ingester_t *ing = NULL;
  st_tl_prom_t prom;
  st_error_t err = ST_ERROR_INIT;
  jsErrCode jerr = 0;
  double dead0, stored0;

  (void)state;
  if (!url) {
    if (req && !strcmp(req, "1"))
      fail_msg("STELLA_NATS_URL not set (ops/services.sh up with nats-server)");
    skip();
  }
  snprintf(stream, sizeof(stream), "TLI_%d", (int)getpid());
  snprintf(filter, sizeof(filter), "tli.%d.>", (int)getpid());
  snprintf(subj, sizeof(subj), "tli.%d.events", (int)getpid());
  snprintf(dlq, sizeof(dlq), "tlidlq.%d", (int)getpid()); /* outside the stream's filter */
  st_nats_source_opts_t o = {url, stream, filter, "timeline", dlq, 500, 100, 1};
  e1 = event("n-1", "nats.ingest"), e3 = event("n-3", "nats.ingest");
  e4 = event("n-4", "nats.ingest");

  assert_int_equal(st_nats_source_open(&o, &src, &err), 0); /* creates the stream */
  assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
  assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
  assert_int_equal(natsConnection_SubscribeSync(&dsub, nc, dlq), NATS_OK);
  assert_int_equal(natsConnection_Flush(nc), NATS_OK);
  publish(js, subj, e1, NULL);
  publish(js, subj, e1, NULL); /* the same event twice */
  publish(js, subj, "{bad", NULL);
  publish(js, subj, e3, "someone-else"); /* routing header disagrees with the body */
  publish(js, subj, e3, ta);

  /* The crashed ingester: fetches all five, commits, dies before acking. */
  assert_int_equal(st_nats_fetch(src, 8, 2000, &b, &err), 0);
  assert_int_equal(b.n, 5);
  for (size_t i = 0; i < b.n; i++)
    raw[i] = (st_tl_raw_t){st_nats_source_name(src), b.msgs[i].stream_seq, 0, b.msgs[i].data,
                           b.msgs[i].len, b.msgs[i].event_id, b.msgs[i].tenant,
                           b.msgs[i].type};
  assert_int_equal(st_tl_ingest_batch(pool, raw, b.n, res, NULL, &err), 0);
  assert_int_equal(res[0].outcome, ST_TL_STORED);
  assert_int_equal(res[1].outcome, ST_TL_DUPLICATE);
  assert_int_equal(res[2].outcome, ST_TL_POISON);
  assert_int_equal(res[3].outcome, ST_TL_POISON);
  assert_int_equal(res[4].outcome, ST_TL_STORED);
  st_tl_results_release(res, b.n);
  st_nats_batch_release(&b);
  st_nats_source_close(src);

  st_tl_prom_init(&prom, "nats");
  dead0 = st_metric_value(prom.dead_lettered), stored0 = st_metric_value(prom.stored);
  assert_int_equal(st_tl_nats_ingester_start(app_url, &o, &ing, &err), 0);
  publish(js, subj, e4, ta); /* after the poison: ingest goes on */
  nctx_t x = {js, stream};
  await(nats_settled, &x, "the redelivered batch and n-4 to be settled");
  st_tl_nats_ingester_stop(ing);

  assert_int_equal(stored("nats.ingest"), 3);
  assert_int_equal(admin_count("SELECT count(*) FROM timeline_events WHERE tenant_id = $1"
                               " AND event_id = 'n-1'", ta), 1);
  assert_int_equal(st_metric_value(prom.stored) - stored0, 1);
  assert_int_equal(st_metric_value(prom.dead_lettered) - dead0, 2);
  for (int i = 0; i < 2; i++) {
    natsMsg *m = NULL;
    const char *reason = NULL;
    assert_int_equal(natsSubscription_NextMsg(&m, dsub, 5000), NATS_OK);
    assert_int_equal(natsMsgHeader_Get(m, "Stella-Dlq-Reason", &reason), NATS_OK);
    assert_true(strlen(reason) > 0);
    natsMsg_Destroy(m);
  }
  assert_int_equal(js_DeleteStream(js, stream, NULL, &jerr), NATS_OK);
  natsSubscription_Destroy(dsub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  st_free(e1), st_free(e3), st_free(e4);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(redis_claim),
                                     cmocka_unit_test(nats_ingester)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
