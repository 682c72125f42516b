/* bundle.h: sealed bundles (DESIGN.md §4, docs/bundle-format.md): one deterministic,
 * signed, optionally timestamped .tgz format for every bundle kind, its verifier, and
 * single-entry proofs for selective disclosure.
 *
 * Sealing (st_bundle_seal) hashes every input once (streaming, bounded memory), builds
 * manifest.json (RFC 8785 canonical JSON, entries sorted by path, RFC 6962 Merkle root
 * over SHA-256(0x00 || JCS(entry))), signs an in-toto Statement v1 over it as a DSSE
 * envelope, optionally stamps the raw signature bytes at an RFC 3161 TSA, and writes
 * manifest.json, manifest.dsse.json, manifest.sigstore.json, [manifest.tsr], SHA256SUMS,
 * verify.sh, keys/ and payload/ through the deterministic tgz writer (tgz.h), which
 * streams the files a second time and publishes atomically. Same inputs, key and token
 * => the same bytes (Ed25519 signatures are deterministic; ECDSA P-256 ones are not, so a
 * P-256 bundle is reproducible only given the same signature).
 *
 * Verification (st_bundle_verify) reads the archive once with the safe reader and fills a
 * report with one result per check (ST_BUNDLE_CHECK_NAMES): each passes, fails with a
 * reason, is skipped (does not apply), or is "untrusted" (consistent, but anchored only
 * in material the bundle itself carries: a timestamp checked without --tsa-ca). Only a
 * failure fails the bundle. Trusted signing keys always come from the caller: keys/ in a
 * bundle proves integrity, never origin.
 *
 * Proofs (st_bundle_prove, st_bundle_proof_verify): PROOF.json carries one entry's bytes,
 * its manifest entry, its Merkle inclusion proof, the DSSE envelope and the timestamp, so
 * one file can be shown without the others' contents.
 *
 * Ownership: inputs are borrowed for the call; reports are caller-allocated
 * (st_bundle_report_init/release); output buffers are appended to.
 * Thread rules: every function is reentrant; the signer may be shared (keys.h). Sealing
 * and verifying block on disk (and the network with a TSA): call them from worker
 * threads, never the loop.
 * Errors: ST_EINVAL (spec: the message names the field or input), ST_EEXIST (duplicate
 * path), ST_EUNSAFE (bad path), ST_ETOOBIG, ST_EIO/ST_ENOENT (files), ST_ECONFLICT (an input
 * changed while sealing), ST_ENET/ST_ETIMEDOUT/ST_EVERIFY (TSA), ST_ECRYPTO, ST_ENOMEM.
 * Verification returns ST_EVERIFY when any check failed (the report says which and why).
 */
#ifndef STELLA_BUNDLE_H
#define STELLA_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "stella/buf.h"
#include "stella/err.h"
#include "stella/keys.h"
#include "stella/sha256.h"
#include "stella/tgz.h"
#include "stella/tsa.h"

#define ST_BUNDLE_SCHEMA "stella.bundle/v1"
#define ST_BUNDLE_PROOF_SCHEMA "stella.bundle-proof/v1"
#define ST_BUNDLE_PREDICATE_TYPE "https://stella.dev/bundle/v1"
#define ST_BUNDLE_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define ST_BUNDLE_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define ST_BUNDLE_SIGSTORE_MEDIA_TYPE "application/vnd.dev.sigstore.bundle.v0.3+json"

#define ST_BUNDLE_MAX_ENTRIES 100000         /* payload files per bundle */
#define ST_BUNDLE_PATH_MAX 1000              /* bytes of a bundle path, "payload/" included */
#define ST_BUNDLE_ID_MAX 128                 /* [A-Za-z0-9._:-] */
#define ST_BUNDLE_KIND_MAX 32                /* [a-z][a-z0-9-]* */
#define ST_BUNDLE_MEDIA_TYPE_MAX 255
#define ST_BUNDLE_META_MAX ((size_t)64 << 20)  /* manifest.json, envelopes, SHA256SUMS */
#define ST_BUNDLE_PROOF_CONTENT_MAX ((size_t)64 << 20) /* an entry embedded in a proof */

/* ---- sealing ---- */

typedef enum st_bundle_src {
  ST_BUNDLE_SRC_FILE = 1, /* fs_path, a regular file (symlinks refused), streamed */
  ST_BUNDLE_SRC_MEM = 2,  /* data[0..len), copied when added to the archive */
} st_bundle_src;

typedef struct st_bundle_input_s {
  const char *path;       /* below payload/: relative, '/'-separated, e.g. "scans/a.json" */
  st_bundle_src src;
  const char *fs_path;    /* ST_BUNDLE_SRC_FILE */
  const void *data;       /* ST_BUNDLE_SRC_MEM */
  size_t len;
  const char *media_type; /* NULL = from the extension (st_bundle_media_type) */
} st_bundle_input_t;

/* What st_bundle_seal produced (when spec->result is set). */
typedef struct st_bundle_sealed_s {
  char id[ST_BUNDLE_ID_MAX + 1];
  char created[21];                               /* YYYY-MM-DDTHH:MM:SSZ */
  char merkle_root[ST_SHA256_HEX_LEN + 1];
  char manifest_sha256[ST_SHA256_HEX_LEN + 1];
  uint64_t entries;
  int timestamped;
} st_bundle_sealed_t;

typedef struct st_bundle_spec_s {
  const char *kind;        /* a registered kind (st_bundle_kind_known) */
  const char *id;          /* NULL = derived from the content (docs/bundle-format.md) */
  const char *tenant;      /* NULL = "default"; st_db_tenant_check rules */
  const char *created;     /* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ"; NULL = $SOURCE_DATE_EPOCH,
                            * else now */
  const json_t *metadata;  /* an object (kind-specific), NULL = {}; borrowed */
  const st_bundle_input_t *inputs;
  size_t ninputs;          /* 0..ST_BUNDLE_MAX_ENTRIES, any order */
  int private_subjects;    /* 1: the signed statement names only manifest.json, so proofs
                            * disclose no other entry names (docs/bundle-format.md) */
  st_bundle_sealed_t *result; /* optional output */
} st_bundle_spec_t;

/* Seal spec into out_path (atomically replaced). tsa NULL = no timestamp. The signer's
 * public key goes to keys/signer.pub.pem. On failure nothing is left at out_path. */
int st_bundle_seal(const st_bundle_spec_t *spec, st_signer_t *signer, const st_tsa_opts_t *tsa,
                   const char *out_path, st_error_t *err) ST_MUST_CHECK;

/* Media type for a path by its extension (json, txt, pem, ...; else octet-stream). */
const char *st_bundle_media_type(const char *path);

/* Kinds: evidence, export, mirror, attestation, risk, devportal, bootstrap, generic. Each
 * may add rules on its metadata (the "kind" check); 1 if known. */
int st_bundle_kind_known(const char *kind);

/* ---- verification ---- */

typedef struct st_bundle_trust_s {
  const st_pubkey_t *const *keys; /* trusted signing keys (none: the signature check fails) */
  size_t nkeys;
  const char *tsa_ca_pem;         /* PEM roots for timestamps; NULL = check against the
                                   * bundled chain and report "untrusted" */
  size_t tsa_ca_len;
  const st_tgz_limits_t *limits;  /* NULL = st_tgz_limits_default */
} st_bundle_trust_t;

typedef enum st_bundle_status {
  ST_BUNDLE_PASS = 0,
  ST_BUNDLE_FAIL = 1,
  ST_BUNDLE_SKIP = 2,      /* does not apply (no timestamp in the bundle, nothing to check) */
  ST_BUNDLE_UNTRUSTED = 3, /* consistent, but only against material the bundle carries */
} st_bundle_status;

/* Checks in report order. A proof's report uses: proof signature merkle content timestamp. */
#define ST_BUNDLE_NCHECKS 10
#define ST_BUNDLE_CHECK_NAMES                                                           \
  {"archive", "checksums", "manifest", "entries", "merkle", "signature", "timestamp",   \
   "sigstore", "verify_sh", "kind"}

typedef struct st_bundle_check_s {
  const char *name;        /* static */
  st_bundle_status status;
  st_buf_t reason;         /* why it failed, or what passed ("3 entries", "signed by ...") */
} st_bundle_check_t;

typedef struct st_bundle_report_s {
  st_bundle_check_t checks[ST_BUNDLE_NCHECKS];
  size_t nchecks;
  int is_proof;
  /* What the (verified or not) manifest/statement says; "" when unknown. */
  st_buf_t kind, id, tenant, created, keyid, tsa_time, entry;
} st_bundle_report_t;

void st_bundle_report_init(st_bundle_report_t *r);
void st_bundle_report_release(st_bundle_report_t *r);
/* The first failed check, or NULL when none failed. */
const st_bundle_check_t *st_bundle_report_failed(const st_bundle_report_t *r);
/* "pass", "fail", "skip", "untrusted". */
const char *st_bundle_status_text(st_bundle_status s);
/* {"ok":bool,"kind":..,"id":..,...,"checks":[{"name","status","reason"}]} (canonical). */
int st_bundle_report_json(const st_bundle_report_t *r, st_buf_t *out) ST_MUST_CHECK;

/* Verify the bundle at path (or in memory). 0 when no check failed, ST_EVERIFY when one
 * did (err names the first), ST_EIO/ST_ENOENT when the file cannot be opened, ST_ENOMEM.
 * The report is reset first and filled in every case but allocation failure. */
int st_bundle_verify(const char *path, const st_bundle_trust_t *trust,
                     st_bundle_report_t *report, st_error_t *err) ST_MUST_CHECK;
int st_bundle_verify_mem(const void *data, size_t len, const st_bundle_trust_t *trust,
                         st_bundle_report_t *report, st_error_t *err) ST_MUST_CHECK;

/* ---- selective disclosure ---- */

/* Append PROOF.json (canonical JSON, docs/bundle-format.md) for the payload file
 * entry_path ("payload/..." or the path below payload/) of the bundle at bundle_path.
 * ST_ENOENT if the bundle has no such entry, ST_ETOOBIG past ST_BUNDLE_PROOF_CONTENT_MAX,
 * ST_EVERIFY if the bundle is inconsistent (entry digest, manifest). No trust is judged
 * here: the proof's reader verifies. */
int st_bundle_prove(const char *bundle_path, const char *entry_path, st_buf_t *proof_json,
                    st_error_t *err) ST_MUST_CHECK;

/* Verify PROOF.json bytes; same return and report rules as st_bundle_verify. */
int st_bundle_proof_verify(const char *json, size_t len, const st_bundle_trust_t *trust,
                           st_bundle_report_t *report, st_error_t *err) ST_MUST_CHECK;

#endif
