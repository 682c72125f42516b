/* db_tx.c: tenant and system transactions with bounded retries.
 *
 * One call = one pooled connection held across attempts. An attempt: revive the connection
 * if it dropped (PQreset), BEGIN and set stella.tenant with set_config(..., true) (SET LOCAL
 * takes no bind parameter) in one pipelined round trip, run the body, COMMIT; on failure
 * ROLLBACK. Only ST_EDBRETRY (serialization failure, deadlock, lost connection) starts
 * another attempt, after a backoff of 10 ms * 2^attempt with full jitter, capped at 1 s;
 * everything else is final.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"
#include "stella/buf.h"
#include "stella/log.h"

#define BACKOFF_BASE_MS 10
#define BACKOFF_CAP_MS 1000

int st_db_tenant_check(const char *tenant, st_error_t *err) {
  st_buf_t shown = ST_BUF_INIT;
  size_t n;
  int rc = 0;

  if (!tenant)
    return st_fail(err, ST_EINVAL, "tenant id is missing");
  n = strnlen(tenant, ST_DB_TENANT_MAX + 1);
  if (n == 0)
    return st_fail(err, ST_EINVAL, "tenant id is empty");
  if (n > ST_DB_TENANT_MAX)
    return st_fail(err, ST_EINVAL, "tenant id \"%.16s...\" is longer than %d characters",
                   tenant, ST_DB_TENANT_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)tenant[i];
    if (isalnum(ch) && ch < 0x80)
      continue;
    if (ch == '.' || ch == '_' || ch == '-')
      continue;
    /* Show the id JSON-escaped so control bytes cannot forge log lines. */
    st_buf_init(&shown, 4 * ST_DB_TENANT_MAX + 16);
    if (st_utf8_valid(tenant, n) ? st_buf_add_json_str(&shown, tenant, n)
                                 : st_buf_adds(&shown, "(not UTF-8)"))
      st_buf_reset(&shown);
    rc = st_fail(err, ST_EINVAL,
                 "tenant id %s: character %zu is not allowed (use A-Z a-z 0-9 . _ -)",
                 shown.data, i + 1);
    break;
  }
  st_buf_release(&shown);
  return rc;
}

static unsigned backoff_ms(int attempt) {
  static _Thread_local unsigned seed;
  unsigned cap = BACKOFF_BASE_MS << (attempt < 7 ? attempt : 7);

  if (!seed)
    seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
  if (cap > BACKOFF_CAP_MS)
    cap = BACKOFF_CAP_MS;
  return 1 + (unsigned)rand_r(&seed) % cap;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* Both results of the pipeline are read even after a failure, so the connection leaves
 * pipeline mode clean; the first failure is the one reported. */
static int read_pipelined(PGconn *c, const char *what[2], st_error_t *err) {
  PGresult *res;
  int rc = 0;

  for (int i = 0; i < 2; i++) {
    res = PQgetResult(c);
    if (!rc) {
      rc = st_db_check(c, res, what[i], err);
      if (rc && PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
        rc = st_fail(err, ST_EDB, "%s: skipped after an earlier failure", what[i]);
    }
    PQclear(res);
    while ((res = PQgetResult(c)) != NULL) /* the NULL ending each query's results */
      PQclear(res);
  }
  res = PQgetResult(c); /* PGRES_PIPELINE_SYNC */
  if (!rc && PQresultStatus(res) != PGRES_PIPELINE_SYNC)
    rc = st_db_check(c, res, "pipeline sync", err);
  PQclear(res);
  return rc;
}

/* BEGIN and set_config travel in one pipeline: one round trip instead of two on every
 * transaction (the job queue runs two per job). */
static int begin(PGconn *c, const char *tenant, int flags, st_error_t *err) {
  static const char set_tenant[] = "SELECT set_config('stella.tenant', $1, true)";
  const char *sql = "BEGIN";
  const char *what[2];
  int rc;

  if (flags & ST_DB_TX_SERIALIZABLE)
    sql = (flags & ST_DB_TX_READ_ONLY) ? "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"
                                       : "BEGIN ISOLATION LEVEL SERIALIZABLE";
  else if (flags & ST_DB_TX_READ_ONLY)
    sql = "BEGIN READ ONLY";
  /* A system transaction clears the setting too, in case a body set it for the session. */
  if (!tenant)
    tenant = "";
  what[0] = sql;
  what[1] = "set_config stella.tenant";
  if (!PQenterPipelineMode(c))
    return st_db_check(c, NULL, "enter pipeline mode", err);
  if (!PQsendQueryParams(c, sql, 0, NULL, NULL, NULL, NULL, 0) ||
      !PQsendQueryParams(c, set_tenant, 1, NULL, &tenant, NULL, NULL, 0) ||
      !PQpipelineSync(c))
    rc = st_db_check(c, NULL, "send BEGIN pipeline", err);
  else
    rc = read_pipelined(c, what, err);
  if (!PQexitPipelineMode(c) && !rc)
    rc = st_db_check(c, NULL, "exit pipeline mode", err);
  return rc;
}

static int attempt_once(PGconn *c, const char *tenant, int flags, st_db_tx_fn fn,
                        void *arg, st_error_t *err) {
  int rc;

  if ((rc = st__db_revive(c, err)))
    return rc;
  if ((rc = begin(c, tenant, flags, err)) == 0 && (rc = fn(c, arg, err)) == 0)
    rc = st_db_exec(c, "COMMIT", 0, NULL, NULL, err);
  if (rc && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
  }
  /* A body that swallowed a lost connection still cannot have committed. */
  if (rc == 0 && PQstatus(c) != CONNECTION_OK)
    rc = st_fail(err, ST_EDBRETRY, "postgres connection lost during the transaction");
  return rc;
}

static int run_tx(st_db_pool_t *pool, const char *tenant, int flags, st_db_tx_fn fn,
                  void *arg, st_error_t *err) {
  PGconn *c = NULL;
  int rc;

  if (!pool || !fn)
    return st_fail(err, ST_EINVAL, "db tx: pool and function are required");
  if (tenant && (rc = st_db_tenant_check(tenant, err)))
    return rc;
  if ((rc = st__db_checkout(pool, &c, err)))
    return rc;
  for (int attempt = 1;; attempt++) {
    rc = attempt_once(c, tenant, flags, fn, arg, err);
    if (rc != ST_EDBRETRY || attempt >= ST_DB_TX_ATTEMPTS)
      break;
    st_warn("db: transaction attempt %d of %d failed, retrying: %s", attempt,
            ST_DB_TX_ATTEMPTS, st_error_text(err));
    sleep_ms(backoff_ms(attempt));
  }
  if (rc == ST_EDBRETRY)
    st_error_wrap(err, "gave up after %d attempts", ST_DB_TX_ATTEMPTS);
  st__db_checkin(pool, c);
  return rc;
}

int st_db_tenant_txf(st_db_pool_t *pool, const char *tenant, int flags, st_db_tx_fn fn,
                     void *arg, st_error_t *err) {
  if (!tenant)
    return st_fail(err, ST_EINVAL, "tenant id is missing");
  return run_tx(pool, tenant, flags, fn, arg, err);
}

int st_db_tenant_tx(st_db_pool_t *pool, const char *tenant, st_db_tx_fn fn, void *arg,
                    st_error_t *err) {
  return st_db_tenant_txf(pool, tenant, 0, fn, arg, err);
}

int st_db_system_txf(st_db_pool_t *pool, int flags, st_db_tx_fn fn, void *arg,
                     st_error_t *err) {
  return run_tx(pool, NULL, flags, fn, arg, err);
}

int st_db_system_tx(st_db_pool_t *pool, st_db_tx_fn fn, void *arg, st_error_t *err) {
  return st_db_system_txf(pool, 0, fn, arg, err);
}
