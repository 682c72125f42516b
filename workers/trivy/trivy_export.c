/* trivy_export.c: Export Center runs of the Trivy profiles (st_trivy_export_run;
 * docs/trivy.md, "Export profiles"). trivy:db feeds the planned OSV advisories to the
 * Trivy DB v2 builder, trivy:java-db the planned Maven index rows to the Java DB v1
 * builder, each in plan order and checked against the recorded plan. A document the
 * builder rejects is logged, listed in payload/rejects.ndjson ({"id", "reason"} per line)
 * and skipped; the rest still builds.
 *
 * The bundle (kind export, format oci-layout) holds the OCI image layout Trivy pulls:
 * payload/oci/{oci-layout, index.json, blobs/sha256/...}, one manifest whose single layer
 * is db.tar.gz (javadb.tar.gz) with Trivy's media type and title annotation, tagged "2"
 * ("1"). Beside it the run stores the same layout as an oci-archive
 * (trivy-db.oci.tar / trivy-java-db.oci.tar) for the OCI distributor. No wall clock: the
 * bundle's created time, the tar mtimes and metadata.json's UpdatedAt are the latest
 * `modified` of the input, so the same ledger state gives the same bytes. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "export/adapter.h"
#include "stella/json.h"
#include "stella/jcs.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "trivy_internal.h"

typedef struct tx_s {
  const st_export_env_t *env;
  const char *tenant, *run_id;
  st_export_profile_t prof;
  st_export_plan_t plan;
  int java;
  char *dir;
  size_t next;
  unsigned since_poll;
  st_trivy_db_t *db;
  st_trivy_java_db_t *jdb;
  FILE *rejects;
  long long nrejects;
  st_trivy_result_t res;
  char manifest[72];
} tx_t;

static int reject(tx_t *t, const char *id, const st_error_t *e, st_error_t *err) {
  json_t *o = json_pack("{ssss}", "id", id, "reason", st_error_text(e));
  st_buf_t line = ST_BUF_INIT;
  int rc = o ? st_jcs_encode(o, &line, err) : st_fail(err, ST_ENOMEM, "trivy export");
  if (!rc && (fwrite(line.data, 1, line.len, t->rejects) != line.len ||
              fputc('\n', t->rejects) == EOF))
    rc = st_fail(err, ST_EIO, "trivy export: writing rejects.ndjson");
  if (!rc) {
    t->nrejects++;
    st_logkv(ST_LOG_WARN, "trivy export: document rejected", "run_id", t->run_id, "id", id,
             "reason", st_error_text(e), NULL);
  }
  json_decref(o);
  st_buf_release(&line);
  return rc;
}

/* A Maven row from the iterator's JSON form. */
static int add_maven(tx_t *t, const char *doc, st_error_t *e) {
  json_t *j = NULL;
  int rc = st_json_parse(doc, strlen(doc), NULL, &j, e);
  if (!rc) {
    st_trivy_maven_row_t r = {json_string_value(json_object_get(j, "group_id")),
                              json_string_value(json_object_get(j, "artifact_id")),
                              json_string_value(json_object_get(j, "version")),
                              json_string_value(json_object_get(j, "sha1")),
                              json_string_value(json_object_get(j, "packaging"))};
    rc = st_trivy_java_db_add(t->jdb, &r, json_string_value(json_object_get(j, "modified")), e);
  }
  json_decref(j);
  return rc;
}

static int feed(tx_t *t, const char *tenant, const st_ledger_item_t *it, st_error_t *err) {
  st_error_t e = ST_ERROR_INIT;
  int rc;
  if ((rc = st_export_plan_expect(&t->plan, &t->next, tenant, it, err)))
    return rc;
  if (!it->doc)
    return st_fail(err, ST_EDB, "trivy export: %s has no document", it->id);
  rc = t->java ? add_maven(t, it->doc, &e) : st_trivy_db_add(t->db, it->doc, strlen(it->doc), &e);
  if (rc == ST_EIO || rc == ST_ENOMEM) {
    *err = e;
    return rc;
  }
  return rc ? reject(t, it->id, &e, err) : 0;
}

static int documents(tx_t *t, st_error_t *err) {
  st_export_filters_t f;
  st_ledger_iter_t *it = NULL;
  st_ledger_kind kind = t->java ? ST_LEDGER_MAVEN : ST_LEDGER_ADVISORY;
  int rc;

  if ((rc = st_export_filters_parse(t->prof.filters, &f, err)))
    return rc;
  for (size_t i = 0; i < t->plan.ntenants && !rc; i++) {
    const st_ledger_item_t *li;
    if ((rc = st_ledger_iter_new(t->env->db, t->plan.tenants[i], kind, &f.scope, 1, 0, &it,
                                 err)))
      break;
    while ((rc = st_ledger_iter_next(it, &li, err)) == 1)
      if ((rc = st_export_poll(t->env, t->tenant, t->run_id, &t->since_poll, t->next,
                               t->plan.n, err)) ||
          (rc = feed(t, t->plan.tenants[i], li, err)))
        break;
    st_ledger_iter_free(it);
    it = NULL;
  }
  if (!rc && t->next != t->plan.n)
    rc = st_fail(err, ST_ECONFLICT, "export: the ledger changed since the run was planned "
                 "(%zu of %zu inputs found)", t->next, t->plan.n);
  st_export_filters_release(&f);
  return rc;
}

/* The layout files as bundle inputs payload/oci/<rel> (paths owned by *paths). */
static int layout_inputs(const char *oci, st_bundle_input_t *in, size_t cap, size_t *n,
                         char **paths, st_error_t *err) {
  static const char *const top[2] = {"index.json", "oci-layout"};
  DIR *d = NULL;
  struct dirent *e;
  st_buf_t p = ST_BUF_INIT;
  int rc = 0;

  for (int i = 0; i < 2 && !rc; i++) {
    st_buf_reset(&p);
    if (*n >= cap || st_buf_addf(&p, "oci/%s%c%s/%s", top[i], '\0', oci, top[i]))
      rc = st_fail(err, ST_ENOMEM, "trivy export: layout inputs");
    else {
      paths[*n] = st_buf_detach(&p, NULL);
      in[*n] = (st_bundle_input_t){paths[*n], ST_BUNDLE_SRC_FILE,
                                   paths[*n] + strlen(paths[*n]) + 1, NULL, 0,
                                   i ? "application/json"
                                     : "application/vnd.oci.image.index.v1+json"};
      ++*n;
    }
  }
  st_buf_reset(&p);
  if (!rc && (st_buf_addf(&p, "%s/blobs/sha256", oci) || !(d = opendir(p.data))))
    rc = st_fail(err, ST_EIO, "trivy export: %s", p.data);
  while (!rc && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    st_buf_reset(&p);
    if (*n >= cap || st_buf_addf(&p, "oci/blobs/sha256/%s%c%s/blobs/sha256/%s", e->d_name,
                                 '\0', oci, e->d_name))
      rc = st_fail(err, ST_ENOMEM, "trivy export: layout inputs");
    else {
      paths[*n] = st_buf_detach(&p, NULL);
      in[*n] = (st_bundle_input_t){paths[*n], ST_BUNDLE_SRC_FILE,
                                   paths[*n] + strlen(paths[*n]) + 1, NULL, 0,
                                   "application/octet-stream"};
      ++*n;
    }
  }
  if (d)
    closedir(d);
  st_buf_release(&p);
  return rc;
}

static json_t *counts_of(const tx_t *t) {
  return json_pack("{sIsIsIsI}", "documents", (json_int_t)t->res.documents, "records",
                   (json_int_t)t->res.records, "withdrawn", (json_int_t)t->res.withdrawn,
                   "rejected", (json_int_t)t->nrejects);
}

/* Seal dir/oci (+ rejects.ndjson) into dir/export.tgz. */
static int seal(tx_t *t, const json_t *counts, st_bundle_sealed_t *sealed, st_error_t *err) {
  enum { CAP = 8 };
  st_bundle_input_t in[CAP];
  char *paths[CAP] = {0}, *oci = st__trivy_path(t->dir, "oci"), *ix = NULL, *rej = NULL;
  st_buf_t out = ST_BUF_INIT;
  json_t *meta = NULL, *src = json_array();
  st_bundle_spec_t spec = {0};
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  size_t n = 0;
  int rc;

  if (!oci || !src || !(ix = st__trivy_path(oci, "index.json")) ||
      !(rej = st__trivy_path(t->dir, "rejects.ndjson"))) {
    rc = st_fail(err, ST_ENOMEM, "trivy export");
    goto done;
  }
  if ((rc = layout_inputs(oci, in, CAP - 1, &n, paths, err)) ||
      (rc = st_sha256_file(ix, d, NULL, err)))
    goto done;
  in[n++] = (st_bundle_input_t){"rejects.ndjson", ST_BUNDLE_SRC_FILE, rej, NULL, 0,
                                "application/x-ndjson"};
  st_sha256_hex(d, hex);
  for (size_t i = 1; i < t->plan.ntenants; i++)
    json_array_append_new(src, json_string(t->plan.tenants[i]));
  meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:O, s:O, s:s, s:s, s:s, s:s, s:i, "
                   "s:s}",
                   "profile", t->prof.name, "project", t->prof.project, "export_kind",
                   t->prof.kind, "format", "oci-layout", "compression", "gzip", "plan_digest",
                   t->plan.digest, "counts", counts, "source_tenants", src, "filters",
                   t->prof.filters, "media_type",
                   t->java ? ST_TRIVY_JAVA_DB_MEDIA_TYPE : ST_TRIVY_DB_MEDIA_TYPE,
                   "index_sha256", hex, "manifest_digest", t->manifest, "tag",
                   t->java ? "1" : "2", "schema_version",
                   t->java ? ST_TRIVY_JAVA_DB_SCHEMA : ST_TRIVY_DB_SCHEMA, "updated_at",
                   t->res.updated_at);
  spec.kind = "export";
  spec.tenant = t->tenant;
  spec.created = t->res.updated_at;
  spec.metadata = meta;
  spec.inputs = in;
  spec.ninputs = n;
  spec.result = sealed;
  if (!meta || st_buf_addf(&out, "%s/export.tgz", t->dir))
    rc = st_fail(err, ST_ENOMEM, "trivy export: out of memory");
  else
    rc = st_bundle_seal(&spec, t->env->signer, t->env->tsa, out.data, err);
done:
  for (size_t i = 0; i < CAP; i++)
    st_free(paths[i]);
  st_free(oci);
  st_free(ix);
  st_free(rej);
  json_decref(meta);
  json_decref(src);
  st_buf_release(&out);
  return rc;
}

/* Builder output, OCI layout directory and archive. */
static int build_db(tx_t *t, const char *archive, st_error_t *err) {
  st_trivy_opts_t o = {0};
  char *out = st__trivy_path(t->dir, "db"), *oci = st__trivy_path(t->dir, "oci");
  char *tarball = NULL;
  int64_t mtime = 0;
  int rc;

  o.scratch_dir = t->dir;
  if (!out || !oci || !(tarball = st__trivy_path(out, t->java ? "javadb.tar.gz" : "db.tar.gz"))) {
    rc = st_fail(err, ST_ENOMEM, "trivy export");
    goto done;
  }
  if ((rc = t->java ? st_trivy_java_db_new(out, &o, &t->jdb, err)
                    : st_trivy_db_new(out, &o, &t->db, err)) ||
      (rc = documents(t, err)))
    goto done;
  if ((rc = t->java ? st_trivy_java_db_finish(t->jdb, &t->res, err)
                    : st_trivy_db_finish(t->db, &t->res, err)))
    goto done;
  if (st__trivy_time(t->res.updated_at, &mtime)) {
    rc = st_fail(err, ST_EINVAL, "trivy export: UpdatedAt %s", t->res.updated_at);
    goto done;
  }
  rc = st_trivy_oci_write(tarball, t->java ? ST_TRIVY_JAVA_DB_MEDIA_TYPE : ST_TRIVY_DB_MEDIA_TYPE,
                          t->java ? "1" : "2", oci, archive, mtime, t->manifest, err);
done:
  st_free(out);
  st_free(oci);
  st_free(tarball);
  return rc;
}

static int build(void *ud, st_error_t *err) {
  tx_t *t = ud;
  const char *aname = !strcmp(t->prof.kind, "trivy:java-db") ? "trivy-java-db.oci.tar"
                                                             : "trivy-db.oci.tar";
  const char *extra[2] = {aname, NULL};
  char *archive = NULL, *rej = NULL;
  st_bundle_sealed_t sealed;
  json_t *counts = NULL;
  int rc;

  if (strcmp(t->prof.kind, "trivy:db") && strcmp(t->prof.kind, "trivy:java-db"))
    return st_fail(err, ST_EUNSUPPORTED, "kind: %s is not a Trivy export", t->prof.kind);
  t->java = !strcmp(t->prof.kind, "trivy:java-db");
  if ((rc = st_export_plan_build(t->env->db, t->tenant, &t->prof, &t->plan, err)) ||
      (rc = st_export_plan_record(t->env->db, t->tenant, t->run_id, &t->plan, err)) ||
      (rc = st_export_run_set_state(t->env->db, t->tenant, t->run_id, "running", NULL, err)) ||
      (rc = st_export_tmpdir(t->env->tmp_dir, &t->dir, err)))
    goto done;
  if (!(archive = st__trivy_path(t->dir, aname)) ||
      !(rej = st__trivy_path(t->dir, "rejects.ndjson"))) {
    rc = st_fail(err, ST_ENOMEM, "trivy export");
    goto done;
  }
  if (!(t->rejects = fopen(rej, "wbx"))) {
    rc = st_fail(err, ST_EIO, "trivy export: cannot create %s", rej);
    goto done;
  }
  if ((rc = build_db(t, archive, err)))
    goto done;
  if (fclose(t->rejects)) {
    t->rejects = NULL;
    rc = st_fail(err, ST_EIO, "trivy export: closing %s", rej);
    goto done;
  }
  t->rejects = NULL;
  if (!(counts = counts_of(t))) {
    rc = st_fail(err, ST_ENOMEM, "trivy export");
    goto done;
  }
  if (!(rc = seal(t, counts, &sealed, err))) {
    st_export_out_t o = {t->env, t->tenant, t->run_id, &t->prof, t->plan.digest, t->dir,
                         &sealed, counts, extra};
    rc = st_export_publish(&o, err);
  }
done:
  json_decref(counts);
  st_free(archive);
  st_free(rej);
  return rc;
}

int st_trivy_export_run(const st_export_env_t *env, const char *tenant, const char *run_id,
                        st_error_t *err) {
  tx_t t;
  int rc;

  memset(&t, 0, sizeof(t));
  st_export_profile_init(&t.prof);
  t.env = env;
  t.tenant = tenant;
  t.run_id = run_id;
  rc = st_export_drive(env, tenant, run_id, &t.prof, build, &t, err);
  if (t.rejects)
    fclose(t.rejects);
  st_trivy_db_free(t.db);
  st_trivy_java_db_free(t.jdb);
  st_export_rmtree(t.dir);
  st_free(t.dir);
  st_export_plan_release(&t.plan);
  st_export_profile_release(&t.prof);
  return rc;
}
