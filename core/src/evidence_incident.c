/* evidence_incident.c: incident mode per tenant (0051_evidence_incident.sql) and the
 * tenant's retention windows (evidence_retention, 0050).
 *
 * Activation and deactivation are one tenant transaction each: the incident row, the
 * incident.activated|deactivated custody record (whose outbox event the relay publishes
 * to stella:events and, for incident.*, to stella:notify) and the caller's own rows
 * (who->in_tx: the API's audit row). The partial unique index on active incidents makes
 * a concurrent second activation a conflict, which the retried transaction then sees as
 * "already active". What incident mode changes elsewhere: the pruner's policy adds the
 * extension to every window while active (0051), and evidence_snapshot.c seals with the
 * longer window and the debug artifacts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evidence_internal.h"
#include "stella/mem.h"

#define REASON_MAX 1000

typedef struct inc_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const char *reason;
  int days, created;
  json_t *status;
} inc_t;

static int status_q(PGconn *c, const char *tenant, json_t **out, st_error_t *err) {
  PGresult *res = NULL;
  json_t *inc = NULL;
  int rc;

  *out = NULL;
  if ((rc = st_db_exec(c,
                       "SELECT incident_id, reason, extension_days, activated_by,"
                       " to_char(activated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                       " deactivated_by, to_char(deactivated_at AT TIME ZONE 'UTC',"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), deactivated_at IS NULL"
                       " FROM evidence_incidents ORDER BY deactivated_at IS NULL DESC,"
                       " incident_id DESC LIMIT 1",
                       0, NULL, &res, err)))
    return rc;
  if (PQntuples(res) == 1) {
    inc = json_pack("{s:I, s:s, s:i, s:s, s:s, s:s?, s:s?}", "id",
                    (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10), "reason",
                    PQgetvalue(res, 0, 1), "extension_days", atoi(PQgetvalue(res, 0, 2)),
                    "activated_by", PQgetvalue(res, 0, 3), "activated_at",
                    PQgetvalue(res, 0, 4), "deactivated_by",
                    PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5), "deactivated_at",
                    PQgetisnull(res, 0, 6) ? NULL : PQgetvalue(res, 0, 6));
    if (!inc)
      goto oom;
  }
  *out = json_pack("{s:s, s:b, s:o}", "tenant", tenant,
                   "active", PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 7), "t"),
                   "incident", inc ? inc : json_null());
  inc = NULL;
  if (!*out)
    goto oom;
  PQclear(res);
  return 0;
oom:
  json_decref(inc);
  PQclear(res);
  return st_fail(err, ST_ENOMEM, "evidence: out of memory");
}

/* The change's custody record (and outbox event) and the caller's own rows. */
static int record(PGconn *c, inc_t *x, const char *event, const json_t *detail,
                  st_error_t *err) {
  int rc;
  if (!detail)
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  if ((rc = st_evidence_custody_append(x->ev, c, x->who, event, NULL, NULL, detail, err)))
    return rc;
  return x->who->in_tx ? x->who->in_tx(c, x->who->in_tx_arg, err) : 0;
}

static int on_tx(PGconn *c, void *arg, st_error_t *err) {
  inc_t *x = arg;
  PGresult *res = NULL;
  char days[24];
  const char *p[4] = {x->who->tenant, x->reason, days,
                      x->who->actor ? x->who->actor : "unknown"};
  json_t *detail = NULL;
  int rc;

  x->created = 0;
  json_decref(x->status);
  x->status = NULL;
  snprintf(days, sizeof(days), "%d", x->days);
  if ((rc = st_db_exec(c,
                       "INSERT INTO evidence_incidents (tenant_id, reason, extension_days,"
                       " activated_by) VALUES ($1, $2, $3::int, $4)"
                       " ON CONFLICT (tenant_id) WHERE deactivated_at IS NULL DO NOTHING"
                       " RETURNING incident_id",
                       4, p, &res, err)))
    goto done;
  if (PQntuples(res) == 1) {
    x->created = 1;
    detail = json_pack("{s:I, s:s, s:i}", "incident_id",
                       (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10), "reason", x->reason,
                       "extension_days", x->days);
    if ((rc = record(c, x, "incident.activated", detail, err)))
      goto done;
  }
  rc = status_q(c, x->who->tenant, &x->status, err);
done:
  json_decref(detail);
  if (res)
    PQclear(res);
  return rc;
}

static int off_tx(PGconn *c, void *arg, st_error_t *err) {
  inc_t *x = arg;
  PGresult *res = NULL;
  const char *p[1] = {x->who->actor ? x->who->actor : "unknown"};
  json_t *detail = NULL;
  int rc;

  json_decref(x->status);
  x->status = NULL;
  if ((rc = st_db_exec(c,
                       "UPDATE evidence_incidents SET deactivated_by = $1, deactivated_at = now()"
                       " WHERE deactivated_at IS NULL RETURNING incident_id, reason",
                       1, p, &res, err)))
    goto done;
  if (PQntuples(res) != 1) {
    rc = st_fail(err, ST_ENOENT, "incident: %s has no active incident", x->who->tenant);
    goto done;
  }
  detail = json_pack("{s:I, s:s}", "incident_id",
                      (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10), "reason",
                      PQgetvalue(res, 0, 1));
  if (!(rc = record(c, x, "incident.deactivated", detail, err)))
    rc = status_q(c, x->who->tenant, &x->status, err);
done:
  json_decref(detail);
  if (res)
    PQclear(res);
  return rc;
}

static int finish(inc_t *x, int rc, json_t **out) {
  if (out && !rc) {
    *out = x->status;
    x->status = NULL;
  }
  json_decref(x->status);
  return rc;
}

int st_evidence_incident_on(st_evidence_t *ev, const st_evidence_who_t *who,
                            const char *reason, int extension_days, int *created,
                            json_t **out, st_error_t *err) {
  inc_t x = {ev, who, reason, extension_days < 0 ? ev->incident_extension_days : extension_days,
             0, NULL};
  int rc;
  if (out)
    *out = NULL;
  if (!reason || !*reason || strlen(reason) > REASON_MAX)
    return st_fail(err, ST_EINVAL, "reason: want 1..%d bytes", REASON_MAX);
  if (x.days > 36500)
    return st_fail(err, ST_EINVAL, "extension_days: want 0..36500");
  rc = st_db_tenant_tx(ev->db, who->tenant, on_tx, &x, err);
  if (created)
    *created = x.created;
  return finish(&x, rc, out);
}

int st_evidence_incident_off(st_evidence_t *ev, const st_evidence_who_t *who, json_t **out,
                             st_error_t *err) {
  inc_t x = {ev, who, NULL, 0, 0, NULL};
  if (out)
    *out = NULL;
  return finish(&x, st_db_tenant_tx(ev->db, who->tenant, off_tx, &x, err), out);
}

typedef struct rd_s {
  const char *tenant;
  json_t *out;
} rd_t;

static int status_tx(PGconn *c, void *arg, st_error_t *err) {
  rd_t *r = arg;
  json_decref(r->out);
  return status_q(c, r->tenant, &r->out, err);
}

int st_evidence_incident_status(st_evidence_t *ev, const char *tenant, json_t **out,
                                st_error_t *err) {
  rd_t r = {tenant, NULL};
  int rc = st_db_tenant_txf(ev->db, tenant, ST_DB_TX_READ_ONLY, status_tx, &r, err);
  *out = rc ? NULL : r.out;
  if (rc)
    json_decref(r.out);
  return rc;
}

/* ---- retention windows ---- */

typedef struct ret_s {
  const char *kind;
  int days;
} ret_t;

static int set_tx(PGconn *c, void *arg, st_error_t *err) {
  ret_t *r = arg;
  char days[24];
  const char *p[2] = {r->kind, days};
  snprintf(days, sizeof(days), "%d", r->days);
  if (r->days < 0)
    return st_db_exec(c, "DELETE FROM evidence_retention WHERE kind = $1", 1, p, NULL, err);
  return st_db_exec(c,
                    "INSERT INTO evidence_retention (tenant_id, kind, days)"
                    " VALUES (current_setting('stella.tenant'), $1, $2::int)"
                    " ON CONFLICT (tenant_id, kind) DO UPDATE SET days = $2::int",
                    2, p, NULL, err);
}

int st_evidence_retention_set(st_evidence_t *ev, const st_evidence_who_t *who,
                              const char *kind, int days, st_error_t *err) {
  ret_t r = {kind ? kind : "*", days};
  if (strcmp(r.kind, "*") && strcmp(r.kind, "evaluation") && strcmp(r.kind, "job") &&
      strcmp(r.kind, "export"))
    return st_fail(err, ST_EINVAL, "kind: want evaluation, job, export or *");
  if (days > 36500)
    return st_fail(err, ST_EINVAL, "days: want 0..36500");
  return st_db_tenant_tx(ev->db, who->tenant, set_tx, &r, err);
}

typedef struct rget_s {
  st_evidence_t *ev;
  json_t *out;
} rget_t;

static int get_tx(PGconn *c, void *arg, st_error_t *err) {
  static const char *const kinds[] = {"evaluation", "job", "export"};
  rget_t *g = arg;
  PGresult *res = NULL;
  json_t *conf = json_object(), *ten = json_object(), *eff = json_object();
  int rc;

  json_decref(g->out);
  g->out = NULL;
  if (!conf || !ten || !eff) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if ((rc = st_db_exec(c, "SELECT kind, days FROM evidence_retention ORDER BY kind", 0, NULL,
                       &res, err)))
    goto done;
  for (int i = 0; i < PQntuples(res); i++)
    if (json_object_set_new(ten, PQgetvalue(res, i, 0), json_integer(atoi(PQgetvalue(res, i, 1)))))
      goto oom;
  for (size_t k = 0; k < 3; k++) {
    json_t *t = json_object_get(ten, kinds[k]), *all = json_object_get(ten, "*");
    int d = st__evidence_kind_days(g->ev, kinds[k]);
    if ((g->ev->kind_days[k] >= 0 && json_object_set_new(conf, kinds[k], json_integer(d))) ||
        json_object_set_new(eff, kinds[k],
                            json_integer(t ? json_integer_value(t)
                                           : all ? json_integer_value(all) : d)))
      goto oom;
  }
  if (!(g->out = json_pack("{s:i, s:O, s:O, s:O, s:i}", "default", g->ev->retention_days,
                           "kinds", conf, "tenant", ten, "effective", eff,
                           "incident_extension_days", g->ev->incident_extension_days)))
    goto oom;
  goto done;
oom:
  rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
done:
  if (res)
    PQclear(res);
  json_decref(conf);
  json_decref(ten);
  json_decref(eff);
  return rc;
}

int st_evidence_retention_get(st_evidence_t *ev, const char *tenant, json_t **out,
                              st_error_t *err) {
  rget_t g = {ev, NULL};
  int rc = st_db_tenant_txf(ev->db, tenant, ST_DB_TX_READ_ONLY, get_tx, &g, err);
  *out = rc ? NULL : g.out;
  if (rc)
    json_decref(g.out);
  return rc;
}
