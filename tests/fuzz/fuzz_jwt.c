/* fuzz_jwt.c: hostile bearer tokens and traceparent headers. The input goes to
 * st_jwt_verify against an HS256 + ES256 key set (so both alg paths parse) and, as a
 * C string, to st_api_traceparent_parse. Nothing may crash, leak or be accepted without
 * the key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "stella/jwt.h"
#include "stella/mem.h"

static const char pub[] = "-----BEGIN PUBLIC KEY-----\n"
                          "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
                          "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
                          "-----END PUBLIC KEY-----\n";
static const char secret[] = "fuzz-secret-fuzz-secret-fuzz-secret!";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static st_jwt_keys_t *keys;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  st_api_trace_t t;
  char *s;

  if (!keys && st_jwt_keys_new(&keys, secret, strlen(secret), pub, NULL, &err))
    abort();
  if (st_jwt_verify(keys, (const char *)data, size, 1700000000, 30, &c, &err) == 0)
    abort(); /* no input can carry a valid signature */
  if ((s = st_strndup((const char *)data, size))) {
    (void)st_api_traceparent_parse(s, &t);
    st_free(s);
  }
  return 0;
}
