/* routes_export.h: the Export Center's routes (routes_export.c: profiles and runs;
 * routes_export_io.c: download, events, attestation, verify) and their shared state.
 *
 * The export core (profiles, planner, runs) lives in workers/export and the API links
 * stella_workers for it: one module owns the export tables' SQL, and the API needs the
 * workers' own payload validation anyway (POST /jobs does the same).
 *
 * State: the API's Postgres pool (borrowed), the object store and the trusted key (the public half of
 * signing_key) for POST /exports/{id}/verify. SSE streams are fed by one detached thread
 * each; st__export_routes_free stops and waits for them before freeing the pool. */
#ifndef STELLA_API_ROUTES_EXPORT_H
#define STELLA_API_ROUTES_EXPORT_H

#include <pthread.h>

#include "api.h"
#include "export/export.h"
#include "stella/keys.h"
#include "stella/objstore.h"

typedef struct st__export_api_s {
  st_db_pool_t *db;
  st_objstore_t *store;
  st_signer_t *signer; /* for its public key only; NULL when signing_key is unset */
  char *redis_url;
  size_t max_envelope;
  int max_active;
  char *tmp_dir;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int streams;  /* SSE feeder threads alive */
  int stopping;
} st__export_api_t;

/* Register the routes on the API's pool (borrowed; must outlive the state). */
int st__export_routes(st_api_t *api, const st_config_t *cfg, st_db_pool_t *db,
                      st__export_api_t **out, st_error_t *err) ST_MUST_CHECK;
/* After the SSE streams are closed: wait for the feeders, free everything. NULL ok. */
void st__export_routes_free(st__export_api_t *x);

/* routes_export_io.c */
int st__export_download(st_api_req_t *req, void *arg);
int st__export_events(st_api_req_t *req, void *arg);
int st__export_attestation(st_api_req_t *req, void *arg);
int st__export_verify(st_api_req_t *req, void *arg);

#endif
