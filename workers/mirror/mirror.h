/* mirror.h: mirror bundles (docs/mirror.md): a filesystem mirror of the source ledger's
 * advisories, VEX documents and policy packs for an air-gapped site, shipped as a sealed
 * bundle of kind `mirror` (full, or a delta against a base), with TUF metadata so a TUF
 * client on the receiving side checks freshness, rollback and integrity.
 *
 * The tree (what `stella mirror import` produces and `stella mirror verify` checks):
 *   README.md                   for the receiving side (fixed text)
 *   mirror.json                 stella.mirror/v1: per directory its count and index digest
 *   advisories/index.ndjson     one canonical line {"id","sha256","size"} per document,
 *   vex/index.ndjson            sorted by id bytes
 *   policy-packs/index.ndjson
 *   blobs/sha256/<hh>/<hex>     each document's RFC 8785 form, named by its SHA-256 (stored
 *                               once however many ids hold it)
 *   tuf/root.json, targets.json, snapshot.json, timestamp.json   TUF 1.0 metadata; the
 *                               targets are README.md, mirror.json and the three indexes
 * A bundle carries the same files under payload/, except the blobs: they travel in one
 * payload/blobs.ndjson (one blob per line, sorted by digest), since a bundle holds at most
 * ST_BUNDLE_MAX_ENTRIES files. A delta carries payload/delta.json (the base mirror.json's
 * digest), payload/<dir>/index.patch.ndjson ({"op":"put",id,sha256,size} or
 * {"op":"del",id}, sorted by id) and only the blobs the base lacks.
 *
 * TUF: one signer signs the four roles (threshold 1); versions are the signing time in
 * seconds since the epoch (so they only grow); expiry = signing time + the role's TTL.
 * Metadata is signed over canonical JSON (TUF's OLPC form, which for the ASCII-only,
 * integer-only values written here equals RFC 8785).
 *
 * Ownership: builders and states are heap objects (new/free). Inputs are borrowed.
 * Thread rules: one builder per thread; everything blocks on disk (worker threads, CLI).
 * Errors: ST_EINVAL (a bad argument, naming it), ST_EEXIST (an id added twice),
 * ST_EVERIFY (a bundle or tree that fails a check: the message says which), ST_ECONFLICT
 * (a delta whose base is not the tree it is applied to), ST_EUNSAFE, ST_EPARSE, ST_EIO,
 * ST_ENOMEM, and bundle.h's codes from sealing.
 */
#ifndef STELLA_WORKERS_MIRROR_H
#define STELLA_WORKERS_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "stella/bundle.h"
#include "stella/err.h"
#include "stella/keys.h"
#include "stella/sha256.h"
#include "stella/tsa.h"

typedef enum st_mirror_dir {
  ST_MIRROR_ADVISORIES = 0,
  ST_MIRROR_VEX = 1,
  ST_MIRROR_POLICY = 2,
  ST_MIRROR_NDIRS = 3
} st_mirror_dir;

/* "advisories", "vex", "policy-packs". */
const char *st_mirror_dir_name(st_mirror_dir d);

#define ST_MIRROR_TTL_TIMESTAMP (24LL * 3600)     /* 1 day */
#define ST_MIRROR_TTL_METADATA (30LL * 24 * 3600) /* snapshot, targets: 30 days */
#define ST_MIRROR_TTL_ROOT (365LL * 24 * 3600)    /* 1 year */

typedef struct st_mirror_opts_s {
  const char *tenant;  /* the bundle's tenant (NULL = "default") */
  const char *profile; /* recorded in the bundle's metadata (NULL = "") */
  int64_t issued;      /* TUF signing time (epoch seconds); 0 = now */
  long long ttl_timestamp, ttl_metadata, ttl_root; /* seconds; 0 = the defaults above */
} st_mirror_opts_t;

/* A base to diff against: a state file (st_mirror_builder_seal's state_path output) or a
 * mirror tree directory. */
typedef struct st_mirror_state_s st_mirror_state_t;
int st_mirror_state_load(const char *path, st_mirror_state_t **out, st_error_t *err) ST_MUST_CHECK;
/* The base's mirror.json digest (hex). */
const char *st_mirror_state_digest(const st_mirror_state_t *s);
void st_mirror_state_free(st_mirror_state_t *s);

typedef struct st_mirror_result_s {
  st_bundle_sealed_t sealed;                 /* the bundle's id, digests, created */
  char mirror_sha256[ST_SHA256_HEX_LEN + 1]; /* of the tree's mirror.json */
  long long docs[ST_MIRROR_NDIRS];           /* documents in the tree */
  long long added, changed, removed;         /* delta only (full: added = all) */
  long long blobs;                           /* blobs shipped in the bundle */
} st_mirror_result_t;

typedef struct st_mirror_builder_s st_mirror_builder_t;

/* A builder spooling blobs under tmp_dir (NULL = /tmp) in a private directory. */
int st_mirror_builder_new(const char *tmp_dir, st_mirror_builder_t **out,
                          st_error_t *err) ST_MUST_CHECK;
/* Add a document: canon[0..len) is its RFC 8785 form (one line, hashed here); modified an
 * RFC 3339 time or NULL (the tree's `created` is the latest, never the wall clock). An id
 * is 1..1024 bytes of valid UTF-8, unique per directory (ST_EEXIST). */
int st_mirror_builder_add(st_mirror_builder_t *b, st_mirror_dir dir, const char *id,
                          const char *canon, size_t len, const char *modified,
                          st_error_t *err) ST_MUST_CHECK;
/* Seal the tree into out_bundle: a full mirror (base NULL) or a delta from base. When
 * state_path is set the new tree's state is written there too (a later delta's base).
 * res may be NULL. The builder is spent afterwards. */
int st_mirror_builder_seal(st_mirror_builder_t *b, const st_mirror_opts_t *opts,
                           const st_mirror_state_t *base, st_signer_t *signer,
                           const st_tsa_opts_t *tsa, const char *out_bundle, const char *state_path,
                           st_mirror_result_t *res, st_error_t *err) ST_MUST_CHECK;
/* Removes the private directory. NULL is a no-op. */
void st_mirror_builder_free(st_mirror_builder_t *b);

/* Trust for import and verify: the signing keys (bundle DSSE and TUF root), an optional
 * TSA root, and the time expiry is judged at (0 = now). */
typedef struct st_mirror_trust_s {
  const st_pubkey_t *const *keys;
  size_t nkeys;
  const char *tsa_ca_pem;
  size_t tsa_ca_len;
  int64_t now;
} st_mirror_trust_t;

typedef struct st_mirror_import_s {
  int delta;
  long long docs[ST_MIRROR_NDIRS];
  long long added, changed, removed, blobs_written;
  char mirror_sha256[ST_SHA256_HEX_LEN + 1];
} st_mirror_import_t;

/* Verify bundle (sealed-bundle checks with trust, kind mirror, TUF roles: signatures by
 * the trusted keys, expiry, versions not older than the tree's, target hashes; every
 * blob's digest) and apply it to dir: a full bundle replaces the tree, a delta applies to
 * the tree whose mirror.json is its base (else ST_ECONFLICT). The new tree is built beside
 * dir and exchanged with it in one rename; on any failure dir is left as it was. sum may
 * be NULL. */
int st_mirror_import(const char *bundle, const char *dir, const st_mirror_trust_t *trust,
                     st_mirror_import_t *sum, st_error_t *err) ST_MUST_CHECK;

/* Check a tree at rest: TUF roles (signatures, expiry, versions, target hashes), indexes
 * against mirror.json, every blob's digest and size, no blob unreferenced, no stray file.
 * docs (may be NULL) gets the counts. */
int st_mirror_verify_tree(const char *dir, const st_mirror_trust_t *trust,
                          long long docs[ST_MIRROR_NDIRS], st_error_t *err) ST_MUST_CHECK;

#endif
