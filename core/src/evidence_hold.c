/* evidence_hold.c: legal holds and the retention pruner.
 *
 * A hold is recorded first (rows + custody, one tenant transaction), then the store's legal
 * hold is set on each object, so a crash in between leaves the database holding more than
 * the store, never less; placing the same case again repeats the store calls. Releasing
 * clears the store hold only on objects no other active case holds.
 *
 * The pruner lists candidates as stella_maint through the table's retention policy (sealed,
 * retention passed, no active hold: stella_evidence_held), and for each one, in order:
 * the signed disposition record and evidence.pruned custody record (tenant transaction),
 * the object's deletion (the store refuses a held or retained object: then the bundle is
 * skipped and the rows stay), the row's deletion as stella_maint (audited by trigger). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evidence_internal.h"
#include "stella/jcs.h"
#include "stella/mem.h"

typedef struct hold_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const char *case_id;
  const json_t *spec;
  int release;
  json_t *keys; /* object keys touched */
} hold_t;

static int held_items(PGconn *c, hold_t *h, const char *sql, st_error_t *err) {
  PGresult *res = NULL;
  const char *p[1] = {h->case_id};
  int rc;
  json_decref(h->keys);
  if (!(h->keys = json_array()))
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  if ((rc = st_db_exec(c, sql, 1, p, &res, err)))
    return rc;
  for (int i = 0; i < PQntuples(res) && !rc; i++) {
    json_t *o = json_pack("{s:s, s:s?, s:s?}", "bundle_id", PQgetvalue(res, i, 0), "key",
                          PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1), "sha256",
                          PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2));
    if (!o || json_array_append_new(h->keys, o))
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
  }
  PQclear(res);
  return rc;
}

static int place_tx(PGconn *c, void *arg, st_error_t *err) {
  hold_t *h = arg;
  const char *reason = json_string_value(json_object_get(h->spec, "reason"));
  json_t *ids = json_object_get(h->spec, "bundle_ids"), *filter = json_object_get(h->spec, "filter");
  st_buf_t ftext = ST_BUF_INIT;
  long long n;
  size_t i;
  json_t *v;
  int rc;

  if (filter && (rc = st_jcs_encode(filter, &ftext, err)))
    goto done;
  {
    const char *p[5] = {h->who->tenant, h->case_id, reason, filter ? ftext.data : NULL,
                        h->who->actor};
    if ((rc = st_db_exec(c,
                         "INSERT INTO evidence_holds (tenant_id, case_id, reason, filter,"
                         " placed_by) VALUES ($1, $2, $3, $4::jsonb, $5)"
                         " ON CONFLICT (tenant_id, case_id) DO UPDATE SET reason = $3,"
                         " placed_by = $5, placed_at = now(), released_by = NULL,"
                         " released_at = NULL",
                         5, p, NULL, err)))
      goto done;
  }
  json_array_foreach(ids, i, v) {
    const char *p[3] = {h->who->tenant, h->case_id, json_string_value(v)};
    if ((rc = st_db_exec_count(c,
                               "INSERT INTO evidence_hold_items (tenant_id, case_id, bundle_id)"
                               " SELECT $1, $2, bundle_id FROM evidence_bundles"
                               " WHERE bundle_id = $3 ON CONFLICT DO NOTHING",
                               3, p, &n, err)))
      goto done;
    if (!n) { /* absent, or held by this case already */
      long long known = 0;
      if ((rc = st_db_query_int(c, "SELECT count(*) FROM evidence_bundles WHERE bundle_id = $3"
                                   " AND $1::text IS NOT NULL AND $2::text IS NOT NULL",
                                3, p, &known, err)))
        goto done;
      if (!known) {
        rc = st_fail(err, ST_ENOENT, "bundle_ids[%zu]: no such bundle", i);
        goto done;
      }
    }
  }
  if (filter) {
    const char *p[5] = {h->who->tenant, h->case_id,
                        json_string_value(json_object_get(filter, "kind")),
                        json_string_value(json_object_get(filter, "created_after")),
                        json_string_value(json_object_get(filter, "created_before"))};
    if ((rc = st_db_exec(c,
                         "INSERT INTO evidence_hold_items (tenant_id, case_id, bundle_id)"
                         " SELECT $1, $2, bundle_id FROM evidence_bundles"
                         " WHERE ($3::text IS NULL OR kind = $3)"
                         " AND ($4::timestamptz IS NULL OR created >= $4::timestamptz)"
                         " AND ($5::timestamptz IS NULL OR created < $5::timestamptz)"
                         " ON CONFLICT DO NOTHING",
                         5, p, NULL, err)))
      goto done;
  }
  if ((rc = held_items(c, h,
                       "SELECT b.bundle_id, b.object_key, b.object_sha256 FROM"
                       " evidence_hold_items i JOIN evidence_bundles b USING (tenant_id,"
                       " bundle_id) WHERE i.case_id = $1 ORDER BY b.bundle_id",
                       err)))
    goto done;
  json_array_foreach(h->keys, i, v) {
    json_t *d = json_pack("{s:s, s:s}", "case_id", h->case_id, "reason", reason);
    rc = d ? st_evidence_custody_append(
                 h->ev, c, h->who, "evidence.held",
                 json_string_value(json_object_get(v, "bundle_id")),
                 json_string_value(json_object_get(v, "sha256")), d, err)
           : st_fail(err, ST_ENOMEM, "evidence: out of memory");
    json_decref(d);
    if (rc)
      goto done;
  }
  if (h->who->in_tx)
    rc = h->who->in_tx(c, h->who->in_tx_arg, err);
done:
  st_buf_release(&ftext);
  return rc;
}

static int release_tx(PGconn *c, void *arg, st_error_t *err) {
  hold_t *h = arg;
  const char *p[2] = {h->case_id, h->who->actor};
  long long n = 0;
  size_t i;
  json_t *v;
  int rc;

  if ((rc = st_db_exec_count(c,
                             "UPDATE evidence_holds SET released_by = $2, released_at = now()"
                             " WHERE case_id = $1 AND released_at IS NULL",
                             2, p, &n, err)))
    return rc;
  if (!n)
    return st_fail(err, ST_ENOENT, "evidence: no active hold %s", h->case_id);
  /* objects no other active case holds lose their store hold */
  if ((rc = held_items(c, h,
                       "SELECT b.bundle_id, b.object_key, b.object_sha256 FROM"
                       " evidence_hold_items i JOIN evidence_bundles b USING (tenant_id,"
                       " bundle_id) WHERE i.case_id = $1 AND NOT"
                       " stella_evidence_held(b.tenant_id, b.bundle_id) ORDER BY b.bundle_id",
                       err)))
    return rc;
  json_array_foreach(h->keys, i, v) {
    json_t *d = json_pack("{s:s}", "case_id", h->case_id);
    rc = d ? st_evidence_custody_append(
                 h->ev, c, h->who, "evidence.released",
                 json_string_value(json_object_get(v, "bundle_id")),
                 json_string_value(json_object_get(v, "sha256")), d, err)
           : st_fail(err, ST_ENOMEM, "evidence: out of memory");
    json_decref(d);
    if (rc)
      return rc;
  }
  return h->who->in_tx ? h->who->in_tx(c, h->who->in_tx_arg, err) : 0;
}

static int store_holds(st_evidence_t *ev, hold_t *h, int on, st_error_t *err) {
  size_t i;
  json_t *v;
  json_array_foreach(h->keys, i, v) {
    const char *key = json_string_value(json_object_get(v, "key"));
    int rc;
    /* an object already gone (pruned before a later hold) has nothing to hold */
    if (key && (rc = st_objstore_set_legal_hold(ev->store, h->who->tenant, key, on, err)) &&
        rc != ST_ENOENT)
      return rc;
  }
  return 0;
}

static int spec_check(const json_t *spec, st_error_t *err) {
  const char *reason = json_string_value(json_object_get(spec, "reason"));
  json_t *ids = json_object_get(spec, "bundle_ids"), *f = json_object_get(spec, "filter");
  const char *k;
  size_t i;
  json_t *v;

  if (!json_is_object(spec))
    return st_fail(err, ST_EINVAL, "body: expected an object");
  json_object_foreach((json_t *)spec, k, v) {
    if (strcmp(k, "reason") && strcmp(k, "bundle_ids") && strcmp(k, "filter"))
      return st_fail(err, ST_EINVAL, "%.64s: unknown key", k);
  }
  if (!reason || !*reason || strlen(reason) > 1000)
    return st_fail(err, ST_EINVAL, "reason: want a string of 1..1000 bytes");
  if (!ids == !f)
    return st_fail(err, ST_EINVAL, "bundle_ids or filter: exactly one is required");
  if (ids) {
    if (!json_is_array(ids) || !json_array_size(ids) || json_array_size(ids) > 1000)
      return st_fail(err, ST_EINVAL, "bundle_ids: want 1..1000 ids");
    json_array_foreach(ids, i, v) {
      if (!st__evidence_id_ok(json_string_value(v), ST_EVIDENCE_ID_MAX))
        return st_fail(err, ST_EINVAL, "bundle_ids[%zu]: malformed id", i);
    }
  } else {
    if (!json_is_object(f))
      return st_fail(err, ST_EINVAL, "filter: expected an object");
    json_object_foreach(f, k, v) {
      if ((strcmp(k, "kind") && strcmp(k, "created_after") && strcmp(k, "created_before")) ||
          !json_is_string(v) || json_string_length(v) > 64)
        return st_fail(err, ST_EINVAL, "filter.%.64s: unknown key or not a short string", k);
    }
    if ((v = json_object_get(f, "kind")) && strcmp(json_string_value(v), "evaluation") &&
        strcmp(json_string_value(v), "job") && strcmp(json_string_value(v), "export"))
      return st_fail(err, ST_EINVAL, "filter.kind: want evaluation, job or export");
  }
  return 0;
}

int st_evidence_hold_place(st_evidence_t *ev, const st_evidence_who_t *who,
                           const char *case_id, const json_t *spec, json_t **out,
                           st_error_t *err) {
  hold_t h = {ev, who, case_id, spec, 0, NULL};
  int rc;
  if (out)
    *out = NULL;
  if (!st__evidence_id_ok(case_id, ST_EVIDENCE_CASE_MAX))
    return st_fail(err, ST_EINVAL, "case_id: want [A-Za-z0-9._:-]{1,128}");
  if ((rc = spec_check(spec, err)) ||
      (rc = st_db_tenant_tx(ev->db, who->tenant, place_tx, &h, err)) ||
      (rc = store_holds(ev, &h, 1, err)))
    goto done;
  if (out)
    rc = st_evidence_hold_get(ev, who->tenant, case_id, out, err);
done:
  json_decref(h.keys);
  return rc;
}

int st_evidence_hold_release(st_evidence_t *ev, const st_evidence_who_t *who,
                             const char *case_id, json_t **out, st_error_t *err) {
  hold_t h = {ev, who, case_id, NULL, 1, NULL};
  int rc;
  if (out)
    *out = NULL;
  if (!st__evidence_id_ok(case_id, ST_EVIDENCE_CASE_MAX))
    return st_fail(err, ST_ENOENT, "evidence: no such hold");
  if ((rc = st_db_tenant_tx(ev->db, who->tenant, release_tx, &h, err)) ||
      (rc = store_holds(ev, &h, 0, err)))
    goto done;
  if (out)
    rc = st_evidence_hold_get(ev, who->tenant, case_id, out, err);
done:
  json_decref(h.keys);
  return rc;
}

typedef struct hget_s {
  const char *case_id;
  json_t *out;
} hget_t;

static int hold_get_tx(PGconn *c, void *arg, st_error_t *err) {
  hget_t *g = arg;
  PGresult *r = NULL, *i = NULL;
  const char *p[1] = {g->case_id};
  json_t *ids = NULL, *filter = NULL;
  int rc;

  if ((rc = st_db_exec(c,
                       "SELECT reason, filter::text, placed_by,"
                       " to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                       " released_by,"
                       " to_char(released_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                       " FROM evidence_holds WHERE case_id = $1",
                       1, p, &r, err)))
    goto done;
  if (PQntuples(r) != 1) {
    rc = st_fail(err, ST_ENOENT, "evidence: no hold %s", g->case_id);
    goto done;
  }
  if ((rc = st_db_exec(c,
                       "SELECT bundle_id FROM evidence_hold_items WHERE case_id = $1"
                       " ORDER BY bundle_id",
                       1, p, &i, err)))
    goto done;
  rc = ST_ENOMEM;
  if (!(ids = json_array()))
    goto done;
  for (int k = 0; k < PQntuples(i); k++)
    if (json_array_append_new(ids, json_string(PQgetvalue(i, k, 0))))
      goto done;
  filter = PQgetisnull(r, 0, 1) ? json_null() : json_loads(PQgetvalue(r, 0, 1), 0, NULL);
  g->out = json_pack("{s:s, s:s, s:O?, s:s, s:s, s:s?, s:s?, s:b, s:O}", "case_id", g->case_id,
                     "reason", PQgetvalue(r, 0, 0), "filter", filter, "placed_by",
                     PQgetvalue(r, 0, 2), "placed_at", PQgetvalue(r, 0, 3), "released_by",
                     PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4), "released_at",
                     PQgetisnull(r, 0, 5) ? NULL : PQgetvalue(r, 0, 5), "active",
                     PQgetisnull(r, 0, 5), "bundle_ids", ids);
  rc = g->out ? 0 : ST_ENOMEM;
done:
  if (rc == ST_ENOMEM)
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
  json_decref(ids);
  json_decref(filter);
  if (r)
    PQclear(r);
  if (i)
    PQclear(i);
  return rc;
}

int st_evidence_hold_get(st_evidence_t *ev, const char *tenant, const char *case_id,
                         json_t **out, st_error_t *err) {
  hget_t g = {case_id, NULL};
  int rc;
  *out = NULL;
  if (!st__evidence_id_ok(case_id, ST_EVIDENCE_CASE_MAX))
    return st_fail(err, ST_ENOENT, "evidence: no such hold");
  if ((rc = st_db_tenant_txf(ev->db, tenant, ST_DB_TX_READ_ONLY, hold_get_tx, &g, err)))
    return rc;
  *out = g.out;
  return 0;
}
