/* keys.h: signing keys (Ed25519, ECDSA P-256) behind one signer interface.
 *
 * A signer is a provider's private key plus the matching public key. Providers: a PEM
 * file (PKCS#8, unencrypted) and a PKCS#11 token; a new one (a cloud KMS) implements
 * st_signer_ops_t and calls st_signer_new with its SubjectPublicKeyInfo, and callers do
 * not change. Everything public (algorithm, PEM, SPKI DER, keyid) is derived here from
 * that SPKI, so all providers describe their keys the same way.
 *
 * Signatures: Ed25519 is pure Ed25519 over the message (64 bytes); ECDSA P-256 hashes
 * the message with SHA-256 and returns an ASN.1 DER ECDSA-Sig-Value (securesystemslib
 * and sigstore accept DER only). st_signer_sign verifies every signature it produces
 * with the public key before returning it, so a token whose public object does not match
 * its private key fails loudly instead of producing unverifiable bundles.
 *
 * keyid: the OpenSSH fingerprint `SHA256:<unpadded base64 of SHA-256 of the SSH public
 * key blob>` (ssh-ed25519 / ecdsa-sha2-nistp256 blobs), equal to what `ssh-keygen -l`
 * prints; Go DSSE verifiers skip signatures whose keyid is anything else.
 *
 * Ownership: *_open / *_from_* / st_signer_new allocate; free with st_pubkey_free /
 * st_signer_free (both accept NULL). Strings and bytes returned by accessors live as long
 * as the object. Private key material is wiped when read and when freed.
 * Thread rules: a public key is immutable and may be shared by threads. st_signer_sign
 * may be called from several threads at once (PKCS#11 serialises on the session).
 * Errors: ST_EIO (file), ST_EPARSE (not a key), ST_EUNSUPPORTED (other key types or
 * curves), ST_ECRYPTO (the provider failed), ST_EVERIFY (signature does not verify),
 * ST_EEXIST (st_key_generate will not overwrite), ST_ENOENT (PKCS#11 module, token or
 * object not found), ST_ECONFLICT (several objects match), ST_EPERM (wrong PIN).
 */
#ifndef STELLA_KEYS_H
#define STELLA_KEYS_H

#include <stddef.h>

#include "stella/buf.h"
#include "stella/err.h"

typedef enum st_key_type {
  ST_KEY_ED25519 = 1,
  ST_KEY_P256 = 2,
} st_key_type;

/* Largest signature any supported key produces (ECDSA P-256 DER is at most 72). */
#define ST_SIG_MAX 128
/* Largest public key PEM file st_pubkey_load reads. */
#define ST_PUBKEY_PEM_MAX 16384

typedef struct st_pubkey_s st_pubkey_t;
typedef struct st_signer_s st_signer_t;

/* "ed25519" or "p256" -> type; ST_EINVAL otherwise. */
int st_key_type_parse(const char *s, st_key_type *out) ST_MUST_CHECK;

/* --- Public keys (verifiers) --- */

/* From a PEM `PUBLIC KEY` (SPKI) block in memory / a file / SPKI DER. */
int st_pubkey_from_pem(st_pubkey_t **out, const char *pem, size_t len, st_error_t *err)
    ST_MUST_CHECK;
int st_pubkey_load(st_pubkey_t **out, const char *path, st_error_t *err) ST_MUST_CHECK;
int st_pubkey_from_spki(st_pubkey_t **out, const void *der, size_t len, st_error_t *err)
    ST_MUST_CHECK;
void st_pubkey_free(st_pubkey_t *k);

st_key_type st_pubkey_type(const st_pubkey_t *k);
/* "ed25519" or "ecdsa-p256-sha256". */
const char *st_pubkey_alg(const st_pubkey_t *k);
/* "SHA256:..." (see top comment). */
const char *st_pubkey_keyid(const st_pubkey_t *k);
/* SPKI PEM, NUL-terminated, ending in a newline. */
const char *st_pubkey_pem(const st_pubkey_t *k);
/* SPKI DER; *len gets its length. */
const unsigned char *st_pubkey_spki(const st_pubkey_t *k, size_t *len);

/* 0 if sig is a valid signature of msg by k, ST_EVERIFY (with a reason) otherwise. */
int st_pubkey_verify(const st_pubkey_t *k, const void *msg, size_t len, const void *sig,
                     size_t sig_len, st_error_t *err) ST_MUST_CHECK;

/* --- Signers --- */

/* What a provider implements. `sign` appends the signature of msg (format as in the top
 * comment) to sig and returns 0 or an ST_E* code with err set; it may be called from
 * several threads at once. `free` releases impl (wiping secrets); called exactly once. */
typedef struct st_signer_ops_s {
  const char *provider; /* "file", "pkcs11", ... */
  int (*sign)(void *impl, const void *msg, size_t len, st_buf_t *sig, st_error_t *err);
  void (*free)(void *impl);
} st_signer_ops_t;

/* Wrap a provider's key. Takes ownership of impl even on failure (ops->free runs). */
int st_signer_new(st_signer_t **out, const st_signer_ops_t *ops, void *impl,
                  const void *spki_der, size_t spki_len, st_error_t *err) ST_MUST_CHECK;

/* Open by reference: a `pkcs11:` URI (st_signer_pkcs11_open) or a file path. */
int st_signer_open(st_signer_t **out, const char *ref, st_error_t *err) ST_MUST_CHECK;
/* PKCS#8 PEM private key file (unencrypted), Ed25519 or P-256. */
int st_signer_file_open(st_signer_t **out, const char *path, st_error_t *err) ST_MUST_CHECK;
/* RFC 7512 URI naming a token and a key, e.g.
 *   pkcs11:token=stella;object=bundle-key?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so
 * The private key is the object with that label (and id=, if given) of class private-key;
 * the public key is the public-key object with the same label/id. The module comes from
 * module-path=, else $STELLA_PKCS11_MODULE; the PIN from pin-value=, else
 * $STELLA_PKCS11_PIN (no PIN: no login). The module is dlopen()ed once per process. */
int st_signer_pkcs11_open(st_signer_t **out, const char *uri, st_error_t *err) ST_MUST_CHECK;

int st_signer_sign(st_signer_t *s, const void *msg, size_t len, st_buf_t *sig,
                   st_error_t *err) ST_MUST_CHECK;
const st_pubkey_t *st_signer_pubkey(const st_signer_t *s);
/* "file", "pkcs11", ... */
const char *st_signer_provider(const st_signer_t *s);
void st_signer_free(st_signer_t *s);

/* Generate a key: PKCS#8 PEM private key at priv_path (created with mode 0600) and SPKI
 * PEM public key at pub_path. Neither file may exist (ST_EEXIST); on failure neither is
 * left behind. */
int st_key_generate(st_key_type type, const char *priv_path, const char *pub_path,
                    st_error_t *err) ST_MUST_CHECK;

#endif
