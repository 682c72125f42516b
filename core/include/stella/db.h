/* db.h: Postgres access: a connection pool, tenant transactions, result helpers and the
 * migration runner.
 *
 * Every tenant-scoped read or write goes through st_db_tenant_tx: it checks out a pooled
 * connection, opens a transaction, sets `stella.tenant` for that transaction only (row-level
 * security policies compare tenant_id with it), runs the caller's function and commits.
 * st_db_system_tx runs the same way with no tenant set, so RLS tables show no rows; it is
 * for the few tenant-less operations (the outbox relay's SECURITY DEFINER functions).
 *
 * Thread rules: these calls BLOCK (libpq's synchronous API). Call them from worker threads
 * only; the libuv loop must never call them. A pool may be shared by any number of threads;
 * a PGconn handed to a transaction function belongs to that call only and must not be kept,
 * shared or closed.
 *
 * Retries: a transaction that fails with a serialization failure or deadlock (SQLSTATE
 * 40001/40P01) or loses its connection is rolled back and run again from the start, with
 * exponential backoff and jitter, up to ST_DB_TX_ATTEMPTS times. The function may therefore
 * run more than once: it must have no effects outside the transaction (or idempotent ones).
 * A connection lost during COMMIT is retried too, so writes must be idempotent (unique keys,
 * ON CONFLICT) as the job and outbox tables are.
 *
 * Errors: ST_EINVAL (bad tenant id or argument, named), ST_EDB (a statement failed; the
 * message carries the SQLSTATE), ST_EDBRETRY (transient: serialization, deadlock, lost
 * connection; retries exhausted), ST_ECONFLICT (unique violation 23505), ST_EPERM
 * (insufficient privilege or a row-level security violation, 42501), ST_ETIMEDOUT (no pooled
 * connection became free in time), ST_ENOMEM. If st_db_tenant_tx fails before BEGIN (bad
 * tenant, no connection), the function never runs.
 */
#ifndef STELLA_DB_H
#define STELLA_DB_H

#include <libpq-fe.h>

#include "stella/err.h"

typedef struct st_db_pool_s st_db_pool_t;

#define ST_DB_POOL_MAX 256
#define ST_DB_TENANT_MAX 64
#define ST_DB_TX_ATTEMPTS 5
/* How long a checkout waits for a free connection before ST_ETIMEDOUT. */
#define ST_DB_CHECKOUT_TIMEOUT_MS 30000

/* Create a pool of up to `size` (1..ST_DB_POOL_MAX) connections to `conninfo` (a libpq
 * keyword string or postgresql:// URL). One connection is opened now so a bad conninfo
 * fails here; the others open on demand. Free with st_db_pool_free. */
int st_db_pool_new(const char *conninfo, int size, st_db_pool_t **out, st_error_t *err)
    ST_MUST_CHECK;
/* Close every connection and free the pool. No transaction may be running. NULL is a
 * no-op. */
void st_db_pool_free(st_db_pool_t *pool);

/* Whether `tenant` is a valid tenant id: 1..ST_DB_TENANT_MAX characters of [A-Za-z0-9._-].
 * ST_EINVAL naming the id (escaped) otherwise. */
int st_db_tenant_check(const char *tenant, st_error_t *err) ST_MUST_CHECK;

/* A transaction body. Return 0 to commit, a negative ST_E* code to roll back. */
typedef int (*st_db_tx_fn)(PGconn *c, void *arg, st_error_t *err);

/* Transaction options for st_db_tenant_txf / st_db_system_txf. */
enum {
  ST_DB_TX_SERIALIZABLE = 1 << 0, /* BEGIN ISOLATION LEVEL SERIALIZABLE */
  ST_DB_TX_READ_ONLY = 1 << 1,    /* BEGIN ... READ ONLY */
};

/* Run fn in a transaction with stella.tenant = tenant (READ COMMITTED). */
int st_db_tenant_tx(st_db_pool_t *pool, const char *tenant, st_db_tx_fn fn, void *arg,
                    st_error_t *err) ST_MUST_CHECK;
/* Same with ST_DB_TX_* flags. */
int st_db_tenant_txf(st_db_pool_t *pool, const char *tenant, int flags, st_db_tx_fn fn,
                     void *arg, st_error_t *err) ST_MUST_CHECK;
/* Run fn in a transaction with no tenant set (RLS tables show nothing). */
int st_db_system_tx(st_db_pool_t *pool, st_db_tx_fn fn, void *arg, st_error_t *err)
    ST_MUST_CHECK;
int st_db_system_txf(st_db_pool_t *pool, int flags, st_db_tx_fn fn, void *arg,
                     st_error_t *err) ST_MUST_CHECK;

/* Run one parameterised statement (text parameters; a NULL entry is SQL NULL). On success
 * *out (if non-NULL) receives the result, which the caller frees with PQclear; on failure
 * *out is NULL and the error maps the SQLSTATE as described above. */
int st_db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
               PGresult **out, st_error_t *err) ST_MUST_CHECK;
/* Run a statement and report the rows it affected or returned (PQcmdTuples; 0 when the
 * command reports none). `affected` may be NULL. */
int st_db_exec_count(PGconn *c, const char *sql, int nparams, const char *const *params,
                     long long *affected, st_error_t *err) ST_MUST_CHECK;
/* Run a query returning one row with one integer column. ST_ENOENT if it returns no row,
 * ST_EDB if the value is NULL or not an integer. */
int st_db_query_int(PGconn *c, const char *sql, int nparams, const char *const *params,
                    long long *out, st_error_t *err) ST_MUST_CHECK;
/* Check a result from any libpq call: 0 for COMMAND_OK/TUPLES_OK, else the mapped code
 * with a message "<what>: SQLSTATE xxxxx: <server message>". Does not free res. */
int st_db_check(PGconn *c, const PGresult *res, const char *what, st_error_t *err);

/* ---- Migrations (db_migrate.c) ----
 * Files `NNNN_name.sql` in a directory are applied in numeric order, each in its own
 * transaction, while holding a Postgres advisory lock (concurrent runners wait). Each
 * applied file is recorded in `schema_migrations` (version, name, sha256 checksum,
 * applied_at). The runner refuses, naming the file: a changed checksum of an applied file,
 * a missing applied file, a duplicate number, a badly named *.sql file, and a gap: a
 * pending file numbered below an applied one (it would run out of order here but in order
 * on a fresh database). Numbers may skip: ranges are reserved per module (0001-0009 the
 * platform's, 0010+ later issues'). Re-running with nothing new is a no-op. Files must not contain BEGIN/COMMIT.
 * The role in conninfo must be a superuser or have BYPASSRLS and CREATEROLE: it owns the
 * tables and the SECURITY DEFINER functions that read across tenants. */
typedef struct st_db_migration_s {
  int version;
  const char *file;       /* file name, e.g. "0001_base.sql" */
  const char *checksum;   /* hex SHA-256 of the file */
  const char *applied_at; /* NULL while pending */
  int changed;            /* applied with a different checksum */
} st_db_migration_t;

typedef void (*st_db_migration_cb)(const st_db_migration_t *m, void *arg);

#define ST_DB_MIGRATION_MAX_BYTES ((size_t)16 << 20)

/* Apply pending migrations; cb (may be NULL) is told of each one just applied. */
int st_db_migrate(const char *conninfo, const char *dir, st_db_migration_cb cb, void *arg,
                  st_error_t *err) ST_MUST_CHECK;
/* Report every migration file and whether it is applied, without changing the database
 * (no schema_migrations table means all pending). Refuses the same directory problems as
 * st_db_migrate but reports changed checksums through `changed` instead of failing. */
int st_db_migrate_status(const char *conninfo, const char *dir, st_db_migration_cb cb,
                         void *arg, st_error_t *err) ST_MUST_CHECK;

#endif
