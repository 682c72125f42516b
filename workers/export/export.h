/* export.h: Export Center core for the API, the CLI and the adapters: profiles (CRUD over
 * export_profiles), filter validation, the planner (a profile + the ledger -> an ordered,
 * digested list of inputs), and runs (create, record the plan into export_inputs).
 *
 * Filters (a profile's `filters` object; every error names its field, `filters.<field>`):
 *   sources      ["advisories", "vex", "policy", "maven"] (default all but maven; "policy" =
 *                packs + results; what a profile kind reads: st_export_kind_sources)
 *   ecosystems   OSV ecosystem names (advisories only)
 *   severities   none|low|medium|high|critical (advisories only)
 *   modified_since, modified_until   RFC 3339, inclusive, since <= until
 *   ids          advisory ids or aliases / VEX vulnerabilities / policy result vulnerabilities
 *   sample       {"rate": (0, 1], "seed": "..."}: st_ledger_sample_keep on each item id
 * A filter that can select nothing by construction (ecosystems without advisories in
 * sources, empty sources) is refused at validation; a scope that selects no row at plan
 * time fails with ST_ENOENT.
 *
 * Plan order and digest: source tenants (the profile's own first, then source_tenants in
 * byte order), then kinds (advisory, vex, policy_pack, policy_result), then id in byte
 * order. digest = SHA-256 over one line per input, "<kind>\t<tenant>\t<id>\t<digest>\n"
 * (ids of policy results hold newlines: they are escaped as \n in the line). Same profile
 * and ledger state => same inputs and digest; other tenants' rows never enter it.
 *
 * Ownership: structs are caller-allocated; *_release frees their contents. Returned json_t
 * are new references. Thread rules: every function taking a pool blocks on Postgres
 * (worker threads only). Errors: ST_EINVAL (validation, naming the field), ST_ENOENT (no
 * such profile/run, or empty scope), ST_EEXIST (profile name taken), ST_ECONFLICT (a second
 * active run of a single-flight profile; a re-plan that differs from the recorded plan),
 * ST_EPERM (cross-tenant source without a grant: refused and audited), st_db.h's codes.
 */
#ifndef STELLA_WORKERS_EXPORT_H
#define STELLA_WORKERS_EXPORT_H

#include <jansson.h>

#include "stella/db.h"
#include "stella/err.h"
#include "stella/ledger.h"

/* A step run inside a mutation's transaction after the change (the API writes its audit
 * row there: same transaction as the effect); a failure rolls the change back. NULL = none.
 * The transaction may be retried (db.h), so fn may run more than once. */
typedef struct st_export_hook_s {
  int (*fn)(PGconn *c, void *arg, st_error_t *err);
  void *arg;
} st_export_hook_t;

/* ---- Profiles ---- */

typedef struct st_export_profile_s {
  char *name;            /* [A-Za-z0-9._-]{1,64} */
  char *project;         /* same; default "default" */
  char *kind;            /* json:raw|json:policy|mirror:full|mirror:delta|trivy:db|trivy:java-db */
  char *compression;     /* none|gzip|zstd; default gzip */
  char *schedule;        /* NULL = manual */
  int single_flight;     /* default 1 */
  json_t *filters;       /* object, validated */
  json_t *redaction;     /* array of top-level document field names kept; [] = all */
  json_t *source_tenants; /* array of other tenant ids; [] = own only */
  json_t *distribution;  /* {"targets": [...], "retain_days"?}: oci_distribute targets
                          * queued when a run is built; NULL = none */
  char *created_at, *updated_at; /* set when read from the database */
} st_export_profile_t;

void st_export_profile_init(st_export_profile_t *p);
void st_export_profile_release(st_export_profile_t *p);
/* Fill p from its JSON form {"name", "kind", "project"?, "filters"?, "redaction"?,
 * "compression"?, "single_flight"?, "schedule"?, "source_tenants"?, "distribution"?},
 * validating every field (unknown keys refused; distribution's targets and retain_days
 * by the oci_distribute payload rules). p must be initialised; it is released first. */
int st_export_profile_from_json(const json_t *j, st_export_profile_t *p, st_error_t *err)
    ST_MUST_CHECK;
/* The JSON form (with created_at/updated_at when set). */
int st_export_profile_to_json(const st_export_profile_t *p, json_t **out, st_error_t *err)
    ST_MUST_CHECK;

/* Insert (ST_EEXIST if the name is taken; source_tenants may not name `tenant`). */
int st_export_profile_create(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                             const st_export_hook_t *hook, st_error_t *err) ST_MUST_CHECK;
/* Read one (ST_ENOENT). out must be initialised. */
int st_export_profile_get(st_db_pool_t *pool, const char *tenant, const char *name,
                          st_export_profile_t *out, st_error_t *err) ST_MUST_CHECK;
/* All of the tenant's profiles as a JSON array ordered by name. */
int st_export_profile_list(st_db_pool_t *pool, const char *tenant, json_t **out,
                           st_error_t *err) ST_MUST_CHECK;
/* Delete (ST_ENOENT; ST_ECONFLICT while a run of it is active). */
int st_export_profile_delete(st_db_pool_t *pool, const char *tenant, const char *name,
                             const st_export_hook_t *hook, st_error_t *err) ST_MUST_CHECK;

/* ---- Filters ---- */

#define ST_EXPORT_SRC_ADVISORIES (1u << ST_LEDGER_ADVISORY)
#define ST_EXPORT_SRC_VEX (1u << ST_LEDGER_VEX)
#define ST_EXPORT_SRC_POLICY ((1u << ST_LEDGER_POLICY_PACK) | (1u << ST_LEDGER_POLICY_RESULT))
#define ST_EXPORT_SRC_MAVEN (1u << ST_LEDGER_MAVEN)

/* The ledger kinds a run of profile kind `kind` reads, given the filters' sources:
 * trivy:db reads advisories only, trivy:java-db the Maven index only (whatever sources
 * say), every other kind its sources without the Maven index. */
unsigned st_export_kind_sources(const char *kind, unsigned sources);

typedef struct st_export_filters_s {
  unsigned sources;        /* bits 1u << st_ledger_kind */
  st_ledger_scope_t scope; /* strings borrowed from the filters object given to parse */
  const char **strs;       /* owned storage behind scope's arrays */
} st_export_filters_t;

/* Validate filters (an object; NULL = {}) and compile it. The scope borrows strings from
 * `filters`, which must outlive out. */
int st_export_filters_parse(const json_t *filters, st_export_filters_t *out, st_error_t *err)
    ST_MUST_CHECK;
void st_export_filters_release(st_export_filters_t *f);

/* ---- Planner ---- */

typedef struct st_export_input_s {
  st_ledger_kind kind;
  const char *tenant; /* source tenant (points into the plan) */
  char *id;
  char digest[ST_SHA256_HEX_LEN + 1];
  long long grant_id; /* 0 for the plan's own tenant */
} st_export_input_t;

typedef struct st_export_plan_s {
  char tenant[ST_DB_TENANT_MAX + 1];
  json_t *profile;   /* the profile's JSON form as planned */
  json_t *grants;    /* [{source_tenant, grant_id, granted_by, reason}] */
  char **tenants;    /* source tenants in plan order (own first) */
  size_t ntenants;
  st_export_input_t *inputs;
  size_t n, cap;
  long long counts[ST_LEDGER_NKINDS];
  char digest[ST_SHA256_HEX_LEN + 1];
} st_export_plan_t;

/* Plan `profile` for `tenant`: read the ledger (the tenant's own, and each source tenant's
 * under a live grant) through st_ledger_iter and list the inputs. out is released first
 * when it holds a plan; zero it before the first use. */
int st_export_plan_build(st_db_pool_t *pool, const char *tenant,
                         const st_export_profile_t *profile, st_export_plan_t *out,
                         st_error_t *err) ST_MUST_CHECK;
/* {"schema": "stella.export-plan/v1", tenant, profile, plan_digest, counts {kind: n},
 * total, source_tenants, grants, inputs? [{kind, tenant, id, digest}]}. */
int st_export_plan_to_json(const st_export_plan_t *plan, int with_inputs, json_t **out,
                           st_error_t *err) ST_MUST_CHECK;
/* The export job payload for a run: {"run_id", "profile", "kind", "plan_digest",
 * "inputs": total}; the adapter reads the inputs from export_inputs. */
int st_export_plan_payload(const st_export_plan_t *plan, const char *run_id, json_t **out,
                           st_error_t *err) ST_MUST_CHECK;
void st_export_plan_release(st_export_plan_t *plan);

/* ---- Runs ---- */

#define ST_EXPORT_RUN_ID_LEN 36

/* Create a run in state `requested` for the profile (ST_ECONFLICT if single-flight and
 * one is active). idempotency_key may be NULL; a repeated key returns the first run. */
int st_export_run_create(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                         const char *idempotency_key, char run_id[ST_EXPORT_RUN_ID_LEN + 1],
                         st_error_t *err) ST_MUST_CHECK;
/* Record plan as run_id's inputs, plan_digest and provenance, and move it to `planning`.
 * Idempotent: recording the same plan again changes nothing; a different plan for a run
 * already planned is ST_ECONFLICT (the ledger changed since). */
int st_export_plan_record(st_db_pool_t *pool, const char *tenant, const char *run_id,
                          const st_export_plan_t *plan, st_error_t *err) ST_MUST_CHECK;

/* ---- Run lifecycle (run.c; events and outbox rows are written by 0033's triggers) ----
 * State and progress changes each get the run's next event sequence number and an
 * export_run_events row; requested/built/distributed/failed/cancelled also an outbox row
 * export.<state> with event_id "export:<run_id>:<state>". A change the state machine
 * refuses (a terminal run, cancelled -> built) is ST_ECONFLICT naming both states. */

#define ST_EXPORT_ACTIVE_DEFAULT 4

/* st_export_run_create, refusing with ST_ECONFLICT when the tenant already has
 * max_active (> 0) runs requested, planning or running (counted under a per-tenant
 * transaction lock, so concurrent creates cannot both pass). */
int st_export_run_start(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                        const char *idempotency_key, int max_active, const st_export_hook_t *hook,
                        char run_id[ST_EXPORT_RUN_ID_LEN + 1], st_error_t *err) ST_MUST_CHECK;
/* Move to `state` (running, failed, cancelled, distributed), with error text for failed.
 * Moving to the state it already has is a no-op (a re-run job). */
int st_export_run_set_state(st_db_pool_t *pool, const char *tenant, const char *run_id,
                            const char *state, const char *error, st_error_t *err) ST_MUST_CHECK;
/* Record progress in [0, 1] (rounded to 1/1000; an unchanged value writes nothing) with an
 * optional note, while the run is running. */
int st_export_run_progress(st_db_pool_t *pool, const char *tenant, const char *run_id,
                           double fraction, const char *note, st_error_t *err) ST_MUST_CHECK;

/* What an adapter built: the sealed bundle's identity and where it is stored. */
typedef struct st_export_artifact_s {
  const char *bundle_id, *manifest_digest; /* sha256 hex of manifest.json */
  const char *artifact_key, *manifest_key; /* object keys (the .tgz, its .dsse.json) */
  const char *sha256;                      /* of the .tgz */
  long long size;
  const json_t *counts;                    /* {type: n} */
} st_export_artifact_t;

/* running -> built with the artifact columns. ST_ECONFLICT when the run is no longer
 * running (cancelled meanwhile): the caller removes what it stored. */
int st_export_run_built(st_db_pool_t *pool, const char *tenant, const char *run_id,
                        const st_export_artifact_t *a, st_error_t *err) ST_MUST_CHECK;
/* Record the distribution target (pushed, with its digest) and move built -> distributed
 * in one transaction; a distributed run is left as is. */
int st_export_run_distributed(st_db_pool_t *pool, const char *tenant, const char *run_id,
                              const char *target, const char *digest, st_error_t *err)
    ST_MUST_CHECK;
/* Record, while the run is built, the export bundle's Merkle root and the Evidence Locker
 * bundle holding its manifest and transcript (id, object sha256, Merkle root, key); the
 * distributed event then carries them. Same values again: no-op. */
int st_export_run_evidence(st_db_pool_t *pool, const char *tenant, const char *run_id,
                           const char *merkle_root, const char *evidence_id,
                           const char *evidence_sha256, const char *evidence_merkle_root,
                           const char *evidence_key, st_error_t *err) ST_MUST_CHECK;
/* The run's state into state (>= 16 bytes). ST_ENOENT. */
int st_export_run_state(st_db_pool_t *pool, const char *tenant, const char *run_id,
                        char *state, size_t cap, st_error_t *err) ST_MUST_CHECK;
/* The run as JSON {run_id, profile, project, kind, state, progress, note, error,
 * plan_digest, input_count, counts, bundle_id, manifest_digest, merkle_root, evidence
 * {bundle_id, sha256, merkle_root, key}, artifact {key, sha256, size}, manifest_key, provenance, settings (the profile as planned), created_at, updated_at, started_at, finished_at,
 * last_event_id}. ST_ENOENT (also for a malformed id). */
int st_export_run_get(st_db_pool_t *pool, const char *tenant, const char *run_id, json_t **out,
                      st_error_t *err) ST_MUST_CHECK;
/* The newest runs first (at most limit, 1..500), optionally of one profile. */
int st_export_run_list(st_db_pool_t *pool, const char *tenant, const char *profile, int limit,
                       json_t **out, st_error_t *err) ST_MUST_CHECK;
/* Cancel a requested, planning or running run; ST_ECONFLICT naming the state otherwise. */
int st_export_run_cancel(st_db_pool_t *pool, const char *tenant, const char *run_id,
                         const st_export_hook_t *hook, st_error_t *err) ST_MUST_CHECK;
/* Events with seq > after, in order, at most max: [{seq, type, state, data}]; *terminal
 * (may be NULL) is set when the run is in a final state and nothing newer exists. */
int st_export_run_events(st_db_pool_t *pool, const char *tenant, const char *run_id,
                         long long after, int max, json_t **out, int *terminal,
                         st_error_t *err) ST_MUST_CHECK;
/* Replace a profile's settings (name kept; ST_ENOENT). */
int st_export_profile_update(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                             const st_export_hook_t *hook, st_error_t *err) ST_MUST_CHECK;
/* Whether s is a run id (a lower- or upper-case UUID). */
int st_export_run_id_valid(const char *s);

#endif
