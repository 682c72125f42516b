/* tsa_internal.h: pieces shared by the RFC 3161 client and verifier (tsa_*.c only).
 * OpenSSL types stay here, never in stella/tsa.h. */
#ifndef STELLA_TSA_INTERNAL_H
#define STELLA_TSA_INTERNAL_H

#include <openssl/ts.h>

#include "stella/tsa.h"

/* Decode a full TimeStampResp: size bound, exact DER (no trailing bytes), status granted or
 * grantedWithMods (else ST_EVERIFY/NOT_GRANTED with the status text), a token present, at
 * most ST_TSA_MAX_CERTS certificates in it; then fill info from the TSTInfo. *out is the
 * caller's to TS_RESP_free. */
int st__tsa_resp_parse(const void *der, size_t len, TS_RESP **out, st_tsa_info_t *info,
                       st_error_t *err);

/* Turn a failed TS_RESP_verify_response into ST_EVERIFY with a reason taken from the
 * OpenSSL error queue (which it drains); `what` prefixes the message. */
int st__tsa_verify_failed(const char *what, st_tsa_info_t *info, st_error_t *err);

/* Record a reason (info may be NULL) and fail with code, as st_fail does. */
#define st__tsa_fail(info, reason, err, ...) \
  (st__tsa_set_reason((info), (reason)), st_fail((err), __VA_ARGS__))
static inline void st__tsa_set_reason(st_tsa_info_t *info, st_tsa_reason reason) {
  if (info)
    info->reason = reason;
}

/* A TimeStampReq with the SHA-256 imprint of data and no nonce or policy, as the verifier
 * compares against; nonce and policy are added by the client. */
int st__tsa_req_for_data(const void *data, size_t data_len, TS_REQ **out, st_error_t *err);

#endif
