/* bundle_internal.h: pieces shared by the bundle_*.c files: the manifest model (write and
 * parse), the in-toto statement, the Sigstore bundle, verify.sh, the kind registry and the
 * report helpers. Nothing here is public API. */
#ifndef STELLA_BUNDLE_INTERNAL_H
#define STELLA_BUNDLE_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stella/buf.h"
#include "stella/bundle.h"
#include "stella/err.h"
#include "stella/sha256.h"

#define ST__BUNDLE_PAYLOAD_DIR "payload/"
#define ST__BUNDLE_SIG_MAX 4096 /* decoded DSSE signature bytes we accept */

/* One manifest entry. path is the full bundle path ("payload/..."). */
typedef struct st__bentry_s {
  char *path;
  char *media_type;
  uint8_t sha256[ST_SHA256_LEN];
  uint64_t size;
} st__bentry_t;

/* A parsed, validated manifest.json. Strings borrow from root. */
typedef struct st__manifest_s {
  json_t *root;
  const char *kind, *id, *tenant, *created;
  const json_t *metadata;
  st__bentry_t *entries; /* entries[i].path/media_type borrow from root */
  size_t n;
  uint8_t root_hash[ST_SHA256_LEN];
  uint64_t merkle_size;
} st__manifest_t;

/* Bundle path rules for payload entries (relative, normalised, UTF-8, no control
 * character, '"' or '\\', at most ST_BUNDLE_PATH_MAX bytes with the prefix). path is the
 * full path ("payload/..."). ST_EUNSAFE naming the path. */
int st__bundle_path_check(const char *path, size_t len, st_error_t *err) ST_MUST_CHECK;

/* "YYYY-MM-DDTHH:MM:SSZ" <-> seconds since the epoch. */
int st__bundle_time_parse(const char *s, int64_t *out) ST_MUST_CHECK;
void st__bundle_time_format(int64_t t, char out[21]);
/* created from spec value, $SOURCE_DATE_EPOCH or now. */
int st__bundle_created(const char *given, char out[21], int64_t *epoch, st_error_t *err)
    ST_MUST_CHECK;

/* Whether s is a valid id / kind / media type per docs/bundle-format.md. */
int st__bundle_id_valid(const char *s, size_t len);
int st__bundle_kind_valid(const char *s, size_t len);
int st__bundle_media_type_valid(const char *s, size_t len);

/* JCS of one entry: {"mediaType","path","sha256","size"}. */
int st__bundle_entry_jcs(st_buf_t *out, const st__bentry_t *e) ST_MUST_CHECK;
/* Leaf hashes (32 * n bytes, caller frees with st_free) and the root over them. */
int st__bundle_merkle(const st__bentry_t *e, size_t n, uint8_t **leaves,
                      uint8_t root[ST_SHA256_LEN], st_error_t *err) ST_MUST_CHECK;

/* Append manifest.json (canonical). id NULL writes no id member (for the derived id). */
typedef struct st__manifest_in_s {
  const char *kind, *id, *tenant, *created;
  const json_t *metadata; /* NULL = {} */
  const st__bentry_t *entries;
  size_t n;
  const uint8_t *root;
} st__manifest_in_t;
int st__bundle_manifest_write(const st__manifest_in_t *in, st_buf_t *out, st_error_t *err)
    ST_MUST_CHECK;

/* Parse and validate manifest.json bytes (canonical form, schema, types, sorted unique
 * entries, Merkle root recomputed). On failure *reason_check says which check failed
 * ("manifest" or "merkle") and err why; m is left empty. */
int st__bundle_manifest_parse(const char *data, size_t len, st__manifest_t *m,
                              const char **reason_check, st_error_t *err) ST_MUST_CHECK;
void st__bundle_manifest_release(st__manifest_t *m);

/* Append the in-toto statement (canonical) for a manifest with digest mdigest. */
int st__bundle_statement_write(const st__manifest_in_t *in, const uint8_t mdigest[ST_SHA256_LEN],
                               int private_subjects, st_buf_t *out, st_error_t *err)
    ST_MUST_CHECK;

/* What a signed statement says. subjects: NULL or a JSON array (borrowed from root). */
typedef struct st__statement_s {
  json_t *root;
  const char *kind, *id, *tenant, *created;
  uint8_t merkle_root[ST_SHA256_LEN];
  uint64_t merkle_size;
  uint8_t manifest_sha256[ST_SHA256_LEN];
  int private_subjects;
  const json_t *subjects;
} st__statement_t;
int st__bundle_statement_parse(const char *data, size_t len, st__statement_t *s,
                               st_error_t *err) ST_MUST_CHECK;
void st__bundle_statement_release(st__statement_t *s);
/* 0 if the statement matches the manifest (its digest md, predicate fields, subjects). */
int st__bundle_statement_match(const st__statement_t *s, const st__manifest_t *m,
                               const uint8_t md[ST_SHA256_LEN], st_error_t *err) ST_MUST_CHECK;

/* The raw signature bytes of our single-signature envelope (appended to sig). */
int st__bundle_envelope_sig(const char *env, size_t len, st_buf_t *sig, st_error_t *err)
    ST_MUST_CHECK;

/* Append manifest.sigstore.json for the envelope (our own fixed layout) and tsr (may be
 * empty). */
int st__bundle_sigstore_write(const char *env, size_t env_len, const char *keyid,
                              const void *tsr, size_t tsr_len, st_buf_t *out, st_error_t *err)
    ST_MUST_CHECK;
/* 0 if the Sigstore bundle carries exactly this envelope, hint keyid and timestamp. */
int st__bundle_sigstore_check(const char *sb, size_t sb_len, const char *env, size_t env_len,
                              const void *tsr, size_t tsr_len, st_error_t *err) ST_MUST_CHECK;

/* Append verify.sh as this version writes it. */
int st__bundle_verify_sh(st_buf_t *out) ST_MUST_CHECK;

/* Kind rules: 0 or ST_EVERIFY with the reason. m is the bundle's parsed manifest when
 * verifying (kinds may check their payload entries against it), NULL when sealing. */
int st__bundle_kind_check(const char *kind, const json_t *metadata, const st__manifest_t *m,
                          st_error_t *err) ST_MUST_CHECK;
/* The rule every kind starts from (bundle_kind.c), and kind evidence's
 * (bundle_kind_evidence.c: the custody segment of a portable export). */
int st__bundle_kind_generic_check(const json_t *metadata, const st__manifest_t *m,
                                  st_error_t *err) ST_MUST_CHECK;
int st__bundle_kind_evidence_check(const json_t *metadata, const st__manifest_t *m,
                                   st_error_t *err) ST_MUST_CHECK;

/* Record s in a report's info field; an over-long value is left out (the field is
 * informational, the checks carry the verdict). */
static inline void st__bundle_note(st_buf_t *b, const char *s) {
  if (st_buf_adds(b, s) != 0)
    return;
}

/* Report helpers: set check `name` (must be one of ST_BUNDLE_CHECK_NAMES or a proof
 * check) to status with a printf reason (replaces an earlier reason). */
int st__bundle_report_set(st_bundle_report_t *r, const char *name, st_bundle_status st,
                          const char *fmt, ...) ST_PRINTF(4, 5);
/* Start a report with the given check names, all "skip" with reason "not reached". */
int st__bundle_report_start(st_bundle_report_t *r, const char *const *names, size_t n,
                            int is_proof) ST_MUST_CHECK;
/* 0 if no check failed, else ST_EVERIFY with err naming the first failure. */
int st__bundle_report_result(const st_bundle_report_t *r, st_error_t *err) ST_MUST_CHECK;

/* The timestamp check shared by bundles and proofs: sig = raw signature bytes. */
void st__bundle_check_timestamp(st_bundle_report_t *r, const st_bundle_trust_t *trust,
                                const void *tsr, size_t tsr_len, const void *chain,
                                size_t chain_len, const void *sig, size_t sig_len);

/* ---- one pass over a bundle archive (bundle_read.c) ---- */

typedef struct st__bfile_s {
  char *path;
  uint8_t sha256[ST_SHA256_LEN];
  uint64_t size;
} st__bfile_t;

typedef struct st__bread_s {
  st__bfile_t *files; /* every regular file, in archive order (checked sorted) */
  size_t n, cap;
  st_buf_t manifest, envelope, sigstore, tsr, sums, pubkey, chain, script;
  int has_manifest, has_envelope, has_sigstore, has_tsr, has_sums, has_pubkey, has_chain,
      has_script;
  const char *want;   /* optional: keep this payload file's bytes in want_data */
  st_buf_t want_data;
  int want_found;
} st__bread_t;

void st__bundle_bread_init(st__bread_t *b);
void st__bundle_bread_release(st__bread_t *b);
/* Check the 10-byte gzip header is the one the writer produces. */
int st__bundle_gzip_header_check(const void *head, size_t len, st_error_t *err) ST_MUST_CHECK;
/* The compressed bytes (the file at path, or data[0..len) when path is NULL) are exactly
 * the writer's encoding of the tar stream they hold (bundle_canon.c). ST_EPARSE naming the
 * first differing byte; ST_ETOOBIG past max_out decompressed bytes; ST_ECANCELED once
 * *stop (may be NULL) is set. */
int st__bundle_gzip_canonical(const char *path, const void *data, size_t len, uint64_t max_out,
                              const atomic_int *stop, st_error_t *err) ST_MUST_CHECK;
/* Read every entry: layout rules (only the bundle's own names, sorted, no stray
 * directories), hashes, metadata files into their buffers. Non-zero = archive failure. */
int st__bundle_read(st_tgz_reader_t *r, st__bread_t *b, st_error_t *err) ST_MUST_CHECK;

#endif
