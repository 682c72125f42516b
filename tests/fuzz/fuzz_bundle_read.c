/* fuzz_bundle_read.c: libFuzzer target for whole-bundle verification from memory: the
 * safe tgz reader, the canonical-container rules, SHA256SUMS, manifest, entries, DSSE,
 * Sigstore bundle and kind checks, with the Ed25519 fixture key trusted (the seeds are
 * bundles it signed). Invariants: the result agrees with the report (0 <=> no failed
 * check), a failure names a check, and the report always renders as JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../keys_fixtures.h"
#include "stella/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static st_pubkey_t *key;
  const st_pubkey_t *keys[1];
  st_tgz_limits_t lim;
  st_bundle_trust_t trust;
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t js = ST_BUF_INIT;
  int rc;

  if (!key)
    key = fx_pubkey(ED25519_PUB_PEM);
  keys[0] = key;
  st_tgz_limits_default(&lim);
  lim.max_entries = 1000;
  lim.max_total_bytes = 64 << 20;
  memset(&trust, 0, sizeof(trust));
  trust.keys = keys;
  trust.nkeys = 1;
  trust.limits = &lim;
  st_bundle_report_init(&rep);
  rc = st_bundle_verify_mem(data, size, &trust, &rep, &err);
  if (rc == 0 && st_bundle_report_failed(&rep))
    abort();
  if (rc == ST_EVERIFY && (!st_bundle_report_failed(&rep) || err.msg[0] == '\0'))
    abort();
  if (rc != 0 && rc != ST_EVERIFY && rc != ST_ENOMEM)
    abort();
  if (rc != ST_ENOMEM && st_bundle_report_json(&rep, &js))
    abort();
  st_buf_release(&js);
  st_bundle_report_release(&rep);
  return 0;
}
