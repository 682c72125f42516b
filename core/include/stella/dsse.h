/* dsse.h: DSSE v1 envelopes (github.com/secure-systems-lab/dsse), sign and verify.
 *
 * Signing covers PAE(payloadType, payload) =
 *   "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload   (LEN = decimal bytes).
 * st_dsse_sign writes {"payload","payloadType","signatures":[{"keyid","sig"}]} with keys
 * in that (sorted) order, compact, base64 padded standard, keyid = the signer's SSH-style
 * fingerprint (keys.h): same key and payload give the same bytes (Ed25519 is
 * deterministic; ECDSA signatures are randomised, so only their length-free layout is).
 *
 * st_dsse_verify accepts standard and URL-safe base64 with or without padding, ignores
 * unknown fields, rejects duplicate JSON keys, and succeeds when at least one signature
 * verifies with a trusted key. A signature with a non-empty keyid is only tried against
 * the trusted key with that keyid (as the Go verifiers do, so what passes here passes
 * there); an empty keyid is tried against every trusted key. Failure reasons name what
 * failed: no signatures, unknown key, bad signature, malformed base64/JSON, wrong
 * payloadType.
 *
 * Ownership: outputs are appended to caller-owned st_buf_t (payload_type and payload are
 * reset first). Thread rules: reentrant. Errors: ST_EPARSE (malformed envelope),
 * ST_ETOOBIG (over a limit below), ST_EVERIFY (no trusted signature, wrong type),
 * ST_ECRYPTO/ST_ENOMEM from the signer.
 */
#ifndef STELLA_DSSE_H
#define STELLA_DSSE_H

#include <stddef.h>

#include "stella/buf.h"
#include "stella/err.h"
#include "stella/keys.h"

#define ST_DSSE_ENVELOPE_MAX ((size_t)64 << 20) /* whole envelope JSON */
#define ST_DSSE_TYPE_MAX 256                    /* payloadType bytes */
#define ST_DSSE_SIGS_MAX 16                     /* signatures per envelope */
#define ST_DSSE_KEYID_MAX 256                   /* keyid bytes */

/* Append PAE(type, payload) to out. */
int st_dsse_pae(st_buf_t *out, const char *payload_type, size_t type_len, const void *payload,
                size_t payload_len) ST_MUST_CHECK;

/* Sign payload and append the envelope JSON to envelope_json. */
int st_dsse_sign(st_signer_t *signer, const char *payload_type, const void *payload,
                 size_t payload_len, st_buf_t *envelope_json, st_error_t *err) ST_MUST_CHECK;

/* Verify envelope json[0..len) against trusted[0..ntrusted). If expected_type is not
 * NULL the payloadType must equal it. On success payload_type and payload (either may be
 * NULL) hold the decoded values and *signed_by (may be NULL) the index of the trusted key
 * that verified; on failure they are empty. */
int st_dsse_verify(const char *json, size_t len, const st_pubkey_t *const *trusted,
                   size_t ntrusted, const char *expected_type, st_buf_t *payload_type,
                   st_buf_t *payload, size_t *signed_by, st_error_t *err) ST_MUST_CHECK;

#endif
