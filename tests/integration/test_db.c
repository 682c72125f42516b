/* test_db.c: the Postgres pool and tenant transactions against a real server: isolation
 * through st_db_tenant_tx, SQLSTATE mapping, a forced serialization failure retried,
 * reconnection after pg_terminate_backend (idle and mid-transaction), invalid tenant ids
 * rejected before any SQL runs, and many threads sharing a small pool. */
#include "st_test_db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "stella/db.h"

static const char *app_url, *admin_url;
static char tenant_a[32], tenant_b[32];

static PGconn *admin_conn(void) {
  PGconn *c = PQconnectdb(admin_url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  return c;
}

static void admin_exec(const char *sql, const char *p1) {
  PGconn *c = admin_conn();
  PGresult *r = PQexecParams(c, sql, p1 ? 1 : 0, NULL, p1 ? &p1 : NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

static void cleanup(void) {
  admin_exec("DELETE FROM jobs WHERE tenant_id = $1", tenant_a);
  admin_exec("DELETE FROM jobs WHERE tenant_id = $1", tenant_b);
}

static int setup(void **state) {
  st_test_db_setup(&app_url, &admin_url, "dbt", tenant_a, tenant_b, sizeof(tenant_a));
  cleanup();
  return 0;
}

static int teardown(void **state) {
  cleanup();
  return 0;
}

/* ---- isolation and error mapping ---- */

typedef struct q_s {
  const char *sql;
  const char *p[3];
  int np;
  long long out;
  int calls;
} q_t;

static int run_exec(PGconn *c, void *arg, st_error_t *err) {
  q_t *q = arg;
  q->calls++;
  return st_db_exec_count(c, q->sql, q->np, q->p, &q->out, err);
}

static int run_int(PGconn *c, void *arg, st_error_t *err) {
  q_t *q = arg;
  q->calls++;
  return st_db_query_int(c, q->sql, q->np, q->p, &q->out, err);
}

static void tenant_isolation(void **state) {
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  q_t ins = {"INSERT INTO jobs (tenant_id, job_id, type) VALUES ($1, 'iso-1', 'test')",
             {tenant_a}, 1, 0, 0};
  q_t cnt = {"SELECT count(*) FROM jobs WHERE job_id = 'iso-1'", {0}, 0, -1, 0};
  q_t cross = {"INSERT INTO jobs (tenant_id, job_id, type) VALUES ($1, 'iso-2', 'test')",
               {tenant_b}, 1, 0, 0};
  q_t upd = {"UPDATE jobs SET state = 'running' WHERE job_id = 'iso-1'", {0}, 0, -1, 0};

  assert_int_equal(st_db_pool_new(app_url, 2, &pool, &err), 0);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_exec, &ins, &err), 0);
  assert_int_equal(ins.out, 1);

  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_int, &cnt, &err), 0);
  assert_int_equal(cnt.out, 1);
  cnt.out = -1;
  assert_int_equal(st_db_tenant_tx(pool, tenant_b, run_int, &cnt, &err), 0);
  assert_int_equal(cnt.out, 0);
  cnt.out = -1;
  assert_int_equal(st_db_system_tx(pool, run_int, &cnt, &err), 0);
  assert_int_equal(cnt.out, 0);

  /* B cannot change A's row; the update simply finds nothing. */
  assert_int_equal(st_db_tenant_tx(pool, tenant_b, run_exec, &upd, &err), 0);
  assert_int_equal(upd.out, 0);

  /* Writing another tenant's row is a row-level security violation: ST_EPERM. */
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_exec, &cross, &err), ST_EPERM);
  assert_non_null(strstr(err.msg, "42501"));
  assert_non_null(strstr(err.msg, "row-level security"));

  /* The same job twice: unique violation, ST_ECONFLICT, not retried. */
  ins.calls = 0;
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_exec, &ins, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "23505"));
  assert_int_equal(ins.calls, 1);

  /* Every transition was recorded by the trigger, inside the tenant's view. */
  q_t ev = {"SELECT count(*) FROM job_events WHERE job_id = 'iso-1'", {0}, 0, -1, 0};
  upd.out = -1;
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_exec, &upd, &err), 0);
  assert_int_equal(upd.out, 1);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_int, &ev, &err), 0);
  assert_int_equal(ev.out, 2);
  st_db_pool_free(pool);
}

static void helpers_map_errors(void **state) {
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  q_t none = {"SELECT 1 WHERE false", {0}, 0, 0, 0};
  q_t null = {"SELECT NULL::int", {0}, 0, 0, 0};
  q_t text = {"SELECT 'x'", {0}, 0, 0, 0};
  q_t syntax = {"SELEC 1", {0}, 0, 0, 0};

  assert_int_equal(st_db_pool_new(app_url, 1, &pool, &err), 0);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_int, &none, &err), ST_ENOENT);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_int, &null, &err), ST_EDB);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_int, &text, &err), ST_EDB);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_int, &syntax, &err), ST_EDB);
  assert_non_null(strstr(err.msg, "SQLSTATE 42601"));
  assert_int_equal(syntax.calls, 1);
  st_db_pool_free(pool);

  assert_int_equal(st_db_pool_new("postgresql://nobody@127.0.0.1:1/none", 1, &pool, &err),
                   ST_EDBRETRY);
  assert_null(pool);
  assert_int_equal(st_db_pool_new(app_url, 0, &pool, &err), ST_EINVAL);
  assert_int_equal(st_db_pool_new(app_url, ST_DB_POOL_MAX + 1, &pool, &err), ST_EINVAL);
}

static void invalid_tenants_rejected(void **state) {
  static const char *bad[] = {
      "", "a b", "a;DROP TABLE jobs", "../x", "t\n{\"level\":\"error\"}", "caf\xc3\xa9",
      "\xff", NULL /* ST_DB_TENANT_MAX + 1 characters, filled below */};
  char longest[ST_DB_TENANT_MAX + 2];
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  q_t q = {"SELECT 1", {0}, 0, 0, 0};
  const char **list = bad;

  memset(longest, 'a', ST_DB_TENANT_MAX + 1);
  longest[ST_DB_TENANT_MAX + 1] = '\0';
  list[7] = longest;
  assert_int_equal(st_db_pool_new(app_url, 1, &pool, &err), 0);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err = (st_error_t)ST_ERROR_INIT;
    assert_int_equal(st_db_tenant_tx(pool, list[i], run_int, &q, &err), ST_EINVAL);
    assert_non_null(strstr(err.msg, "tenant id"));
    assert_null(strchr(err.msg, '\n'));
  }
  assert_int_equal(st_db_tenant_tx(pool, NULL, run_int, &q, &err), ST_EINVAL);
  assert_int_equal(q.calls, 0);
  /* The longest valid id passes. */
  assert_int_equal(st_db_tenant_tx(pool, longest + 1, run_int, &q, &err), 0);
  assert_int_equal(q.calls, 1);
  st_db_pool_free(pool);
}

/* ---- serialization failure: classic write skew under SERIALIZABLE ---- */

typedef struct skew_s {
  pthread_barrier_t *barrier;
  st_db_pool_t *pool;
  const char *job_id;
  int calls;
  int rc;
} skew_t;

static int skew_body(PGconn *c, void *arg, st_error_t *err) {
  skew_t *s = arg;
  const char *p[1] = {s->job_id};
  long long n;
  int rc;

  s->calls++;
  if ((rc = st_db_query_int(c, "SELECT count(*) FROM jobs WHERE type = 'skew'", 0, NULL,
                            &n, err)))
    return rc;
  if (s->calls == 1) /* both read before either writes, on the first attempt only */
    pthread_barrier_wait(s->barrier);
  return st_db_exec(c, "INSERT INTO jobs (tenant_id, job_id, type) VALUES "
                       "(current_setting('stella.tenant'), $1, 'skew')",
                    1, p, NULL, err);
}

static void *skew_thread(void *arg) {
  skew_t *s = arg;
  st_error_t err = ST_ERROR_INIT;
  s->rc = st_db_tenant_txf(s->pool, tenant_a, ST_DB_TX_SERIALIZABLE, skew_body, s, &err);
  if (s->rc)
    fprintf(stderr, "skew: %s\n", st_error_text(&err));
  return NULL;
}

static void serialization_failure_retried(void **state) {
  pthread_barrier_t barrier;
  pthread_t t[2];
  skew_t s[2];
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  q_t cnt = {"SELECT count(*) FROM jobs WHERE type = 'skew'", {0}, 0, -1, 0};

  assert_int_equal(st_db_pool_new(app_url, 2, &pool, &err), 0);
  pthread_barrier_init(&barrier, NULL, 2);
  for (int i = 0; i < 2; i++) {
    s[i] = (skew_t){&barrier, pool, i ? "skew-2" : "skew-1", 0, -1};
    assert_int_equal(pthread_create(&t[i], NULL, skew_thread, &s[i]), 0);
  }
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  pthread_barrier_destroy(&barrier);
  assert_int_equal(s[0].rc, 0);
  assert_int_equal(s[1].rc, 0);
  /* One of the two hit 40001 and ran again. */
  assert_true(s[0].calls + s[1].calls >= 3);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, run_int, &cnt, &err), 0);
  assert_int_equal(cnt.out, 2);
  st_db_pool_free(pool);
}

/* ---- reconnection ---- */

typedef struct kill_s {
  long long pid;
  int kill_on_first;
  int calls;
} kill_t;

static void terminate(long long pid) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld", pid);
  /* The timeout form waits until the backend is gone. */
  admin_exec("SELECT pg_terminate_backend($1::int, 10000)", buf);
}

static int kill_body(PGconn *c, void *arg, st_error_t *err) {
  kill_t *k = arg;
  int rc = st_db_query_int(c, "SELECT pg_backend_pid()", 0, NULL, &k->pid, err);
  if (rc)
    return rc;
  if (k->calls++ == 0 && k->kill_on_first) {
    terminate(k->pid);
    return st_db_exec(c, "SELECT 1", 0, NULL, NULL, err);
  }
  return 0;
}

static void reconnect_after_terminate(void **state) {
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  kill_t k = {0, 0, 0};
  long long first;

  assert_int_equal(st_db_pool_new(app_url, 1, &pool, &err), 0);
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, kill_body, &k, &err), 0);
  first = k.pid;
  terminate(first); /* the pooled connection is idle */
  k.calls = 0;
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, kill_body, &k, &err), 0);
  assert_int_equal(k.calls, 1); /* BEGIN failed, connection reset, body ran once */
  assert_true(k.pid != first);

  /* Killed in the middle of the body: rolled back, reconnected, run again. */
  first = k.pid;
  k = (kill_t){0, 1, 0};
  assert_int_equal(st_db_tenant_tx(pool, tenant_a, kill_body, &k, &err), 0);
  assert_int_equal(k.calls, 2);
  assert_true(k.pid != first);
  st_db_pool_free(pool);
}

/* ---- many threads, small pool ---- */

#define NTHREADS 8
#define PER_THREAD 20

typedef struct load_s {
  st_db_pool_t *pool;
  int idx;
  int failures;
} load_t;

static void *load_thread(void *arg) {
  load_t *l = arg;
  char job[32];
  q_t ins = {"INSERT INTO jobs (tenant_id, job_id, type) VALUES ($1, $2, 'load')",
             {tenant_b, job}, 2, 0, 0};
  for (int i = 0; i < PER_THREAD; i++) {
    st_error_t err = ST_ERROR_INIT;
    snprintf(job, sizeof(job), "load-%d-%d", l->idx, i);
    if (st_db_tenant_tx(l->pool, tenant_b, run_exec, &ins, &err))
      l->failures++;
  }
  return NULL;
}

static void threads_share_pool(void **state) {
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  pthread_t t[NTHREADS];
  load_t l[NTHREADS];
  q_t cnt = {"SELECT count(*) FROM jobs WHERE type = 'load'", {0}, 0, -1, 0};

  assert_int_equal(st_db_pool_new(app_url, 2, &pool, &err), 0);
  for (int i = 0; i < NTHREADS; i++) {
    l[i] = (load_t){pool, i, 0};
    assert_int_equal(pthread_create(&t[i], NULL, load_thread, &l[i]), 0);
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(l[i].failures, 0);
  }
  assert_int_equal(st_db_tenant_tx(pool, tenant_b, run_int, &cnt, &err), 0);
  assert_int_equal(cnt.out, NTHREADS * PER_THREAD);
  st_db_pool_free(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tenant_isolation),
      cmocka_unit_test(helpers_map_errors),
      cmocka_unit_test(invalid_tenants_rejected),
      cmocka_unit_test(serialization_failure_retried),
      cmocka_unit_test(reconnect_after_terminate),
      cmocka_unit_test(threads_share_pool),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
