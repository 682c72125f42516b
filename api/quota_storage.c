/* quota_storage.c: per-tenant storage quotas (tenant_quotas, 0042). A charge is one
 * conditional UPDATE in the caller's tenant transaction: it adds the bytes only when the
 * result stays within the limit, so concurrent uploads of one tenant serialise on the
 * row and never overshoot together, and a refusal leaves the caller free to roll back
 * whatever else its transaction wrote. */
#include <stdio.h>
#include <stdlib.h>

#include "api_internal.h"

#define LL_MAX_U 9223372036854775807ULL

int st_api_storage_charge(PGconn *c, const char *tenant, unsigned long long bytes,
                          unsigned long long default_max, st_error_t *err) {
  char nbytes[24], def[24];
  const char *p[3] = {tenant, nbytes, def};
  PGresult *res = NULL;
  long long used, max;
  int rc;

  if (bytes > LL_MAX_U)
    return st_fail(err, ST_ETOOBIG, "storage quota: %llu bytes is beyond any quota", bytes);
  snprintf(nbytes, sizeof(nbytes), "%llu", bytes);
  snprintf(def, sizeof(def), "%llu", default_max > LL_MAX_U ? LL_MAX_U : default_max);
  if ((rc = st_db_exec(c,
                       "INSERT INTO tenant_quotas (tenant_id) VALUES ($1)"
                       " ON CONFLICT (tenant_id) DO NOTHING",
                       1, p, NULL, err)))
    return rc;
  /* lock the row, then decide: the limit is read under the same lock as the usage */
  if ((rc = st_db_exec(c,
                       "SELECT storage_bytes_used,"
                       " coalesce(storage_bytes_max, NULLIF($2::bigint, 0), -1)"
                       " FROM tenant_quotas WHERE tenant_id = $1 FOR UPDATE",
                       2, (const char *const[]){tenant, def}, &res, err)))
    return rc;
  if (PQntuples(res) != 1) {
    rc = st_fail(err, ST_EDB, "storage quota: no row for tenant %s", tenant);
    goto done;
  }
  used = atoll(PQgetvalue(res, 0, 0));
  max = atoll(PQgetvalue(res, 0, 1));
  if (max >= 0 && bytes > (unsigned long long)max) {
    rc = st_fail(err, ST_ETOOBIG, "storage quota: %llu bytes exceed the quota of %lld", bytes,
                 max);
    goto done;
  }
  if (max >= 0 && bytes > (unsigned long long)(max - used)) {
    rc = st_fail(err, ST_EQUOTA, "storage quota: %llu bytes do not fit (%lld of %lld used)",
                 bytes, used, max);
    goto done;
  }
  if (used > 0 && bytes > LL_MAX_U - (unsigned long long)used) {
    rc = st_fail(err, ST_ETOOBIG, "storage quota: usage would overflow");
    goto done;
  }
  rc = st_db_exec(c,
                  "UPDATE tenant_quotas SET storage_bytes_used = storage_bytes_used + $2::bigint,"
                  " updated_at = now() WHERE tenant_id = $1",
                  2, p, NULL, err);
done:
  PQclear(res);
  return rc;
}

int st_api_storage_credit(PGconn *c, const char *tenant, unsigned long long bytes,
                          st_error_t *err) {
  char nbytes[24];
  const char *p[2] = {tenant, nbytes};
  snprintf(nbytes, sizeof(nbytes), "%llu", bytes > LL_MAX_U ? LL_MAX_U : bytes);
  return st_db_exec(c,
                    "UPDATE tenant_quotas SET storage_bytes_used ="
                    " greatest(storage_bytes_used - $2::bigint, 0), updated_at = now()"
                    " WHERE tenant_id = $1",
                    2, p, NULL, err);
}
