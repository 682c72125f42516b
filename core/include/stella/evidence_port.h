/* evidence_port.h: portable sealed exports of evidence bundles and their import into
 * another locker (another tenant, another database): issue #6 item 8,
 * docs/airgap/evidence.md.
 *
 * Export (st_evidence_export) reads a sealed bundle of the tenant from the object store,
 * checks it is the stored object (SHA-256 of the row), and seals a new bundle of kind
 * `evidence` (DESIGN.md §4: manifest, DSSE, timestamp when the locker has a TSA,
 * SHA256SUMS, verify.sh, keys/) holding exactly the source payload (same paths, digests
 * and media types, so the export's Merkle root is the source's) with:
 *   - metadata redacted to an allowlist: snapshot_kind, environment, and run.run_id,
 *     run.started, run.finished; every other member (run.actor and anything a future
 *     snapshot adds) is dropped and its name listed in export.redacted;
 *   - export.source {tenant, bundle_id, merkle_root, manifest_sha256, object_sha256,
 *     keyid, created, tsa_gen_time?}: the stored bundle it came from;
 *   - export.custody: the bundle's custody records verbatim ({seq, record, hash}), so the
 *     receiver recomputes each hash and the links between consecutive records (the kind
 *     rule, bundle_kind_evidence.c; `stella verify` runs it). Custody records travel
 *     unredacted (they name actors and request ids): a redacted record would no longer
 *     hash to its chained value.
 * The export keeps the source id, tenant and created time, so exporting again with the
 * same key and no TSA yields the same bytes. An evidence.exported custody record (bundle
 * digest = the source object's; detail: the export's SHA-256, manifest digest and the last
 * custody seq carried) commits with who->in_tx.
 *
 * Import (st_evidence_import) copies the file into a private temporary file first (so
 * what is checked is what is stored), verifies it with the caller's trust (every check;
 * a failed one refuses with its name and reason; the signature must pass), requires a
 * portable export (kind evidence with metadata.export and a known snapshot_kind), then:
 * stores it content-addressed under tenants/<tenant>/evidence/imported/<sha256>.tgz and,
 * in one tenant transaction, inserts the sealed row (same bundle id), its artifact rows
 * and an evidence.imported custody record (bundle digest = the stored object's; detail:
 * merkle_root, manifest_sha256, object_key, source tenant/bundle, last carried custody
 * hash) plus who->in_tx. Idempotent: a bundle id the tenant already holds with the same
 * Merkle root is reported as already there (*imported = 0) and nothing changes; with a
 * different root it is ST_ECONFLICT. Nothing partial is stored: the object is published
 * atomically and content-addressed (a crash before the row commits leaves an object the
 * next import of the same file adopts), the rows commit together or not at all.
 *
 * Ownership: out (description as st_evidence_get gives it, may be NULL) is a new
 * reference. Thread rules: as evidence.h (blocking; worker threads or the CLI).
 * Errors: ST_ENOENT (no such bundle for the tenant), ST_ECONFLICT (not sealed yet; an id
 * holding other evidence), ST_EVERIFY (the stored object or the bundle to import fails a
 * check: the message names it), ST_EINVAL (not a portable export), ST_ETOOBIG,
 * ST_ECONFIG (no signer to export with), ST_EIO, ST_EDB*, ST_ENOMEM.
 */
#ifndef STELLA_EVIDENCE_PORT_H
#define STELLA_EVIDENCE_PORT_H

#include <jansson.h>

#include "stella/bundle.h"
#include "stella/err.h"
#include "stella/evidence.h"

#define ST_EVIDENCE_EXPORT_SCHEMA "stella.evidence-export/v1"

/* Seal the portable export of bundle_id (who->tenant) into out_path (atomically
 * replaced; nothing left there on failure). facts (may be NULL) gets
 * {bundle_id, sha256, size, manifest_sha256, merkle_root, custody_records, redacted}. */
int st_evidence_export(st_evidence_t *ev, const st_evidence_who_t *who, const char *bundle_id,
                       const char *out_path, json_t **facts, st_error_t *err) ST_MUST_CHECK;

/* Verify the portable export at path against trust and load it into who->tenant.
 * report (may be NULL) gets the verification report (caller init/release). *imported =
 * 1 when rows were added, 0 when the tenant already had this evidence. */
int st_evidence_import(st_evidence_t *ev, const st_evidence_who_t *who, const char *path,
                       const st_bundle_trust_t *trust, st_bundle_report_t *report, int *imported,
                       json_t **out, st_error_t *err) ST_MUST_CHECK;

#endif
