/* bench_export.c: one json:raw export run of a tenant's whole ledger, in process (the
 * adapter without the queue): creates profile `bench-raw` if missing, starts a run,
 * builds, seals, signs and stores it. For tests/bench/bench_export.sh, which times it.
 * usage: bench_export TENANT SIGNING_KEY.pem DATA_DIR TMP_DIR  (pg_url from STELLA_PG_URL) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export_json/export_json.h"
#include "stella/mem.h"

int main(int argc, char **argv) {
  st_error_t err = ST_ERROR_INIT;
  st_db_pool_t *pool = NULL;
  st_objstore_t *store = NULL;
  st_signer_t *signer = NULL;
  st_export_profile_t p;
  json_t *j = NULL, *run = NULL;
  char run_id[ST_EXPORT_RUN_ID_LEN + 1];
  const char *url = getenv("STELLA_PG_URL");
  int rc = 1;

  st_export_profile_init(&p);
  if (argc != 5 || !url) {
    fprintf(stderr, "usage: STELLA_PG_URL=... bench_export TENANT KEY.pem DATA_DIR TMP_DIR\n");
    return 2;
  }
  if (st_db_pool_new(url, 2, &pool, &err) || st_objstore_fs_new(&store, argv[3], &err) ||
      st_signer_open(&signer, argv[2], &err))
    goto done;
  if (st_export_profile_get(pool, argv[1], "bench-raw", &p, &err)) {
    j = json_pack("{s:s, s:s}", "name", "bench-raw", "kind", "json:raw");
    if (st_export_profile_from_json(j, &p, &err) ||
        st_export_profile_create(pool, argv[1], &p, NULL, &err))
      goto done;
  }
  {
    st_export_json_env_t env = {pool, store, signer, NULL, argv[4], NULL, NULL, NULL, 0, NULL, 0};
    if (st_export_run_start(pool, argv[1], &p, NULL, 0, NULL, run_id, &err) ||
        st_export_json_run(&env, argv[1], run_id, &err) ||
        st_export_run_get(pool, argv[1], run_id, &run, &err))
      goto done;
  }
  printf("run %s: %s, %lld bytes\n", run_id,
         json_string_value(json_object_get(run, "state")),
         (long long)json_integer_value(
             json_object_get(json_object_get(run, "artifact"), "size")));
  rc = 0;
done:
  if (rc)
    fprintf(stderr, "bench_export: %s\n", st_error_text(&err));
  json_decref(j);
  json_decref(run);
  st_export_profile_release(&p);
  st_signer_free(signer);
  st_objstore_free(store);
  st_db_pool_free(pool);
  return rc;
}
