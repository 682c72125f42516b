/* test_queue.c: the job queue end to end with real stellad processes (fork/exec of
 * build/bin/stellad, worker role) on a real Redis (database 9 of the test Redis; the
 * restart test runs its own redis-server so it disturbs nobody). Job outcomes are read
 * from the logging state sink's JSON lines in each process's log.
 *
 * Proves: kill -9 mid-job -> the other process reclaims and exactly one success is
 * recorded; malformed msgpack, unknown type, oversized and tenant-less envelopes are
 * dead-lettered with their reason while the supervisor keeps serving; transient failures
 * are retried with backoff and then succeed; permanent failures go to the DLQ at once;
 * max attempts ends in the DLQ; a Redis restart mid-run loses and doubles nothing;
 * SIGTERM drains in-flight jobs, or releases them (left pending) past the drain timeout;
 * a job past job_timeout_ms is cancelled and classified as a timeout; heartbeats keep a
 * long job leased; one worker thread claims one entry at a time (backpressure) yet never
 * waits on empty streams while another holds jobs; connections
 * that stop answering are dropped by the watchdog and made again.
 * Waits are polls with generous bounds, never timing assertions. */
#include "st_test_queue.h"

#include <msgpack.h>

#include "envelope.h"

#define DB 9

static char redis_url[256];

static void xadd_raw(redisContext *c, const void *p, size_t n) {
  redisReply *r = redisCommand(c, "XADD stella:jobs:probe * e %b", p, n);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
}

static int setup(void **state) {
  redisContext *c = rconn(redis_url);
  redisReply *r = redisCommand(c, "FLUSHDB");
  freeReplyObject(r);
  redisFree(c);
  return 0;
}

static void test_retry_then_success(void **state) {
  char log[512];
  redisContext *c = rconn(redis_url);
  logpath(log, sizeof(log), "retry");
  pid_t pid = spawn(redis_url, log, NULL);
  char *id = submit(c, "{\"fail\":\"transient\",\"fail_times\":2}");
  WAIT_UNTIL(count(log, "succeeded", id, NULL) == 1);
  assert_int_equal(count(log, "retry_scheduled", id, "injected transient failure"), 2);
  assert_int_equal(count(log, "started", id, NULL), 3);
  assert_int_equal(count(log, "dead_lettered", NULL, NULL), 0);
  assert_int_equal(rint_(c, "XLEN %s", ST_DLQ_STREAM), 0);
  WAIT_UNTIL(rint_(c, "XLEN %s", "stella:jobs:probe") == 0); /* acked and deleted */
  stop(pid);
  st_free(id);
  redisFree(c);
}

static void test_permanent_and_max_attempts(void **state) {
  char log[512];
  const char *env[] = {"STELLA_JOB_MAX_ATTEMPTS", "3", NULL};
  redisContext *c = rconn(redis_url);
  redisReply *r;
  logpath(log, sizeof(log), "permanent");
  pid_t pid = spawn(redis_url, log, env);
  char *perm = submit(c, "{\"fail\":\"permanent\"}");
  char *flaky = submit(c, "{\"fail\":\"transient\"}");
  WAIT_UNTIL(count(log, "dead_lettered", perm, NULL) == 1);
  WAIT_UNTIL(count(log, "dead_lettered", flaky, "max attempts 3 reached") == 1);
  assert_int_equal(count(log, "retry_scheduled", perm, NULL), 0);
  assert_int_equal(count(log, "started", perm, NULL), 1);
  assert_int_equal(count(log, "retry_scheduled", flaky, NULL), 2);
  assert_int_equal(count(log, "started", flaky, NULL), 3);
  WAIT_UNTIL(rint_(c, "XLEN %s", ST_DLQ_STREAM) == 2);
  r = redisCommand(c, "XRANGE %s - +", ST_DLQ_STREAM);
  assert_int_equal(r->elements, 2);
  for (size_t i = 0; i < 2; i++) {
    const redisReply *f = r->element[i]->element[1];
    int has_env = 0, klass_ok = 0;
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
      if (!strcmp(f->element[k]->str, "envelope")) {
        st_envelope_t e;
        st_error_t err = ST_ERROR_INIT;
        assert_int_equal(st_envelope_decode(&e, f->element[k + 1]->str, f->element[k + 1]->len,
                                            NULL, &err), 0);
        has_env = !strcmp(e.job_id, perm) || !strcmp(e.job_id, flaky);
        st_envelope_release(&e);
      }
      if (!strcmp(f->element[k]->str, "class"))
        klass_ok = !strcmp(f->element[k + 1]->str, "permanent") ||
                   !strcmp(f->element[k + 1]->str, "transient");
    }
    assert_true(has_env);
    assert_true(klass_ok);
  }
  freeReplyObject(r);
  stop(pid);
  st_free(perm);
  st_free(flaky);
  redisFree(c);
}

static void test_malformed(void **state) {
  char log[512];
  const char *env[] = {"STELLA_MAX_ENVELOPE_BYTES", "1024", NULL};
  redisContext *c = rconn(redis_url);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  st_envelope_t e;
  st_buf_t b = ST_BUF_INIT, big = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  char *ok;

  logpath(log, sizeof(log), "malformed");
  pid_t pid = spawn(redis_url, log, env);
  /* 1: not msgpack */
  xadd_raw(c, "\xc1garbage", 8);
  /* 2: unknown type inside the probe stream */
  st_envelope_init(&e);
  e.job_id = st_strdup("j-unknown");
  e.tenant = st_strdup("acme");
  e.type = st_strdup("nosuch");
  e.attempt = 1;
  e.payload = json_object();
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), 0);
  xadd_raw(c, b.data, b.len);
  /* 3: oversized (above max_envelope_bytes 1024) */
  st_free(e.type);
  e.type = st_strdup("probe");
  for (int i = 0; i < 2000; i++)
    assert_int_equal(st_buf_addc(&big, 'x'), 0);
  json_object_set_new(e.payload, "sleep_ms", json_string(big.data));
  st_buf_reset(&b);
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), 0);
  xadd_raw(c, b.data, b.len);
  st_envelope_release(&e);
  /* 4: no tenant */
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 6);
  msgpack_pack_str_with_body(&pk, "v", 1);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_str_with_body(&pk, "job_id", 6);
  msgpack_pack_str_with_body(&pk, "j-notenant", 10);
  msgpack_pack_str_with_body(&pk, "type", 4);
  msgpack_pack_str_with_body(&pk, "probe", 5);
  msgpack_pack_str_with_body(&pk, "attempt", 7);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_str_with_body(&pk, "not_before", 10);
  msgpack_pack_uint8(&pk, 0);
  msgpack_pack_str_with_body(&pk, "payload", 7);
  msgpack_pack_map(&pk, 0);
  xadd_raw(c, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  /* 5: an entry without the envelope field */
  freeReplyObject(redisCommand(c, "XADD stella:jobs:probe * x y"));

  WAIT_UNTIL(count(log, "dead_lettered", NULL, NULL) == 5);
  assert_int_equal(count(log, "dead_lettered", NULL, "not one well-formed msgpack value"), 1);
  assert_int_equal(count(log, "dead_lettered", NULL, "type: unknown job type \"nosuch\""), 1);
  assert_int_equal(count(log, "dead_lettered", NULL, "above max_envelope_bytes 1024"), 1);
  assert_int_equal(count(log, "dead_lettered", NULL, "tenant: missing"), 1);
  assert_int_equal(count(log, "dead_lettered", NULL, "no envelope field"), 1);
  assert_int_equal(count(log, "started", NULL, NULL), 0);
  WAIT_UNTIL(rint_(c, "XLEN %s", ST_DLQ_STREAM) == 5);
  /* the supervisor is still up and serving */
  assert_int_equal(kill(pid, 0), 0);
  ok = submit(c, "{}");
  WAIT_UNTIL(count(log, "succeeded", ok, NULL) == 1);
  stop(pid);
  st_free(ok);
  st_buf_release(&b);
  st_buf_release(&big);
  redisFree(c);
}

static void test_kill9_reclaim(void **state) {
  char la[512], lb[512];
  redisContext *c = rconn(redis_url);
  char *id;
  pid_t a, b;

  logpath(la, sizeof(la), "kill-a");
  logpath(lb, sizeof(lb), "kill-b");
  a = spawn(redis_url, la, NULL);
  id = submit(c, "{\"sleep_ms\":3000}");
  WAIT_UNTIL(count(la, "started", id, NULL) == 1);
  b = spawn(redis_url, lb, NULL);
  WAIT_UNTIL(log_has(lb, "claim connection up"));
  kill(a, SIGKILL);
  assert_int_equal(reap(a), 128 + SIGKILL);
  WAIT_UNTIL(count(lb, "succeeded", id, NULL) == 1);
  assert_true(log_has(lb, "reclaimed 1 entries"));
  assert_int_equal(count(la, "succeeded", id, NULL) + count(lb, "succeeded", id, NULL), 1);
  WAIT_UNTIL(rint_(c, "XLEN %s", "stella:jobs:probe") == 0);
  stop(b);
  st_free(id);
  redisFree(c);
}

static void test_sigterm_drain(void **state) {
  char l1[512], l2[512];
  const char *slow[] = {"STELLA_DRAIN_TIMEOUT_MS", "300", NULL};
  redisContext *c = rconn(redis_url);
  redisReply *r;
  pid_t pid;
  char *id;

  /* within the drain timeout: the job finishes and is acknowledged */
  logpath(l1, sizeof(l1), "drain");
  pid = spawn(redis_url, l1, NULL);
  id = submit(c, "{\"sleep_ms\":800}");
  WAIT_UNTIL(count(l1, "started", id, NULL) == 1);
  kill(pid, SIGTERM);
  assert_int_equal(reap(pid), 0);
  assert_int_equal(count(l1, "succeeded", id, NULL), 1);
  assert_int_equal(rint_(c, "XLEN %s", "stella:jobs:probe"), 0);
  st_free(id);

  /* past the drain timeout: released, left pending for another process */
  logpath(l2, sizeof(l2), "release");
  pid = spawn(redis_url, l2, slow);
  id = submit(c, "{\"sleep_ms\":60000}");
  WAIT_UNTIL(count(l2, "started", id, NULL) == 1);
  kill(pid, SIGTERM);
  assert_int_equal(reap(pid), 0);
  assert_int_equal(count(l2, "released", id, NULL), 1);
  assert_int_equal(count(l2, "succeeded", id, NULL), 0);
  r = redisCommand(c, "XPENDING stella:jobs:probe " ST_GROUP);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->element[0]->integer, 1);
  freeReplyObject(r);
  st_free(id);
  redisFree(c);
}

static void test_timeout(void **state) {
  char log[512];
  const char *env[] = {"STELLA_JOB_TIMEOUT_MS", "300", "STELLA_JOB_MAX_ATTEMPTS", "2", NULL};
  redisContext *c = rconn(redis_url);
  logpath(log, sizeof(log), "timeout");
  pid_t pid = spawn(redis_url, log, env);
  char *id = submit(c, "{\"sleep_ms\":60000}");
  WAIT_UNTIL(count(log, "dead_lettered", id, "max attempts 2 reached: probe: cancelled") == 1);
  assert_int_equal(count(log, "retry_scheduled", id, "probe: cancelled"), 1);
  assert_true(log_has(log, "\"outcome\":\"timeout\""));
  stop(pid);
  st_free(id);
  redisFree(c);
}

/* Two processes, a job longer than the lease: heartbeats keep it leased, so the idle
 * process never reclaims it. */
static void test_lease_heartbeat(void **state) {
  char la[512], lb[512];
  redisContext *c = rconn(redis_url);
  logpath(la, sizeof(la), "lease-a");
  logpath(lb, sizeof(lb), "lease-b");
  pid_t a = spawn(redis_url, la, NULL), b = spawn(redis_url, lb, NULL);
  WAIT_UNTIL(log_has(la, "claim connection up") && log_has(lb, "claim connection up"));
  char *id = submit(c, "{\"sleep_ms\":3000}");
  WAIT_UNTIL(count(la, "succeeded", id, NULL) + count(lb, "succeeded", id, NULL) == 1);
  assert_int_equal(count(la, "started", id, NULL) + count(lb, "started", id, NULL), 1);
  assert_false(log_has(la, "reclaimed") || log_has(lb, "reclaimed"));
  stop(a);
  stop(b);
  st_free(id);
  redisFree(c);
}

/* One worker thread: while a job runs, nothing more is claimed (COUNT <= free slots). */
static void test_backpressure(void **state) {
  char log[512];
  const char *env[] = {"STELLA_WORKER_THREADS", "1", NULL};
  redisContext *c = rconn(redis_url);
  redisReply *r;
  char *ids[3];
  logpath(log, sizeof(log), "backpressure");
  for (int i = 0; i < 3; i++)
    ids[i] = submit(c, "{\"sleep_ms\":1500}");
  pid_t pid = spawn(redis_url, log, env);
  WAIT_UNTIL(count(log, "started", NULL, NULL) == 1);
  r = redisCommand(c, "XPENDING stella:jobs:probe " ST_GROUP);
  assert_int_equal(r->element[0]->integer, 1);
  freeReplyObject(r);
  for (int i = 0; i < 3; i++)
    WAIT_UNTIL(count(log, "succeeded", ids[i], NULL) == 1);
  stop(pid);
  for (int i = 0; i < 3; i++)
    st_free(ids[i]);
  redisFree(c);
}

/* One worker thread and several job types (stellad registers them all): a read must never
 * wait on the empty streams while jobs sit in another one. Before the drain script, each
 * freed slot blocked a whole read (2 s here) on a stream picked in rotation, so these 30
 * jobs took about a minute; the bound below is a liveness bound, not a speed figure. */
static void test_scarce_slots_no_starvation(void **state) {
  char log[512];
  const char *env[] = {"STELLA_WORKER_THREADS", "1", "STELLA_JOB_LEASE_MS", "60000", NULL};
  redisContext *c = rconn(redis_url);
  char *ids[30];
  logpath(log, sizeof(log), "scarce");
  pid_t pid = spawn(redis_url, log, env);
  for (int i = 0; i < 30; i++)
    ids[i] = submit(c, "{}");
  for (int i = 0; i < 400 && count(log, "succeeded", NULL, NULL) < 30; i++)
    sleep_ms(50);
  assert_int_equal(count(log, "succeeded", NULL, NULL), 30); /* within 20 s */
  stop(pid);
  for (int i = 0; i < 30; i++)
    st_free(ids[i]);
  redisFree(c);
}

/* ---- Redis restart, on a private redis-server with AOF ---- */

static pid_t redis_start(int port, const char *dir) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char p[16];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    snprintf(p, sizeof(p), "%d", port);
    execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--dir", dir,
           "--appendonly", "yes", "--appendfsync", "always", "--save", "", (char *)NULL);
    _exit(127);
  }
  track(pid);
  return pid;
}

static int redis_ping(int port) {
  redisContext *c = redisConnect("127.0.0.1", port);
  redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
  int ok = r && r->type == REDIS_REPLY_STATUS;
  freeReplyObject(r);
  if (c)
    redisFree(c);
  return ok;
}

/* Start a redis-server on port with its data in logdir/name; dir and url are filled. */
static pid_t private_redis(const char *name, int port, char *dir, size_t dn, char *url,
                           size_t un) {
  pid_t pid;
  snprintf(dir, dn, "%s/%s", logdir, name);
  mkdir(dir, 0700);
  snprintf(url, un, "redis://127.0.0.1:%d/0", port);
  pid = redis_start(port, dir);
  WAIT_UNTIL(redis_ping(port));
  return pid;
}

static void test_redis_restart(void **state) {
  char dir[600], url[64], log[512];
  int port = free_port(), n = 8;
  pid_t rpid, pid;
  redisContext *c;
  char *ids[8];

  rpid = private_redis("redis", port, dir, sizeof(dir), url, sizeof(url));
  logpath(log, sizeof(log), "restart");
  pid = spawn(url, log, NULL);
  c = rconn(url);
  for (int i = 0; i < n; i++)
    ids[i] = submit(c, i % 2 ? "{\"sleep_ms\":400}" : "{\"sleep_ms\":400,\"fail\":\"transient\",\"fail_times\":1}");
  WAIT_UNTIL(count(log, "started", NULL, NULL) >= 2);
  freeReplyObject(redisCommand(c, "SHUTDOWN"));
  redisFree(c);
  assert_int_equal(reap(rpid), 0);
  WAIT_UNTIL(log_has(log, "connection lost"));
  sleep_ms(500); /* let jobs finish while Redis is away: their settles must wait */
  rpid = redis_start(port, dir);
  WAIT_UNTIL(redis_ping(port));
  for (int i = 0; i < n; i++)
    WAIT_UNTIL(count(log, "succeeded", ids[i], NULL) >= 1);
  c = rconn(url);
  WAIT_UNTIL(rint_(c, "XLEN %s", "stella:jobs:probe") == 0);
  sleep_ms(1500); /* past a lease: a lost acknowledgement would show as a second run */
  for (int i = 0; i < n; i++) {
    assert_int_equal(count(log, "succeeded", ids[i], NULL), 1);
    st_free(ids[i]);
  }
  assert_int_equal(rint_(c, "XLEN %s", ST_DLQ_STREAM), 0);
  assert_int_equal(rint_(c, "ZCARD %s", ST_DELAYED_KEY), 0);
  stop(pid);
  freeReplyObject(redisCommand(c, "SHUTDOWN"));
  redisFree(c);
  reap(rpid);
}

/* Connections that stop answering (here: CLIENT PAUSE; in the wild: a reset the libuv
 * adapter swallows) are dropped by the watchdog and made again; work then goes on. On a
 * private redis-server: a pause is server-wide and must not stall tests running beside. */
static void test_unanswered_reconnect(void **state) {
  char dir[600], url[64], log[512];
  pid_t rpid, pid;
  redisContext *c;
  char *id;

  rpid = private_redis("redis-pause", free_port(), dir, sizeof(dir), url, sizeof(url));
  logpath(log, sizeof(log), "watchdog");
  pid = spawn(url, log, NULL);
  WAIT_UNTIL(log_has(log, "claim connection up"));
  c = rconn(url);
  freeReplyObject(redisCommand(c, "CLIENT PAUSE 7000 ALL"));
  WAIT_UNTIL(log_has(log, "command connection unanswered for"));
  WAIT_UNTIL(log_has(log, "claim connection unanswered for"));
  id = submit(c, "{}"); /* answered once the pause ends */
  WAIT_UNTIL(count(log, "succeeded", id, NULL) == 1);
  stop(pid);
  freeReplyObject(redisCommand(c, "SHUTDOWN"));
  redisFree(c);
  reap(rpid);
  st_free(id);
}

int main(void) {
  const char *base = st_test_env("STELLA_REDIS_URL");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
      cmocka_unit_test_setup_teardown(test_permanent_and_max_attempts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_kill9_reclaim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sigterm_drain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lease_heartbeat, setup, teardown),
      cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scarce_slots_no_starvation, setup, teardown),
      cmocka_unit_test_teardown(test_redis_restart, teardown),
      cmocka_unit_test_teardown(test_unanswered_reconnect, teardown),
  };
  int rc;
  snprintf(redis_url, sizeof(redis_url), "%s/%d", base, DB);
  if (!mkdtemp(logdir))
    return 1;
  fprintf(stderr, "logs in %s\n", logdir);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  return rc;
}
