/* db_exec.c: running parameterised statements and turning libpq results into ST_E* codes.
 *
 * The SQLSTATE decides the code: 40001/40P01 (serialization failure, deadlock) and a lost
 * connection (class 08, 57P01-57P03 shutdowns, or PQstatus bad) are ST_EDBRETRY, which
 * st_db_tenant_tx retries; 23505 is ST_ECONFLICT; 42501 (privilege, row-level security)
 * is ST_EPERM; anything else is ST_EDB. Messages carry the SQLSTATE and the server's
 * primary message, never the parameters (they may hold tenant data).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static int map_sqlstate(PGconn *c, const char *state) {
  if (!state || !*state)
    return (c && PQstatus(c) != CONNECTION_OK) ? ST_EDBRETRY : ST_EDB;
  if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
    return ST_EDBRETRY;
  if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
      !strcmp(state, "57P03"))
    return ST_EDBRETRY;
  if (!strcmp(state, "23505"))
    return ST_ECONFLICT;
  if (!strcmp(state, "42501"))
    return ST_EPERM;
  if (c && PQstatus(c) != CONNECTION_OK)
    return ST_EDBRETRY;
  return ST_EDB;
}

int st_db_check(PGconn *c, const PGresult *res, const char *what, st_error_t *err) {
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  const char *state, *msg;

  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
    return 0;
  state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  if (!msg || !*msg)
    msg = c ? PQerrorMessage(c) : "no result";
  return st_fail(err, map_sqlstate(c, state), "%s: SQLSTATE %s: %.*s", what,
                 state && *state ? state : "none", (int)strcspn(msg, "\n"), msg);
}

/* The statement's first line, shortened, names it in error messages. */
static void describe(const char *sql, char *out, size_t cap) {
  size_t n;
  sql += strspn(sql, " \t\n");
  n = strcspn(sql, "\n");
  if (n >= cap)
    n = cap - 1;
  memcpy(out, sql, n);
  out[n] = '\0';
}

int st_db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
               PGresult **out, st_error_t *err) {
  PGresult *res;
  char what[64];
  int rc;

  if (out)
    *out = NULL;
  if (!c || !sql || nparams < 0 || (nparams > 0 && !params))
    return st_fail(err, ST_EINVAL, "st_db_exec: bad argument");
  res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
  describe(sql, what, sizeof(what));
  rc = st_db_check(c, res, what, err);
  if (rc || !out)
    PQclear(res);
  else
    *out = res;
  return rc;
}

int st_db_exec_count(PGconn *c, const char *sql, int nparams, const char *const *params,
                     long long *affected, st_error_t *err) {
  PGresult *res = NULL;
  int rc = st_db_exec(c, sql, nparams, params, &res, err);

  if (!rc && affected) {
    const char *n = PQcmdTuples(res);
    *affected = *n ? strtoll(n, NULL, 10) : 0;
  }
  PQclear(res);
  return rc;
}

int st_db_query_int(PGconn *c, const char *sql, int nparams, const char *const *params,
                    long long *out, st_error_t *err) {
  PGresult *res = NULL;
  char what[64];
  const char *v;
  char *end;
  int rc;

  if ((rc = st_db_exec(c, sql, nparams, params, &res, err)))
    goto done;
  describe(sql, what, sizeof(what));
  if (PQntuples(res) < 1 || PQnfields(res) < 1) {
    rc = st_fail(err, ST_ENOENT, "%s: returned no row", what);
    goto done;
  }
  if (PQgetisnull(res, 0, 0)) {
    rc = st_fail(err, ST_EDB, "%s: returned NULL, expected an integer", what);
    goto done;
  }
  v = PQgetvalue(res, 0, 0);
  errno = 0;
  *out = strtoll(v, &end, 10);
  if (errno || end == v || *end)
    rc = st_fail(err, ST_EDB, "%s: returned \"%.32s\", expected an integer", what, v);
done:
  PQclear(res);
  return rc;
}
