/* export_json.h: the JSON export adapters (job type `export_json`): json:raw and
 * json:policy runs of an export profile into a sealed bundle of kind `export`.
 *
 * Layout (docs/export-center.md, "JSON adapters"): one NDJSON file per document type
 * under payload/ (advisories, vex, policy_packs, policy_results for json:raw; findings
 * and policy_packs for json:policy), one line per document in plan order, each line the
 * RFC 8785 form of the (redacted) document; `.ndjson.gz` with gzip, `.ndjson.zst` with zstd. NDJSON per
 * type rather than a file per document: a bundle holds at most ST_BUNDLE_MAX_ENTRIES
 * entries (100,000 advisories would not fit) and each entry costs a tar header, a
 * manifest entry and a Merkle leaf. Redaction keeps only the profile's allowlisted
 * top-level fields of each document (all when the list is empty). The bundle's created
 * time is the latest `modified` among the exported documents, never the wall clock, so
 * the same ledger state and profile give byte-identical bundles.
 *
 * Beside the bundle (same key + suffix) the adapter publishes `<bundle>.dsse.json`, a
 * DSSE envelope over an in-toto Statement whose subject is the .tgz itself, and
 * `<bundle>.sig`, the raw signature of the .tgz's 32-byte SHA-256 digest (adapter.h). Files are
 * written to a private temporary directory and stored only when complete; a cancelled or
 * failed run stores nothing (and removes what it stored if cancelled while storing).
 *
 * Ownership: the environment is borrowed. Thread rules: blocks on Postgres and disk;
 * worker threads only. Errors: ST_ECANCELED (the run was cancelled, or env->cancel set),
 * ST_ECONFLICT (the ledger changed since the run was planned), ST_EUNSUPPORTED (a profile
 * kind this adapter does not build), export.h's and bundle.h's codes.
 */
#ifndef STELLA_WORKERS_EXPORT_JSON_H
#define STELLA_WORKERS_EXPORT_JSON_H

#include "export/adapter.h"

/* The run's environment (adapter.h). */
typedef st_export_env_t st_export_json_env_t;

/* Build run_id of tenant: plan (or check the recorded plan), build, seal, store, and move
 * the run through planning, running, built and distributed. A run already built or
 * distributed is finished again without rebuilding (a re-delivered job). */
int st_export_json_run(const st_export_json_env_t *env, const char *tenant, const char *run_id,
                       st_error_t *err) ST_MUST_CHECK;

#endif
