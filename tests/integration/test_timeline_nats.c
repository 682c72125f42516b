/* test_timeline_nats.c: the NATS JetStream source end to end with the timeline ingester, on
 * a nats-server (Debian package) this test starts on a free loopback port with JetStream and
 * a temporary store: events fetched but not acknowledged are redelivered to a reopened
 * durable consumer and stored once; a republished event is a duplicate; a poison message is
 * dead-lettered (published with its reason, terminated) and never comes back. */
#include "st_test_db.h"

#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "nats_source.h"
#include "stella/mem.h"
#include "timeline/timeline_query.h"
#include "timeline/timeline_worker.h"

extern char **environ;

static const char *app_url, *admin_url;
static char ta[32], tb[32], url[64], store[64];
static pid_t server = -1;
static st_db_pool_t *pool;

static int free_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void admin_delete(const char *tenant) {
  PGconn *c = PQconnectdb(admin_url);
  const char *p[1] = {tenant};
  PQclear(PQexecParams(c, "DELETE FROM timeline_events WHERE tenant_id = $1", 1, NULL, p,
                       NULL, NULL, 0));
  PQfinish(c);
}

static int setup(void **state) {
  char port[16];
  st_error_t err = ST_ERROR_INIT;
  const char *req = getenv("STELLA_TEST_REQUIRE_SERVICES");

  st_test_db_setup(&app_url, &admin_url, "tln", ta, tb, sizeof(ta));
  if (access("/usr/sbin/nats-server", X_OK) && access("/usr/bin/nats-server", X_OK)) {
    fprintf(stderr, "skipping: nats-server is not installed (ops/deps.sh)\n");
    exit(req && !strcmp(req, "1") ? 1 : 77);
  }
  snprintf(store, sizeof(store), "/tmp/stella-nats-XXXXXX");
  assert_non_null(mkdtemp(store));
  snprintf(port, sizeof(port), "%d", free_port());
  snprintf(url, sizeof(url), "nats://127.0.0.1:%s", port);
  char *argv[] = {"nats-server", "-a", "127.0.0.1", "-p", port, "-js", "-sd", store, NULL};
  assert_int_equal(posix_spawnp(&server, "nats-server", NULL, NULL, argv, environ), 0);
  /* Ready when a client connects (bounded: 100 x 100 ms). */
  for (int i = 0; i < 100; i++) {
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo(&nc, url) == NATS_OK) {
      natsConnection_Destroy(nc);
      break;
    }
    usleep(100000);
  }
  admin_delete(ta);
  if (st_db_pool_new(app_url, 2, &pool, &err))
    fail_msg("pool: %s", st_error_text(&err));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  admin_delete(ta);
  st_db_pool_free(pool);
  if (server > 0) {
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", store);
  nats_Close();
  return 0;
}

static void publish(jsCtx *js, const char *body, const char *tenant_hdr) {
  natsMsg *m = NULL;
  jsErrCode jerr = 0;
  assert_int_equal(natsMsg_Create(&m, "stella.events.test", NULL, body, (int)strlen(body)),
                   NATS_OK);
  if (tenant_hdr)
    assert_int_equal(natsMsgHeader_Set(m, "Stella-Tenant", tenant_hdr), NATS_OK);
  assert_int_equal(js_PublishMsg(NULL, js, m, NULL, &jerr), NATS_OK);
  natsMsg_Destroy(m);
}

/* Fetch up to 10 and ingest; returns the count per outcome in out[5]. */
static size_t fetch_ingest(st_nats_source_t *src, st_nats_batch_t *b, int timeout_ms,
                           st_tl_result_t *res) {
  st_tl_raw_t raw[10];
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_nats_fetch(src, 10, timeout_ms, b, &err), 0);
  for (size_t i = 0; i < b->n; i++)
    raw[i] = (st_tl_raw_t){st_nats_source_name(src), b->msgs[i].stream_seq, 0,
                           b->msgs[i].data, b->msgs[i].len, b->msgs[i].event_id,
                           b->msgs[i].tenant, b->msgs[i].type};
  if (b->n)
    assert_int_equal(st_tl_ingest_batch(pool, raw, b->n, res, NULL, &err), 0);
  return b->n;
}

static void redelivery_dedupe_poison(void **state) {
  st_nats_source_opts_t o = {url, "STELLA_TEST", "stella.events.>", "timeline", NULL,
                             1000, 100, 1};
  st_nats_source_t *src = NULL;
  st_nats_batch_t b;
  st_tl_result_t res[10];
  st_error_t err = ST_ERROR_INIT;
  natsConnection *nc = NULL;
  jsCtx *js = NULL;
  char e1[256], e2[256];

  snprintf(e1, sizeof(e1), "{\"event_id\":\"n-1\",\"tenant\":\"%s\",\"type\":\"nats.test\","
                           "\"occurred_at\":\"2026-05-01T00:00:00Z\"}", ta);
  snprintf(e2, sizeof(e2), "{\"event_id\":\"n-2\",\"tenant\":\"%s\",\"type\":\"nats.test\","
                           "\"occurred_at\":\"2026-05-01T00:00:00Z\"}", ta);
  assert_int_equal(st_nats_source_open(&o, &src, &err), 0);
  assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
  assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
  publish(js, e1, ta);
  publish(js, "{not json", NULL);
  publish(js, e2, tb); /* header disagrees with the body: poison */
  publish(js, e1, NULL); /* republished: duplicate */

  /* First delivery: stored, but the "process" dies before acking. */
  assert_int_equal(fetch_ingest(src, &b, 2000, res), 4);
  assert_int_equal(res[0].outcome, ST_TL_STORED);
  assert_int_equal(res[1].outcome, ST_TL_POISON);
  assert_int_equal(res[2].outcome, ST_TL_POISON);
  assert_int_equal(res[3].outcome, ST_TL_DUPLICATE);
  assert_int_equal(b.msgs[0].delivered, 1);
  st_tl_results_release(res, 4);
  st_nats_batch_release(&b);
  st_nats_source_close(src);

  /* Reopened durable: all four come back after ack_wait (the fetch waits up to 5 s). */
  assert_int_equal(st_nats_source_open(&o, &src, &err), 0);
  assert_int_equal(fetch_ingest(src, &b, 5000, res), 4);
  assert_int_equal(b.msgs[0].delivered, 2);
  assert_int_equal(b.msgs[0].stream_seq, 1);
  assert_int_equal(res[0].outcome, ST_TL_DUPLICATE);
  assert_int_equal(res[3].outcome, ST_TL_DUPLICATE);
  for (size_t i = 0; i < 4; i++) {
    if (res[i].outcome == ST_TL_POISON)
      assert_int_equal(st_nats_dead_letter(src, &b, i, res[i].reason, &err), 0);
    else
      assert_int_equal(st_nats_ack(&b, i, &err), 0);
  }
  st_tl_results_release(res, 4);
  st_nats_batch_release(&b);

  /* Everything settled: nothing is redelivered, even after ack_wait. */
  assert_int_equal(fetch_ingest(src, &b, 2500, res), 0);
  st_nats_batch_release(&b);

  st_tl_filter_t f = {.type = "nats.test"};
  st_tl_page_t p;
  st_tl_cursor_key_t key = {(const unsigned char *)"nats-test-key-0123456789", 24};
  assert_int_equal(st_tl_query(pool, ta, &f, NULL, &key, &p, &err), 0);
  assert_int_equal(p.n, 1);
  assert_string_equal(p.rows[0].source, "nats:STELLA_TEST");
  assert_int_equal(p.rows[0].seq, 1);
  st_tl_page_release(&p);

  /* Bad options are refused before any network I/O. */
  st_nats_source_opts_t bad = o;
  bad.durable = "a.b";
  st_nats_source_t *none = NULL;
  assert_int_equal(st_nats_source_open(&bad, &none, &err), ST_EINVAL);
  st_nats_source_close(src);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(redelivery_dedupe_poison)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
