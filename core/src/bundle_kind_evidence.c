/* bundle_kind_evidence.c: the rule of kind `evidence`. A snapshot bundle keeps the generic
 * rule. A portable export (metadata.export, written by st_evidence_export; see
 * evidence_port.h and docs/airgap/evidence.md) must carry a custody segment the receiver
 * can check without the source locker:
 *   export = {"schema": "stella.evidence-export/v1",
 *             "source": {"tenant", "bundle_id", "merkle_root", "manifest_sha256",
 *                        "object_sha256", ...},
 *             "redacted": [names], "custody": [{"seq", "record", "hash"}, ...]}
 * Each custody item's hash is SHA-256 of the canonical JSON (RFC 8785) of its record,
 * exactly as the source locker chained it (evidence_custody.c); seqs strictly increase,
 * consecutive seqs link (record.prev_hash = the previous item's hash), every record names
 * the source tenant and bundle, and one record anchors the segment to this payload: an
 * evidence.sealed or evidence.imported record whose bundle_sha256 is source.object_sha256
 * and whose detail names source.merkle_root and source.manifest_sha256. With the manifest
 * at hand (verification) the bundle's own Merkle root must be source.merkle_root: an
 * export carries exactly the payload the source sealed, so the two roots agree. */
#include <string.h>

#include "bundle_internal.h"
#include "stella/jcs.h"

#define EXPORT_SCHEMA "stella.evidence-export/v1"
#define CUSTODY_MAX 100000

static int hex64(const char *s) {
  return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static const char *str(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static int same(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static int is_anchor(const json_t *rec, const json_t *src) {
  const char *ev = str(rec, "event");
  const json_t *d = json_object_get(rec, "detail");
  return (same(ev, "evidence.sealed") || same(ev, "evidence.imported")) &&
         same(str(rec, "bundle_sha256"), str(src, "object_sha256")) &&
         same(str(d, "merkle_root"), str(src, "merkle_root")) &&
         same(str(d, "manifest_sha256"), str(src, "manifest_sha256"));
}

/* One custody item; *prev_seq / prev_hash carry the chain between calls. */
static int custody_item(const json_t *it, size_t i, const json_t *src, json_int_t *prev_seq,
                        char prev_hash[ST_SHA256_HEX_LEN + 1], st_buf_t *canon, st_error_t *err) {
  const json_t *rec = json_object_get(it, "record");
  json_int_t seq = json_integer_value(json_object_get(it, "seq"));
  const char *hash = str(it, "hash"), *prev = str(rec, "prev_hash");
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];

  if (!json_is_object(it) || json_object_size(it) != 3 || !json_is_object(rec) || seq < 1 ||
      !hex64(hash) || !hex64(prev))
    return st_fail(err, ST_EVERIFY, "custody[%zu]: want {seq, record, hash}", i);
  if (json_integer_value(json_object_get(rec, "seq")) != seq ||
      json_integer_value(json_object_get(rec, "v")) != 1)
    return st_fail(err, ST_EVERIFY, "custody[%zu]: record seq or version disagrees", i);
  if (!same(str(rec, "tenant"), str(src, "tenant")) ||
      !same(str(rec, "bundle_id"), str(src, "bundle_id")))
    return st_fail(err, ST_EVERIFY, "custody seq %lld: names another tenant or bundle",
                   (long long)seq);
  st_buf_reset(canon);
  if (st_jcs_encode(rec, canon, err) || st_sha256(canon->data, canon->len, d))
    return st_fail(err, ST_EVERIFY, "custody seq %lld: record cannot be encoded", (long long)seq);
  st_sha256_hex(d, hex);
  if (strcmp(hex, hash))
    return st_fail(err, ST_EVERIFY, "custody seq %lld: hash does not match the record",
                   (long long)seq);
  if (seq <= *prev_seq)
    return st_fail(err, ST_EVERIFY, "custody seq %lld: out of order", (long long)seq);
  if (seq == *prev_seq + 1 && strcmp(prev, prev_hash))
    return st_fail(err, ST_EVERIFY, "custody seq %lld: prev_hash is not seq %lld's hash",
                   (long long)seq, (long long)*prev_seq);
  *prev_seq = seq;
  memcpy(prev_hash, hex, sizeof(hex));
  return 0;
}

int st__bundle_kind_evidence_check(const json_t *metadata, const st__manifest_t *m,
                                   st_error_t *err) {
  const json_t *ex = json_object_get(metadata, "export"), *src, *cus, *it;
  /* seq 1 links to 64 zeros, like the first record of every chain */
  char prev_hash[ST_SHA256_HEX_LEN + 1] =
      "0000000000000000000000000000000000000000000000000000000000000000";
  char root[ST_SHA256_HEX_LEN + 1];
  st_buf_t canon = ST_BUF_INIT;
  json_int_t prev_seq = 0;
  int rc, anchored = 0;
  size_t i;

  if ((rc = st__bundle_kind_generic_check(metadata, m, err)) || !ex)
    return rc;
  src = json_object_get(ex, "source");
  cus = json_object_get(ex, "custody");
  if (!json_is_object(ex) || !same(str(ex, "schema"), EXPORT_SCHEMA))
    return st_fail(err, ST_EVERIFY, "metadata export.schema: want \"" EXPORT_SCHEMA "\"");
  if (!json_is_object(src) || !str(src, "tenant") || !str(src, "bundle_id") ||
      !hex64(str(src, "merkle_root")) || !hex64(str(src, "manifest_sha256")) ||
      !hex64(str(src, "object_sha256")))
    return st_fail(err, ST_EVERIFY,
                   "metadata export.source: want tenant, bundle_id and "
                   "merkle_root, manifest_sha256, object_sha256 (64 lower-case hex)");
  if (!json_is_array(json_object_get(ex, "redacted")))
    return st_fail(err, ST_EVERIFY, "metadata export.redacted: want an array");
  if (!json_is_array(cus) || !json_array_size(cus) || json_array_size(cus) > CUSTODY_MAX)
    return st_fail(err, ST_EVERIFY, "metadata export.custody: want 1..%d records", CUSTODY_MAX);
  if (m) {
    st_sha256_hex(m->root_hash, root);
    if (strcmp(root, str(src, "merkle_root")) || strcmp(m->id, str(src, "bundle_id")))
      return st_fail(err, ST_EVERIFY,
                     "metadata export.source: the payload or id is not "
                     "the source bundle's (Merkle root %s)",
                     root);
  }
  st_buf_init(&canon, ST_BUNDLE_META_MAX);
  json_array_foreach(cus, i, it) {
    if ((rc = custody_item(it, i, src, &prev_seq, prev_hash, &canon, err)))
      goto done;
    anchored |= is_anchor(json_object_get(it, "record"), src);
  }
  if (!anchored)
    rc = st_fail(err, ST_EVERIFY,
                 "metadata export.custody: no evidence.sealed or "
                 "evidence.imported record names this payload");
done:
  st_buf_release(&canon);
  return rc;
}
