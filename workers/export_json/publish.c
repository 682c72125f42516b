/* publish.c: a JSON export run from start to end (st_export_json_run): plan, the document
 * pass (build.c), seal, the detached signature files, storing under the run's
 * tenants/<t>/projects/<p>/exports/<run>/ prefix, and the built/distributed transitions.
 * Everything is made in a private temporary directory first and removed at the end; the
 * object store sees only complete files, and only while the run is still running. */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export_json_int.h"
#include "stella/bundle.h"
#include "stella/dsse.h"
#include "stella/jcs.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/sha256.h"

#define PREDICATE_TYPE "https://stella.dev/export/v1"
static const char *const suffixes[3] = {"", ".dsse.json", ".sig"};

static void remove_dir(const char *dir) {
  DIR *d;
  struct dirent *e;
  st_buf_t p = ST_BUF_INIT;
  if (!dir || !(d = opendir(dir)))
    return;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      st_buf_reset(&p);
      if (!st_buf_addf(&p, "%s/%s", dir, e->d_name))
        unlink(p.data);
    }
  closedir(d);
  rmdir(dir);
  st_buf_release(&p);
}

static int file_digest(const char *path, char hex[ST_SHA256_HEX_LEN + 1], uint8_t d[32],
                       long long *size, st_error_t *err) {
  uint64_t n = 0;
  int rc = st_sha256_file(path, d, &n, err);
  if (!rc) {
    st_sha256_hex(d, hex);
    if (size)
      *size = (long long)n;
  }
  return rc;
}

static int write_file(const char *path, const void *data, size_t len, st_error_t *err) {
  FILE *f = fopen(path, "wbx");
  int ok = f && fwrite(data, 1, len, f) == len;
  if (f && fclose(f))
    ok = 0;
  return ok ? 0 : st_fail(err, ST_EIO, "export: cannot write %s", path);
}

static json_t *counts_of(const st__xbuild_t *b) {
  json_t *c = json_object();
  for (size_t i = 0; c && i < b->nouts; i++)
    json_object_set_new(c, b->outs[i].name, json_integer(b->outs[i].count));
  return c;
}

/* Seal the outputs into dir/export.tgz. */
static int seal(st__xbuild_t *b, const json_t *counts, st_bundle_sealed_t *sealed,
                st_error_t *err) {
  st_bundle_input_t in[ST_LEDGER_NKINDS];
  json_t *meta = NULL, *src = json_array();
  st_bundle_spec_t spec = {0};
  st_buf_t out = ST_BUF_INIT;
  int rc = 0;

  for (size_t t = 1; src && t < b->plan.ntenants; t++)
    json_array_append_new(src, json_string(b->plan.tenants[t]));
  meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:O, s:o, s:O}", "profile",
                   b->prof.name, "project", b->prof.project, "export_kind", b->prof.kind,
                   "format", "ndjson", "compression", b->prof.compression, "redaction",
                   b->prof.redaction, "plan_digest", b->plan.digest, "counts", counts,
                   "source_tenants", src ? src : json_array(), "filters", b->prof.filters);
  src = NULL;
  for (size_t i = 0; i < b->nouts; i++) {
    const char *base = strrchr(b->outs[i].path, '/') + 1;
    in[i] = (st_bundle_input_t){base, ST_BUNDLE_SRC_FILE, b->outs[i].path, NULL, 0,
                                b->outs[i].gz ? "application/gzip" : "application/x-ndjson"};
  }
  spec.kind = "export";
  spec.tenant = b->tenant;
  spec.created = b->created;
  spec.metadata = meta;
  spec.inputs = in;
  spec.ninputs = b->nouts;
  spec.result = sealed;
  if (!meta || st_buf_addf(&out, "%s/export.tgz", b->dir))
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
  else
    rc = st_bundle_seal(&spec, b->env->signer, b->env->tsa, out.data, err);
  json_decref(meta);
  json_decref(src);
  st_buf_release(&out);
  return rc;
}

/* export.tgz.dsse.json (a Statement whose subject is the .tgz) and export.tgz.sig. */
static int detached(st__xbuild_t *b, const st_bundle_sealed_t *sealed, const json_t *counts,
                    const char *sha, const uint8_t digest[32], st_error_t *err) {
  st_buf_t p = ST_BUF_INIT, stmt = ST_BUF_INIT, env = ST_BUF_INIT, sig = ST_BUF_INIT;
  json_t *s = json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                        "s:s, s:O}}",
                        "_type", ST_BUNDLE_STATEMENT_TYPE, "subject", "name", "export.tgz",
                        "digest", "sha256", sha, "predicateType", PREDICATE_TYPE, "predicate",
                        "bundleId", sealed->id, "manifestSha256", sealed->manifest_sha256,
                        "merkleRoot", sealed->merkle_root, "tenant", b->tenant, "profile",
                        b->prof.name, "kind", b->prof.kind, "planDigest", b->plan.digest,
                        "created", sealed->created, "counts", counts);
  int rc;

  if (!s) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = st_jcs_encode(s, &stmt, err)) ||
      (rc = st_dsse_sign(b->env->signer, ST_BUNDLE_PAYLOAD_TYPE, stmt.data, stmt.len, &env,
                         err)) ||
      (rc = st_signer_sign(b->env->signer, digest, 32, &sig, err)))
    goto done;
  if (st_buf_addf(&p, "%s/export.tgz.dsse.json", b->dir)) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = write_file(p.data, env.data, env.len, err)))
    goto done;
  st_buf_reset(&p);
  if (st_buf_addf(&p, "%s/export.tgz.sig", b->dir))
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
  else
    rc = write_file(p.data, sig.data, sig.len, err);
done:
  json_decref(s);
  st_buf_release(&p);
  st_buf_release(&stmt);
  st_buf_release(&env);
  st_buf_release(&sig);
  return rc;
}

static void unstore(st__xbuild_t *b, const char *prefix) {
  st_buf_t k = ST_BUF_INIT;
  for (int i = 0; i < 3; i++) {
    st_error_t e = ST_ERROR_INIT;
    st_buf_reset(&k);
    if (!st_buf_addf(&k, "%sexport.tgz%s", prefix, suffixes[i]) &&
        st_objstore_delete(b->env->store, b->tenant, k.data, &e) && e.code != ST_ENOENT)
      st_warn("export run %s: cannot remove %s: %s", b->run_id, k.data, st_error_text(&e));
  }
  st_buf_release(&k);
}

/* Store the three files, then record the run built; a run cancelled meanwhile gets its
 * objects removed again. */
static int store(st__xbuild_t *b, const st_bundle_sealed_t *sealed, const json_t *counts,
                 const char *sha, long long size, st_error_t *err) {
  st_buf_t prefix = ST_BUF_INIT, key = ST_BUF_INIT, path = ST_BUF_INIT, mkey = ST_BUF_INIT;
  char state[32], hex[ST_SHA256_HEX_LEN + 1];
  uint8_t d[32];
  int rc = 0, stored = 0;

  if (st_buf_addf(&prefix, "tenants/%s/projects/%s/exports/%s/", b->tenant, b->prof.project,
                  b->run_id) ||
      st_buf_addf(&mkey, "%sexport.tgz.dsse.json", prefix.data)) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = st_export_run_state(b->env->db, b->tenant, b->run_id, state, sizeof(state), err)))
    goto done;
  if (strcmp(state, "running")) {
    rc = st_fail(err, ST_ECANCELED, "export run %s: %s", b->run_id, state);
    goto done;
  }
  for (int i = 0; i < 3 && !rc; i++) {
    st_buf_reset(&key);
    st_buf_reset(&path);
    if (st_buf_addf(&key, "%sexport.tgz%s", prefix.data, suffixes[i]) ||
        st_buf_addf(&path, "%s/export.tgz%s", b->dir, suffixes[i]))
      rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    else if (!(rc = file_digest(path.data, hex, d, NULL, err)))
      rc = st_objstore_put_file(b->env->store, b->tenant, key.data, hex, path.data, NULL, err);
    stored = 1;
  }
  if (!rc) {
    st_export_artifact_t a = {sealed->id, sealed->manifest_sha256, NULL, mkey.data, sha, size,
                              counts};
    st_buf_reset(&key);
    if (st_buf_addf(&key, "%sexport.tgz", prefix.data))
      rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    a.artifact_key = key.data;
    if (!rc && (rc = st_export_run_built(b->env->db, b->tenant, b->run_id, &a, err)) ==
                   ST_ECONFLICT)
      rc = st_fail(err, ST_ECANCELED, "export run %s: cancelled while storing", b->run_id);
  }
  if (rc && stored)
    unstore(b, prefix.data);
done:
  st_buf_release(&prefix);
  st_buf_release(&key);
  st_buf_release(&path);
  st_buf_release(&mkey);
  return rc;
}

static int distribute(const st_export_json_env_t *env, const char *tenant, const char *run_id,
                      const json_t *run, st_error_t *err) {
  const json_t *art = json_object_get(run, "artifact");
  st_buf_t target = ST_BUF_INIT;
  int rc;
  if (st_buf_addf(&target, "objstore:%s:%s", st_objstore_backend(env->store),
                  json_string_value(json_object_get(art, "key"))))
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  rc = st_export_run_distributed(env->db, tenant, run_id, target.data,
                                 json_string_value(json_object_get(art, "sha256")), err);
  st_buf_release(&target);
  return rc;
}

static int build(st__xbuild_t *b, st_error_t *err) {
  st_bundle_sealed_t sealed;
  st_buf_t tmpl = ST_BUF_INIT, path = ST_BUF_INIT;
  json_t *counts = NULL;
  char sha[ST_SHA256_HEX_LEN + 1];
  uint8_t d[32];
  long long size = 0;
  int rc;

  if ((rc = st_export_plan_build(b->env->db, b->tenant, &b->prof, &b->plan, err)) ||
      (rc = st_export_plan_record(b->env->db, b->tenant, b->run_id, &b->plan, err)) ||
      (rc = st_export_run_set_state(b->env->db, b->tenant, b->run_id, "running", NULL, err)))
    goto done;
  if (st_buf_addf(&tmpl, "%s/stella-export-XXXXXX", b->env->tmp_dir ? b->env->tmp_dir : "/tmp")) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if (!mkdtemp(tmpl.data)) {
    rc = st_fail(err, ST_EIO, "export: cannot create a temporary directory under %s",
                 b->env->tmp_dir ? b->env->tmp_dir : "/tmp");
    goto done;
  }
  b->dir = st_buf_detach(&tmpl, NULL);
  if ((rc = st__xbuild_documents(b, err)))
    goto done;
  if (!(counts = counts_of(b))) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = seal(b, counts, &sealed, err)))
    goto done;
  if (st_buf_addf(&path, "%s/export.tgz", b->dir)) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = file_digest(path.data, sha, d, &size, err)) ||
      (rc = detached(b, &sealed, counts, sha, d, err)))
    goto done;
  rc = store(b, &sealed, counts, sha, size, err);
done:
  json_decref(counts);
  st_buf_release(&tmpl);
  st_buf_release(&path);
  return rc;
}

int st_export_json_run(const st_export_json_env_t *env, const char *tenant, const char *run_id,
                       st_error_t *err) {
  st__xbuild_t b;
  json_t *run = NULL;
  const char *state;
  int rc;

  memset(&b, 0, sizeof(b));
  st_export_profile_init(&b.prof);
  b.env = env;
  b.tenant = tenant;
  b.run_id = run_id;
  if ((rc = st_export_run_get(env->db, tenant, run_id, &run, err)))
    goto done;
  state = json_string_value(json_object_get(run, "state"));
  if (!strcmp(state, "cancelled")) {
    rc = st_fail(err, ST_ECANCELED, "export run %s: cancelled", run_id);
    goto done;
  }
  if (!strcmp(state, "failed") || !strcmp(state, "distributed"))
    goto done;
  if (strcmp(state, "built")) {
    if ((rc = st_export_profile_from_json(json_object_get(run, "settings"), &b.prof, err)))
      goto done;
    if (strcmp(b.prof.kind, "json:raw") && strcmp(b.prof.kind, "json:policy")) {
      rc = st_fail(err, ST_EUNSUPPORTED, "kind: %s is not a JSON export", b.prof.kind);
      goto done;
    }
    b.policy = !strcmp(b.prof.kind, "json:policy");
    b.redaction = b.prof.redaction;
    if ((rc = build(&b, err)))
      goto done;
    json_decref(run);
    if ((rc = st_export_run_get(env->db, tenant, run_id, &run, err)))
      goto done;
  }
  if (env->progress)
    env->progress(env->ud, 1, "stored");
  rc = distribute(env, tenant, run_id, run, err);
done:
  for (size_t i = 0; i < ST_LEDGER_NKINDS; i++)
    st__xout_release(&b.outs[i]);
  remove_dir(b.dir);
  st_free(b.dir);
  json_decref(b.adv);
  json_decref(b.vex);
  json_decref(run);
  st_export_plan_release(&b.plan);
  st_export_profile_release(&b.prof);
  return rc;
}
