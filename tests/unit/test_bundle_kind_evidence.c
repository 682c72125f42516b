/* test_bundle_kind_evidence.c: the kind `evidence` rule for portable exports
 * (core/src/bundle_kind_evidence.c) through the public bundle API: st_bundle_seal runs it
 * on the metadata, st_bundle_verify runs it again with the manifest (the Merkle root must
 * be the source's). A good custody segment seals and verifies; each defect a receiver
 * must catch (an edited record, records out of order, a broken link, seq 1 not linked to
 * zeros, another bundle's record, no anchoring sealed/imported record, a wrong schema, a
 * payload other than the source's) is refused with a reason naming it. */
#include "st_test.h"

#include <string.h>

#include "keys_fixtures.h"
#include "stella/bundle.h"
#include "stella/jcs.h"
#include "stella/sha256.h"

#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"
#define OBJ "1111111111111111111111111111111111111111111111111111111111111111"
#define MAN "2222222222222222222222222222222222222222222222222222222222222222"

static const char content[] = "{\"sbom\":1}";
static st_bundle_input_t input = {"inputs/a.json", ST_BUNDLE_SRC_MEM,   NULL,
                                  content,         sizeof(content) - 1, NULL};

static void hash_of(const json_t *rec, char hex[65]) {
  st_buf_t b = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  assert_int_equal(st_jcs_encode(rec, &b, NULL), 0);
  assert_int_equal(st_sha256(b.data, b.len, d), 0);
  st_sha256_hex(d, hex);
  st_buf_release(&b);
}

static json_t *record(long long seq, const char *event, const char *bundle, const char *prev,
                      const char *root) {
  json_t *r = json_pack("{s:i, s:s, s:I, s:s, s:s, s:s, s:s, s:n, s:s, s:{}, s:s}", "v", 1,
                        "tenant", "t1", "seq", (json_int_t)seq, "event", event, "bundle_id", bundle,
                        "bundle_sha256", OBJ, "actor", "alice", "request_id", "at",
                        "2026-01-01T00:00:00Z", "detail", "prev_hash", prev);
  assert_non_null(r);
  if (!strcmp(event, "evidence.sealed"))
    json_object_set_new(r, "detail",
                        json_pack("{s:s, s:s}", "merkle_root", root, "manifest_sha256", MAN));
  return r;
}

/* {seq, record, hash} with the record's own hash; *hash gets it. */
static json_t *item(json_t *rec, char hash[65]) {
  hash_of(rec, hash);
  return json_pack("{s:O, s:o, s:s}", "seq", json_object_get(rec, "seq"), "record", rec, "hash",
                   hash);
}

/* Metadata of an export of bundle "b1" of tenant t1 whose payload has Merkle root root:
 * records 1 (created) and 2 (sealed). */
static json_t *metadata(const char *root) {
  char h1[65], h2[65];
  json_t *c = json_array();
  json_array_append_new(c, item(record(1, "evidence.created", "b1", ZERO, root), h1));
  json_array_append_new(c, item(record(2, "evidence.sealed", "b1", h1, root), h2));
  return json_pack("{s:s, s:{s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:[s], s:o}}", "snapshot_kind",
                   "job", "export", "schema", "stella.evidence-export/v1", "source", "tenant", "t1",
                   "bundle_id", "b1", "merkle_root", root, "manifest_sha256", MAN, "object_sha256",
                   OBJ, "redacted", "run.actor", "custody", c);
}

static json_t *custody(json_t *meta, size_t i) {
  return json_array_get(json_object_get(json_object_get(meta, "export"), "custody"), i);
}

/* Replace item i's hash with its record's (after an edit that keeps the record "valid"). */
static void rehash(json_t *meta, size_t i) {
  char h[65];
  hash_of(json_object_get(custody(meta, i), "record"), h);
  json_object_set_new(custody(meta, i), "hash", json_string(h));
}

static int seal(const json_t *meta, st_signer_t *s, const char *out, st_error_t *err) {
  st_bundle_spec_t spec = {0};
  spec.kind = "evidence";
  spec.id = "b1";
  spec.tenant = "t1";
  spec.created = "2026-01-01T00:00:00Z";
  spec.metadata = meta;
  spec.inputs = &input;
  spec.ninputs = 1;
  return st_bundle_seal(&spec, s, NULL, out, err);
}

static void refused(json_t *meta, const char *why) {
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  char *dir = fx_tmpdir(), out[256];
  st_error_t err = ST_ERROR_INIT;
  snprintf(out, sizeof(out), "%s/x.tgz", dir);
  assert_int_not_equal(seal(meta, s, out, &err), 0);
  if (!strstr(st_error_text(&err), why))
    fail_msg("error '%s' lacks '%s'", st_error_text(&err), why);
  json_decref(meta);
  st_signer_free(s);
  fx_rmdir(dir);
}

/* The Merkle root of the one-input payload, from a generic bundle of it. */
static void payload_root(char root[65]) {
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  char *dir = fx_tmpdir(), out[256];
  st_error_t err = ST_ERROR_INIT;
  st_bundle_sealed_t res;
  st_bundle_spec_t spec = {0};
  snprintf(out, sizeof(out), "%s/g.tgz", dir);
  spec.kind = "generic";
  spec.created = "2026-01-01T00:00:00Z";
  spec.inputs = &input;
  spec.ninputs = 1;
  spec.result = &res;
  assert_int_equal(st_bundle_seal(&spec, s, NULL, out, &err), 0);
  memcpy(root, res.merkle_root, 65);
  st_signer_free(s);
  fx_rmdir(dir);
}

static void verify(const json_t *meta, int want_ok, const char *why) {
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  st_pubkey_t *k = fx_pubkey(ED25519_PUB_PEM);
  const st_pubkey_t *keys[1] = {k};
  st_bundle_trust_t trust = {keys, 1, NULL, 0, NULL};
  st_bundle_report_t rep;
  char *dir = fx_tmpdir(), out[256];
  st_error_t err = ST_ERROR_INIT;
  int rc;
  snprintf(out, sizeof(out), "%s/x.tgz", dir);
  assert_int_equal(seal(meta, s, out, &err), 0);
  st_bundle_report_init(&rep);
  rc = st_bundle_verify(out, &trust, &rep, &err);
  if (want_ok) {
    if (rc)
      fail_msg("verify: %s", st_error_text(&err));
  } else {
    assert_int_equal(rc, ST_EVERIFY);
    assert_string_equal(st_bundle_report_failed(&rep)->name, "kind");
    assert_non_null(strstr(st_bundle_report_failed(&rep)->reason.data, why));
  }
  st_bundle_report_release(&rep);
  st_pubkey_free(k);
  st_signer_free(s);
  fx_rmdir(dir);
}

static void test_good_segment_verifies(void **state) {
  char root[65];
  json_t *m;
  (void)state;
  payload_root(root);
  m = metadata(root);
  verify(m, 1, NULL);
  json_decref(m);
}

static void test_other_payload_refused(void **state) {
  json_t *m = metadata(MAN); /* claims a root the payload does not have */
  (void)state;
  verify(m, 0, "not the source bundle's");
  json_decref(m);
}

static void test_edited_record(void **state) {
  json_t *m = metadata(MAN);
  (void)state;
  json_object_set_new(json_object_get(custody(m, 0), "record"), "actor", json_string("mallory"));
  refused(m, "custody seq 1: hash does not match the record");
}

static void test_out_of_order(void **state) {
  json_t *m = metadata(MAN), *c = json_object_get(json_object_get(m, "export"), "custody");
  json_t *first = json_incref(json_array_get(c, 0));
  (void)state;
  json_array_remove(c, 0);
  json_array_append_new(c, first);
  refused(m, "custody seq 1: out of order");
}

static void test_broken_link(void **state) {
  json_t *m = metadata(MAN);
  (void)state;
  json_object_set_new(json_object_get(custody(m, 1), "record"), "prev_hash", json_string(OBJ));
  rehash(m, 1);
  refused(m, "custody seq 2: prev_hash is not seq 1's hash");
}

static void test_first_not_linked_to_zeros(void **state) {
  json_t *m = metadata(MAN);
  (void)state;
  json_object_set_new(json_object_get(custody(m, 0), "record"), "prev_hash", json_string(OBJ));
  rehash(m, 0);
  refused(m, "custody seq 1: prev_hash is not seq 0's hash");
}

static void test_gap_is_allowed(void **state) {
  json_t *m = metadata(MAN);
  (void)state;
  /* seq 2 becomes seq 7: other bundles' records sit between, unseen */
  json_object_set_new(json_object_get(custody(m, 1), "record"), "seq", json_integer(7));
  json_object_set_new(custody(m, 1), "seq", json_integer(7));
  rehash(m, 1);
  {
    st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
    char *dir = fx_tmpdir(), out[256];
    st_error_t err = ST_ERROR_INIT;
    snprintf(out, sizeof(out), "%s/x.tgz", dir);
    if (seal(m, s, out, &err))
      fail_msg("%s", st_error_text(&err));
    st_signer_free(s);
    fx_rmdir(dir);
  }
  json_decref(m);
}

static void test_other_bundle_record(void **state) {
  json_t *m = metadata(MAN);
  (void)state;
  json_object_set_new(json_object_get(custody(m, 0), "record"), "bundle_id", json_string("b2"));
  rehash(m, 0);
  refused(m, "names another tenant or bundle");
}

static void test_no_anchor(void **state) {
  json_t *m = metadata(MAN);
  (void)state;
  json_object_set_new(json_object_get(custody(m, 1), "record"), "event",
                      json_string("evidence.accessed"));
  rehash(m, 1);
  refused(m, "no evidence.sealed or evidence.imported record");
}

static void test_bad_schema(void **state) {
  json_t *m = metadata(MAN);
  (void)state;
  json_object_set_new(json_object_get(m, "export"), "schema", json_string("v0"));
  refused(m, "export.schema");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_segment_verifies),
      cmocka_unit_test(test_other_payload_refused),
      cmocka_unit_test(test_edited_record),
      cmocka_unit_test(test_out_of_order),
      cmocka_unit_test(test_broken_link),
      cmocka_unit_test(test_first_not_linked_to_zeros),
      cmocka_unit_test(test_gap_is_allowed),
      cmocka_unit_test(test_other_bundle_record),
      cmocka_unit_test(test_no_anchor),
      cmocka_unit_test(test_bad_schema),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
