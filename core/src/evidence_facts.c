/* evidence_facts.c: what the locker records about a sealed bundle, read back from the
 * file itself (after sealing, when adopting an object a crashed run stored, and when
 * reindexing): the manifest's id, tenant, kind, created time and Merkle root, the
 * manifest's digest, the DSSE keyid and the timestamp's genTime and serial. This is not
 * verification (st_bundle_verify judges); it only reads. Also the artifact rows those
 * facts give (sealing and importing insert the same rows). */
#include <string.h>

#include "evidence_internal.h"
#include "stella/base64.h"
#include "stella/bundle.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/sha256.h"
#include "stella/tgz.h"
#include "stella/tsa.h"

void st_evidence_facts_init(st_evidence_facts_t *f) {
  memset(f, 0, sizeof(*f));
  st_buf_init(&f->id, 0);
  st_buf_init(&f->tenant, 0);
  st_buf_init(&f->kind, 0);
  st_buf_init(&f->created, 0);
  st_buf_init(&f->merkle_root, 0);
  st_buf_init(&f->manifest_sha256, 0);
  st_buf_init(&f->keyid, 0);
  st_buf_init(&f->tsa_gen_time, 0);
  st_buf_init(&f->tsa_serial, 0);
  st_buf_init(&f->object_sha256, 0);
}

void st_evidence_facts_release(st_evidence_facts_t *f) {
  st_buf_release(&f->id);
  st_buf_release(&f->tenant);
  st_buf_release(&f->kind);
  st_buf_release(&f->created);
  st_buf_release(&f->merkle_root);
  st_buf_release(&f->manifest_sha256);
  st_buf_release(&f->keyid);
  st_buf_release(&f->tsa_gen_time);
  st_buf_release(&f->tsa_serial);
  st_buf_release(&f->object_sha256);
  json_decref(f->manifest);
  f->manifest = NULL;
}

static int collect(void *ud, const void *data, size_t len, st_error_t *err) {
  st_buf_t *b = ud;
  if (st_buf_add(b, data, len))
    return st_fail(err, ST_ETOOBIG, "evidence: bundle metadata file too large");
  return 0;
}

static int str_field(const json_t *o, const char *key, st_buf_t *out, st_error_t *err) {
  const char *s = json_string_value(json_object_get(o, key));
  if (!s)
    return st_fail(err, ST_EVERIFY, "evidence: manifest.json: %s missing", key);
  return st_buf_adds(out, s) ? st_fail(err, ST_ENOMEM, "evidence: out of memory") : 0;
}

static int tsa_facts(const st_buf_t *dsse, const st_buf_t *tsr, const char *ca, size_t ca_len,
                     st_evidence_facts_t *f, st_error_t *err) {
  json_t *env = NULL;
  st_buf_t sig = ST_BUF_INIT;
  st_tsa_info_t info;
  st_error_t ignored = ST_ERROR_INIT;
  const char *s64, *keyid;
  int rc = 0;

  st_tsa_info_init(&info);
  if ((rc = st_json_parse(dsse->data, dsse->len, NULL, &env, err)))
    goto done;
  s64 = json_string_value(json_object_get(json_array_get(json_object_get(env, "signatures"), 0),
                                          "sig"));
  if (!s64) {
    rc = st_fail(err, ST_EVERIFY, "evidence: manifest.dsse.json has no signature");
    goto done;
  }
  keyid = json_string_value(
      json_object_get(json_array_get(json_object_get(env, "signatures"), 0), "keyid"));
  if (keyid && st_buf_adds(&f->keyid, keyid)) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if (!tsr->len || !ca)
    goto done;
  if ((rc = st_base64_decode(&sig, s64, strlen(s64), err)))
    goto done;
  /* facts only: an untrusted token leaves them empty, verification reports it */
  if (st_tsa_verify(tsr->data, tsr->len, sig.data, sig.len, ca, ca_len, NULL, 0, &info,
                    &ignored) == 0 &&
      (st_buf_adds(&f->tsa_gen_time, info.gen_time_text.data) ||
       st_buf_adds(&f->tsa_serial, info.serial_hex.data)))
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
done:
  st_tsa_info_release(&info);
  st_buf_release(&sig);
  json_decref(env);
  return rc;
}

int st_evidence_facts_read(const char *path, const char *ca, size_t ca_len,
                           st_evidence_facts_t *f, st_error_t *err) {
  st_tgz_reader_t *r = NULL;
  const st_tgz_entry_t *e;
  st_buf_t manifest = ST_BUF_INIT, dsse = ST_BUF_INIT, tsr = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc, more;

  st_buf_init(&manifest, ST_BUNDLE_META_MAX);
  st_buf_init(&dsse, ST_BUNDLE_META_MAX);
  st_buf_init(&tsr, ST_BUNDLE_META_MAX);
  if ((rc = st_sha256_file(path, d, &f->object_size, err)))
    goto done;
  st_sha256_hex(d, hex);
  if ((rc = st_buf_adds(&f->object_sha256, hex)) ||
      (rc = st_tgz_reader_open(path, NULL, &r, err)))
    goto done;
  while ((more = st_tgz_reader_next(r, &e, err)) == 1) {
    st_buf_t *into = !strcmp(e->path, "manifest.json")        ? &manifest
                     : !strcmp(e->path, "manifest.dsse.json") ? &dsse
                     : !strcmp(e->path, "manifest.tsr")       ? &tsr
                                                              : NULL;
    if (into && e->type == ST_TGZ_FILE && (rc = st_tgz_reader_data(r, collect, into, err)))
      goto done;
  }
  if ((rc = more))
    goto done;
  if (!manifest.len || !dsse.len) {
    rc = st_fail(err, ST_EVERIFY, "evidence: %s lacks manifest.json or manifest.dsse.json",
                 path);
    goto done;
  }
  if ((rc = st_sha256(manifest.data, manifest.len, d)))
    goto done;
  st_sha256_hex(d, hex);
  if ((rc = st_buf_adds(&f->manifest_sha256, hex)) ||
      (rc = st_json_parse(manifest.data, manifest.len, NULL, &f->manifest, err)) ||
      (rc = str_field(f->manifest, "id", &f->id, err)) ||
      (rc = str_field(f->manifest, "tenant", &f->tenant, err)) ||
      (rc = str_field(f->manifest, "kind", &f->kind, err)) ||
      (rc = str_field(f->manifest, "created", &f->created, err)) ||
      (rc = str_field(json_object_get(f->manifest, "merkle"), "root", &f->merkle_root, err)))
    goto done;
  rc = tsa_facts(&dsse, &tsr, ca, ca_len, f, err);
done:
  st_tgz_reader_free(r);
  st_buf_release(&manifest);
  st_buf_release(&dsse);
  st_buf_release(&tsr);
  return rc;
}

int st__evidence_artifact_rows(PGconn *c, const char *tenant, const st_evidence_facts_t *f,
                               st_error_t *err) {
  size_t i;
  json_t *e;
  int rc;
  json_array_foreach(json_object_get(f->manifest, "entries"), i, e) {
    char esize[24];
    const char *p[6] = {tenant, f->id.data, json_string_value(json_object_get(e, "path")),
                        json_string_value(json_object_get(e, "sha256")), esize,
                        json_string_value(json_object_get(e, "mediaType"))};
    snprintf(esize, sizeof(esize), "%lld",
             (long long)json_integer_value(json_object_get(e, "size")));
    if ((rc = st_db_exec(c,
                         "INSERT INTO evidence_artifacts (tenant_id, bundle_id, path, sha256,"
                         " size, media_type) VALUES ($1, $2, $3, $4, $5::bigint, $6)"
                         " ON CONFLICT DO NOTHING",
                         6, p, NULL, err)))
      return rc;
  }
  return 0;
}
