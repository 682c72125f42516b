/* evidence_read.c: a bundle's description (GET /evidence/{id}) from its rows. */
#include <stdlib.h>
#include <string.h>

#include "evidence_internal.h"

typedef struct get_s {
  const char *bundle_id;
  json_t *out;
} get_t;

static json_t *col(PGresult *r, int c) {
  return PQgetisnull(r, 0, c) ? json_null() : json_string(PQgetvalue(r, 0, c));
}

static int get_tx(PGconn *c, void *arg, st_error_t *err) {
  get_t *g = arg;
  PGresult *r = NULL, *a = NULL, *h = NULL;
  const char *p[1] = {g->bundle_id};
  json_t *arts = NULL, *holds = NULL;
  int rc;

  json_decref(g->out);
  g->out = NULL;
  if ((rc = st_db_exec(c,
                       "SELECT bundle_id, kind, status, merkle_root, manifest_sha256,"
                       " object_key, object_sha256, object_size, keyid,"
                       " to_char(tsa_gen_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                       " tsa_serial,"
                       " to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                       " to_char(sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                       " to_char(retention_until AT TIME ZONE 'UTC',"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), job_id, run_id, actor, tenant_id"
                       " FROM evidence_bundles WHERE bundle_id = $1",
                       1, p, &r, err)))
    goto done;
  if (PQntuples(r) != 1) {
    rc = st_fail(err, ST_ENOENT, "evidence: no bundle %s", g->bundle_id);
    goto done;
  }
  if ((rc = st_db_exec(c,
                       "SELECT path, sha256, size, media_type FROM evidence_artifacts"
                       " WHERE bundle_id = $1 ORDER BY path",
                       1, p, &a, err)) ||
      (rc = st_db_exec(c,
                       "SELECT h.case_id FROM evidence_hold_items i JOIN evidence_holds h"
                       " USING (tenant_id, case_id) WHERE i.bundle_id = $1 AND"
                       " h.released_at IS NULL ORDER BY h.case_id",
                       1, p, &h, err)))
    goto done;
  rc = ST_ENOMEM;
  if (!(arts = json_array()) || !(holds = json_array()))
    goto fail;
  for (int i = 0; i < PQntuples(a); i++)
    if (json_array_append_new(arts, json_pack("{s:s, s:s, s:I, s:s}", "path",
                                              PQgetvalue(a, i, 0), "sha256", PQgetvalue(a, i, 1),
                                              "size",
                                              (json_int_t)strtoll(PQgetvalue(a, i, 2), NULL, 10),
                                              "mediaType", PQgetvalue(a, i, 3))))
      goto fail;
  for (int i = 0; i < PQntuples(h); i++)
    if (json_array_append_new(holds, json_string(PQgetvalue(h, i, 0))))
      goto fail;
  g->out = json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:{s:o, s:o, s:o}, s:{s:o}, s:{s:o, s:o}, s:o, s:o,"
      " s:o, s:{s:o, s:o, s:o}, s:O, s:O}",
      "id", col(r, 0), "tenant", col(r, 17), "kind", col(r, 1), "status", col(r, 2),
      "merkle_root", col(r, 3), "manifest_sha256", col(r, 4), "object", "key", col(r, 5),
      "sha256", col(r, 6), "size",
      PQgetisnull(r, 0, 7) ? json_null()
                           : json_integer((json_int_t)strtoll(PQgetvalue(r, 0, 7), NULL, 10)),
      "signature", "keyid", col(r, 8), "timestamp", "gen_time", col(r, 9), "serial", col(r, 10),
      "created", col(r, 11), "sealed_at", col(r, 12), "retention_until", col(r, 13), "run",
      "job_id", col(r, 14), "run_id", col(r, 15), "actor", col(r, 16), "artifacts", arts,
      "holds", holds);
  if (g->out)
    rc = 0;
fail:
  if (rc)
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
done:
  json_decref(arts);
  json_decref(holds);
  if (r)
    PQclear(r);
  if (a)
    PQclear(a);
  if (h)
    PQclear(h);
  return rc;
}

int st_evidence_get(st_evidence_t *ev, PGconn *c, const char *tenant, const char *bundle_id,
                    json_t **out, st_error_t *err) {
  get_t g = {bundle_id, NULL};
  int rc;
  *out = NULL;
  if (!st__evidence_id_ok(bundle_id, ST_EVIDENCE_ID_MAX))
    return st_fail(err, ST_ENOENT, "evidence: no such bundle");
  rc = c ? get_tx(c, &g, err)
         : st_db_tenant_txf(ev->db, tenant, ST_DB_TX_READ_ONLY, get_tx, &g, err);
  if (rc) {
    json_decref(g.out);
    return rc;
  }
  *out = g.out;
  return 0;
}
