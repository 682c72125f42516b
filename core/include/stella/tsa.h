/* tsa.h: RFC 3161 timestamping: a client that asks a Time-Stamp Authority to stamp data,
 * a verifier for the responses, and the certificates a token carries.
 *
 * What is stamped: the SHA-256 of the caller's bytes (for bundles, the raw DSSE signature
 * bytes). What is kept: the FULL TimeStampResp DER (status + token), as Sigstore bundles and
 * `openssl ts -verify -in` expect; a bare token is not accepted anywhere here.
 *
 * Client (st_tsa_stamp) = st_tsa_request_new + HTTP POST (libcurl) + st_tsa_response_check.
 * The check proves the response answers this request (status granted or grantedWithMods,
 * version 1, same SHA-256 imprint, same nonce, same policy when one was asked); it does not
 * judge trust. Trust is st_tsa_verify's job: the token's signature, its signer certificate
 * (chain to the given CA at the time of the call, EKU timeStamping critical and alone, ESS
 * signing-certificate binding) and the imprint over the data.
 *
 * Bounds: responses larger than ST_TSA_MAX_RESPONSE and PEM inputs or tokens with more than
 * ST_TSA_MAX_CERTS certificates are refused before any parsing.
 *
 * Ownership: st_tsa_info_init/st_tsa_info_release for the caller-allocated info; buffers
 * passed in are appended to (caller releases). No function keeps a pointer to its arguments.
 * Thread rules: every function may be called from any thread on distinct arguments.
 * Errors: ST_EINVAL (bad argument or option), ST_EPARSE (malformed DER/PEM), ST_ETOOBIG
 * (a bound), ST_ENET / ST_ETIMEDOUT (transport), ST_EVERIFY (a check failed; info->reason
 * says which), ST_ECRYPTO, ST_ENOMEM. err->msg names what failed.
 */
#ifndef STELLA_TSA_H
#define STELLA_TSA_H

#include <stddef.h>
#include <stdint.h>

#include "stella/buf.h"
#include "stella/err.h"

#define ST_TSA_MAX_RESPONSE ((size_t)256 * 1024)
#define ST_TSA_MAX_CERTS 16

/* Why a response was refused (info->reason); ST_TSA_OK when it was accepted. */
typedef enum st_tsa_reason {
  ST_TSA_OK = 0,
  ST_TSA_MALFORMED,        /* not a DER TimeStampResp, truncated, trailing bytes, no token */
  ST_TSA_NOT_GRANTED,      /* status other than granted/grantedWithMods (text in err) */
  ST_TSA_IMPRINT_MISMATCH, /* token stamps other data, or not with SHA-256 */
  ST_TSA_NONCE_MISMATCH,   /* client only: nonce missing or different */
  ST_TSA_POLICY_MISMATCH,  /* client only: not the policy asked for */
  ST_TSA_UNTRUSTED_SIGNER, /* signer certificate does not chain to the CA, expired, wrong EKU */
  ST_TSA_BAD_SIGNATURE,    /* CMS signature or ESS signing-certificate binding wrong */
  ST_TSA_BAD_TOKEN,        /* token content wrong otherwise (version, TSA name, ...) */
} st_tsa_reason;

/* Static lower-case phrase for a reason ("imprint mismatch", ...). */
const char *st_tsa_reason_text(st_tsa_reason r);

/* What a response says. Strings are filled on success (and as far as parsed on failure). */
typedef struct st_tsa_info_s {
  st_tsa_reason reason;
  int status;             /* PKIStatus: 0 granted, 1 grantedWithMods, 2.. refused; -1 unknown */
  int64_t gen_time;       /* genTime, seconds since the Unix epoch (UTC) */
  st_buf_t gen_time_text; /* RFC 3339 UTC, e.g. "2025-01-02T03:04:05Z" (fraction kept) */
  st_buf_t serial_hex;    /* lower-case hex, '-' prefix if negative */
  st_buf_t policy_oid;    /* dotted decimal */
  st_buf_t tsa_name;      /* the TSA GeneralName as text (RFC 2253 for a directory name), or "" */
  st_buf_t nonce_hex;     /* lower-case hex, "" if absent */
} st_tsa_info_t;

void st_tsa_info_init(st_tsa_info_t *info);
void st_tsa_info_release(st_tsa_info_t *info);

/* Client options; zero-initialise, set url. */
typedef struct st_tsa_opts_s {
  const char *url;          /* http:// or https:// (no other scheme, no redirects) */
  const char *policy_oid;   /* reqPolicy, dotted decimal; NULL = TSA default */
  const char *ca_file;      /* PEM CA bundle for https; NULL = system store */
  long timeout_ms;          /* whole exchange; 0 = 30000 */
  long connect_timeout_ms;  /* 0 = 10000 */
  size_t max_response;      /* 0 or larger than ST_TSA_MAX_RESPONSE = ST_TSA_MAX_RESPONSE */
} st_tsa_opts_t;

/* Build a DER TimeStampReq: version 1, SHA-256 imprint of data, a fresh random 64-bit
 * nonce, certReq true, reqPolicy if policy_oid is non-NULL. Appends to req_der. */
int st_tsa_request_new(const void *data, size_t data_len, const char *policy_oid,
                       st_buf_t *req_der, st_error_t *err) ST_MUST_CHECK;

/* Check that resp_der is a granted answer to req_der (see the top comment) and fill info
 * (may be NULL). ST_EVERIFY with info->reason on a refused status or a mismatch. */
int st_tsa_response_check(const void *req_der, size_t req_len, const void *resp_der,
                          size_t resp_len, st_tsa_info_t *info, st_error_t *err) ST_MUST_CHECK;

/* Ask opts->url to stamp data. On success resp_der holds the full TimeStampResp DER
 * (appended; cap it or not, the response bound applies anyway) and info (may be NULL) what
 * it says. Blocking: call from a worker thread, never from the loop. */
int st_tsa_stamp(const st_tsa_opts_t *opts, const void *data, size_t data_len,
                 st_buf_t *resp_der, st_tsa_info_t *info, st_error_t *err) ST_MUST_CHECK;

/* Verify a TimeStampResp against data: status granted, token version 1, SHA-256 imprint of
 * data, CMS signature, ESS binding, signer chain to a certificate of ca_pem (PEM bytes, at
 * least one certificate) with EKU timeStamping, checked at the current time. chain_pem
 * (optional, may be NULL/0) adds untrusted intermediates or the signer when the token lacks
 * them. Fills info (may be NULL; reason set on failure). */
int st_tsa_verify(const void *resp_der, size_t resp_len, const void *data, size_t data_len,
                  const void *ca_pem, size_t ca_pem_len, const void *chain_pem,
                  size_t chain_pem_len, st_tsa_info_t *info, st_error_t *err) ST_MUST_CHECK;

/* Append the certificates embedded in the response's token to pem_out as PEM, the signer
 * first and then its issuers as far as the token has them, then any others. *count (may be
 * NULL) gets their number (0 if the TSA sent none). Does not judge trust. */
int st_tsa_certs_pem(const void *resp_der, size_t resp_len, st_buf_t *pem_out, size_t *count,
                     st_error_t *err) ST_MUST_CHECK;

#endif
