/* publish.c: a JSON export run from start to end (st_export_json_run): plan, the document
 * pass (build.c), seal, then export/adapter.h's detached signature files, storing under
 * the run's tenants/<t>/projects/<p>/exports/<run>/ prefix, and the built/distributed
 * transitions.
 * Everything is made in a private temporary directory first and removed at the end; the
 * object store sees only complete files, and only while the run is still running. */
#include <string.h>

#include "export_json_int.h"
#include "stella/bundle.h"
#include "stella/mem.h"

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
                                b->outs[i].gz   ? "application/gzip"
                                : b->outs[i].zc ? "application/zstd"
                                                : "application/x-ndjson"};
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

static int build(void *ud, st_error_t *err) {
  st__xbuild_t *b = ud;
  st_bundle_sealed_t sealed;
  json_t *counts = NULL;
  int rc;

  if (strcmp(b->prof.kind, "json:raw") && strcmp(b->prof.kind, "json:policy"))
    return st_fail(err, ST_EUNSUPPORTED, "kind: %s is not a JSON export", b->prof.kind);
  b->policy = !strcmp(b->prof.kind, "json:policy");
  b->redaction = b->prof.redaction;
  if ((rc = st_export_plan_build(b->env->db, b->tenant, &b->prof, &b->plan, err)) ||
      (rc = st_export_plan_record(b->env->db, b->tenant, b->run_id, &b->plan, err)) ||
      (rc = st_export_run_set_state(b->env->db, b->tenant, b->run_id, "running", NULL, err)) ||
      (rc = st_export_tmpdir(b->env->tmp_dir, &b->dir, err)) ||
      (rc = st__xbuild_documents(b, err)))
    goto done;
  if (!(counts = counts_of(b))) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if (!(rc = seal(b, counts, &sealed, err))) {
    st_export_out_t o = {b->env, b->tenant, b->run_id, &b->prof, b->plan.digest, b->dir,
                         &sealed, counts, NULL};
    rc = st_export_publish(&o, err);
  }
done:
  json_decref(counts);
  return rc;
}

int st_export_json_run(const st_export_json_env_t *env, const char *tenant, const char *run_id,
                       st_error_t *err) {
  st__xbuild_t b;
  int rc;

  memset(&b, 0, sizeof(b));
  st_export_profile_init(&b.prof);
  b.env = env;
  b.tenant = tenant;
  b.run_id = run_id;
  rc = st_export_drive(env, tenant, run_id, &b.prof, build, &b, err);
  for (size_t i = 0; i < ST_LEDGER_NKINDS; i++)
    st__xout_release(&b.outs[i]);
  st_export_rmtree(b.dir);
  st_free(b.dir);
  json_decref(b.adv);
  json_decref(b.vex);
  st_export_plan_release(&b.plan);
  st_export_profile_release(&b.prof);
  return rc;
}
