/* jwt.h: JSON Web Tokens (RFC 7519) for the API: HS256 and ES256 sign and verify.
 *
 * Only compact JWS with "alg" HS256 or ES256 is accepted; "none", every other alg, and an
 * alg whose key is not configured are rejected (no alg confusion: an HS256 token is never
 * checked against an ES256 public key, and the reverse). ES256 signatures are JOSE raw
 * r||s (64 bytes), converted to and from DER for OpenSSL. MACs compare in constant time.
 * Tokens are bounded (ST_JWT_MAX_TOKEN) before any decoding.
 *
 * Claims Stella uses: `tenant` (required, [A-Za-z0-9._-]{1,64}), `scope` (space-separated
 * tokens, optional), `exp` (required), `nbf`, `iat`, `sub` (the actor, optional).
 *
 * Ownership: st_jwt_keys_new/_from_config allocate (st_jwt_keys_free wipes and frees);
 * st_jwt_verify fills caller-owned claims (st_jwt_claims_release frees the strings);
 * st_jwt_sign returns a token the caller frees with st_free.
 * Thread rules: a key set is read-only after creation and may be shared by threads.
 * Errors: ST_ETOOBIG (token too long), ST_EPARSE (not a well-formed JWS/JSON),
 * ST_EVERIFY (bad signature, wrong alg, expired, not yet valid, bad claim),
 * ST_ECONFIG (bad key material), ST_ECRYPTO (OpenSSL failure).
 */
#ifndef STELLA_JWT_H
#define STELLA_JWT_H

#include <stddef.h>

#include "stella/config.h"
#include "stella/err.h"

#define ST_JWT_MAX_TOKEN 8192
#define ST_JWT_TENANT_MAX 64
#define ST_JWT_HS256_MIN_SECRET 32

typedef struct st_jwt_keys_s st_jwt_keys_t;

typedef enum st_jwt_alg {
  ST_JWT_HS256 = 1,
  ST_JWT_ES256 = 2,
} st_jwt_alg;

typedef struct st_jwt_claims_s {
  char *tenant;
  char *scope; /* space-separated, "" when absent */
  char *sub;   /* NULL when absent */
  long long exp;
  long long nbf; /* 0 when absent */
  long long iat; /* 0 when absent */
} st_jwt_claims_t;

#define ST_JWT_CLAIMS_INIT {NULL, NULL, NULL, 0, 0, 0}

/* Build a key set. Any part may be NULL/0 (absent); at least one must be present. The
 * HS256 secret is raw bytes of at least ST_JWT_HS256_MIN_SECRET; the ES256 keys are PEM
 * text of a P-256 public key (SubjectPublicKeyInfo) and private key (PKCS#8 or SEC1). */
int st_jwt_keys_new(st_jwt_keys_t **out, const void *hs256_secret, size_t secret_len,
                    const char *es256_public_pem, const char *es256_private_pem,
                    st_error_t *err) ST_MUST_CHECK;
/* From config keys jwt_hs256_secret (the string's bytes), jwt_es256_public_key and
 * jwt_es256_private_key (PEM file paths). When only the private key is configured its
 * public half verifies. ST_ECONFIG names the key when none is set or one is bad. */
int st_jwt_keys_from_config(st_jwt_keys_t **out, const st_config_t *cfg, st_error_t *err)
    ST_MUST_CHECK;
void st_jwt_keys_free(st_jwt_keys_t *keys);
/* Whether the key set can verify (mint) tokens of alg. */
int st_jwt_keys_can_verify(const st_jwt_keys_t *keys, st_jwt_alg alg);
int st_jwt_keys_can_sign(const st_jwt_keys_t *keys, st_jwt_alg alg);

/* Sign claims (tenant and exp required) into a compact token; *out is st_free'd. */
int st_jwt_sign(const st_jwt_keys_t *keys, st_jwt_alg alg, const st_jwt_claims_t *claims,
                char **out, st_error_t *err) ST_MUST_CHECK;

/* Check the signature only and return the decoded payload bytes (st_free'd), for callers
 * with their own claims (and for RFC 7515 test vectors). */
int st_jwt_decode(const st_jwt_keys_t *keys, const char *token, size_t len,
                  st_jwt_alg *alg_out, char **payload, size_t *payload_len,
                  st_error_t *err) ST_MUST_CHECK;

/* Verify signature and Stella claims at time `now` (Unix seconds) allowing `leeway`
 * seconds of clock skew for exp/nbf/iat. Fills *claims only on success. */
int st_jwt_verify(const st_jwt_keys_t *keys, const char *token, size_t len, long long now,
                  long long leeway, st_jwt_claims_t *claims, st_error_t *err) ST_MUST_CHECK;
void st_jwt_claims_release(st_jwt_claims_t *claims);

/* Whether s is a valid tenant id: [A-Za-z0-9._-]{1,64}. */
int st_jwt_tenant_valid(const char *s);
/* Whether space-separated `scopes` contains `want` as a whole token. */
int st_jwt_scope_has(const char *scopes, const char *want);

#endif
