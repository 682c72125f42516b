/* bundle_proof.c: selective disclosure. PROOF.json (canonical JSON):
 *   {"content": b64 of the entry's bytes,
 *    "entry": the manifest entry {mediaType, path, sha256, size},
 *    "envelope": manifest.dsse.json (object),
 *    "inclusion": {"hashes": [hex audit path, leaf side first], "index": i, "treeSize": n},
 *    "schema": "stella.bundle-proof/v1",
 *    "timestamp": {"chain": PEM, "response": b64 TimeStampResp}   (when the bundle has one)}
 * It leaves out manifest.json (other entries' names, sizes, digests and the metadata). The
 * signed statement still names every entry and its digest unless the bundle was sealed with
 * private subjects; see docs/bundle-format.md for the trade-off.
 * Verification: DSSE against trusted keys -> statement -> Merkle inclusion of
 * SHA-256(0x00 || JCS(entry)) in the signed merkleRoot/merkleSize -> content digest and size
 * -> timestamp over the signature. */
#include <string.h>

#include "bundle_internal.h"
#include "stella/base64.h"
#include "stella/dsse.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/merkle.h"

static const char *const proof_checks[] = {"proof", "signature", "merkle", "content",
                                           "timestamp"};

static json_t *b64_string(const void *data, size_t len) {
  st_buf_t b = ST_BUF_INIT;
  json_t *j = NULL;
  b.max = (size_t)-1 / 2;
  if (!st_base64_encode(&b, data, len))
    j = json_stringn(b.data, b.len);
  st_buf_release(&b);
  return j;
}

static int build(const st__bread_t *b, const st__manifest_t *m, size_t idx,
                 const st_merkle_proof_t *pr, st_buf_t *out, st_error_t *err) {
  json_t *o = json_object(), *entry = NULL, *env = NULL, *inc = json_object(),
         *hashes = json_array(), *ts = NULL;
  st_buf_t ej = ST_BUF_INIT;
  st_json_limits_t lim = {ST_BUNDLE_META_MAX, 8};
  int rc = ST_ENOMEM;

  if (!o || !inc || !hashes)
    goto nomem;
  if ((rc = st__bundle_entry_jcs(&ej, &m->entries[idx])) ||
      (rc = st_json_parse(ej.data, ej.len, NULL, &entry, err)) ||
      (rc = st_json_parse(b->envelope.data, b->envelope.len, &lim, &env, err)))
    goto done;
  rc = ST_ENOMEM;
  for (size_t i = 0; i < pr->len; i++) {
    char hex[ST_SHA256_HEX_LEN + 1];
    st_sha256_hex(pr->hash + i * ST_SHA256_LEN, hex);
    if (json_array_append_new(hashes, json_string(hex)))
      goto nomem;
  }
  if (json_object_set_new(o, "content", b64_string(b->want_data.data, b->want_data.len)) ||
      json_object_set(o, "entry", entry) || json_object_set(o, "envelope", env) ||
      json_object_set(inc, "hashes", hashes) ||
      json_object_set_new(inc, "index", json_integer((json_int_t)idx)) ||
      json_object_set_new(inc, "treeSize", json_integer((json_int_t)m->n)) ||
      json_object_set(o, "inclusion", inc) ||
      json_object_set_new(o, "schema", json_string(ST_BUNDLE_PROOF_SCHEMA)))
    goto nomem;
  if (b->has_tsr) {
    if (!(ts = json_object()) ||
        json_object_set_new(ts, "chain", json_stringn(b->chain.data, b->chain.len)) ||
        json_object_set_new(ts, "response", b64_string(b->tsr.data, b->tsr.len)) ||
        json_object_set(o, "timestamp", ts))
      goto nomem;
  }
  rc = st_jcs_encode(o, out, err);
  goto done;
nomem:
  rc = st_fail(err, ST_ENOMEM, "proof: out of memory");
done:
  st_buf_release(&ej);
  json_decref(o);
  json_decref(entry);
  json_decref(env);
  json_decref(inc);
  json_decref(hashes);
  json_decref(ts);
  return rc;
}

int st_bundle_prove(const char *bundle_path, const char *entry_path, st_buf_t *proof_json,
                    st_error_t *err) {
  st_tgz_reader_t *rd = NULL;
  st__bread_t b;
  st__manifest_t m;
  st_merkle_proof_t pr = {NULL, 0};
  st_buf_t want = ST_BUF_INIT;
  uint8_t *leaves = NULL, root[ST_SHA256_LEN], d[ST_SHA256_LEN];
  const char *which;
  size_t idx;
  int rc;

  st__bundle_bread_init(&b);
  memset(&m, 0, sizeof(m));
  if (strncmp(entry_path, ST__BUNDLE_PAYLOAD_DIR, strlen(ST__BUNDLE_PAYLOAD_DIR)) &&
      (rc = st_buf_adds(&want, ST__BUNDLE_PAYLOAD_DIR))) {
    st_fail(err, rc, "proof: path");
    goto done;
  }
  if ((rc = st_buf_adds(&want, entry_path))) {
    st_fail(err, rc, "proof: path");
    goto done;
  }
  b.want = want.data;
  if ((rc = st_tgz_reader_open(bundle_path, NULL, &rd, err)) ||
      (rc = st__bundle_read(rd, &b, err))) {
    st_error_wrap(err, "proof: reading %s", bundle_path);
    goto done;
  }
  if (!b.want_found) {
    rc = st_fail(err, ST_ENOENT, "proof: %s has no entry '%.200s'", bundle_path, want.data);
    goto done;
  }
  if (!b.has_manifest || !b.has_envelope) {
    rc = st_fail(err, ST_EVERIFY, "proof: %s lacks manifest.json or manifest.dsse.json",
                 bundle_path);
    goto done;
  }
  if ((rc = st__bundle_manifest_parse(b.manifest.data, b.manifest.len, &m, &which, err))) {
    st_error_wrap(err, "proof: %s check", which);
    rc = ST_EVERIFY;
    goto done;
  }
  for (idx = 0; idx < m.n && strcmp(m.entries[idx].path, want.data); idx++)
    ;
  if (idx == m.n || (rc = st_sha256(b.want_data.data, b.want_data.len, d)) ||
      !st_sha256_equal(d, m.entries[idx].sha256) || b.want_data.len != m.entries[idx].size) {
    rc = st_fail(err, ST_EVERIFY, "proof: '%.200s' does not match manifest.json", want.data);
    goto done;
  }
  if ((rc = st__bundle_merkle(m.entries, m.n, &leaves, root, err)) ||
      (rc = st_merkle_inclusion_proof(leaves, m.n, idx, &pr, err)) ||
      (rc = build(&b, &m, idx, &pr, proof_json, err)))
    goto done;
done:
  st_merkle_proof_release(&pr);
  st_free(leaves);
  st__bundle_manifest_release(&m);
  st__bundle_bread_release(&b);
  st_tgz_reader_free(rd);
  st_buf_release(&want);
  return rc;
}

/* ---- verification ---- */

typedef struct pv_s {
  st_bundle_report_t *r;
  json_t *root;
  st__bentry_t entry;
  st_buf_t content, env, tsr, sig, payload;
  const char *chain;
  size_t chain_len;
  uint64_t index, tree_size;
  uint8_t *hashes;
  size_t nhashes;
} pv_t;

#define SETP(v, name, st, ...) st__bundle_report_set((v)->r, name, st, __VA_ARGS__)

static int hexlist(const json_t *arr, pv_t *v) {
  size_t n = json_array_size(arr);
  if (!json_is_array(arr) || n > ST_MERKLE_MAX_PROOF)
    return ST_EPARSE;
  if (n && !(v->hashes = st_malloc(n * ST_SHA256_LEN)))
    return ST_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const json_t *h = json_array_get(arr, i);
    const char *s = json_string_value(h);
    if (!s || json_string_length(h) != ST_SHA256_HEX_LEN ||
        strspn(s, "0123456789abcdef") != ST_SHA256_HEX_LEN ||
        st_sha256_from_hex(s, ST_SHA256_HEX_LEN, v->hashes + i * ST_SHA256_LEN))
      return ST_EPARSE;
  }
  v->nhashes = n;
  return 0;
}

static int b64_member(const json_t *o, const char *k, st_buf_t *out) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? st_base64_decode(out, s, strlen(s), NULL) : ST_EPARSE;
}

/* Structure of PROOF.json; fills v. Reason in the "proof" check on failure. */
static int parse_proof(const char *json, size_t len, pv_t *v) {
  st_json_limits_t lim = {ST_BUNDLE_PROOF_CONTENT_MAX * 2, 16};
  st_error_t e = ST_ERROR_INIT;
  const json_t *entry, *inc, *ts, *idx, *size;
  const char *schema;
  int rc;

  if (st_json_parse(json, len, &lim, &v->root, &e))
    return SETP(v, "proof", ST_BUNDLE_FAIL, "%s", st_error_text(&e)), ST_EPARSE;
  schema = json_string_value(json_object_get(v->root, "schema"));
  entry = json_object_get(v->root, "entry");
  inc = json_object_get(v->root, "inclusion");
  ts = json_object_get(v->root, "timestamp");
  idx = json_object_get(inc, "index");
  size = json_object_get(inc, "treeSize");
  if (!schema || strcmp(schema, ST_BUNDLE_PROOF_SCHEMA) ||
      json_object_size(v->root) != (ts ? 6u : 5u) || !json_is_object(entry) ||
      json_object_size(inc) != 3 || !json_is_integer(idx) || !json_is_integer(size) ||
      json_integer_value(idx) < 0 || json_integer_value(size) <= json_integer_value(idx) ||
      json_integer_value(size) > ST_BUNDLE_MAX_ENTRIES)
    return SETP(v, "proof", ST_BUNDLE_FAIL, "not a " ST_BUNDLE_PROOF_SCHEMA " document "
                "(schema, content, entry, envelope, inclusion {hashes, index, treeSize}, "
                "[timestamp])"), ST_EPARSE;
  v->index = (uint64_t)json_integer_value(idx);
  v->tree_size = (uint64_t)json_integer_value(size);
  if ((rc = hexlist(json_object_get(inc, "hashes"), v)))
    return SETP(v, "proof", ST_BUNDLE_FAIL, "inclusion.hashes: not a list of hex digests"), rc;
  /* The entry must follow the manifest's rules for an entry. */
  v->entry.path = (char *)json_string_value(json_object_get(entry, "path"));
  v->entry.media_type = (char *)json_string_value(json_object_get(entry, "mediaType"));
  {
    st_buf_t canon = ST_BUF_INIT;
    const json_t *sz = json_object_get(entry, "size");
    const char *hx = json_string_value(json_object_get(entry, "sha256"));
    int bad = json_object_size(entry) != 4 || !v->entry.path || !v->entry.media_type ||
              !json_is_integer(sz) || json_integer_value(sz) < 0 || !hx ||
              strlen(hx) != ST_SHA256_HEX_LEN || strspn(hx, "0123456789abcdef") != 64 ||
              st_sha256_from_hex(hx, 64, v->entry.sha256) ||
              st__bundle_path_check(v->entry.path, strlen(v->entry.path), &e) ||
              !st__bundle_media_type_valid(v->entry.media_type, strlen(v->entry.media_type));
    if (!bad) {
      v->entry.size = (uint64_t)json_integer_value(sz);
      bad = st__bundle_entry_jcs(&canon, &v->entry) != 0;
    }
    st_buf_release(&canon);
    if (bad)
      return SETP(v, "proof", ST_BUNDLE_FAIL, "entry: not a valid manifest entry"), ST_EPARSE;
  }
  v->content.max = ST_BUNDLE_PROOF_CONTENT_MAX;
  if (b64_member(v->root, "content", &v->content))
    return SETP(v, "proof", ST_BUNDLE_FAIL, "content: not base64 (at most %zu bytes)",
                ST_BUNDLE_PROOF_CONTENT_MAX), ST_EPARSE;
  if (!json_is_object(json_object_get(v->root, "envelope")) ||
      st_jcs_encode(json_object_get(v->root, "envelope"), &v->env, NULL))
    return SETP(v, "proof", ST_BUNDLE_FAIL, "envelope: not a JSON object"), ST_EPARSE;
  if (ts) {
    v->chain = json_string_value(json_object_get(ts, "chain"));
    v->chain_len = v->chain ? strlen(v->chain) : 0;
    v->tsr.max = ST_TSA_MAX_RESPONSE;
    if (json_object_size(ts) != 2 || !v->chain || b64_member(ts, "response", &v->tsr))
      return SETP(v, "proof", ST_BUNDLE_FAIL, "timestamp: not {chain PEM, response base64}"),
             ST_EPARSE;
  }
  st__bundle_note(&v->r->entry, v->entry.path);
  SETP(v, "proof", ST_BUNDLE_PASS, ST_BUNDLE_PROOF_SCHEMA " for %s", v->entry.path);
  return 0;
}

static void check_proof(pv_t *v, const st_bundle_trust_t *trust) {
  st_error_t e = ST_ERROR_INIT;
  st__statement_t s;
  st_buf_t ej = ST_BUF_INIT;
  uint8_t leaf[ST_SHA256_LEN], d[ST_SHA256_LEN];
  size_t by = 0;

  memset(&s, 0, sizeof(s));
  if (st__bundle_envelope_sig(v->env.data, v->env.len, &v->sig, &e))
    SETP(v, "signature", ST_BUNDLE_FAIL, "%s", st_error_text(&e));
  else if (!trust->nkeys)
    SETP(v, "signature", ST_BUNDLE_FAIL, "no trusted key given (pass --key)");
  else if (st_dsse_verify(v->env.data, v->env.len, trust->keys, trust->nkeys,
                          ST_BUNDLE_PAYLOAD_TYPE, NULL, &v->payload, &by, &e))
    SETP(v, "signature", ST_BUNDLE_FAIL, "%s", st_error_text(&e));
  else if (st__bundle_statement_parse(v->payload.data, v->payload.len, &s, &e))
    SETP(v, "signature", ST_BUNDLE_FAIL, "signed payload: %s", st_error_text(&e));
  else {
    st__bundle_note(&v->r->keyid, st_pubkey_keyid(trust->keys[by]));
    st__bundle_note(&v->r->kind, s.kind);
    st__bundle_note(&v->r->id, s.id);
    st__bundle_note(&v->r->tenant, s.tenant);
    st__bundle_note(&v->r->created, s.created);
    SETP(v, "signature", ST_BUNDLE_PASS, "statement signed by trusted key %s",
         st_pubkey_keyid(trust->keys[by]));
  }

  if (!s.root)
    SETP(v, "merkle", ST_BUNDLE_FAIL, "no verified statement to check against");
  else if (v->tree_size != s.merkle_size)
    SETP(v, "merkle", ST_BUNDLE_FAIL, "treeSize %llu, signed merkleSize %llu",
         (unsigned long long)v->tree_size, (unsigned long long)s.merkle_size);
  else if (st__bundle_entry_jcs(&ej, &v->entry) || st_merkle_leaf_hash(ej.data, ej.len, leaf) ||
           st_merkle_verify_inclusion(leaf, v->index, v->tree_size, v->hashes, v->nhashes,
                                      s.merkle_root, &e))
    SETP(v, "merkle", ST_BUNDLE_FAIL, "entry is not leaf %llu of the signed Merkle root: %s",
         (unsigned long long)v->index, st_error_text(&e));
  else if (!s.private_subjects &&
           (json_array_size(s.subjects) != v->tree_size + 1 ||
            strcmp(json_string_value(json_object_get(
                       json_array_get(s.subjects, (size_t)v->index + 1), "name")),
                   v->entry.path)))
    SETP(v, "merkle", ST_BUNDLE_FAIL, "signed subjects do not name %s at its index",
         v->entry.path);
  else
    SETP(v, "merkle", ST_BUNDLE_PASS, "leaf %llu of %llu under the signed root",
         (unsigned long long)v->index, (unsigned long long)v->tree_size);

  if (st_sha256(v->content.data, v->content.len, d) || !st_sha256_equal(d, v->entry.sha256) ||
      v->content.len != v->entry.size)
    SETP(v, "content", ST_BUNDLE_FAIL, "content does not match the entry's SHA-256 and size");
  else
    SETP(v, "content", ST_BUNDLE_PASS, "%zu bytes, SHA-256 matches", v->content.len);

  st__bundle_check_timestamp(v->r, trust, v->tsr.data, v->tsr.len, v->chain, v->chain_len,
                             v->sig.data, v->sig.len);
  st__bundle_statement_release(&s);
  st_buf_release(&ej);
}

int st_bundle_proof_verify(const char *json, size_t len, const st_bundle_trust_t *trust,
                           st_bundle_report_t *report, st_error_t *err) {
  static const st_bundle_trust_t none = {0};
  pv_t v;
  int rc;

  memset(&v, 0, sizeof(v));
  v.r = report;
  st_buf_init(&v.content, ST_BUNDLE_PROOF_CONTENT_MAX);
  st_buf_init(&v.env, ST_BUNDLE_META_MAX);
  st_buf_init(&v.tsr, ST_TSA_MAX_RESPONSE);
  st_buf_init(&v.sig, ST__BUNDLE_SIG_MAX);
  st_buf_init(&v.payload, ST_BUNDLE_META_MAX);
  if ((rc = st__bundle_report_start(report, proof_checks, 5, 1))) {
    st_fail(err, rc, "proof verify: out of memory");
    goto done;
  }
  if (parse_proof(json, len, &v) == 0)
    check_proof(&v, trust ? trust : &none);
  rc = st__bundle_report_result(report, err);
done:
  json_decref(v.root);
  st_free(v.hashes);
  st_buf_release(&v.content);
  st_buf_release(&v.env);
  st_buf_release(&v.tsr);
  st_buf_release(&v.sig);
  st_buf_release(&v.payload);
  return rc;
}
