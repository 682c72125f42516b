/* oci_dist.h: the OCI distributor's steps (oci_push.c, oci_record.c), driven by the
 * `oci_distribute` descriptor (oci_worker.c). Internal to workers/oci. */
#ifndef STELLA_WORKERS_OCI_DIST_H
#define STELLA_WORKERS_OCI_DIST_H

#include <jansson.h>
#include <stdatomic.h>

#include "stella/buf.h"
#include "stella/config.h"
#include "stella/objstore.h"
#include "worker.h"
#include "stella/db.h"
#include "stella/oci.h"
#include "stella/oci_registry.h"

#define ST_OCI_MT_BUNDLE "application/vnd.stella.bundle.v1+tar+gzip"
#define ST_OCI_MT_DSSE "application/vnd.dsse.envelope.v1+json"

/* What one target received. */
typedef struct st__oci_pushed_s {
  char digest[ST_OCI_DIGEST_LEN + 1];   /* the pushed manifest (or the object's sha256:) */
  char referrer[ST_OCI_DIGEST_LEN + 1]; /* the DSSE referrer manifest, "" when none */
  st_oci_stats_t stats;
} st__oci_pushed_t;

/* A source made ready to push: a layout directory (a bundle wrapped as an artifact with
 * its DSSE envelope as a referrer, or a given layout / unpacked oci-archive). */
typedef struct st__oci_src_s {
  st_oci_dir_t *dir;
  st_oci_desc_t root;     /* the artifact or image */
  st_oci_desc_t referrer; /* the DSSE envelope artifact (bundles); zeroed otherwise */
  char *tmp;              /* scratch directory to remove, or NULL */
  char file_sha256[65];   /* the source file's SHA-256 (bundle or archive), "" for a dir */
} st__oci_src_t;

/* Prepare path: kind "bundle" (a sealed .tgz) or "layout" (a directory or oci-archive;
 * ref names its index.json entry, NULL = the only one). tmp_root: where scratch goes. */
int st__oci_src_open(st__oci_src_t *s, const char *kind, const char *path, const char *ref,
                     const char *tmp_root, st_error_t *err);
void st__oci_src_close(st__oci_src_t *s);

/* Push the prepared source to repo (tag NULL = by digest), then its referrer. */
int st__oci_src_push(st_oci_client_t *c, const st__oci_src_t *s, const char *repo,
                     const char *tag, st__oci_pushed_t *out, st_error_t *err);

/* Record one target's outcome in export_distributions (upsert keyed by run and target;
 * attempts counts only pushes that changed something) and, when pushed, the
 * `export.distributed` outbox event `export:<run>:distributed:<16 hex of the target's
 * SHA-256>` (a retry inserts nothing new). error NULL = pushed. */
int st__oci_record(st_db_pool_t *db, const char *tenant, const char *run_id,
                   const char *target, const st__oci_pushed_t *p, long long retain_days,
                   const char *error, st_error_t *err);

/* Verify the sealed bundle at path against oci_trusted_key (a PEM public key), else the
 * public key of signing_key; neither set: ST_ECONFIG. ST_EVERIFY naming the failed check. */
int st__oci_verify_bundle(const st_config_t *cfg, const char *path, st_error_t *err);

/* Fetch the artifact of export run run_id (built or distributed) from the object store
 * (*store opened from ctx->cfg when NULL) into a new scratch directory *dir (the caller
 * removes it and frees both strings); *path = the .tgz. ST_EVERIFY when its SHA-256 is not
 * the run's, ST_ECONFLICT when the run has nothing built. */
int st__oci_run_fetch(st_job_ctx_t *ctx, st_objstore_t **store, const char *tenant,
                      const char *run_id, char **dir, char **path, st_error_t *err);

#endif
