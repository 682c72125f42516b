/* evidence_maint.c: the periodic custody checkpoint. Every-64-records checkpoints leave
 * the last few records of a quiet tenant unsigned, so a truncated tail plus a rewritten
 * head row would pass; the scheduled maintenance (queue/evidence_maint.c, with the pruner)
 * signs each tenant's current head once it has grown past its last checkpoint.
 * stella_evidence_checkpoint_due() (SECURITY DEFINER, 0051) names the tenants; each is
 * then checkpointed in its own tenant transaction, reading its head under the row lock
 * custody appends take, so the signed (seq, hash) is exactly the head. */
#include <stdlib.h>
#include <string.h>

#include "evidence_internal.h"
#include "stella/mem.h"

typedef struct due_s {
  json_t *tenants;
} due_t;

static int due_tx(PGconn *c, void *arg, st_error_t *err) {
  due_t *d = arg;
  PGresult *res = NULL;
  int rc;
  json_array_clear(d->tenants);
  if ((rc = st_db_exec(c, "SELECT t FROM stella_evidence_checkpoint_due() t", 0, NULL, &res,
                       err)))
    return rc;
  for (int i = 0; i < PQntuples(res) && !rc; i++)
    if (json_array_append_new(d->tenants, json_string(PQgetvalue(res, i, 0))))
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
  PQclear(res);
  return rc;
}

typedef struct cp_s {
  st_evidence_t *ev;
  const char *tenant;
  int made;
} cp_t;

static int cp_tx(PGconn *c, void *arg, st_error_t *err) {
  cp_t *x = arg;
  PGresult *res = NULL;
  long long n = 0;
  int rc;
  x->made = 0;
  if ((rc = st_db_exec(c, "SELECT seq, hash FROM evidence_custody_head FOR UPDATE", 0, NULL,
                       &res, err)))
    return rc;
  if (PQntuples(res) == 1) {
    const char *p[1] = {PQgetvalue(res, 0, 0)};
    if (!(rc = st_db_query_int(c,
                               "SELECT count(*) FROM evidence_custody_checkpoints"
                               " WHERE seq >= $1::bigint",
                               1, p, &n, err)) &&
        !n && strtoll(p[0], NULL, 10) > 0) {
      rc = st__evidence_checkpoint(x->ev, c, x->tenant, strtoll(p[0], NULL, 10),
                                   PQgetvalue(res, 0, 1), err);
      x->made = !rc;
    }
  }
  PQclear(res);
  return rc;
}

int st_evidence_checkpoint_all(st_evidence_t *ev, long long *made, st_error_t *err) {
  due_t d = {json_array()};
  size_t i;
  json_t *t;
  int rc;

  *made = 0;
  if (!d.tenants)
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  if (!ev->signer) {
    rc = st_fail(err, ST_ECONFIG, "signing_key: checkpoints need the locker's signer");
    goto done;
  }
  if ((rc = st_db_system_txf(ev->db, ST_DB_TX_READ_ONLY, due_tx, &d, err)))
    goto done;
  json_array_foreach(d.tenants, i, t) {
    cp_t x = {ev, json_string_value(t), 0};
    if ((rc = st_db_tenant_tx(ev->db, x.tenant, cp_tx, &x, err)))
      goto done;
    *made += x.made;
  }
done:
  json_decref(d.tenants);
  return rc;
}
