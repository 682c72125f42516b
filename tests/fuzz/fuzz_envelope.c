/* fuzz_envelope.c: libFuzzer target for the job envelope decoder (untrusted bytes from
 * Redis). Anything that decodes must re-encode and decode to the same envelope. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

static const char *const types[] = {"probe", "snapshot", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_envelope_limits_t lim = {1 << 16, types};
  st_envelope_t e, again;
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;

  if (st_envelope_decode(&e, data, size, &lim, &err))
    return 0;
  if (st_envelope_encode(&e, 0, &b, &err) ||
      st_envelope_decode(&again, b.data, b.len, &lim, &err))
    abort();
  if (strcmp(e.job_id, again.job_id) || strcmp(e.tenant, again.tenant) ||
      e.attempt != again.attempt || e.not_before != again.not_before ||
      !json_equal(e.payload, again.payload))
    abort();
  st_envelope_release(&again);
  st_envelope_release(&e);
  st_buf_release(&b);
  return 0;
}
