/* fuzz_trivy.c: libFuzzer target for the Trivy adapters' outside input: an OSV document
 * through the ledger's validator and the OSV -> Trivy DB mapping (trivy_osv.c), and the
 * same bytes as Maven index lines (the ledger's line parser). Invariants: a rejected
 * document appends nothing and says why; an accepted one appends well-formed records
 * (three lengths and that many bytes each, keys non-empty, values JSON); a Maven line is
 * accepted only if its fields pass the row check again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stella/ledger.h"
#include "stella/mem.h"
#include "trivy/trivy_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void osv(const uint8_t *data, size_t size) {
  static const st__tmap_opts_t o = {"stella", "Stella Ledger", NULL};
  st_ledger_doc_t d = {0};
  st_error_t err = ST_ERROR_INIT;
  st_buf_t out = ST_BUF_INIT;
  json_t *doc, *v;
  char modified[32];
  int w = 0, rc;

  if (st_ledger_doc_parse((const char *)data, size, &d, &err) || d.kind != ST_LEDGER_ADVISORY ||
      !(doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL))) {
    st_ledger_doc_release(&d);
    return;
  }
  rc = st__trivy_map_osv(doc, &o, &out, &w, modified, &err);
  if (rc && (out.len || !err.msg[0]))
    abort();
  for (size_t off = 0; !rc && off < out.len;) {
    uint32_t h[3];
    if (out.len - off < sizeof(h))
      abort();
    memcpy(h, out.data + off, sizeof(h));
    off += sizeof(h);
    if (!h[0] || out.len - off < (size_t)h[0] + h[1] + h[2])
      abort();
    if (!(v = json_loadb(out.data + off + h[0] + h[1], h[2], JSON_DECODE_ANY, NULL)))
      abort();
    json_decref(v);
    off += (size_t)h[0] + h[1] + h[2];
  }
  json_decref(doc);
  st_buf_release(&out);
  st_ledger_doc_release(&d);
}

static void maven(const uint8_t *data, size_t size) {
  char *line = st_malloc(size + 1);
  st_ledger_maven_row_t r;
  st_error_t err = ST_ERROR_INIT;
  if (!line)
    return;
  memcpy(line, data, size);
  line[size] = '\0';
  if (strlen(line) == size && !st_ledger_maven_parse_line(line, size & 1, &r, &err) &&
      st_ledger_maven_check(&r, &err))
    abort();
  st_free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  osv(data, size);
  maven(data, size);
  return 0;
}
