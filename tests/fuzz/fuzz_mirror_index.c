/* fuzz_mirror_index.c: libFuzzer target for mirror index and patch lines (what `stella
 * mirror import` parses from a bundle and a tree). Invariants: an accepted index entry,
 * written back by the index writer, parses again to the same id, digest and size; a
 * refusal always says why. Uses the internal model (workers/mirror/mirror_int.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/mirror/mirror_int.h"
#include "stella/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (int patch = 0; patch < 2; patch++) {
    st__mentry_t e;
    st_error_t err = ST_ERROR_INIT;
    int del = 0, rc = st__mirror_index_parse((const char *)data, size, patch, &e, &del, &err);
    if (rc && err.msg[0] == '\0')
      abort();
    if (!rc && !patch) {
      st_buf_t out = ST_BUF_INIT;
      st__mentry_t again;
      if (st__mirror_index_line(&out, &e, &err) ||
          st__mirror_index_parse(out.data, out.len - 1, 0, &again, &del, &err) ||
          strcmp(again.id, e.id) || memcmp(again.sha, e.sha, ST_SHA256_LEN) || again.size != e.size)
        abort();
      st_free(again.id);
      st_buf_release(&out);
    }
    st_free(e.id);
  }
  return 0;
}
