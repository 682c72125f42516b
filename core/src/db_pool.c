/* db_pool.c: the Postgres connection pool.
 *
 * A mutex-protected stack of idle connections plus a count of open ones. A checkout takes
 * an idle connection, or opens a new one while fewer than `size` are open (the connect runs
 * outside the lock), or waits on a condition variable with a deadline. A connection comes
 * back idle only if it is healthy and outside any transaction; otherwise it is closed and
 * its slot freed, so a broken connection never reaches the next caller.
 */
#include "db_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "stella/log.h"
#include "stella/mem.h"

struct st_db_pool_s {
  char *conninfo;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int size;
  int nopen; /* idle + checked out + being opened */
  int nidle;
  PGconn **idle; /* size slots */
};

/* Server notices ("relation already exists, skipping") go to the debug log, not stderr. */
static void log_notice(void *arg, const char *message) {
  st_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *st__db_connect(const char *conninfo, st_error_t *err) {
  /* Earlier keywords are defaults that the expanded conninfo may override. */
  const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
  const char *const vals[] = {"10", "stella", conninfo, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);

  if (!c) {
    st_fail(err, ST_ENOMEM, "postgres connect: out of memory");
    return NULL;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    const char *m = PQerrorMessage(c);
    size_t n = strcspn(m, "\n");
    st_fail(err, ST_EDBRETRY, "postgres connect: %.*s", (int)n, m);
    PQfinish(c);
    return NULL;
  }
  PQsetNoticeProcessor(c, log_notice, NULL);
  return c;
}

int st_db_pool_new(const char *conninfo, int size, st_db_pool_t **out, st_error_t *err) {
  st_db_pool_t *p = NULL;
  pthread_condattr_t ca;
  PGconn *first = NULL;
  int rc = 0, mu_ok = 0, cv_ok = 0;

  *out = NULL;
  if (!conninfo || !*conninfo)
    return st_fail(err, ST_EINVAL, "db pool: conninfo is empty");
  if (size < 1 || size > ST_DB_POOL_MAX)
    return st_fail(err, ST_EINVAL, "db pool: size %d is outside [1, %d]", size,
                   ST_DB_POOL_MAX);
  p = st_calloc(1, sizeof(*p));
  if (!p || !(p->conninfo = st_strdup(conninfo)) ||
      !(p->idle = st_calloc((size_t)size, sizeof(*p->idle)))) {
    rc = st_fail(err, ST_ENOMEM, "db pool: out of memory");
    goto done;
  }
  p->size = size;
  if (pthread_mutex_init(&p->mu, NULL)) {
    rc = st_fail(err, ST_ENOMEM, "db pool: cannot create mutex");
    goto done;
  }
  mu_ok = 1;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  cv_ok = pthread_cond_init(&p->cv, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!cv_ok) {
    rc = st_fail(err, ST_ENOMEM, "db pool: cannot create condition variable");
    goto done;
  }
  if (!(first = st__db_connect(conninfo, err))) {
    rc = err ? err->code : ST_EDB;
    goto done;
  }
  p->idle[p->nidle++] = first;
  p->nopen = 1;
  *out = p;
  p = NULL;
done:
  if (p) {
    if (cv_ok)
      pthread_cond_destroy(&p->cv);
    if (mu_ok)
      pthread_mutex_destroy(&p->mu);
    st_free(p->idle);
    st_free(p->conninfo);
    st_free(p);
  }
  return rc;
}

void st_db_pool_free(st_db_pool_t *pool) {
  if (!pool)
    return;
  for (int i = 0; i < pool->nidle; i++)
    PQfinish(pool->idle[i]);
  if (pool->nopen != pool->nidle)
    st_error("db pool: freed with %d connection(s) still checked out",
             pool->nopen - pool->nidle);
  pthread_cond_destroy(&pool->cv);
  pthread_mutex_destroy(&pool->mu);
  st_free(pool->idle);
  st_free(pool->conninfo);
  st_free(pool);
}

int st__db_checkout(st_db_pool_t *pool, PGconn **out, st_error_t *err) {
  struct timespec deadline;
  PGconn *c = NULL;
  int rc = 0, must_open = 0;

  *out = NULL;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += ST_DB_CHECKOUT_TIMEOUT_MS / 1000;
  deadline.tv_nsec += (long)(ST_DB_CHECKOUT_TIMEOUT_MS % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&pool->mu);
  for (;;) {
    if (pool->nidle > 0) {
      c = pool->idle[--pool->nidle];
      break;
    }
    if (pool->nopen < pool->size) {
      pool->nopen++; /* reserve the slot; connect outside the lock */
      must_open = 1;
      break;
    }
    if (pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline) == ETIMEDOUT) {
      rc = st_fail(err, ST_ETIMEDOUT, "db pool: no connection free after %d ms (size %d)",
                   ST_DB_CHECKOUT_TIMEOUT_MS, pool->size);
      break;
    }
  }
  pthread_mutex_unlock(&pool->mu);
  if (must_open && !(c = st__db_connect(pool->conninfo, err))) {
    rc = err ? err->code : ST_EDBRETRY;
    pthread_mutex_lock(&pool->mu);
    pool->nopen--;
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
  }
  *out = c;
  return rc;
}

void st__db_checkin(st_db_pool_t *pool, PGconn *c) {
  if (c && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
  }
  if (c && (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE)) {
    PQfinish(c);
    c = NULL;
  }
  pthread_mutex_lock(&pool->mu);
  if (c)
    pool->idle[pool->nidle++] = c;
  else
    pool->nopen--;
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
}

int st__db_revive(PGconn *c, st_error_t *err) {
  if (PQstatus(c) == CONNECTION_OK)
    return 0;
  PQreset(c);
  if (PQstatus(c) == CONNECTION_OK) {
    st_warn("db: connection re-established");
    return 0;
  }
  return st_fail(err, ST_EDBRETRY, "postgres reconnect: %.*s",
                 (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
}
