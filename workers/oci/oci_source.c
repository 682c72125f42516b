/* oci_source.c: what the OCI distributor checks and fetches before a push: the sealed
 * bundle verified against the trusted key (every bundle check, bundle.h: a tampered or
 * foreign bundle is refused and nothing is pushed), and an export run's artifact fetched
 * from the object store into a scratch directory (its SHA-256 checked against the run). */
#include <stdio.h>
#include <string.h>

#include "export/adapter.h"
#include "oci_dist.h"
#include "stella/bundle.h"
#include "stella/keys.h"
#include "stella/mem.h"
#include "stella/objstore.h"
#include "stella/sha256.h"

int st__oci_verify_bundle(const st_config_t *cfg, const char *path, st_error_t *err) {
  const char *trusted = cfg ? st_config_str(cfg, "oci_trusted_key") : NULL;
  const char *sk = cfg ? st_config_str(cfg, "signing_key") : NULL;
  st_pubkey_t *pub = NULL;
  st_signer_t *signer = NULL;
  const st_pubkey_t *keys[1] = {NULL};
  st_bundle_trust_t trust = {keys, 1, NULL, 0, NULL};
  st_bundle_report_t rep;
  st_buf_t why = ST_BUF_INIT;
  int rc;

  st_bundle_report_init(&rep);
  if (trusted)
    rc = st_pubkey_load(&pub, trusted, err);
  else if (sk)
    rc = st_signer_open(&signer, sk, err);
  else
    rc = st_fail(err, ST_ECONFIG, "oci_trusted_key: not set (nor signing_key): sealed bundles "
                 "are verified before they are pushed");
  if (rc)
    goto done;
  keys[0] = pub ? pub : st_signer_pubkey(signer);
  if ((rc = st_bundle_verify(path, &trust, &rep, err)) == ST_EVERIFY) {
    const st_bundle_check_t *c = st_bundle_report_failed(&rep);
    if (c && !st_buf_addf(&why, "%s: %s", c->name, c->reason.len ? c->reason.data : "failed"))
      rc = st_fail(err, ST_EVERIFY, "bundle %s does not verify against the trusted key (%s); "
                   "nothing pushed", path, why.data);
    else
      rc = st_fail(err, ST_EVERIFY, "bundle %s does not verify; nothing pushed", path);
  }
done:
  st_bundle_report_release(&rep);
  st_buf_release(&why);
  st_pubkey_free(pub);
  st_signer_free(signer);
  return rc;
}

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

int st__oci_run_fetch(st_job_ctx_t *ctx, st_objstore_t **store, const char *tenant,
                      const char *run_id, char **dir, char **path, st_error_t *err) {
  json_t *run = NULL;
  const json_t *art;
  const char *state, *key, *want;
  st_buf_t p = ST_BUF_INIT;
  char hex[ST_SHA256_HEX_LEN + 1];
  uint8_t d[ST_SHA256_LEN];
  FILE *f = NULL;
  int rc;

  *dir = *path = NULL;
  if (!ctx->db)
    return st_fail(err, ST_ECONFIG, "run_id: fetching a run's artifact needs pg_url");
  if ((rc = st_export_run_get(ctx->db, tenant, run_id, &run, err)))
    goto done;
  state = json_string_value(json_object_get(run, "state"));
  art = json_object_get(run, "artifact");
  key = json_string_value(json_object_get(art, "key"));
  want = json_string_value(json_object_get(art, "sha256"));
  if (strcmp(state, "built") && strcmp(state, "distributed")) {
    rc = st_fail(err, ST_ECONFLICT, "export run %s is %s: nothing built to distribute", run_id,
                 state);
    goto done;
  }
  if (!key || !want) {
    rc = st_fail(err, ST_ENOENT, "export run %s has no stored artifact", run_id);
    goto done;
  }
  if ((!*store && (rc = st_objstore_open(store, ctx->cfg, err))) ||
      (rc = st_export_tmpdir(st_config_str(ctx->cfg, "export_tmp_dir"), dir, err)))
    goto done;
  if (st_buf_addf(&p, "%s/export.tgz", *dir)) {
    rc = st_fail(err, ST_ENOMEM, "out of memory");
    goto done;
  }
  if (!(f = fopen(p.data, "wbx"))) {
    rc = st_fail(err, ST_EIO, "%s: cannot create", p.data);
    goto done;
  }
  rc = st_objstore_get(*store, tenant, key, 0, ST_OBJSTORE_TO_END, to_file, f, err);
  if (fclose(f) && !rc)
    rc = st_fail(err, ST_EIO, "%s: cannot write", p.data);
  if (rc || (rc = st_sha256_file(p.data, d, NULL, err)))
    goto done;
  st_sha256_hex(d, hex);
  if (strcmp(hex, want)) {
    rc = st_fail(err, ST_EVERIFY, "export run %s: %s reads back as sha256 %s, the run recorded "
                 "%s", run_id, key, hex, want);
    goto done;
  }
  *path = st_buf_detach(&p, NULL);
done:
  if (rc && *dir) {
    st_export_rmtree(*dir);
    st_free(*dir);
    *dir = NULL;
  }
  st_buf_release(&p);
  json_decref(run);
  return rc;
}
