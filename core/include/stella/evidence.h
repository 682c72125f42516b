/* evidence.h: the Evidence Locker (DESIGN.md §3-§5; schemas/postgres/0050_evidence.sql):
 * evidence snapshots sealed as bundles of kind `evidence`, their rows, legal holds,
 * retention and the hash-chained custody log.
 *
 * A locker (st_evidence_t) joins a Postgres pool, an object store and (for sealing and
 * checkpoints) a signer and an optional TSA. Everything tenant-scoped runs through
 * st_db_tenant_tx; bundles are stored under `tenants/<tenant>/evidence/<id>.tgz`, a key
 * derived from the bundle id, so a re-run of an interrupted snapshot finds the object a
 * crashed run stored and adopts it instead of leaving an orphan (with a TSA the bytes of
 * two seals differ, so the first stored one wins).
 *
 * Snapshot payload (schemas/json/job-snapshot.schema.json):
 *   {"bundle_id"?, "kind": "evaluation"|"job"|"export", "created": "YYYY-MM-DDTHH:MM:SSZ",
 *    "run": {"run_id", "actor", "started"?, "finished"?},
 *    "inputs": [{"path", "sha256"} | {"path", "json"}], "outputs": [...same...],
 *    "environment": {"<name>": "sha256:<hex>" | "<version text>"}}
 * Stored digests name objects the tenant uploaded (content-addressed keys). The bundle
 * holds payload/inputs/<path>, payload/outputs/<path> and payload/environment.json; its
 * metadata carries kind, run and environment. Same payload, key and TSA answer => same
 * bytes; the row is upserted, so a re-run yields one bundle and one set of rows.
 *
 * Custody: st_evidence_custody_append (inside the caller's tenant transaction) appends a
 * record chained to the tenant's previous one and the matching outbox event (type =
 * the event name, payload with bundle digest, actor, request id); every
 * ST_EVIDENCE_CHECKPOINT_EVERY records a signed checkpoint is stored.
 *
 * Ownership: st_evidence_new borrows pool, store and signer (they must outlive the
 * locker); st_evidence_open opens and owns its own from configuration. JSON results are
 * new references the caller decrefs. Thread rules: a locker may be shared by threads;
 * every call blocks (Postgres, disk, network): worker threads only, never the loop.
 * Errors: ST_EINVAL (payload or argument; the message names the field), ST_ENOENT (no
 * such bundle/case for this tenant, or an input digest not stored), ST_EPERM (held or
 * retained; sealed rows), ST_ECONFLICT, ST_EDB*, ST_EIO, ST_ENET, ST_ECRYPTO, ST_ENOMEM.
 */
#ifndef STELLA_EVIDENCE_H
#define STELLA_EVIDENCE_H

#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "stella/buf.h"
#include "stella/config.h"
#include "stella/db.h"
#include "stella/err.h"
#include "stella/keys.h"
#include "stella/objstore.h"

#define ST_EVIDENCE_ID_MAX 128
#define ST_EVIDENCE_CASE_MAX 128
#define ST_EVIDENCE_MAX_ARTIFACTS 10000      /* inputs + outputs per snapshot */
#define ST_EVIDENCE_INLINE_MAX ((size_t)1 << 20) /* canonical bytes of one inline JSON */
#define ST_EVIDENCE_CHECKPOINT_EVERY 64
#define ST_EVIDENCE_ZERO_HASH \
  "0000000000000000000000000000000000000000000000000000000000000000"

typedef struct st_evidence_s st_evidence_t;

typedef struct st_evidence_opts_s {
  st_db_pool_t *db;       /* required */
  st_objstore_t *store;   /* required */
  st_signer_t *signer;    /* NULL: no sealing, no checkpoints (read-only uses) */
  const char *tsa_url;    /* NULL: bundles are not timestamped */
  const char *tsa_ca_file; /* PEM roots for the TSA facts (genTime, serial) */
  const char *tmp_dir;    /* NULL: $TMPDIR or /tmp */
  int retention_days;     /* default window when evidence_retention has no row */
  /* Per-kind defaults "kind=days[,kind=days]" (evidence_retention_kinds), below the
   * tenant's evidence_retention rows and above retention_days; NULL: none. */
  const char *retention_kinds;
  int incident_extension_days; /* incident mode's default extension; 0: 90 */
  /* Captured (redacted) as run/debug/config.json of snapshots sealed during an incident;
   * borrowed for the call only. NULL: the debug config lists nothing. */
  const st_config_t *debug_config;
} st_evidence_opts_t;

/* Who acts: strings borrowed; request_id may be NULL. in_tx (may be NULL) runs at the end
 * of every tenant transaction a hold call makes, so a caller's own rows (the API's audit
 * row) commit with the effect; it may run more than once (retried transactions). */
typedef struct st_evidence_who_s {
  const char *tenant;
  const char *actor;
  const char *request_id;
  int (*in_tx)(PGconn *c, void *arg, st_error_t *err);
  void *in_tx_arg;
} st_evidence_who_t;

int st_evidence_new(st_evidence_t **out, const st_evidence_opts_t *opts, st_error_t *err)
    ST_MUST_CHECK;
/* From configuration: pg_url, the object store keys, signing_key (optional), tsa_url,
 * tsa_ca, evidence_retention_days, evidence_retention_kinds,
 * evidence_incident_extension_days, api_tmp_dir (and the whole configuration, redacted,
 * for incident debug artifacts). */
int st_evidence_open(st_evidence_t **out, const st_config_t *cfg, st_error_t *err)
    ST_MUST_CHECK;
void st_evidence_free(st_evidence_t *ev);
st_objstore_t *st_evidence_store(const st_evidence_t *ev);
st_db_pool_t *st_evidence_db(const st_evidence_t *ev);
/* The signer (NULL when none) and the TSA roots (NULL when none; *len set). */
st_signer_t *st_evidence_signer(const st_evidence_t *ev);
const char *st_evidence_tsa_ca(const st_evidence_t *ev, size_t *len);

/* ---- snapshots (evidence_snapshot.c) ---- */

/* Record an artifact uploaded (content-addressed) in c; *is_new = 1 when the tenant did not
 * have it (the caller charges its quota then). */
int st_evidence_upload_record(PGconn *c, const st_evidence_who_t *who, const char *sha256_hex,
                              uint64_t size, int *is_new, st_error_t *err) ST_MUST_CHECK;
/* Check a snapshot payload (the job's validate and POST /evidence/snapshot). */
int st_evidence_payload_check(const json_t *payload, st_error_t *err) ST_MUST_CHECK;
/* The bundle id a job gets when its payload names none: "ev-" + 40 hex of
 * SHA-256("stella.evidence/v1\n" tenant "\n" seed "\n"). */
int st_evidence_derive_id(const char *tenant, const char *seed, st_buf_t *out) ST_MUST_CHECK;
/* Record a pending bundle (POST /evidence/snapshot) in the caller's tenant transaction with
 * the evidence.created custody record; a second call for the same id changes nothing and
 * sets *created = 0. */
int st_evidence_pending(st_evidence_t *ev, PGconn *c, const st_evidence_who_t *who,
                        const char *bundle_id, const json_t *payload, const char *job_id,
                        int *created, st_error_t *err) ST_MUST_CHECK;
/* Build, seal, store and record the bundle (idempotent; see the top comment). out
 * (may be NULL) gets the bundle's description as st_evidence_get gives it. */
int st_evidence_snapshot(st_evidence_t *ev, const st_evidence_who_t *who,
                         const char *bundle_id, const json_t *payload, const char *job_id,
                         json_t **out, st_error_t *err) ST_MUST_CHECK;

/* ---- reads ---- */

/* The bundle's description: id, kind, status, merkle_root, manifest_sha256, object
 * {key, sha256, size}, signature {keyid}, timestamp {gen_time, serial}, created,
 * sealed_at, retention_until, artifacts, holds. ST_ENOENT when absent. When c is NULL a
 * read-only transaction of who->tenant is used. */
int st_evidence_get(st_evidence_t *ev, PGconn *c, const char *tenant, const char *bundle_id,
                    json_t **out, st_error_t *err) ST_MUST_CHECK;

/* ---- facts read back from a sealed bundle file (evidence_facts.c) ---- */

typedef struct st_evidence_facts_s {
  st_buf_t id, tenant, kind, created, merkle_root, manifest_sha256, keyid;
  st_buf_t tsa_gen_time, tsa_serial; /* "" when not timestamped or not checkable */
  st_buf_t object_sha256;
  uint64_t object_size;
  json_t *manifest; /* the parsed manifest.json */
} st_evidence_facts_t;

void st_evidence_facts_init(st_evidence_facts_t *f);
void st_evidence_facts_release(st_evidence_facts_t *f);
/* Read manifest.json, manifest.dsse.json and manifest.tsr of the bundle at path.
 * tsa_ca_pem (may be NULL) anchors the token for genTime and serial. ST_EVERIFY when the
 * bundle lacks them or they do not parse. */
int st_evidence_facts_read(const char *path, const char *tsa_ca_pem, size_t tsa_ca_len,
                           st_evidence_facts_t *f, st_error_t *err) ST_MUST_CHECK;

/* ---- custody (evidence_custody.c) ---- */

/* Append a custody record and its outbox event in c (the caller's transaction of
 * who->tenant). event: "evidence.<verb>"; bundle_id/bundle_sha256/detail may be NULL. */
int st_evidence_custody_append(st_evidence_t *ev, PGconn *c, const st_evidence_who_t *who,
                               const char *event, const char *bundle_id,
                               const char *bundle_sha256, const json_t *detail,
                               st_error_t *err) ST_MUST_CHECK;
/* Check the tenant's chain: seq 1..head contiguous, each prev_hash the hash before, each
 * hash recomputed from its record, the head row matching, every checkpoint's hash the
 * record's and its signature valid under `key` (NULL: the locker's signer key).
 * *records gets the count. ST_EVERIFY naming the first bad seq. */
int st_evidence_custody_verify(st_evidence_t *ev, const char *tenant, const st_pubkey_t *key,
                               long long *records, st_error_t *err) ST_MUST_CHECK;
/* The custody records of one bundle, as a JSON array of {seq, record, prev_hash, hash}. */
int st_evidence_custody_of(PGconn *c, const char *bundle_id, json_t **out, st_error_t *err)
    ST_MUST_CHECK;

/* ---- holds and retention (evidence_hold.c) ---- */

/* Place (or extend) hold case_id: spec {"reason", "bundle_ids": [...]} or
 * {"reason", "filter": {"kind"?, "created_after"?, "created_before"?}}. Marks the objects
 * held in the store, writes evidence.held custody records. out: the case as
 * st_evidence_hold_get gives it. ST_ENOENT for a named bundle this tenant lacks. */
int st_evidence_hold_place(st_evidence_t *ev, const st_evidence_who_t *who,
                           const char *case_id, const json_t *spec, json_t **out,
                           st_error_t *err) ST_MUST_CHECK;
/* Release an active case; objects no other active case holds lose their store hold. */
int st_evidence_hold_release(st_evidence_t *ev, const st_evidence_who_t *who,
                             const char *case_id, json_t **out, st_error_t *err)
    ST_MUST_CHECK;
/* {case_id, reason, filter, placed_by, placed_at, released_by, released_at, active,
 * bundle_ids}. ST_ENOENT when the tenant has no such case. */
int st_evidence_hold_get(st_evidence_t *ev, const char *tenant, const char *case_id,
                         json_t **out, st_error_t *err) ST_MUST_CHECK;

typedef struct st_evidence_prune_stats_s {
  long long pruned;  /* bundles deleted (rows and objects) */
  long long skipped; /* expired but refused by the store (held or retained there) */
  int busy;          /* another pruner held the lock: this run did nothing */
} st_evidence_prune_stats_t;

/* The pruner: as stella_maint (maint_url) list sealed bundles past retention that no
 * active hold covers (the table's retention policy), and for each: a signed disposition
 * record and an evidence.pruned custody record (tenant transaction), the object deleted
 * from the store, then the row deleted as stella_maint (audited by trigger). */
int st_evidence_prune(st_evidence_t *ev, const char *maint_url,
                      st_evidence_prune_stats_t *stats, st_error_t *err) ST_MUST_CHECK;

/* Retention windows in days: the tenant's evidence_retention rows (kind, then '*'), else
 * the configured per-kind default, else the default. kind NULL or "*": the tenant row
 * for '*'. days < 0 in set removes the row. */
int st_evidence_retention_set(st_evidence_t *ev, const st_evidence_who_t *who,
                              const char *kind, int days, st_error_t *err) ST_MUST_CHECK;
/* {"default", "kinds": {kind: days from config}, "tenant": {kind|"*": days},
 * "effective": {kind: days}, "incident_extension_days"} for who->tenant. */
int st_evidence_retention_get(st_evidence_t *ev, const char *tenant, json_t **out,
                              st_error_t *err) ST_MUST_CHECK;

/* ---- incident mode (evidence_incident.c) ---- */

/* Activate incident mode for who->tenant (reason 1..1000 bytes; extension_days < 0: the
 * configured default) with an incident.activated custody record and event (the outbox
 * relay also copies incident.* events to stella:notify), in one transaction that also
 * runs who->in_tx. Already active: nothing changes and *created = 0. out (may be NULL):
 * the status as st_evidence_incident_status gives it. While active, the pruner keeps the
 * tenant's bundles extension_days past their windows, and snapshots are sealed with that
 * longer window and with debug artifacts (run/debug/job-log.json, config.json,
 * environment.json). */
int st_evidence_incident_on(st_evidence_t *ev, const st_evidence_who_t *who,
                            const char *reason, int extension_days, int *created,
                            json_t **out, st_error_t *err) ST_MUST_CHECK;
/* Deactivate (incident.deactivated); ST_ENOENT when none is active. */
int st_evidence_incident_off(st_evidence_t *ev, const st_evidence_who_t *who, json_t **out,
                             st_error_t *err) ST_MUST_CHECK;
/* {"tenant", "active", "incident": {id, reason, extension_days, activated_by,
 * activated_at, deactivated_by, deactivated_at} | null (the latest one)}. */
int st_evidence_incident_status(st_evidence_t *ev, const char *tenant, json_t **out,
                                st_error_t *err) ST_MUST_CHECK;

/* ---- disaster recovery and maintenance (evidence_reindex.c, evidence_maint.c) ---- */

typedef struct st_evidence_reindex_stats_s {
  long long objects;  /* bundle objects found under tenants/<tenant>/evidence/ */
  long long restored; /* rows rebuilt */
  long long present;  /* already had their rows */
  long long refused;  /* failed verification or named another bundle: left alone */
  long long held;     /* restored objects under a store legal hold (cases are not in bundles) */
} st_evidence_reindex_stats_t;

/* Rebuild who->tenant's bundle and artifact rows from the sealed bundles in the object
 * store (the store is the source of truth): each object is verified against key (NULL:
 * the locker's signer key) and its own manifest, then recorded sealed with an
 * evidence.reindexed custody record. Rows present stay as they are. job_id is not in a
 * bundle (NULL); sealed_at is the timestamp's genTime (else now); retention_until is the
 * object's store retention (else now + the window). */
int st_evidence_reindex(st_evidence_t *ev, const st_evidence_who_t *who,
                        const st_pubkey_t *key, st_evidence_reindex_stats_t *stats,
                        st_error_t *err) ST_MUST_CHECK;

/* Sign a checkpoint of every tenant's custody head that has none yet (the periodic
 * checkpoint: a truncated tail is then caught even between every-64 checkpoints).
 * *made gets the count. */
int st_evidence_checkpoint_all(st_evidence_t *ev, long long *made, st_error_t *err)
    ST_MUST_CHECK;

#endif
