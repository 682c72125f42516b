/* oci_record.c: the distributor's export_distributions rows and `export.distributed`
 * outbox events (oci_dist.h), one tenant transaction per target so the row and its event
 * commit together. The event is a stella.event/v1 envelope shaped like the export run
 * trigger's (schemas/postgres/0033_export_runs.sql), with the pushed digest as evidence. */
#include <stdio.h>
#include <string.h>

#include "oci_dist.h"
#include "stella/sha256.h"

typedef struct rec_s {
  const char *const *p;
  int pushed;
} rec_t;

static int rec_tx(PGconn *c, void *arg, st_error_t *err) {
  const rec_t *r = arg;
  int rc = st_db_exec_count(
      c,
      "INSERT INTO export_distributions AS d (tenant_id, run_id, target, digest, state, "
      "attempts, retain_until, error) VALUES ($1, $2::uuid, $3, NULLIF($4, ''), "
      "$5::export_dist_state, 1, CASE WHEN $6::int > 0 THEN now() + make_interval(days => "
      "$6::int) END, $7) "
      "ON CONFLICT (tenant_id, run_id, target) DO UPDATE SET digest = "
      "COALESCE(EXCLUDED.digest, d.digest), state = EXCLUDED.state, error = EXCLUDED.error, "
      "retain_until = GREATEST(d.retain_until, EXCLUDED.retain_until), "
      "attempts = d.attempts + CASE WHEN d.state = 'pushed' AND EXCLUDED.state = 'pushed' "
      "AND d.digest IS NOT DISTINCT FROM EXCLUDED.digest THEN 0 ELSE 1 END",
      7, r->p, NULL, err);
  if (rc || !r->pushed)
    return rc;
  return st_db_exec_count(
      c,
      "INSERT INTO outbox (event_id, tenant_id, type, payload) SELECT $8::text, $1::text, "
      "'export.distributed', jsonb_strip_nulls(jsonb_build_object('schema', "
      "'stella.event/v1', 'event_id', $8::text, 'tenant', $1::text, 'type', "
      "'export.distributed', 'occurred_at', to_char(now() AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), 'subject', 'export/' || $2::text, 'payload', "
      "jsonb_build_object('run_id', $2::text, 'target', $3::text, 'digest', $4::text, "
      "'referrer', NULLIF($9::text, ''), 'retain_until', to_char(d.retain_until AT TIME ZONE "
      "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')), 'evidence', jsonb_build_array("
      "jsonb_build_object('digest', $4::text)))) FROM export_distributions d WHERE d.run_id = "
      "$2::uuid AND d.target = $3::text AND $5::text = 'pushed' AND $6::text <> '' AND "
      "$7::text IS NULL ON CONFLICT (tenant_id, event_id) DO NOTHING",
      9, r->p, NULL, err);
}

int st__oci_record(st_db_pool_t *db, const char *tenant, const char *run_id,
                   const char *target, const st__oci_pushed_t *p, long long retain_days,
                   const char *error, st_error_t *err) {
  uint8_t h[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1], days[24], evid[128];
  const char *params[9];
  rec_t r = {params, !error};

  if (st_sha256(target, strlen(target), h))
    return st_fail(err, ST_ENOMEM, "out of memory");
  st_sha256_hex(h, hex);
  snprintf(evid, sizeof(evid), "export:%.36s:distributed:%.16s", run_id, hex);
  snprintf(days, sizeof(days), "%lld", retain_days);
  params[0] = tenant;
  params[1] = run_id;
  params[2] = target;
  params[3] = p ? p->digest : "";
  params[4] = error ? "failed" : "pushed";
  params[5] = days;
  params[6] = error;
  params[7] = evid;
  params[8] = p ? p->referrer : "";
  return st_db_tenant_tx(db, tenant, rec_tx, &r, err);
}
