/* oci_worker.c: the `oci_distribute` job descriptor, the OCI distributor of export
 * artifacts. Payload (schemas/json/job-oci-distribute.schema.json): exactly one of
 * "bundle" (a sealed .tgz) or "layout" (an OCI layout directory or oci-archive, "ref"
 * naming its index.json entry), absolute paths that must resolve inside the configured
 * oci_source_dir, or neither and a "run_id" whose stored artifact is fetched from the object
 * store (oci_source.c); a bundle is verified against the trusted key before any push; "targets": `oci://HOST[:PORT]/REPO[:TAG]` (https),
 * `oci+http://HOST[:PORT]/REPO[:TAG]` (plain http, local registries) or `s3://KEY` (the
 * configured object store, under tenants/<tenant>/KEY); optional "run_id" (an export run:
 * its export_distributions rows and `export.distributed` events are written when the
 * process has a Postgres pool) and "retain_days".
 *
 * Credentials never travel in payloads (a target with userinfo is refused): the registry
 * client reads oci_docker_config (a docker config.json) and oci_ca_file. Every target is
 * tried; the first failure is returned after all were (a retry re-pushes, and the
 * registry client's HEAD checks make that upload nothing twice). The queue has no result
 * channel, so the outcome (digests, referrer, blob counts) is one JSON log line
 * `oci_distribute result` besides the rows. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "export/adapter.h"
#include "oci_dist.h"
#include "registry.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/objstore.h"

#define MAX_TARGETS 16
#define TARGET_MAX 1024

static int uuid_ok(const char *s) {
  if (!s || strlen(s) != 36)
    return 0;
  for (int i = 0; i < 36; i++)
    if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !strchr("0123456789abcdef", s[i]))
      return 0;
  return 1;
}

/* For oci targets: the st_oci_ref_parse form ("http://h/r:t" or "h/r:t"). NULL if not oci. */
static const char *oci_ref(const char *t, int *http) {
  *http = !strncmp(t, "oci+http://", 11);
  if (*http)
    return t + 4; /* "http://..." */
  return !strncmp(t, "oci://", 6) ? t + 6 : NULL;
}

static int check_target(const char *t, size_t i, st_error_t *err) {
  st_buf_t reg = ST_BUF_INIT, repo = ST_BUF_INIT, tag = ST_BUF_INIT;
  int http, rc = 0;
  const char *ref;

  if (!t || !*t || strlen(t) > TARGET_MAX)
    return st_fail(err, ST_EINVAL, "targets[%zu]: want a string of 1..%d bytes", i, TARGET_MAX);
  if (strchr(t, '@'))
    return st_fail(err, ST_EINVAL, "targets[%zu]: no userinfo or digest (credentials come "
                   "from oci_docker_config, never from payloads)", i);
  if (!strncmp(t, "s3://", 5)) {
    const char *k = t + 5;
    if (!*k || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/") !=
                   strlen(k))
      return st_fail(err, ST_EINVAL, "targets[%zu]: s3://KEY wants [A-Za-z0-9._-/]", i);
    return 0;
  }
  if (!(ref = oci_ref(t, &http)))
    return st_fail(err, ST_EINVAL, "targets[%zu]: want oci://, oci+http:// or s3://", i);
  if (st_oci_ref_parse(ref, &reg, &repo, &tag, err))
    rc = st_error_wrap(err, "targets[%zu]", i);
  st_buf_release(&reg);
  st_buf_release(&repo);
  st_buf_release(&tag);
  return rc;
}

static int validate(const json_t *p, st_error_t *err) {
  const char *k;
  json_t *v;
  int nsrc = 0;
  json_object_foreach((json_t *)p, k, v) {
    if (!strcmp(k, "bundle") || !strcmp(k, "layout")) {
      const char *s = json_string_value(v);
      nsrc++;
      if (!s || s[0] != '/' || strlen(s) > PATH_MAX || strstr(s, "/../") || strstr(s, "/./"))
        return st_fail(err, ST_EINVAL, "%s: want an absolute, normalised path", k);
    } else if (!strcmp(k, "ref")) {
      if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 255)
        return st_fail(err, ST_EINVAL, "ref: want a string of 1..255 bytes");
    } else if (!strcmp(k, "run_id")) {
      if (!uuid_ok(json_string_value(v)))
        return st_fail(err, ST_EINVAL, "run_id: want a lower-case UUID");
    } else if (!strcmp(k, "retain_days")) {
      if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 36500)
        return st_fail(err, ST_EINVAL, "retain_days: want an integer in 1..36500");
    } else if (!strcmp(k, "targets")) {
      size_t i;
      json_t *t;
      if (!json_is_array(v) || !json_array_size(v) || json_array_size(v) > MAX_TARGETS)
        return st_fail(err, ST_EINVAL, "targets: want an array of 1..%d strings", MAX_TARGETS);
      json_array_foreach(v, i, t) {
        int rc = check_target(json_string_value(t), i, err);
        if (rc)
          return rc;
      }
    } else {
      return st_fail(err, ST_EINVAL, "%s: unknown key", k);
    }
  }
  if (nsrc > 1 || (!nsrc && !json_object_get(p, "run_id")))
    return st_fail(err, ST_EINVAL, "bundle/layout: want exactly one of them, or run_id alone "
                   "(that export run's stored artifact)");
  if (!json_object_get(p, "targets"))
    return st_fail(err, ST_EINVAL, "targets: required");
  if (json_object_get(p, "ref") && json_object_get(p, "bundle"))
    return st_fail(err, ST_EINVAL, "ref: only with layout");
  return 0;
}

static int cancelled(void *ud) { return st_job_cancelled(ud); }

/* The source path resolved, and inside oci_source_dir. */
static int resolve_source(const st_config_t *cfg, const char *path, char **out, st_error_t *err) {
  const char *root = cfg ? st_config_str(cfg, "oci_source_dir") : NULL;
  char *rroot = NULL, *real = NULL;
  size_t n;
  int rc = 0;

  if (!root)
    return st_fail(err, ST_ECONFIG, "oci_source_dir: not set (the directory sources must be in)");
  if (!(rroot = realpath(root, NULL))) {
    rc = st_fail(err, ST_ECONFIG, "oci_source_dir %s: does not resolve", root);
    goto done;
  }
  if (!(real = realpath(path, NULL))) {
    rc = st_fail(err, ST_ENOENT, "%s: no such file or directory", path);
    goto done;
  }
  n = strlen(rroot);
  if (strncmp(real, rroot, n) || real[n] != '/') {
    rc = st_fail(err, ST_EPERM, "%s: outside oci_source_dir", path);
    goto done;
  }
  *out = st_strdup(real);
  if (!*out)
    rc = st_fail(err, ST_ENOMEM, "out of memory");
done:
  free(rroot);
  free(real);
  return rc;
}

static int push_oci(st_job_ctx_t *ctx, const st__oci_src_t *src, const char *target,
                    st__oci_pushed_t *out, st_error_t *err) {
  st_buf_t reg = ST_BUF_INIT, repo = ST_BUF_INIT, tag = ST_BUF_INIT;
  st_oci_client_t *c = NULL;
  st_oci_client_opts_t o = {0};
  int http, rc;

  if ((rc = st_oci_ref_parse(oci_ref(target, &http), &reg, &repo, &tag, err)))
    goto done;
  o.registry = reg.data;
  o.docker_config = st_config_str(ctx->cfg, "oci_docker_config");
  o.ca_file = st_config_str(ctx->cfg, "oci_ca_file");
  o.chunk_size = (uint64_t)st_config_int(ctx->cfg, "oci_chunk_size");
  o.cancelled = cancelled;
  o.cancel_ud = ctx;
  if (!(rc = st_oci_client_new(&o, &c, err)))
    rc = st__oci_src_push(c, src, repo.data, tag.len ? tag.data : NULL, out, err);
done:
  st_oci_client_free(c);
  st_buf_release(&reg);
  st_buf_release(&repo);
  st_buf_release(&tag);
  return rc;
}

static int push_s3(st_objstore_t **store, st_job_ctx_t *ctx, const char *tenant,
                   const st__oci_src_t *src, const char *path, const char *target,
                   st__oci_pushed_t *out, st_error_t *err) {
  st_buf_t key = ST_BUF_INIT;
  int rc;
  memset(out, 0, sizeof(*out));
  if (!src->file_sha256[0])
    return st_fail(err, ST_EINVAL, "%s: an object store target takes a file (bundle or "
                   "oci-archive), not a layout directory", target);
  if (!*store && (rc = st_objstore_open(store, ctx->cfg, err)))
    return rc;
  if (st_buf_addf(&key, "tenants/%s/%s", tenant, target + 5))
    rc = st_fail(err, ST_ENOMEM, "out of memory");
  else if (!(rc = st_objstore_put_file(*store, tenant, key.data, src->file_sha256, path, NULL,
                                       err)))
    snprintf(out->digest, sizeof(out->digest), "sha256:%s", src->file_sha256);
  st_buf_release(&key);
  return rc;
}

static int run(st_job_t *job, st_job_ctx_t *ctx, st_error_t *err) {
  const json_t *p = job->env->payload, *targets = json_object_get(p, "targets"), *t;
  const char *tenant = job->env->tenant;
  const char *run_id = json_string_value(json_object_get(p, "run_id"));
  const char *kind = json_object_get(p, "layout") ? "layout" : "bundle";
  long long days = json_integer_value(json_object_get(p, "retain_days"));
  st__oci_src_t src;
  st_objstore_t *store = NULL;
  json_t *result = json_array();
  char *path = NULL, *text = NULL, *fetched = NULL;
  size_t i;
  int rc, first = 0;

  memset(&src, 0, sizeof(src));
  st_export_sweep(ctx->cfg ? st_config_str(ctx->cfg, "export_tmp_dir") : NULL);
  if (!json_object_get(p, kind))
    rc = st__oci_run_fetch(ctx, &store, tenant, run_id, &fetched, &path, err);
  else
    rc = resolve_source(ctx->cfg, json_string_value(json_object_get(p, kind)), &path, err);
  if (rc || (!strcmp(kind, "bundle") && (rc = st__oci_verify_bundle(ctx->cfg, path, err))) ||
      (rc = st__oci_src_open(&src, kind, path, json_string_value(json_object_get(p, "ref")),
                             st_config_str(ctx->cfg, "export_tmp_dir"), err)))
    goto done;
  json_array_foreach(targets, i, t) {
    const char *target = json_string_value(t);
    st__oci_pushed_t out;
    st_error_t e = ST_ERROR_INIT;
    int r;

    if (st_job_cancelled(ctx)) {
      rc = st_fail(err, ST_ECANCELED, "oci_distribute: cancelled");
      goto done;
    }
    r = !strncmp(target, "s3://", 5) ? push_s3(&store, ctx, tenant, &src, path, target, &out, &e)
                                     : push_oci(ctx, &src, target, &out, &e);
    if (r == ST_ECANCELED) {
      rc = st_fail(err, r, "%s", st_error_text(&e));
      goto done;
    }
    if (ctx->db && run_id) {
      st_error_t e2 = ST_ERROR_INIT;
      int r2 = st__oci_record(ctx->db, tenant, run_id, target, r ? NULL : &out, days,
                              r ? st_error_text(&e) : NULL, &e2);
      if (r2 && !r)
        r = r2, e = e2;
    }
    json_array_append_new(
        result, r ? json_pack("{s:s, s:s}", "target", target, "error", st_error_text(&e))
                  : json_pack("{s:s, s:s, s:s*, s:I, s:I}", "target", target, "digest",
                              out.digest, "referrer", out.referrer[0] ? out.referrer : NULL,
                              "blobs_uploaded", (json_int_t)out.stats.blobs_uploaded,
                              "blobs_present", (json_int_t)out.stats.blobs_present));
    if (r && !first) {
      first = 1;
      rc = st_fail(err, r, "%s: %s", target, st_error_text(&e));
    }
    if (ctx->progress)
      ctx->progress(ctx, (double)(i + 1) / (double)json_array_size(targets), target);
  }
done:
  if ((text = json_dumps(result, JSON_COMPACT)))
    st_logkv(rc ? ST_LOG_WARN : ST_LOG_INFO, "oci_distribute result", "kind", kind,
             "recorded", ctx->db && run_id ? "yes" : "no", "targets", text, NULL);
  free(text);
  json_decref(result);
  st__oci_src_close(&src);
  st_objstore_free(store);
  st_free(path);
  st_export_rmtree(fetched);
  st_free(fetched);
  return rc;
}

const st_worker_t st_worker_oci_distribute = {"oci_distribute", validate, run, 2, 5};
