/* test_queue_pg.c: the job queue with durable state: real stellad processes with the
 * Postgres state sink, the outbox relay and the scheduler role, on a Postgres cluster of
 * this test's own (initdb in a temp dir, so restarting it disturbs no other test running in
 * parallel) and database 11 of the test Redis.
 *
 * Proves: kill -9 of one of two stellad mid-job -> exactly one jobs row, in state
 * succeeded, one `job.succeeded` outbox row and one event for it on stella:events, and a
 * redelivered finished job is acknowledged without running; Postgres stopped mid-run long
 * enough that state writes fail (entries left pending), then started again -> every job
 * finishes, none lost, none doubled (rows, outbox rows and published events);
 * three scheduler processes with a 2-second cron (test-only seconds field) -> each tick
 * fires exactly once, no tick skipped; missed ticks: catch-up one fires once for the
 * latest, catch-up none fires none; `stella job cancel` stops a running job (cancelled,
 * not retried) and keeps a queued one from ever running, and refuses another tenant's job
 * and a final one; the crash-loop guard dead-letters an entry delivered too often
 * ("poison: crashed N times") without running it; an event trigger starts its job; the
 * CLI (job get|watch, schedule add|list|rm) answers per tenant and refuses bad input.
 * Waits are polls with generous bounds, never timing assertions. */
#include "st_test_queue.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <stdarg.h>

#include "stella/db.h"
#include "timeline/timeline_event.h"

#define DB 11 /* 9: test_queue, 10: e2e ops_metrics */
#define PGBIN "/usr/lib/postgresql/15/bin"

static char redis_url[256], pgdata[600], pg_port[16], app_url[256], admin_url[256];
static PGconn *admin;

/* ---- the private cluster ---- */

/* Run a shell command as the postgres OS user when we are root (initdb refuses root). */
static int as_pg(const char *fmt, ...) {
  char cmd[2048], full[2200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  snprintf(full, sizeof(full), "%s%s", getuid() == 0 ? "runuser -u postgres -- " : "", cmd);
  return system(full);
}

static int pg_start(void) {
  return as_pg(PGBIN "/pg_ctl -D %s -l %s/server.log -w -t 60 -o \"-p %s -k %s "
                     "-c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null",
               pgdata, pgdata, pg_port, pgdata);
}

static PGconn *adm(void) {
  if (!admin || PQstatus(admin) != CONNECTION_OK) {
    if (admin)
      PQfinish(admin);
    admin = PQconnectdb(admin_url);
  }
  return admin;
}

/* One integer from an admin query ($1 = p, may be NULL); -1 when the query fails. */
static long long q_int(const char *sql, const char *p) {
  const char *params[1] = {p};
  PGresult *r = PQexecParams(adm(), sql, p ? 1 : 0, NULL, params, NULL, NULL, 0);
  long long v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return v;
}

static void q_exec(const char *sql) {
  PGresult *r = PQexec(adm(), sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(adm()));
  PQclear(r);
}

static int job_state_is(const char *job_id, const char *state) {
  const char *p[2] = {job_id, state};
  PGresult *r = PQexecParams(adm(), "SELECT 1 FROM jobs WHERE job_id = $1 AND state = $2", 2,
                             NULL, p, NULL, NULL, 0);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  PQclear(r);
  return ok;
}

static long long outbox_n(const char *job_id, const char *type) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM outbox WHERE payload->'payload'->>'job_id' = $1 AND type = '%s'",
           type);
  return q_int(sql, job_id);
}

/* Events on stella:events for job_id of the given type. Every event seen must be one the
 * timeline ingester (another team's consumer) accepts: stella.event/v1, routing fields
 * equal to the envelope's. */
static int events_n(redisContext *c, const char *job_id, const char *type) {
  redisReply *r = redisCommand(c, "XRANGE stella:events - +");
  int n = 0;
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *f = r->element[i]->element[1];
    const char *t = NULL, *ev = NULL;
    st_tl_raw_t raw = {"redis:stella:events", 1, 0, NULL, 0, NULL, NULL, NULL};
    st_tl_event_t dec;
    st_error_t err = ST_ERROR_INIT;
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
      const char *key = f->element[k]->str, *v = f->element[k + 1]->str;
      if (!strcmp(key, "type"))
        t = raw.type = v;
      else if (!strcmp(key, "event"))
        ev = v;
      else if (!strcmp(key, "event_id"))
        raw.event_id = v;
      else if (!strcmp(key, "tenant"))
        raw.tenant = v;
    }
    assert_non_null(ev);
    raw.body = ev;
    raw.body_len = strlen(ev);
    st_tl_event_init(&dec);
    if (st_tl_event_decode(&raw, &dec, &err))
      fail_msg("event %s refused by the timeline decoder: %s", ev, st_error_text(&err));
    st_tl_event_release(&dec);
    json_t *j = ev ? json_loads(ev, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(json_object_get(j, "payload"), "job_id"));
    n += t && id && !strcmp(t, type) && !strcmp(id, job_id);
    json_decref(j);
  }
  freeReplyObject(r);
  return n;
}

/* stellad with the Postgres sink: the common settings, then extra pairs. */
static pid_t spawn_pg(const char *log, const char *roles, const char *const *extra) {
  const char *env[40] = {"STELLA_PG_URL", app_url, "STELLA_OUTBOX_POLL_MS", "50",
                         "STELLA_JOB_CANCEL_POLL_MS", "100", "STELLA_PG_POOL_SIZE", "4"};
  int n = 8;
  for (; extra && extra[0] && n < 38; extra += 2) {
    env[n++] = extra[0];
    env[n++] = extra[1];
  }
  env[n] = NULL;
  return spawn_roles(redis_url, log, roles, env);
}

/* Run the stella CLI with the test's services; its exit status. stdout to out (or null). */
static int cli(const char *out, const char *const *args) {
  pid_t pid = fork();
  int st;
  assert_true(pid >= 0);
  if (pid == 0) {
    char bin[1024];
    const char *argv[16] = {"stella"};
    int n = 1;
    int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    setenv("STELLA_PG_URL", app_url, 1);
    setenv("STELLA_REDIS_URL", redis_url, 1);
    for (; args[n - 1] && n < 15; n++)
      argv[n] = args[n - 1];
    argv[n] = NULL;
    snprintf(bin, sizeof(bin), "%s/bin/stella", getenv("STELLA_BIN_DIR"));
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* XADD an envelope with a given job id (a redelivery of the same job). */
static void xadd_job(redisContext *c, const char *job_id, const char *payload) {
  st_envelope_t e;
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  st_envelope_init(&e);
  e.job_id = st_strdup(job_id);
  e.tenant = st_strdup("acme");
  e.type = st_strdup("probe");
  e.attempt = 1;
  e.payload = json_loads(payload, 0, NULL);
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), 0);
  freeReplyObject(redisCommand(c, "XADD stella:jobs:probe * e %b", b.data, b.len));
  st_envelope_release(&e);
  st_buf_release(&b);
}

static int setup(void **state) {
  redisContext *c = rconn(redis_url);
  freeReplyObject(redisCommand(c, "FLUSHDB"));
  redisFree(c);
  q_exec("DELETE FROM schedules; DELETE FROM event_triggers");
  return 0;
}

/* ---- tests ---- */

static void test_kill9_exactly_once(void **state) {
  char la[512], lb[512];
  redisContext *c = rconn(redis_url);
  char *ids[2];
  pid_t a, b;

  logpath(la, sizeof(la), "pg-kill-a");
  logpath(lb, sizeof(lb), "pg-kill-b");
  a = spawn_pg(la, "worker", NULL);
  for (int i = 0; i < 2; i++)
    ids[i] = submit(c, "{\"sleep_ms\":3000}");
  WAIT_UNTIL(count(la, "started", ids[0], NULL) == 1 && count(la, "started", ids[1], NULL) == 1);
  assert_true(job_state_is(ids[0], "running"));
  b = spawn_pg(lb, "worker", NULL);
  WAIT_UNTIL(log_has(lb, "claim connection up"));
  kill(a, SIGKILL);
  assert_int_equal(reap(a), 128 + SIGKILL);
  for (int i = 0; i < 2; i++) {
    WAIT_UNTIL(job_state_is(ids[i], "succeeded"));
    WAIT_UNTIL(events_n(c, ids[i], "job.succeeded") >= 1);
  }
  sleep_ms(1500); /* past a lease: a second run would show now */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(q_int("SELECT count(*) FROM jobs WHERE job_id = $1", ids[i]), 1);
    assert_int_equal(outbox_n(ids[i], "job.succeeded"), 1);
    assert_int_equal(events_n(c, ids[i], "job.succeeded"), 1);
    assert_int_equal(q_int("SELECT count(*) FROM job_events WHERE job_id = $1 AND to_state = "
                           "'succeeded'", ids[i]), 1);
    assert_int_equal(count(la, "succeeded", ids[i], NULL) + count(lb, "succeeded", ids[i], NULL), 1);
  }
  /* the same job delivered again after it finished: acknowledged without running */
  xadd_job(c, ids[0], "{\"sleep_ms\":3000}");
  WAIT_UNTIL(log_has(lb, "already final in the state store"));
  WAIT_UNTIL(rint_(c, "XLEN %s", "stella:jobs:probe") == 0);
  assert_int_equal(count(lb, "started", ids[0], NULL), 1);
  assert_int_equal(outbox_n(ids[0], "job.succeeded"), 1);
  stop(b);
  for (int i = 0; i < 2; i++)
    st_free(ids[i]);
  redisFree(c);
}

static void test_pg_restart(void **state) {
  char log[512];
  const char *env[] = {"STELLA_JOB_MAX_DELIVERIES", "1000", NULL};
  redisContext *c = rconn(redis_url);
  char *ids[8];
  pid_t pid;

  logpath(log, sizeof(log), "pg-restart");
  pid = spawn_pg(log, "worker", env);
  for (int i = 0; i < 8; i++)
    ids[i] = submit(c, i % 2 ? "{\"sleep_ms\":400}"
                             : "{\"sleep_ms\":400,\"fail\":\"transient\",\"fail_times\":1}");
  WAIT_UNTIL(count(log, "started", NULL, NULL) >= 2);
  /* down long enough for state writes to exhaust their retries: those entries are left
   * pending (not acknowledged) and must be redelivered once Postgres is back */
  assert_int_equal(as_pg(PGBIN "/pg_ctl -D %s -m fast -w stop >/dev/null", pgdata), 0);
  WAIT_UNTIL(log_has(log, "the entry stays pending"));
  sleep_ms(500);
  assert_int_equal(pg_start(), 0);
  for (int i = 0; i < 8; i++)
    WAIT_UNTIL(job_state_is(ids[i], "succeeded") && events_n(c, ids[i], "job.succeeded") == 1);
  sleep_ms(1500);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(q_int("SELECT count(*) FROM jobs WHERE job_id = $1", ids[i]), 1);
    assert_int_equal(outbox_n(ids[i], "job.succeeded"), 1);
    assert_int_equal(events_n(c, ids[i], "job.succeeded"), 1);
    st_free(ids[i]);
  }
  assert_int_equal(rint_(c, "XLEN %s", ST_DLQ_STREAM), 0);
  assert_int_equal(q_int("SELECT count(*) FROM outbox WHERE published_at IS NULL", NULL), 0);
  stop(pid);
  redisFree(c);
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static void test_scheduler_exactly_once(void **state) {
  const char *env[] = {"STELLA_SCHEDULER_TEST_SECONDS", "true", "STELLA_SCHEDULER_TICK_MS", "100",
                       NULL};
  char logs[3][512], prefix[64];
  redisContext *c = rconn(redis_url);
  redisReply *r;
  long long sid, ticks[256];
  size_t n = 0;
  pid_t pids[3];

  q_exec("INSERT INTO schedules (tenant_id, name, cron, job_type) "
         "VALUES ('acme', 'every2s', '*/2 * * * * *', 'probe')");
  sid = q_int("SELECT id FROM schedules WHERE name = 'every2s'", NULL);
  snprintf(prefix, sizeof(prefix), "sch-%lld-", sid);
  for (int i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof(name), "sched-%d", i);
    logpath(logs[i], sizeof(logs[i]), name);
    pids[i] = spawn_pg(logs[i], "scheduler", env);
  }
  WAIT_UNTIL(rint_(c, "XLEN %s", "stella:jobs:probe") >= 5);
  for (int i = 0; i < 3; i++)
    stop(pids[i]);
  r = redisCommand(c, "XRANGE stella:jobs:probe - +");
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  for (size_t i = 0; i < r->elements && n < 256; i++) {
    const redisReply *f = r->element[i]->element[1];
    st_envelope_t e;
    st_error_t err = ST_ERROR_INIT;
    assert_int_equal(st_envelope_decode(&e, f->element[1]->str, f->element[1]->len, NULL, &err), 0);
    assert_memory_equal(e.job_id, prefix, strlen(prefix));
    assert_string_equal(e.tenant, "acme");
    ticks[n++] = strtoll(e.job_id + strlen(prefix), NULL, 10);
    st_envelope_release(&e);
  }
  freeReplyObject(r);
  qsort(ticks, n, sizeof(ticks[0]), cmp_ll);
  assert_true(n >= 5);
  for (size_t i = 1; i < n; i++)
    if (ticks[i] - ticks[i - 1] != 2)
      fail_msg("ticks %lld and %lld: a tick fired twice or was skipped", ticks[i - 1], ticks[i]);
  {
    char id[32];
    snprintf(id, sizeof(id), "%lld", sid);
    assert_int_equal(q_int("SELECT count(*) FROM schedule_firings WHERE schedule_id = $1::bigint",
                           id), (long long)n);
  }
  assert_int_equal(count(logs[0], NULL, NULL, NULL), 0); /* no worker role: nothing ran */
  redisFree(c);
}

static void test_catch_up(void **state) {
  const char *fast[] = {"STELLA_SCHEDULER_TEST_SECONDS", "true", "STELLA_SCHEDULER_TICK_MS", "100",
                        "STELLA_SCHEDULER_CATCH_UP", "none", NULL};
  char l1[512], l2[512];
  pid_t pid;

  /* missed yearly ticks, catch-up one: exactly one firing, for this year's Jan 1 */
  q_exec("INSERT INTO schedules (tenant_id, name, cron, job_type, created_at, last_fired_at) "
         "VALUES ('acme', 'yearly-one', '0 0 1 1 *', 'probe', now() - interval '3 years', "
         "now() - interval '2 years')");
  logpath(l1, sizeof(l1), "catch-one");
  pid = spawn_pg(l1, "scheduler", (const char *const[]){"STELLA_SCHEDULER_TICK_MS", "100", NULL});
  WAIT_UNTIL(q_int("SELECT count(*) FROM schedule_firings f JOIN schedules s ON s.id = "
                   "f.schedule_id WHERE s.name = 'yearly-one'", NULL) == 1);
  sleep_ms(1000); /* ten more scheduler ticks */
  assert_int_equal(q_int("SELECT count(*) FROM schedule_firings f JOIN schedules s ON s.id = "
                         "f.schedule_id WHERE s.name = 'yearly-one' AND f.tick = "
                         "date_trunc('year', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'", NULL),
                   1);
  stop(pid);

  /* catch-up none: the missed tick never fires while a current schedule keeps firing */
  q_exec("INSERT INTO schedules (tenant_id, name, cron, job_type, created_at, last_fired_at) "
         "VALUES ('acme', 'yearly-none', '0 0 1 1 *', 'probe', now() - interval '3 years', "
         "now() - interval '2 years'), ('acme', 'secondly', '* * * * * *', 'probe', now(), NULL)");
  logpath(l2, sizeof(l2), "catch-none");
  pid = spawn_pg(l2, "scheduler", fast);
  WAIT_UNTIL(q_int("SELECT count(*) FROM schedule_firings f JOIN schedules s ON s.id = "
                   "f.schedule_id WHERE s.name = 'secondly'", NULL) >= 3);
  assert_int_equal(q_int("SELECT count(*) FROM schedule_firings f JOIN schedules s ON s.id = "
                         "f.schedule_id WHERE s.name = 'yearly-none'", NULL), 0);
  stop(pid);
}

static void test_cancel(void **state) {
  char log[512], log2[512];
  redisContext *c = rconn(redis_url);
  char *id, id2[128];
  pid_t pid;
  FILE *f;

  logpath(log, sizeof(log), "pg-cancel");
  pid = spawn_pg(log, "worker", NULL);
  id = submit(c, "{\"sleep_ms\":60000}");
  WAIT_UNTIL(job_state_is(id, "running"));
  assert_int_equal(cli(NULL, (const char *[]){"job", "cancel", id, "--tenant", "other", NULL}), 1);
  assert_int_equal(cli(NULL, (const char *[]){"job", "cancel", id, "--tenant", "acme", NULL}), 0);
  WAIT_UNTIL(job_state_is(id, "cancelled"));
  WAIT_UNTIL(events_n(c, id, "job.cancelled") == 1);
  assert_int_equal(outbox_n(id, "job.cancelled"), 1);
  assert_int_equal(count(log, "retry_scheduled", id, NULL), 0);
  assert_int_equal(rint_(c, "ZCARD %s", ST_DELAYED_KEY), 0);
  assert_int_equal(rint_(c, "XLEN %s", ST_DLQ_STREAM), 0);
  /* final now: a second cancel is refused */
  assert_int_equal(cli(NULL, (const char *[]){"job", "cancel", id, "--tenant", "acme", NULL}), 1);
  stop(pid);

  /* queued (submitted through the CLI, which writes the row), cancelled, then picked up:
   * it never runs */
  logpath(log2, sizeof(log2), "pg-cancel-queued");
  {
    char out[600];
    snprintf(out, sizeof(out), "%s/submit.out", logdir);
    assert_int_equal(cli(out, (const char *[]){"job", "submit", "--type", "probe", "--tenant",
                                               "acme", "--payload", "{\"sleep_ms\":60000}", NULL}),
                     0);
    f = fopen(out, "r");
    assert_non_null(f);
    assert_non_null(fgets(id2, sizeof(id2), f));
    fclose(f);
    id2[strcspn(id2, "\n")] = '\0';
  }
  assert_true(job_state_is(id2, "queued"));
  assert_int_equal(cli(NULL, (const char *[]){"job", "cancel", id2, "--tenant", "acme", NULL}), 0);
  pid = spawn_pg(log2, "worker", NULL);
  WAIT_UNTIL(job_state_is(id2, "cancelled"));
  assert_int_equal(q_int("SELECT count(*) FROM job_events WHERE job_id = $1 AND to_state = "
                         "'running'", id2), 0);
  WAIT_UNTIL(rint_(c, "XLEN %s", "stella:jobs:probe") == 0);
  stop(pid);
  st_free(id);
  redisFree(c);
}

static void test_poison(void **state) {
  char log[512];
  const char *env[] = {"STELLA_JOB_MAX_DELIVERIES", "3", NULL};
  redisContext *c = rconn(redis_url);
  redisReply *r;
  char *id, entry[64];

  freeReplyObject(redisCommand(c, "XGROUP CREATE stella:jobs:probe " ST_GROUP " 0 MKSTREAM"));
  id = submit(c, "{}");
  /* a consumer that took it and "crashed" ten times */
  r = redisCommand(c, "XREADGROUP GROUP " ST_GROUP " ghost COUNT 1 STREAMS stella:jobs:probe >");
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  snprintf(entry, sizeof(entry), "%s", r->element[0]->element[1]->element[0]->element[0]->str);
  freeReplyObject(r);
  freeReplyObject(redisCommand(c, "XCLAIM stella:jobs:probe " ST_GROUP " ghost 0 %s RETRYCOUNT 10",
                               entry));
  logpath(log, sizeof(log), "pg-poison");
  pid_t pid = spawn_pg(log, "worker", env);
  WAIT_UNTIL(count(log, "dead_lettered", id, "poison: crashed 10 times") == 1);
  assert_int_equal(count(log, "started", id, NULL), 0);
  WAIT_UNTIL(job_state_is(id, "dead"));
  WAIT_UNTIL(rint_(c, "XLEN %s", ST_DLQ_STREAM) == 1);
  r = redisCommand(c, "XRANGE %s - +", ST_DLQ_STREAM);
  {
    const redisReply *f = r->element[0]->element[1];
    int klass = 0;
    for (size_t k = 0; k + 1 < f->elements; k += 2)
      if (!strcmp(f->element[k]->str, "class"))
        klass = !strcmp(f->element[k + 1]->str, "poison");
    assert_true(klass);
  }
  freeReplyObject(r);
  WAIT_UNTIL(events_n(c, id, "job.dead_lettered") == 1);
  stop(pid);
  st_free(id);
  redisFree(c);
}

static void test_event_trigger(void **state) {
  char log[512];
  redisContext *c = rconn(redis_url);
  char *id, want[160];
  long long tid;
  pid_t pid;

  q_exec("INSERT INTO event_triggers (tenant_id, name, event_type, job_type, payload) "
         "VALUES ('acme', 'after-success', 'job.succeeded', 'probe', '{\"sleep_ms\": 1}')");
  tid = q_int("SELECT id FROM event_triggers WHERE name = 'after-success'", NULL);
  logpath(log, sizeof(log), "pg-trigger");
  pid = spawn_pg(log, "worker,scheduler", NULL);
  WAIT_UNTIL(log_has(log, "scheduler: started") && log_has(log, "claim connection up"));
  sleep_ms(500); /* the trigger group starts at new events: let it be created first */
  id = submit(c, "{}");
  WAIT_UNTIL(job_state_is(id, "succeeded"));
  snprintf(want, sizeof(want), "trg-%lld-", tid);
  /* the triggered job runs and succeeds; its own success does not trigger it again */
  WAIT_UNTIL(q_int("SELECT count(*) FROM jobs WHERE state = 'succeeded' AND job_id LIKE $1 || '%'",
                   want) == 1);
  sleep_ms(1000);
  assert_int_equal(q_int("SELECT count(*) FROM jobs WHERE job_id LIKE $1 || '%'", want), 1);
  stop(pid);
  st_free(id);
  redisFree(c);
}

/* The CLI over the job state and the schedules: outputs and exit codes, bad input kinds. */
static void test_cli(void **state) {
  char log[512], out[600], line[512];
  redisContext *c = rconn(redis_url);
  char *id;
  pid_t pid;
  FILE *f;
  int found = 0;

  snprintf(out, sizeof(out), "%s/cli.out", logdir);
  logpath(log, sizeof(log), "pg-cli");
  pid = spawn_pg(log, "worker", NULL);
  id = submit(c, "{\"fail\":\"transient\",\"fail_times\":1}");
  assert_int_equal(cli(out, (const char *[]){"job", "watch", id, "--tenant", "acme", NULL}), 0);
  assert_int_equal(cli(out, (const char *[]){"job", "get", id, "--tenant", "acme", "--json", NULL}), 0);
  {
    json_t *j = json_load_file(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 2);
    /* running, queued (retry), running, succeeded */
    assert_int_equal(json_array_size(json_object_get(j, "transitions")), 4);
    json_decref(j);
  }
  /* another tenant sees nothing (row-level security) */
  assert_int_equal(cli(NULL, (const char *[]){"job", "get", id, "--tenant", "other", NULL}), 1);
  assert_int_equal(cli(NULL, (const char *[]){"job", "get", id, "--tenant", "bad tenant", NULL}), 2);
  assert_int_equal(cli(NULL, (const char *[]){"job", "get", id, NULL}), 2);
  assert_int_equal(cli(NULL, (const char *[]){"job", "frobnicate", NULL}), 2);
  stop(pid);

  assert_int_equal(cli(NULL, (const char *[]){"schedule", "add", "--tenant", "acme", "--name",
                                              "nightly", "--cron", "0 3 * * *", "--type", "probe",
                                              NULL}), 0);
  assert_int_equal(cli(NULL, (const char *[]){"schedule", "add", "--tenant", "acme", "--name",
                                              "nightly", "--cron", "0 4 * * *", "--type", "probe",
                                              NULL}), 1); /* name taken */
  assert_int_equal(cli(NULL, (const char *[]){"schedule", "add", "--tenant", "acme", "--name",
                                              "bad", "--cron", "0 24 * * *", "--type", "probe",
                                              NULL}), 2);
  assert_int_equal(cli(NULL, (const char *[]){"schedule", "add", "--tenant", "acme", "--name",
                                              "bad", "--cron", "* * * * *", "--type", "nosuch",
                                              NULL}), 2);
  assert_int_equal(cli(NULL, (const char *[]){"schedule", "add", "--tenant", "acme", "--name",
                                              "bad", "--cron", "* * * * *", "--type", "probe",
                                              "--payload", "{\"sleep_ms\":-1}", NULL}), 2);
  assert_int_equal(cli(NULL, (const char *[]){"schedule", "add", "--tenant", "acme", "--name",
                                              "both", "--cron", "* * * * *", "--on", "job.succeeded",
                                              "--type", "probe", NULL}), 2);
  assert_int_equal(cli(out, (const char *[]){"schedule", "list", "--tenant", "acme", NULL}), 0);
  f = fopen(out, "r");
  while (f && fgets(line, sizeof(line), f))
    found += strstr(line, "nightly") && strstr(line, "0 3 * * *") != NULL;
  if (f)
    fclose(f);
  assert_int_equal(found, 1);
  assert_int_equal(cli(out, (const char *[]){"schedule", "list", "--tenant", "other", NULL}), 0);
  f = fopen(out, "r");
  assert_non_null(f);
  assert_null(fgets(line, sizeof(line), f)); /* nothing of acme's */
  fclose(f);
  assert_int_equal(cli(NULL, (const char *[]){"schedule", "rm", "--tenant", "other", "--name",
                                              "nightly", NULL}), 1);
  assert_int_equal(cli(NULL, (const char *[]){"schedule", "rm", "--tenant", "acme", "--name",
                                              "nightly", NULL}), 0);
  st_free(id);
  redisFree(c);
}

int main(void) {
  const char *base = st_test_env("STELLA_REDIS_URL");
  const char *src = getenv("STELLA_SOURCE_DIR");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_kill9_exactly_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
      cmocka_unit_test_setup_teardown(test_poison, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_trigger, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scheduler_exactly_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_catch_up, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pg_restart, setup, teardown),
  };
  char dir[4096];
  st_error_t err = ST_ERROR_INIT;
  int rc;

  if (access(PGBIN "/initdb", X_OK)) {
    fprintf(stderr, "skipping: no %s/initdb\n", PGBIN);
    return 77;
  }
  snprintf(redis_url, sizeof(redis_url), "%s/%d", base, DB);
  if (!mkdtemp(logdir))
    return 1;
  chmod(logdir, 0755);
  fprintf(stderr, "logs in %s\n", logdir);
  snprintf(pgdata, sizeof(pgdata), "%s/pg", logdir);
  snprintf(pg_port, sizeof(pg_port), "%d", free_port());
  snprintf(admin_url, sizeof(admin_url), "postgresql://postgres@127.0.0.1:%s/postgres", pg_port);
  snprintf(app_url, sizeof(app_url), "postgresql://stella_app@127.0.0.1:%s/postgres", pg_port);
  mkdir(pgdata, 0700);
  if (getuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    if (!pw || chown(pgdata, pw->pw_uid, pw->pw_gid))
      return 1;
  }
  if (as_pg(PGBIN "/initdb -D %s -U postgres -A trust -E UTF8 --no-locale >/dev/null", pgdata) ||
      pg_start()) {
    fprintf(stderr, "cannot start a private Postgres in %s\n", pgdata);
    return 1;
  }
  snprintf(dir, sizeof(dir), "%s/schemas/postgres", src ? src : "../..");
  if (st_db_migrate(admin_url, dir, NULL, NULL, &err)) {
    fprintf(stderr, "migrate: %s\n", st_error_text(&err));
    rc = 1;
  } else {
    rc = cmocka_run_group_tests(tests, NULL, NULL);
  }
  if (admin)
    PQfinish(admin);
  as_pg(PGBIN "/pg_ctl -D %s -m immediate -w stop >/dev/null 2>&1", pgdata);
  {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pgdata);
    if (system(cmd))
      fprintf(stderr, "could not remove %s\n", pgdata);
  }
  return rc;
}
