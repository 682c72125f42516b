/* fuzz_dsse.c: libFuzzer target for the DSSE envelope parser and verifier (JSON, field
 * checks, strict base64, PAE, signature check) with two trusted keys. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../keys_fixtures.h"
#include "stella/dsse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static st_pubkey_t *keys[2];
  st_buf_t type = ST_BUF_INIT, payload = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  size_t which = 0;
  int rc;

  if (!keys[0]) {
    keys[0] = fx_pubkey(ED25519_PUB_PEM);
    keys[1] = fx_pubkey(P256_PUB_PEM);
  }
  rc = st_dsse_verify((const char *)data, size, (const st_pubkey_t *const *)keys, 2, NULL,
                      &type, &payload, &which, &err);
  /* Invariants: success hands out a type and names a trusted key; failure says why and
   * hands out nothing. */
  if (rc == 0 && (type.len == 0 || which >= 2))
    abort();
  if (rc != 0 && (err.msg[0] == '\0' || type.len != 0 || payload.len != 0))
    abort();
  st_buf_release(&type);
  st_buf_release(&payload);
  return 0;
}
