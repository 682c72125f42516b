/* adapter.h: what every export adapter (export_json, trivy) shares, so each only builds
 * its payload (docs/export-center.md, "JSON adapters" and docs/trivy.md):
 *   - the environment a run gets (store, signer, TSA, scratch root, cancel flag);
 *   - a private scratch directory and its removal;
 *   - beside the sealed export.tgz: export.tgz.dsse.json (DSSE over an in-toto Statement
 *     whose subject is the .tgz, predicate https://stella.dev/export/v1) and export.tgz.sig
 *     (the raw signature over the .tgz's 32-byte SHA-256);
 *   - storing those (and extra files) under tenants/<t>/projects/<p>/exports/<run>/ while
 *     the run is still running, then running -> built (a run cancelled meanwhile gets its
 *     objects removed), and built -> distributed with the objstore target;
 *   - the job descriptor side: payload validation ({"run_id"} plus the plan payload's
 *     keys), the job type of a profile kind, and st_export_job, which opens the object
 *     store and signer the configuration names and marks a run failed as export_json's
 *     worker always did (permanent failure, last transient attempt, timeout).
 * Ownership: everything borrowed; st_export_tmpdir's string is the caller's (st_free).
 * Thread rules: blocks on Postgres, disk and the store: worker threads only. Errors:
 * export.h's, ST_ECANCELED (cancelled while storing), objstore.h's, keys.h's. */
#ifndef STELLA_WORKERS_EXPORT_ADAPTER_H
#define STELLA_WORKERS_EXPORT_ADAPTER_H

#include <stdatomic.h>
#include <stdint.h>

#include "export/export.h"
#include "stella/bundle.h"
#include "stella/keys.h"
#include "stella/objstore.h"
#include "stella/tsa.h"
#include "worker.h"

typedef struct st_export_env_s {
  st_db_pool_t *db;
  st_objstore_t *store;
  st_signer_t *signer;
  const st_tsa_opts_t *tsa; /* NULL = no timestamp */
  const char *tmp_dir;      /* where the private temporary directory is made */
  atomic_int *cancel;       /* non-zero = stop (may be NULL) */
  /* called between documents (may be NULL) */
  void (*progress)(void *ud, double fraction, const char *note);
  void *ud;
  unsigned poll_every;      /* documents between checks of the run's state; 0 = 1000 */
  const char *redis_url;    /* where st_export_handoff queues; NULL = cannot queue */
  size_t max_envelope;      /* envelope size cap (0 = none) */
} st_export_env_t;

/* What was built, to sign and store. extra: more file names in dir stored beside the
 * bundle under the same prefix (NULL-terminated; may be NULL). */
typedef struct st_export_out_s {
  const st_export_env_t *env;
  const char *tenant, *run_id;
  const st_export_profile_t *prof;
  const char *plan_digest;
  const char *dir;          /* holds export.tgz */
  const st_bundle_sealed_t *sealed;
  const json_t *counts;
  const char *const *extra;
} st_export_out_t;

/* Whether ledger item `it` of source tenant `tenant` is plan input *next (then *next
 * advances); ST_ECONFLICT ("the ledger changed since the run was planned") otherwise. */
int st_export_plan_expect(const st_export_plan_t *plan, size_t *next, const char *tenant,
                          const st_ledger_item_t *it, st_error_t *err) ST_MUST_CHECK;
/* Between documents: the cancel flag on every call; every env->poll_every calls (0 =
 * 1000; *since counts them) the run's state (not running: ST_ECANCELED) and its progress
 * 0.95 * done / total. */
int st_export_poll(const st_export_env_t *env, const char *tenant, const char *run_id,
                   unsigned *since, size_t done, size_t total, st_error_t *err) ST_MUST_CHECK;

/* Scratch directories are named <prefix><pid>-<random> so that the directories of a
 * worker process that died (kill -9, OOM) can be told from live ones. */
#define ST_EXPORT_TMP_PREFIX "stella-export-"
#define ST_EXPORT_OCI_TMP_PREFIX "stella-ocid-"

/* A new private directory under root (NULL = /tmp) into *out. */
int st_export_tmpdir(const char *root, char **out, st_error_t *err) ST_MUST_CHECK;
/* Remove dir and everything below it (no links followed). NULL is a no-op. */
void st_export_rmtree(const char *dir);
/* Remove the scratch directories under root (NULL = /tmp) of processes that no longer
 * exist; the count removed. Run at the start of every export and distribution job, so a
 * reclaimed job (or the next one) cleans what a killed worker left. */
size_t st_export_sweep(const char *root);
/* Write the detached signature files, store everything, and record the run built. */
int st_export_publish(const st_export_out_t *o, st_error_t *err) ST_MUST_CHECK;
/* The run lifecycle around an adapter's build: read the run; cancelled or failed -> the
 * objects under the run's prefix (a killed worker's partial store) removed, then
 * cancelled -> ST_ECANCELED;
 * failed or distributed -> 0 (nothing to do); not yet built -> *prof from the run's
 * settings, then build(ud) (plan, build, seal, st_export_publish); then distribute. */
int st_export_drive(const st_export_env_t *env, const char *tenant, const char *run_id,
                    st_export_profile_t *prof, int (*build)(void *ud, st_error_t *err),
                    void *ud, st_error_t *err) ST_MUST_CHECK;
/* Evidence (st_export_evidence), the hand-off to the OCI distributor (st_export_handoff),
 * then built -> distributed with
 * "objstore:<backend>:<artifact key>" (run: st_export_run_get's). */
int st_export_distribute(const st_export_env_t *env, const char *tenant, const char *run_id,
                         const json_t *run, st_error_t *err) ST_MUST_CHECK;

/* Seal the built run's manifest and distribution transcript (target: what
 * st_export_distribute records) into the Evidence Locker and record the evidence bundle on
 * the run (locker.c). ST_EVERIFY when the stored bundle does not match the run. */
int st_export_evidence(const st_export_env_t *env, const char *tenant, const char *run_id,
                       const json_t *run, const char *target, st_error_t *err) ST_MUST_CHECK;

/* When the run's profile (its settings) has distribution targets: queue the
 * oci_distribute job oci-<run_id> {run_id, targets, retain_days?} (handoff.c). No targets:
 * nothing. ST_ECONFIG without env->redis_url. */
int st_export_handoff(const st_export_env_t *env, const char *tenant, const char *run_id,
                      const json_t *run, st_error_t *err) ST_MUST_CHECK;

/* The job type that builds runs of a profile kind: trivy_db, trivy_java_db, mirror,
 * export_json. */
const char *st_export_job_type(const char *kind);
/* An export job payload: {"run_id": uuid} plus st_export_plan_payload's other keys. */
int st_export_payload_validate(const json_t *payload, st_error_t *err) ST_MUST_CHECK;
/* Run an export job with fn (export_json's or a Trivy adapter's): see the top. */
int st_export_job(st_job_t *job, st_job_ctx_t *ctx, int max_attempts,
                  int (*fn)(const st_export_env_t *env, const char *tenant, const char *run_id,
                            st_error_t *err),
                  st_error_t *err) ST_MUST_CHECK;
/* The same for a run id the caller resolved (a mirror job naming a profile) and an adapter
 * taking ud. */
int st_export_job_run(st_job_t *job, st_job_ctx_t *ctx, int max_attempts, const char *run_id,
                      int (*fn)(const st_export_env_t *env, const char *tenant,
                                const char *run_id, void *ud, st_error_t *err),
                      void *ud, st_error_t *err) ST_MUST_CHECK;

#endif
