/* evidence_prune.c: the retention pruner (see evidence_hold.c's top comment for the
 * order of its steps). Candidates come from a stella_maint session, whose only view of
 * evidence_bundles is the retention policy of 0050_evidence.sql: sealed, expired, not
 * held. The store is asked to delete first, so a held or retained object (the store's own
 * lock, which may outlive the row's window) stops the bundle's pruning before anything is
 * recorded; a deleted object whose later steps failed is found again by the next run (its
 * deletion then answers not-found, which counts as done). One run at a time: a session
 * advisory lock on the maintenance connection; a second concurrent run does nothing and
 * says so (stats->busy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evidence_internal.h"
#include "stella/jcs.h"
#include "stella/mem.h"

typedef struct disp_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const char *bundle_id, *sha256, *kind, *retention_until;
} disp_t;

static int disposition_tx(PGconn *c, void *arg, st_error_t *err) {
  disp_t *d = arg;
  st_buf_t text = ST_BUF_INIT, sig = ST_BUF_INIT, keyid = ST_BUF_INIT;
  char at[21];
  json_t *rec = NULL;
  int rc;

  st__evidence_utc((int64_t)time(NULL), at);
  rec = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s, s:s}", "schema",
                  "stella.evidence-disposition/v1", "tenant", d->who->tenant, "bundle_id",
                  d->bundle_id, "bundle_sha256", d->sha256, "kind", d->kind, "rule",
                  "retention expired, no active hold", "retention_until", d->retention_until,
                  "deleted_at", at);
  if (!rec) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if ((rc = st_jcs_encode(rec, &text, err)) ||
      (rc = st__evidence_sign(d->ev, text.data, text.len, &sig, &keyid, err)))
    goto done;
  {
    const char *p[5] = {d->who->tenant, d->bundle_id, text.data, keyid.data, sig.data};
    if ((rc = st_db_exec(c,
                         "INSERT INTO evidence_dispositions (tenant_id, bundle_id, record_text,"
                         " keyid, signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                         5, p, NULL, err)))
      goto done;
  }
  rc = st_evidence_custody_append(d->ev, c, d->who, "evidence.pruned", d->bundle_id, d->sha256,
                                  rec, err);
done:
  json_decref(rec);
  st_buf_release(&text);
  st_buf_release(&sig);
  st_buf_release(&keyid);
  return rc;
}

static int maint_exec(PGconn *m, const char *sql, int n, const char *const *p, PGresult **out,
                      st_error_t *err) {
  PGresult *r = PQexecParams(m, sql, n, NULL, p, NULL, NULL, 0);
  int rc = st_db_check(m, r, "evidence prune", err);
  if (rc || !out)
    PQclear(r);
  else
    *out = r;
  return rc;
}

int st_evidence_prune(st_evidence_t *ev, const char *maint_url,
                      st_evidence_prune_stats_t *stats, st_error_t *err) {
  PGconn *m = NULL;
  PGresult *res = NULL;
  int rc;

  memset(stats, 0, sizeof(*stats));
  if (!maint_url)
    return st_fail(err, ST_ECONFIG, "pg_maint_url: the pruner needs the maintenance role");
  m = PQconnectdb(maint_url);
  if (PQstatus(m) != CONNECTION_OK) {
    rc = st_fail(err, ST_EDB, "evidence prune: cannot connect as the maintenance role: %s",
                 PQerrorMessage(m));
    goto done;
  }
  /* one pruner at a time across processes: the lock ends with the session */
  if ((rc = maint_exec(m, "SELECT pg_try_advisory_lock(hashtext('stella.evidence.prune'))", 0,
                       NULL, &res, err)))
    goto done;
  if (strcmp(PQgetvalue(res, 0, 0), "t")) {
    stats->busy = 1;
    goto done;
  }
  PQclear(res);
  res = NULL;
  if ((rc = maint_exec(m,
                       "SELECT tenant_id, bundle_id, kind, object_key, object_sha256,"
                       " to_char(retention_until AT TIME ZONE 'UTC',"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM evidence_bundles"
                       " ORDER BY tenant_id, bundle_id",
                       0, NULL, &res, err)))
    goto done;
  for (int i = 0; i < PQntuples(res); i++) {
    const char *tenant = PQgetvalue(res, i, 0), *id = PQgetvalue(res, i, 1);
    st_evidence_who_t who = {tenant, "stella_maint", NULL, NULL, NULL};
    disp_t d = {ev, &who, id, PQgetvalue(res, i, 4), PQgetvalue(res, i, 2),
                PQgetvalue(res, i, 5)};
    const char *p[2] = {tenant, id};
    st_error_t e2 = ST_ERROR_INIT;

    rc = st_objstore_delete(ev->store, tenant, PQgetvalue(res, i, 3), &e2);
    if (rc == ST_EPERM) {
      stats->skipped++;
      continue;
    }
    if (rc && rc != ST_ENOENT) {
      rc = st_fail(err, rc, "%s", st_error_text(&e2));
      goto done;
    }
    if ((rc = st_db_tenant_tx(ev->db, tenant, disposition_tx, &d, err)) ||
        (rc = maint_exec(m,
                         "DELETE FROM evidence_bundles WHERE tenant_id = $1 AND bundle_id = $2",
                         2, p, NULL, err)))
      goto done;
    stats->pruned++;
  }
  rc = 0;
done:
  if (res)
    PQclear(res);
  PQfinish(m);
  return rc;
}
