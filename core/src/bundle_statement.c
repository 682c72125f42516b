/* bundle_statement.c: the in-toto Statement v1 a bundle signs, written in canonical form and
 * parsed back strictly, its match against a manifest, and the raw signature bytes of our own
 * single-signature DSSE envelope (the data RFC 3161 stamps).
 *
 * Statement: subject = manifest.json and, unless private, every entry (sorted by name, so
 * manifest.json comes first); predicate = {created, disclosure "entries"|"private", id, kind,
 * merkleRoot, merkleSize, tenant}. */
#include <stdio.h>
#include <string.h>

#include "bundle_internal.h"
#include "stella/base64.h"
#include "stella/json.h"
#include "stella/mem.h"

static int add_subject(st_buf_t *out, const char *name, const uint8_t d[ST_SHA256_LEN]) {
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc;
  st_sha256_hex(d, hex);
  if ((rc = st_buf_addf(out, "{\"digest\":{\"sha256\":\"%s\"},\"name\":", hex)) ||
      (rc = st_buf_add_json_str(out, name, strlen(name))) || (rc = st_buf_addc(out, '}')))
    return rc;
  return 0;
}

int st__bundle_statement_write(const st__manifest_in_t *in, const uint8_t md[ST_SHA256_LEN],
                               int private_subjects, st_buf_t *out, st_error_t *err) {
  char hex[ST_SHA256_HEX_LEN + 1];
  size_t start = out->len;
  int rc;

  st_sha256_hex(in->root, hex);
  if ((rc = st_buf_adds(out, "{\"_type\":\"" ST_BUNDLE_STATEMENT_TYPE "\",\"predicate\":{"
                        "\"created\":")) ||
      (rc = st_buf_add_json_str(out, in->created, strlen(in->created))) ||
      (rc = st_buf_addf(out, ",\"disclosure\":\"%s\",\"id\":",
                        private_subjects ? "private" : "entries")) ||
      (rc = st_buf_add_json_str(out, in->id, strlen(in->id))) ||
      (rc = st_buf_adds(out, ",\"kind\":")) ||
      (rc = st_buf_add_json_str(out, in->kind, strlen(in->kind))) ||
      (rc = st_buf_addf(out, ",\"merkleRoot\":\"%s\",\"merkleSize\":%zu,\"tenant\":", hex,
                        in->n)) ||
      (rc = st_buf_add_json_str(out, in->tenant, strlen(in->tenant))) ||
      (rc = st_buf_adds(out, "},\"predicateType\":\"" ST_BUNDLE_PREDICATE_TYPE
                        "\",\"subject\":[")) ||
      (rc = add_subject(out, "manifest.json", md)))
    goto done;
  for (size_t i = 0; !private_subjects && i < in->n; i++)
    if ((rc = st_buf_addc(out, ',')) ||
        (rc = add_subject(out, in->entries[i].path, in->entries[i].sha256)))
      goto done;
  rc = st_buf_adds(out, "]}");
done:
  if (rc) {
    st_fail(err, rc, "statement: %s", st_strerror(rc));
    out->len = start;
    out->data[start] = '\0';
  }
  return rc;
}

static int hex_of(const json_t *v, uint8_t out[ST_SHA256_LEN]) {
  const char *s = json_string_value(v);
  if (!s || json_string_length(v) != ST_SHA256_HEX_LEN ||
      strspn(s, "0123456789abcdef") != ST_SHA256_HEX_LEN)
    return ST_EPARSE;
  return st_sha256_from_hex(s, ST_SHA256_HEX_LEN, out);
}

static const char *pred_str(const json_t *p, const char *name) {
  return json_string_value(json_object_get(p, name));
}

int st__bundle_statement_parse(const char *data, size_t len, st__statement_t *s,
                               st_error_t *err) {
  st_json_limits_t lim = {ST_BUNDLE_META_MAX, 0};
  const json_t *pred, *subj, *first, *mv;
  const char *t, *disc;
  int rc;

  memset(s, 0, sizeof(*s));
  if ((rc = st_json_parse(data, len, &lim, &s->root, err))) {
    st_error_wrap(err, "statement");
    goto done;
  }
  rc = ST_EPARSE;
  t = json_string_value(json_object_get(s->root, "_type"));
  if (!t || strcmp(t, ST_BUNDLE_STATEMENT_TYPE) || json_object_size(s->root) != 4) {
    st_fail(err, rc, "statement: _type is not %s (or extra members)", ST_BUNDLE_STATEMENT_TYPE);
    goto done;
  }
  t = json_string_value(json_object_get(s->root, "predicateType"));
  if (!t || strcmp(t, ST_BUNDLE_PREDICATE_TYPE)) {
    st_fail(err, rc, "statement: predicateType is not %s", ST_BUNDLE_PREDICATE_TYPE);
    goto done;
  }
  pred = json_object_get(s->root, "predicate");
  s->kind = pred_str(pred, "kind");
  s->id = pred_str(pred, "id");
  s->tenant = pred_str(pred, "tenant");
  s->created = pred_str(pred, "created");
  disc = pred_str(pred, "disclosure");
  mv = json_object_get(pred, "merkleSize");
  if (!json_is_object(pred) || json_object_size(pred) != 7 || !s->kind || !s->id ||
      !s->tenant || !s->created || !disc ||
      (strcmp(disc, "entries") && strcmp(disc, "private")) || !json_is_integer(mv) ||
      json_integer_value(mv) < 0 || hex_of(json_object_get(pred, "merkleRoot"), s->merkle_root)) {
    st_fail(err, rc, "statement: predicate must be {created, disclosure, id, kind, merkleRoot, "
            "merkleSize, tenant} with valid values");
    goto done;
  }
  s->merkle_size = (uint64_t)json_integer_value(mv);
  s->private_subjects = strcmp(disc, "private") == 0;
  subj = json_object_get(s->root, "subject");
  if (!json_is_array(subj) || json_array_size(subj) == 0) {
    st_fail(err, rc, "statement: subject is not a non-empty array");
    goto done;
  }
  for (size_t i = 0; i < json_array_size(subj); i++) {
    const json_t *o = json_array_get(subj, i), *d = json_object_get(o, "digest");
    const char *name = json_string_value(json_object_get(o, "name"));
    uint8_t tmp[ST_SHA256_LEN];
    if (!name || json_object_size(o) != 2 || json_object_size(d) != 1 ||
        hex_of(json_object_get(d, "sha256"), tmp)) {
      st_fail(err, rc, "statement: subject[%zu] is not {name, digest {sha256}}", i);
      goto done;
    }
  }
  first = json_array_get(subj, 0);
  if (strcmp(json_string_value(json_object_get(first, "name")), "manifest.json") ||
      hex_of(json_object_get(json_object_get(first, "digest"), "sha256"), s->manifest_sha256)) {
    st_fail(err, rc, "statement: subject[0] is not manifest.json");
    goto done;
  }
  s->subjects = subj;
  rc = 0;
done:
  if (rc)
    st__bundle_statement_release(s);
  return rc;
}

void st__bundle_statement_release(st__statement_t *s) {
  json_decref(s->root);
  memset(s, 0, sizeof(*s));
}

int st__bundle_statement_match(const st__statement_t *s, const st__manifest_t *m,
                               const uint8_t md[ST_SHA256_LEN], st_error_t *err) {
  size_t ns = json_array_size(s->subjects);

  if (!st_sha256_equal(md, s->manifest_sha256))
    return st_fail(err, ST_EVERIFY, "manifest.json digest differs from the signed subject");
  if (strcmp(s->kind, m->kind) || strcmp(s->id, m->id) || strcmp(s->tenant, m->tenant) ||
      strcmp(s->created, m->created))
    return st_fail(err, ST_EVERIFY, "signed kind/id/tenant/created differ from manifest.json");
  if (!st_sha256_equal(s->merkle_root, m->root_hash) || s->merkle_size != m->n)
    return st_fail(err, ST_EVERIFY, "signed merkleRoot/merkleSize differ from manifest.json");
  if (ns != (s->private_subjects ? 1 : m->n + 1))
    return st_fail(err, ST_EVERIFY, "statement has %zu subjects, expected %zu", ns,
                   s->private_subjects ? (size_t)1 : m->n + 1);
  for (size_t i = 1; i < ns; i++) {
    const json_t *o = json_array_get(s->subjects, i);
    const st__bentry_t *e = &m->entries[i - 1];
    uint8_t d[ST_SHA256_LEN];
    if (strcmp(json_string_value(json_object_get(o, "name")), e->path) ||
        hex_of(json_object_get(json_object_get(o, "digest"), "sha256"), d) ||
        !st_sha256_equal(d, e->sha256))
      return st_fail(err, ST_EVERIFY, "signed subject[%zu] does not match entry %s", i, e->path);
  }
  return 0;
}

int st__bundle_envelope_sig(const char *env, size_t len, st_buf_t *sig, st_error_t *err) {
  st_json_limits_t lim = {ST_BUNDLE_META_MAX, 8};
  json_t *root = NULL;
  const json_t *sigs;
  const char *s;
  int rc;

  if ((rc = st_json_parse(env, len, &lim, &root, err)))
    return st_error_wrap(err, "manifest.dsse.json");
  sigs = json_object_get(root, "signatures");
  s = json_string_value(json_object_get(json_array_get(sigs, 0), "sig"));
  if (json_array_size(sigs) != 1 || !s) {
    rc = st_fail(err, ST_EPARSE, "manifest.dsse.json: expected exactly one signature");
    goto done;
  }
  st_buf_reset(sig);
  sig->max = ST__BUNDLE_SIG_MAX;
  if ((rc = st_base64_decode(sig, s, strlen(s), err)))
    st_error_wrap(err, "manifest.dsse.json signature");
done:
  json_decref(root);
  return rc;
}
