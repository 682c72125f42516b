/* oci_docker.c: docker-archive (`docker save`) to OCI blobs (oci.h). manifest.json lists
 * per image a Config file, Layers (uncompressed tars) and RepoTags; those become an OCI
 * image config, ST_OCI_MT_LAYER layers (digest = diff_id, as the config expects) and a
 * manifest tagged with the first RepoTag. Every path is checked before it is opened. */
#include "stella/oci.h"

#include <string.h>

#include "oci_internal.h"
#include "stella/json.h"
#include "stella/mem.h"

static int add_member(st_oci_layout_t *l, const char *src_dir, const json_t *pj,
                      const char *mt, st_oci_desc_t *desc, st_error_t *err) {
  st_buf_t path = ST_BUF_INIT;
  const char *p = json_string_value(pj), *why;
  int rc;
  if (!p)
    return st_fail(err, ST_EPARSE, "docker archive: manifest.json path is not a string");
  if ((why = st__oci_path_problem(p, strlen(p))))
    return st_fail(err, ST_EUNSAFE, "docker archive: '%.200s': %s", p, why);
  if ((rc = st_buf_addf(&path, "%s/%s", src_dir, p)))
    rc = st_fail(err, rc, "docker archive: path too long");
  else
    rc = st_oci_layout_add_file(l, path.data, mt, desc, err);
  st_buf_release(&path);
  return rc;
}

static int import_one(st_oci_layout_t *l, const char *src_dir, const json_t *img, size_t idx,
                      st_error_t *err) {
  st_oci_desc_t config = {0}, man = {0}, *layers = NULL;
  json_t *lj = json_object_get(img, "Layers"), *tags = json_object_get(img, "RepoTags");
  const char *tag = NULL;
  size_t n = 0;
  int rc;

  if (!json_is_array(lj) || !json_object_get(img, "Config") ||
      (tags && !json_is_array(tags) && !json_is_null(tags))) {
    rc = st_fail(err, ST_EPARSE, "docker archive: manifest.json[%zu] needs Config and Layers",
                 idx);
    goto done;
  }
  if ((rc = add_member(l, src_dir, json_object_get(img, "Config"), ST_OCI_MT_CONFIG, &config,
                       err)))
    goto done;
  if (json_array_size(lj) &&
      !(layers = st_calloc(json_array_size(lj), sizeof(*layers)))) {
    rc = st_fail(err, ST_ENOMEM, "docker archive: out of memory");
    goto done;
  }
  for (; n < json_array_size(lj); n++)
    if ((rc = add_member(l, src_dir, json_array_get(lj, n), ST_OCI_MT_LAYER, &layers[n], err)))
      goto done;
  {
    st_oci_manifest_t m = {.config = &config, .layers = layers, .nlayers = n};
    if ((rc = st_oci_layout_add_manifest(l, &m, &man, err)))
      goto done;
  }
  if (json_is_array(tags) && json_array_size(tags)) {
    tag = json_string_value(json_array_get(tags, 0));
    if (!tag) {
      rc = st_fail(err, ST_EPARSE, "docker archive: manifest.json[%zu].RepoTags[0]", idx);
      goto done;
    }
  }
  rc = st_oci_layout_tag(l, &man, tag, err);
done:
  for (size_t i = 0; i < n; i++)
    st_oci_desc_release(&layers[i]);
  st_free(layers);
  st_oci_desc_release(&config);
  st_oci_desc_release(&man);
  return rc;
}

int st_oci_docker_archive_import(st_oci_layout_t *l, const char *src_dir,
                                 const st_oci_limits_t *lim, st_error_t *err) {
  st_oci_limits_t dl;
  st_json_limits_t jl;
  st_buf_t path = ST_BUF_INIT;
  char *text = NULL;
  size_t len = 0;
  json_t *doc = NULL;
  int rc = 0;

  st_oci_limits_default(&dl);
  jl.max_bytes = lim && lim->max_json_bytes ? lim->max_json_bytes : dl.max_json_bytes;
  jl.max_depth = 16;
  if ((rc = st_buf_addf(&path, "%s/manifest.json", src_dir)) ||
      (rc = st__oci_read_file(path.data, jl.max_bytes, &text, &len, err)))
    goto done;
  if ((rc = st_json_parse(text, len, &jl, &doc, err)))
    goto done;
  if (!json_is_array(doc) || json_array_size(doc) == 0) {
    rc = st_fail(err, ST_EPARSE, "docker archive: manifest.json is not a non-empty array");
    goto done;
  }
  for (size_t i = 0; i < json_array_size(doc) && !rc; i++)
    rc = import_one(l, src_dir, json_array_get(doc, i), i, err);
done:
  json_decref(doc);
  st_free(text);
  st_buf_release(&path);
  return rc;
}
