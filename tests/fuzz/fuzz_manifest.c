/* fuzz_manifest.c: libFuzzer target for the manifest.json parser and validator (canonical
 * form, member sets, entry rules, sorted unique paths, Merkle root). Invariant: whatever is
 * accepted is written back by the manifest writer to exactly the same bytes, and the
 * report names the failed check otherwise. Uses the internal model (bundle_internal.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/src/bundle_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st__manifest_t m;
  st_error_t err = ST_ERROR_INIT;
  const char *which = NULL;
  int rc = st__bundle_manifest_parse((const char *)data, size, &m, &which, &err);

  if (rc != 0) {
    if (err.msg[0] == '\0' || !which || (strcmp(which, "manifest") && strcmp(which, "merkle")))
      abort();
    return 0;
  }
  {
    st__manifest_in_t in = {m.kind, m.id, m.tenant, m.created, m.metadata, m.entries, m.n,
                            m.root_hash};
    st_buf_t out = ST_BUF_INIT;
    if (st__bundle_manifest_write(&in, &out, &err) || out.len != size ||
        memcmp(out.data, data, size))
      abort();
    st_buf_release(&out);
  }
  st__bundle_manifest_release(&m);
  return 0;
}
