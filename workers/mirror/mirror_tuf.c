/* mirror_tuf.c: TUF 1.0 metadata for a mirror tree (theupdateframework/specification):
 * writing root, targets, snapshot and timestamp, and checking them the way a client's
 * update workflow does (spec §5: root trusted, then timestamp, snapshot, targets, each
 * signed by its role's keys up to the threshold, unexpired, not older than what the
 * client had, and the hashes and lengths each role promises for the next).
 *
 * Signatures are over the OLPC canonical JSON of "signed" (what securesystemslib and
 * tuf-js compute), keyids are SHA-256 of the canonical key object, signatures hex.
 * Ed25519 keys: keytype/scheme "ed25519", public = 32 raw bytes in hex. P-256:
 * keytype "ecdsa", scheme "ecdsa-sha2-nistp256", public = SPKI PEM, DER signatures.
 * Written by hand: no C TUF library is packaged for Debian. */
#include <string.h>
#include <time.h>

#include "mirror_int.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"

#define SPEC_VERSION "1.0.31"

static const char *const roles[4] = {"root", "targets", "snapshot", "timestamp"};
static const char *const targets_list[] = {"README.md", "mirror.json", "advisories/index.ndjson",
                                           "vex/index.ndjson", "policy-packs/index.ndjson"};
#define NTARGETS (sizeof(targets_list) / sizeof(targets_list[0]))

static const unsigned char ed25519_spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                      0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

static int olpc(const json_t *v, st_buf_t *out, int depth, st_error_t *err) {
  const char *key;
  size_t i, n;
  if (depth > 32)
    return st_fail(err, ST_EDEPTH, "tuf: metadata nested too deep");
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    const char **keys;
    json_t *m;
    int rc = 0;
    n = json_object_size(v);
    if (!(keys = st_calloc(n ? n : 1, sizeof(*keys))))
      return st_fail(err, ST_ENOMEM, "tuf: out of memory");
    i = 0;
    json_object_foreach((json_t *)v, key, m) keys[i++] = key;
    for (size_t a = 1; a < n; a++) /* insertion sort: objects here are small */
      for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
        const char *t = keys[b];
        keys[b] = keys[b - 1];
        keys[b - 1] = t;
      }
    if (st_buf_addc(out, '{'))
      rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    for (i = 0; !rc && i < n; i++) {
      json_t *k = json_string(keys[i]);
      if (!k || (i && st_buf_addc(out, ',')))
        rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
      else if (!(rc = olpc(k, out, depth + 1, err)) && st_buf_addc(out, ':'))
        rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
      if (!rc)
        rc = olpc(json_object_get(v, keys[i]), out, depth + 1, err);
      json_decref(k);
    }
    if (!rc && st_buf_addc(out, '}'))
      rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    st_free(keys);
    return rc;
  }
  case JSON_ARRAY:
    if (st_buf_addc(out, '['))
      return st_fail(err, ST_ENOMEM, "tuf: out of memory");
    for (i = 0; i < json_array_size(v); i++) {
      int rc;
      if (i && st_buf_addc(out, ','))
        return st_fail(err, ST_ENOMEM, "tuf: out of memory");
      if ((rc = olpc(json_array_get(v, i), out, depth + 1, err)))
        return rc;
    }
    return st_buf_addc(out, ']') ? st_fail(err, ST_ENOMEM, "tuf: out of memory") : 0;
  case JSON_STRING: {
    const char *s = json_string_value(v);
    n = json_string_length(v);
    if (st_buf_addc(out, '"'))
      return st_fail(err, ST_ENOMEM, "tuf: out of memory");
    for (i = 0; i < n; i++)
      if (((s[i] == '"' || s[i] == '\\') && st_buf_addc(out, '\\')) || st_buf_addc(out, s[i]))
        return st_fail(err, ST_ENOMEM, "tuf: out of memory");
    return st_buf_addc(out, '"') ? st_fail(err, ST_ENOMEM, "tuf: out of memory") : 0;
  }
  case JSON_INTEGER:
    return st_buf_addf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v))
               ? st_fail(err, ST_ENOMEM, "tuf: out of memory")
               : 0;
  case JSON_TRUE:
    return st_buf_adds(out, "true") ? st_fail(err, ST_ENOMEM, "tuf: out of memory") : 0;
  case JSON_FALSE:
    return st_buf_adds(out, "false") ? st_fail(err, ST_ENOMEM, "tuf: out of memory") : 0;
  case JSON_NULL:
    return st_buf_adds(out, "null") ? st_fail(err, ST_ENOMEM, "tuf: out of memory") : 0;
  default:
    return st_fail(err, ST_EPARSE, "tuf: canonical JSON has no non-integer numbers");
  }
}

int st__tuf_canonical(const json_t *v, st_buf_t *out, st_error_t *err) {
  return olpc(v, out, 0, err);
}

/* The TUF key object of a public key and its keyid. */
static int key_object(const st_pubkey_t *k, json_t **obj, char keyid[ST_SHA256_HEX_LEN + 1],
                      st_error_t *err) {
  st_buf_t c = ST_BUF_INIT, hex = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  size_t len;
  const unsigned char *spki = st_pubkey_spki(k, &len);
  int rc = 0;

  if (st_pubkey_type(k) == ST_KEY_ED25519) {
    if (len != 44 || st_buf_add_hex(&hex, spki + 12, 32)) {
      rc = st_fail(err, ST_EUNSUPPORTED, "tuf: unexpected Ed25519 key encoding");
      goto done;
    }
    *obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
                     "public", hex.data);
  } else {
    *obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ecdsa", "scheme", "ecdsa-sha2-nistp256",
                     "keyval", "public", st_pubkey_pem(k));
  }
  if (!*obj) {
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    goto done;
  }
  if ((rc = st__tuf_canonical(*obj, &c, err)))
    goto done;
  if (st_sha256(c.data, c.len, d))
    rc = st_fail(err, ST_ECRYPTO, "tuf: sha256");
  else
    st_sha256_hex(d, keyid);
done:
  st_buf_release(&c);
  st_buf_release(&hex);
  return rc;
}

/* A public key from a TUF key object (ST_EUNSUPPORTED for other types). */
static int key_from_object(const json_t *o, st_pubkey_t **out, st_error_t *err) {
  const char *type = json_string_value(json_object_get(o, "keytype"));
  const char *scheme = json_string_value(json_object_get(o, "scheme"));
  const char *pub = json_string_value(json_object_get(json_object_get(o, "keyval"), "public"));
  unsigned char der[44];
  if (!type || !scheme || !pub)
    return st_fail(err, ST_EVERIFY, "tuf: key without keytype, scheme or keyval.public");
  if (!strcmp(type, "ed25519") && !strcmp(scheme, "ed25519")) {
    memcpy(der, ed25519_spki_prefix, 12);
    if (strlen(pub) != 64 || st_sha256_from_hex(pub, 64, der + 12)) /* 32 bytes of hex */
      return st_fail(err, ST_EVERIFY, "tuf: ed25519 public key is not 64 hex digits");
    return st_pubkey_from_spki(out, der, sizeof(der), err);
  }
  if (!strcmp(type, "ecdsa") && !strcmp(scheme, "ecdsa-sha2-nistp256"))
    return st_pubkey_from_pem(out, pub, strlen(pub), err);
  return st_fail(err, ST_EUNSUPPORTED, "tuf: key type %.32s/%.32s", type, scheme);
}

/* Sign `signed` into {"signatures": [...], "signed": signed} and write it canonical. */
static int write_role(const char *tree, const char *role, json_t *signed_, st_signer_t *signer,
                      const char *keyid, st_buf_t *file, st_error_t *err) {
  st_buf_t c = ST_BUF_INIT, sig = ST_BUF_INIT, hex = ST_BUF_INIT, path = ST_BUF_INIT;
  json_t *doc = NULL;
  int rc;
  if ((rc = st__tuf_canonical(signed_, &c, err)) ||
      (rc = st_signer_sign(signer, c.data, c.len, &sig, err)))
    goto done;
  if (st_buf_add_hex(&hex, sig.data, sig.len) ||
      !(doc = json_pack("{s:[{s:s, s:s}], s:O}", "signatures", "keyid", keyid, "sig", hex.data,
                        "signed", signed_))) {
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    goto done;
  }
  /* the file is RFC 8785 JSON (a P-256 PEM's newlines escaped); the signature is over
   * the OLPC form of "signed", which may hold raw newlines and so is no JSON text */
  st_buf_reset(file);
  if ((rc = st_jcs_encode(doc, file, err)))
    goto done;
  if (st_buf_reset(&path), st_buf_addf(&path, "%s/tuf/%s.json", tree, role))
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
  else
    rc = st__mirror_write(path.data, file->data, file->len, err);
done:
  json_decref(doc);
  st_buf_release(&c);
  st_buf_release(&sig);
  st_buf_release(&hex);
  st_buf_release(&path);
  return rc;
}

static json_t *file_meta(const st_buf_t *data, long long version) {
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  if (st_sha256(data->data, data->len, d))
    return NULL;
  st_sha256_hex(d, hex);
  return json_pack("{s:I, s:I, s:{s:s}}", "version", (json_int_t)version, "length",
                   (json_int_t)data->len, "hashes", "sha256", hex);
}

/* {length, hashes {sha256}} of a file, streamed. */
static int path_meta(const char *path, json_t **out, st_error_t *err) {
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  uint64_t n = 0;
  int rc = st_sha256_file(path, d, &n, err);
  if (rc)
    return rc;
  st_sha256_hex(d, hex);
  if (!(*out = json_pack("{s:I, s:{s:s}}", "length", (json_int_t)n, "hashes", "sha256", hex)))
    return st_fail(err, ST_ENOMEM, "tuf: out of memory");
  return 0;
}

static json_t *signed_base(const char *type, long long version, int64_t expires) {
  char t[21];
  st__mirror_time_format(expires, t);
  return json_pack("{s:s, s:s, s:I, s:s}", "_type", type, "spec_version", SPEC_VERSION, "version",
                   (json_int_t)version, "expires", t);
}

int st__tuf_write(const char *tree, st_signer_t *signer, const st_mirror_opts_t *o,
                  st_error_t *err) {
  st_buf_t path = ST_BUF_INIT, file = ST_BUF_INIT;
  json_t *key = NULL, *s = NULL, *targets = NULL, *roles_o = NULL;
  char keyid[ST_SHA256_HEX_LEN + 1];
  long long v = (long long)o->issued;
  int rc;

  if ((rc = st__mirror_path(&path, tree, "tuf", err)) || (rc = st__mirror_mkdirs(path.data, err)) ||
      (rc = key_object(st_signer_pubkey(signer), &key, keyid, err)))
    goto done;
  /* root: version 1; the same keys sign every role */
  if (!(roles_o = json_object()) || !(s = signed_base("root", 1, o->issued + o->ttl_root))) {
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    goto done;
  }
  for (int r = 0; r < 4; r++)
    if (json_object_set_new(roles_o, roles[r],
                            json_pack("{s:[s], s:i}", "keyids", keyid, "threshold", 1)))
      rc = ST_ENOMEM;
  if (rc || json_object_set_new(s, "consistent_snapshot", json_false()) ||
      json_object_set_new(s, "keys", json_pack("{s:O}", keyid, key)) ||
      json_object_set(s, "roles", roles_o)) {
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    goto done;
  }
  if ((rc = write_role(tree, "root", s, signer, keyid, &file, err)))
    goto done;
  json_decref(s);
  /* targets */
  if (!(targets = json_object()) || !(s = signed_base("targets", v, o->issued + o->ttl_metadata))) {
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    goto done;
  }
  for (size_t i = 0; i < NTARGETS && !rc; i++) {
    json_t *m = NULL;
    if ((rc = st__mirror_path(&path, tree, targets_list[i], err)) ||
        (rc = path_meta(path.data, &m, err)))
      break;
    if (json_object_set_new(targets, targets_list[i], m))
      rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
  }
  if (rc || json_object_set(s, "targets", targets) ||
      (rc = write_role(tree, "targets", s, signer, keyid, &file, err)))
    goto done;
  json_decref(s);
  /* snapshot over targets.json, timestamp over snapshot.json */
  if (!(s = signed_base("snapshot", v, o->issued + o->ttl_metadata)) ||
      json_object_set_new(s, "meta", json_pack("{s:o}", "targets.json", file_meta(&file, v)))) {
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    goto done;
  }
  if ((rc = write_role(tree, "snapshot", s, signer, keyid, &file, err)))
    goto done;
  json_decref(s);
  if (!(s = signed_base("timestamp", v, o->issued + o->ttl_timestamp)) ||
      json_object_set_new(s, "meta", json_pack("{s:o}", "snapshot.json", file_meta(&file, v)))) {
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    goto done;
  }
  rc = write_role(tree, "timestamp", s, signer, keyid, &file, err);
done:
  json_decref(s);
  json_decref(key);
  json_decref(targets);
  json_decref(roles_o);
  st_buf_release(&path);
  st_buf_release(&file);
  return rc;
}

/* ---- verification ---- */

typedef struct role_file_s {
  st_buf_t raw;
  json_t *doc;       /* whole file */
  const json_t *sig; /* "signed" */
  long long version;
  int64_t expires;
} role_file_t;

static void role_release(role_file_t *r) {
  st_buf_release(&r->raw);
  json_decref(r->doc);
  memset(r, 0, sizeof(*r));
}

static int role_load(const char *tree, const char *role, role_file_t *r, st_error_t *err) {
  st_buf_t path = ST_BUF_INIT;
  const char *type, *exp, *spec;
  int rc;
  memset(r, 0, sizeof(*r));
  st_buf_init(&r->raw, ST__MIRROR_META_MAX);
  if (st_buf_addf(&path, "%s/tuf/%s.json", tree, role))
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
  else if (!(rc = st__mirror_read(path.data, ST__MIRROR_META_MAX, &r->raw, err)))
    rc = st_json_parse(r->raw.data, r->raw.len, NULL, &r->doc, err);
  st_buf_release(&path);
  if (rc)
    return st_error_wrap(err, "tuf %s.json", role), rc;
  r->sig = json_object_get(r->doc, "signed");
  type = json_string_value(json_object_get(r->sig, "_type"));
  exp = json_string_value(json_object_get(r->sig, "expires"));
  spec = json_string_value(json_object_get(r->sig, "spec_version"));
  r->version = json_integer_value(json_object_get(r->sig, "version"));
  if (!type || strcmp(type, role))
    return st_fail(err, ST_EVERIFY, "tuf %s.json: _type is not \"%s\"", role, role);
  if (!spec || strncmp(spec, "1.", 2))
    return st_fail(err, ST_EVERIFY, "tuf %s.json: spec_version is not 1.x", role);
  if (!json_is_integer(json_object_get(r->sig, "version")) || r->version < 1)
    return st_fail(err, ST_EVERIFY, "tuf %s.json: version is not a positive integer", role);
  if (st__mirror_time_parse(exp, &r->expires))
    return st_fail(err, ST_EVERIFY, "tuf %s.json: expires is not YYYY-MM-DDTHH:MM:SSZ", role);
  return 0;
}

/* Count valid signatures on r by keys of `role` in root (only those also in `only`, a
 * list of trusted keyids, when given) and compare with the threshold. */
static int role_check_sigs(const role_file_t *r, const json_t *root, const char *role,
                           const json_t *only, st_error_t *err) {
  const json_t *keys = json_object_get(root, "keys");
  const json_t *rr = json_object_get(json_object_get(root, "roles"), role);
  const json_t *ids = json_object_get(rr, "keyids"), *sigs = json_object_get(r->doc, "signatures");
  long long threshold = json_integer_value(json_object_get(rr, "threshold"));
  st_buf_t c = ST_BUF_INIT;
  json_t *seen = json_object(), *s;
  size_t i, good = 0;
  int rc;

  if (!seen || !json_is_array(ids) || threshold < 1 || !json_is_array(sigs)) {
    rc = st_fail(err, ST_EVERIFY, "tuf %s: role has no keyids/threshold, or no signatures", role);
    goto done;
  }
  if ((rc = st__tuf_canonical(r->sig, &c, err)))
    goto done;
  json_array_foreach(sigs, i, s) {
    const char *kid = json_string_value(json_object_get(s, "keyid"));
    const char *hex = json_string_value(json_object_get(s, "sig"));
    st_pubkey_t *pk = NULL;
    st_buf_t raw = ST_BUF_INIT;
    st_error_t e2 = ST_ERROR_INIT;
    int listed = 0;
    size_t k;
    json_t *id;
    if (!kid || !hex || json_object_get(seen, kid))
      continue;
    json_array_foreach(ids, k, id) listed |=
        !strcmp(json_string_value(id) ? json_string_value(id) : "", kid);
    if (only) {
      int trusted = 0;
      json_array_foreach(only, k, id) trusted |= !strcmp(json_string_value(id), kid);
      listed &= trusted;
    }
    if (!listed || strlen(hex) % 2 || strlen(hex) > 2 * ST_SIG_MAX)
      continue;
    for (k = 0; k < strlen(hex); k += 2) {
      unsigned v;
      if (sscanf(hex + k, "%2x", &v) != 1 || st_buf_addc(&raw, (char)v))
        break;
    }
    if (raw.len * 2 == strlen(hex) && !key_from_object(json_object_get(keys, kid), &pk, &e2) &&
        !st_pubkey_verify(pk, c.data, c.len, raw.data, raw.len, &e2)) {
      good++;
      json_object_set_new(seen, kid, json_true());
    }
    st_pubkey_free(pk);
    st_buf_release(&raw);
  }
  if ((long long)good < threshold)
    rc = st_fail(err, ST_EVERIFY, "tuf %s.json: %zu valid signature(s)%s, threshold %lld", role,
                 good, only ? " by trusted keys" : "", threshold);
done:
  json_decref(seen);
  st_buf_release(&c);
  return rc;
}

/* data against {version, length?, hashes.sha256?}. */
static int meta_match(const json_t *m, const st_buf_t *data, long long version, const char *what,
                      st_error_t *err) {
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  const json_t *len = json_object_get(m, "length");
  const char *want = json_string_value(json_object_get(json_object_get(m, "hashes"), "sha256"));
  if (!m)
    return st_fail(err, ST_EVERIFY, "tuf: %s is not listed", what);
  if (json_integer_value(json_object_get(m, "version")) != version)
    return st_fail(err, ST_EVERIFY, "tuf: %s has version %lld, the metadata names %lld", what,
                   version, (long long)json_integer_value(json_object_get(m, "version")));
  if (len && (!json_is_integer(len) || (size_t)json_integer_value(len) != data->len))
    return st_fail(err, ST_EVERIFY, "tuf: %s is %zu bytes, the metadata says %lld", what, data->len,
                   (long long)json_integer_value(len));
  if (want) {
    if (st_sha256(data->data, data->len, d))
      return st_fail(err, ST_ECRYPTO, "tuf: sha256");
    st_sha256_hex(d, hex);
    if (strcmp(hex, want))
      return st_fail(err, ST_EVERIFY, "tuf: %s has sha256 %s, the metadata says %.64s", what, hex,
                     want);
  }
  return 0;
}

/* Keyids (TUF form) of the trusted keys, as a JSON array. */
static int trusted_ids(const st_mirror_trust_t *t, json_t **out, st_error_t *err) {
  json_t *a = json_array();
  int rc = 0;
  for (size_t i = 0; a && !rc && i < t->nkeys; i++) {
    json_t *o = NULL;
    char kid[ST_SHA256_HEX_LEN + 1];
    if (!(rc = key_object(t->keys[i], &o, kid, err)) && json_array_append_new(a, json_string(kid)))
      rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
    json_decref(o);
  }
  if (!a)
    rc = st_fail(err, ST_ENOMEM, "tuf: out of memory");
  if (rc)
    json_decref(a);
  else
    *out = a;
  return rc;
}

int st__tuf_verify(const char *tree, const st_mirror_trust_t *trust, const char *old_tree,
                   st_error_t *err) {
  role_file_t r[4];
  st_buf_t path = ST_BUF_INIT;
  json_t *ids = NULL;
  const json_t *root, *targets;
  int64_t now = trust->now ? trust->now : (int64_t)time(NULL);
  int rc = 0, i;

  memset(r, 0, sizeof(r));
  for (i = 0; i < 4 && !rc; i++)
    rc = role_load(tree, roles[i], &r[i], err);
  if (rc || (rc = trusted_ids(trust, &ids, err)))
    goto done;
  root = r[0].sig;
  /* root is trusted only through the caller's keys; the others through root */
  if ((rc = role_check_sigs(&r[0], root, "root", ids, err)))
    goto done;
  for (i = 1; i < 4 && !rc; i++)
    rc = role_check_sigs(&r[i], root, roles[i], NULL, err);
  for (i = 0; i < 4 && !rc; i++)
    if (r[i].expires <= now) {
      char t[21];
      st__mirror_time_format(r[i].expires, t);
      rc = st_fail(err, ST_EVERIFY, "tuf %s.json: expired at %s (freeze attack?)", roles[i], t);
    }
  if (rc)
    goto done;
  if ((rc = meta_match(json_object_get(json_object_get(r[3].sig, "meta"), "snapshot.json"),
                       &r[2].raw, r[2].version, "snapshot.json", err)) ||
      (rc = meta_match(json_object_get(json_object_get(r[2].sig, "meta"), "targets.json"),
                       &r[1].raw, r[1].version, "targets.json", err)))
    goto done;
  targets = json_object_get(r[1].sig, "targets");
  if (json_object_size(targets) != NTARGETS) {
    rc = st_fail(err, ST_EVERIFY, "tuf targets.json: %zu targets, want %zu",
                 json_object_size(targets), NTARGETS);
    goto done;
  }
  for (size_t t = 0; t < NTARGETS && !rc; t++) {
    json_t *have = NULL;
    const json_t *want = json_object_get(targets, targets_list[t]);
    if (!(rc = st__mirror_path(&path, tree, targets_list[t], err)) &&
        !(rc = path_meta(path.data, &have, err)) &&
        (!want || !json_equal(json_object_get(want, "length"), json_object_get(have, "length")) ||
         !json_equal(json_object_get(json_object_get(want, "hashes"), "sha256"),
                     json_object_get(json_object_get(have, "hashes"), "sha256"))))
      rc = st_fail(err, ST_EVERIFY, "tuf: target %s does not match targets.json (length, sha256)",
                   targets_list[t]);
    json_decref(have);
  }
  if (rc || !old_tree)
    goto done;
  /* rollback: no role older than the tree it replaces had (spec 5.4.3, 5.5.5, 5.6.5) */
  for (i = 1; i < 4 && !rc; i++) {
    role_file_t old;
    st_error_t e2 = ST_ERROR_INIT;
    if (!role_load(old_tree, roles[i], &old, &e2) && old.version > r[i].version)
      rc = st_fail(err, ST_EVERIFY,
                   "tuf %s.json: version %lld is older than the installed %lld "
                   "(rollback)",
                   roles[i], r[i].version, old.version);
    role_release(&old);
  }
done:
  for (i = 0; i < 4; i++)
    role_release(&r[i]);
  json_decref(ids);
  st_buf_release(&path);
  return rc;
}
