/* fuzz_json.c: bounded parsing and canonical encoding never crash, leak or recurse
 * without bound, and canonical output is a fixed point: JCS(parse(JCS(x))) == JCS(x). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stella/jcs.h"
#include "stella/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_json_limits_t lim = {1 << 20, 64}, relim = {0, 64};
  int rc;
  st_buf_t once = ST_BUF_INIT, twice = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  json_t *v = NULL;

  if (st_json_parse((const char *)data, size, &lim, &v, &err) == 0 &&
      st_jcs_encode(v, &once, &err) == 0) {
    /* Canonical text must parse back and re-encode to the same bytes. One exception,
     * documented in json.h/jcs.h: an integer near LLONG_MAX prints as the double above it
     * (9223372036854776000), an integer literal that st_json_parse refuses (ST_ERANGE).
     * Canonical text can be longer than its source ("1e20"), so no size bound here. */
    relim.max_bytes = once.len + 1;
    rc = st_jcs_canonicalize(once.data, once.len, &relim, &twice, &err);
    if (rc == ST_ERANGE)
      goto done;
    if (rc != 0 || once.len != twice.len || memcmp(once.data, twice.data, once.len) != 0)
      abort();
  }
done:
  json_decref(v);
  st_buf_release(&once);
  st_buf_release(&twice);
  return 0;
}
