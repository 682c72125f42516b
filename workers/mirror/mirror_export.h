/* mirror_export.h: the mirror export adapter (job type `mirror`): mirror:full and
 * mirror:delta profiles run through the export run machinery (workers/export, adapter.h)
 * into sealed mirror bundles (mirror.h), stored like every export (export.tgz with its
 * detached signature files) plus mirror.state.ndjson, the tree's state (docs/mirror.md,
 * "Export runs").
 *
 * Ownership: the environment is borrowed. Thread rules: blocks on Postgres, the object
 * store and disk; worker threads only. Errors: ST_ECANCELED (the run was cancelled, or
 * env->cancel set), ST_ECONFLICT (the ledger changed since the run was planned),
 * ST_ENOENT (a delta with no base run), ST_EINVAL (a redaction on a mirror profile; a base
 * run that is not a mirror), ST_EUNSUPPORTED (not a mirror profile), adapter.h's, mirror.h's
 * and bundle.h's codes. */
#ifndef STELLA_WORKERS_MIRROR_EXPORT_H
#define STELLA_WORKERS_MIRROR_EXPORT_H

#include "export/adapter.h"
#include "mirror.h"

/* Build run_id of tenant (plan or check the recorded plan, read, seal, store) and move it
 * through planning, running, built and distributed. ttl: TUF expiry (its ttl_* fields;
 * NULL = mirror.h's defaults). base_run (NULL = the tenant's newest distributed mirror run
 * of the profile's project) is a delta's base. A run already built is only distributed; a
 * distributed or failed one is left as it is. */
int st_mirror_export_run(const st_export_env_t *env, const st_mirror_opts_t *ttl,
                         const char *tenant, const char *run_id, const char *base_run,
                         st_error_t *err) ST_MUST_CHECK;

#endif
