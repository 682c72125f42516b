/* locker.c: a built export run's manifest and distribution transcript into the Evidence
 * Locker (evidence.h) as one sealed `export` snapshot, before the run is distributed.
 *
 * The stored export.tgz is read back (its SHA-256 checked against the run's), its
 * manifest.json (read with st_evidence_facts_read, which checks the bundle's signed
 * manifest) must hash to the run's manifest_digest; the manifest bytes go to their
 * content-addressed key so the snapshot holds them as input export/manifest.json (the
 * evidence bundle's entry for it has the export's manifest digest, and through it the
 * export's Merkle root), beside export/export.tgz.dsse.json (the detached Statement over
 * the .tgz) and output export/distribution.json (the targets and the run's event log).
 * The evidence bundle id is derived from the tenant and "export:<run_id>", so a re-run
 * after a crash seals the same bundle and adopts what the dead run stored. The run then
 * records the export Merkle root and the evidence bundle (0080_export_evidence.sql). */
#include <stdio.h>
#include <string.h>

#include "export/adapter.h"
#include "stella/evidence.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/sha256.h"
#include "stella/version.h"

#define DSSE_MAX ((size_t)1 << 20)

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

static int to_buf(void *ctx, const void *buf, size_t len) {
  st_buf_t *b = ctx;
  return b->len + len > DSSE_MAX ? ST_ETOOBIG : st_buf_add(b, buf, len) ? ST_ENOMEM : 0;
}

/* The stored .tgz into path, checked against the run's artifact sha256. */
static int fetch_tgz(const st_export_env_t *env, const char *tenant, const json_t *art,
                     const char *path, st_error_t *err) {
  const char *key = json_string_value(json_object_get(art, "key"));
  const char *want = json_string_value(json_object_get(art, "sha256"));
  char hex[ST_SHA256_HEX_LEN + 1];
  uint8_t d[ST_SHA256_LEN];
  FILE *f = fopen(path, "wbx");
  int rc;

  if (!f)
    return st_fail(err, ST_EIO, "export evidence: cannot create %s", path);
  rc = st_objstore_get(env->store, tenant, key, 0, ST_OBJSTORE_TO_END, to_file, f, err);
  if (fclose(f) && !rc)
    rc = st_fail(err, ST_EIO, "export evidence: cannot write %s", path);
  if (!rc && !(rc = st_sha256_file(path, d, NULL, err))) {
    st_sha256_hex(d, hex);
    if (!want || strcmp(hex, want))
      rc = st_fail(err, ST_EVERIFY, "export evidence: %s reads back as sha256 %s, the run "
                   "recorded %s", key, hex, want ? want : "none");
  }
  return rc;
}

/* The export manifest's canonical bytes at their content-addressed key. */
static int store_manifest(const st_export_env_t *env, const char *tenant, const json_t *manifest,
                          const char *want, const char *path, st_error_t *err) {
  st_buf_t jcs = ST_BUF_INIT, key = ST_BUF_INIT;
  char hex[ST_SHA256_HEX_LEN + 1];
  uint8_t d[ST_SHA256_LEN];
  FILE *f = NULL;
  int rc;

  if ((rc = st_jcs_encode(manifest, &jcs, err)))
    goto done;
  if ((rc = st_sha256(jcs.data, jcs.len, d))) {
    rc = st_fail(err, rc, "export evidence: cannot hash manifest.json");
    goto done;
  }
  st_sha256_hex(d, hex);
  if (strcmp(hex, want)) {
    rc = st_fail(err, ST_EVERIFY, "export evidence: manifest.json hashes to %s, the run "
                 "recorded %s", hex, want);
    goto done;
  }
  if (!(f = fopen(path, "wbx")) || fwrite(jcs.data, 1, jcs.len, f) != jcs.len) {
    rc = st_fail(err, ST_EIO, "export evidence: cannot write %s", path);
    goto done;
  }
  if (fclose(f)) {
    f = NULL;
    rc = st_fail(err, ST_EIO, "export evidence: cannot write %s", path);
    goto done;
  }
  f = NULL;
  if ((rc = st_objstore_key(&key, tenant, hex, err)))
    goto done;
  rc = st_objstore_put_file(env->store, tenant, key.data, hex, path, NULL, err);
done:
  if (f)
    fclose(f);
  st_buf_release(&jcs);
  st_buf_release(&key);
  return rc;
}

static int fetch_json(const st_export_env_t *env, const char *tenant, const char *key,
                      json_t **out, st_error_t *err) {
  st_buf_t b = ST_BUF_INIT;
  int rc = st_objstore_get(env->store, tenant, key, 0, ST_OBJSTORE_TO_END, to_buf, &b, err);
  if (rc == ST_ETOOBIG)
    rc = st_fail(err, ST_ETOOBIG, "export evidence: %s over %zu bytes", key, DSSE_MAX);
  if (!rc)
    rc = st_json_parse(b.data, b.len, NULL, out, err);
  st_buf_release(&b);
  return rc;
}

/* The snapshot payload. */
static json_t *payload_of(const json_t *run, const char *run_id, const char *manifest_sha,
                          const char *merkle, const json_t *dsse, const json_t *target,
                          const json_t *events) {
  const json_t *art = json_object_get(run, "artifact");
  const char *created = json_string_value(json_object_get(run, "finished_at"));
  const char *started = json_string_value(json_object_get(run, "started_at"));
  json_t *run_o = json_pack("{s:s, s:s}", "run_id", run_id, "actor", "export-center");
  json_t *p;

  if (run_o && started)
    json_object_set_new(run_o, "started", json_string(started));
  if (run_o && created)
    json_object_set_new(run_o, "finished", json_string(created));
  p = json_pack(
      "{s:s, s:s, s:o, s:[{s:s, s:s}, {s:s, s:O}], s:[{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:O, "
      "s:O, s:[O], s:O}}], s:{s:s}}",
      "kind", "export", "created", created ? created : "1970-01-01T00:00:00Z", "run", run_o,
      "inputs", "path", "export/manifest.json", "sha256", manifest_sha, "path",
      "export/export.tgz.dsse.json", "json", dsse, "outputs", "path",
      "export/distribution.json", "json", "schema", "stella.export-transcript/v1", "run_id",
      run_id, "bundle_id", json_string_value(json_object_get(run, "bundle_id")),
      "manifest_sha256", manifest_sha, "merkle_root", merkle, "artifact", art, "settings",
      json_object_get(run, "settings"), "targets", target, "events", events, "environment",
      "stella", st_version());
  return p;
}

int st_export_evidence(const st_export_env_t *env, const char *tenant, const char *run_id,
                       const json_t *run, const char *target, st_error_t *err) {
  const json_t *art = json_object_get(run, "artifact");
  const char *mdigest = json_string_value(json_object_get(run, "manifest_digest"));
  const char *bundle_id = json_string_value(json_object_get(run, "bundle_id"));
  st_evidence_opts_t o;
  st_evidence_t *ev = NULL;
  st_evidence_facts_t f;
  st_buf_t tgz = ST_BUF_INIT, man = ST_BUF_INIT, seed = ST_BUF_INIT, id = ST_BUF_INIT;
  json_t *dsse = NULL, *events = NULL, *payload = NULL, *tgt = NULL, *out = NULL;
  char *dir = NULL;
  st_evidence_who_t who = {tenant, "export-center", run_id, NULL, NULL};
  int rc;

  st_evidence_facts_init(&f);
  memset(&o, 0, sizeof(o));
  o.db = env->db;
  o.store = env->store;
  o.signer = env->signer;
  o.tsa_url = env->tsa ? env->tsa->url : NULL;
  o.tmp_dir = env->tmp_dir;
  if (!art || !mdigest || !bundle_id) {
    rc = st_fail(err, ST_EINVAL, "export run %s: not built (no artifact to put in evidence)",
                 run_id);
    goto done;
  }
  if ((rc = st_export_tmpdir(env->tmp_dir, &dir, err)))
    goto done;
  if (st_buf_addf(&tgz, "%s/export.tgz", dir) || st_buf_addf(&man, "%s/manifest.json", dir) ||
      st_buf_addf(&seed, "export:%s", run_id) ||
      st_evidence_derive_id(tenant, seed.data, &id)) {
    rc = st_fail(err, ST_ENOMEM, "export evidence: out of memory");
    goto done;
  }
  if ((rc = fetch_tgz(env, tenant, art, tgz.data, err)) ||
      (rc = st_evidence_facts_read(tgz.data, NULL, 0, &f, err)))
    goto done;
  if (strcmp(f.id.data, bundle_id) || strcmp(f.manifest_sha256.data, mdigest)) {
    rc = st_fail(err, ST_EVERIFY, "export evidence: the stored bundle is %s (manifest %s), "
                 "the run recorded %s (manifest %s)", f.id.data, f.manifest_sha256.data,
                 bundle_id, mdigest);
    goto done;
  }
  if ((rc = store_manifest(env, tenant, f.manifest, mdigest, man.data, err)) ||
      (rc = fetch_json(env, tenant, json_string_value(json_object_get(run, "manifest_key")),
                       &dsse, err)) ||
      (rc = st_export_run_events(env->db, tenant, run_id, 0, 1000, &events, NULL, err)))
    goto done;
  if (!(tgt = json_pack("{s:s, s:s}", "target", target, "digest",
                        json_string_value(json_object_get(art, "sha256")))) ||
      !(payload = payload_of(run, run_id, mdigest, f.merkle_root.data, dsse, tgt, events))) {
    rc = st_fail(err, ST_ENOMEM, "export evidence: out of memory");
    goto done;
  }
  if ((rc = st_evidence_new(&ev, &o, err)) ||
      (rc = st_evidence_snapshot(ev, &who, id.data, payload, NULL, &out, err)))
    goto done;
  rc = st_export_run_evidence(env->db, tenant, run_id, f.merkle_root.data, id.data,
                              json_string_value(json_object_get(
                                  json_object_get(out, "object"), "sha256")),
                              json_string_value(json_object_get(out, "merkle_root")),
                              json_string_value(json_object_get(
                                  json_object_get(out, "object"), "key")),
                              err);
done:
  st_export_rmtree(dir);
  st_free(dir);
  st_evidence_free(ev);
  st_evidence_facts_release(&f);
  st_buf_release(&tgz);
  st_buf_release(&man);
  st_buf_release(&seed);
  st_buf_release(&id);
  json_decref(dsse);
  json_decref(events);
  json_decref(payload);
  json_decref(tgt);
  json_decref(out);
  return rc;
}
