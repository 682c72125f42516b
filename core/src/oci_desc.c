/* oci_desc.c: OCI descriptors, the validators of outside strings (digests, media types,
 * repository names, tags) and the canonical encoding of manifests and indexes (oci.h).
 * JSON is built with jansson and written by the RFC 8785 encoder, which sorts members and
 * drops whitespace: the one byte form all digests here are computed over. */
#include "stella/oci.h"

#include <string.h>

#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"

void st_oci_desc_release(st_oci_desc_t *d) {
  if (!d)
    return;
  st_free(d->media_type);
  st_free(d->artifact_type);
  json_decref(d->annotations);
  json_decref(d->platform);
  memset(d, 0, sizeof(*d));
}

int st_oci_digest_valid(const char *s) {
  if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != ST_OCI_DIGEST_LEN)
    return 0;
  for (const char *p = s + 7; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return 0;
  return 1;
}

/* RFC 6838 restricted-name: first alnum, then alnum or !#$&-^_.+ up to 127 bytes. */
static int restricted_name(const char *s, size_t len) {
  if (len == 0 || len > 127)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || !strchr("!#$&-^_.+", c)))
      return 0;
  }
  return 1;
}

int st_oci_media_type_valid(const char *s) {
  const char *slash;
  if (!s || strlen(s) > ST_OCI_MEDIA_TYPE_MAX || !(slash = strchr(s, '/')))
    return 0;
  return restricted_name(s, (size_t)(slash - s)) && restricted_name(slash + 1, strlen(slash + 1));
}

static int is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+;
 * components joined by '/'. */
int st_oci_repo_valid(const char *s) {
  size_t len;
  if (!s || (len = strlen(s)) == 0 || len > 255)
    return 0;
  for (size_t i = 0; i < len;) {
    if (!is_lower_alnum(s[i]))
      return 0;
    while (i < len && is_lower_alnum(s[i]))
      i++;
    if (i == len)
      return 1;
    if (s[i] == '/') {
      i++;
      continue;
    }
    if (s[i] == '.' || (s[i] == '_' && s[i + 1] != '_'))
      i++;
    else if (s[i] == '_')
      i += 2;
    else if (s[i] == '-')
      while (s[i] == '-')
        i++;
    else
      return 0;
    if (i >= len || !is_lower_alnum(s[i]))
      return 0;
  }
  return 0;
}

int st_oci_tag_valid(const char *s) {
  size_t len;
  if (!s || (len = strlen(s)) == 0 || len > 128)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || (i > 0 && (c == '.' || c == '-'));
    if (!ok)
      return 0;
  }
  return 1;
}

static int annotations_check(const json_t *a, const char *what, st_error_t *err) {
  const char *k;
  json_t *v;
  if (!json_is_object(a))
    return st_fail(err, ST_EINVAL, "%s.annotations: not an object", what);
  json_object_foreach((json_t *)a, k, v) {
    if (!*k || !st_utf8_valid(k, strlen(k)))
      return st_fail(err, ST_EINVAL, "%s.annotations: empty or non-UTF-8 key", what);
    if (!json_is_string(v) ||
        !st_utf8_valid(json_string_value(v), json_string_length(v)))
      return st_fail(err, ST_EINVAL, "%s.annotations.%.100s: not a UTF-8 string", what, k);
  }
  return 0;
}

int st_oci_desc_annotate(st_oci_desc_t *d, const char *key, const char *value,
                         st_error_t *err) {
  json_t *s;
  if (!key || !*key || !value || !st_utf8_valid(key, strlen(key)) ||
      !st_utf8_valid(value, strlen(value)))
    return st_fail(err, ST_EINVAL, "annotation: empty or non-UTF-8 key or value");
  if (!d->annotations && !(d->annotations = json_object()))
    return st_fail(err, ST_ENOMEM, "annotation: out of memory");
  if (!(s = json_string(value)) || json_object_set_new(d->annotations, key, s))
    return st_fail(err, ST_ENOMEM, "annotation %.100s: out of memory", key);
  return 0;
}

int st_oci_desc_copy(st_oci_desc_t *dst, const st_oci_desc_t *src, st_error_t *err) {
  memset(dst, 0, sizeof(*dst));
  memcpy(dst->digest, src->digest, sizeof(dst->digest));
  dst->size = src->size;
  if (!(dst->media_type = st_strdup(src->media_type ? src->media_type : "")) ||
      (src->artifact_type && !(dst->artifact_type = st_strdup(src->artifact_type))) ||
      (src->annotations && !(dst->annotations = json_deep_copy(src->annotations))) ||
      (src->platform && !(dst->platform = json_deep_copy(src->platform)))) {
    st_oci_desc_release(dst);
    return st_fail(err, ST_ENOMEM, "descriptor: out of memory");
  }
  return 0;
}

int st_oci_desc_from_json(const json_t *j, st_oci_desc_t *dst, st_error_t *err) {
  const char *mt = NULL, *dg = NULL, *at = NULL;
  json_t *size, *ann, *plat, *atj;
  int rc;
  if (!json_is_object(j))
    return st_fail(err, ST_EPARSE, "descriptor: not an object");
  if ((rc = st_json_get_str(j, "mediaType", &mt, NULL, err)) ||
      (rc = st_json_get_str(j, "digest", &dg, NULL, err)))
    return st_fail(err, ST_EPARSE, "descriptor: mediaType and digest must be strings");
  if (!st_oci_media_type_valid(mt))
    return st_fail(err, ST_EPARSE, "descriptor: mediaType '%.100s' is not a media type", mt);
  if (!st_oci_digest_valid(dg))
    return st_fail(err, ST_EPARSE, "descriptor: digest '%.100s' is not sha256:<64 hex>", dg);
  size = json_object_get(j, "size");
  if (!json_is_integer(size) || json_integer_value(size) < 0)
    return st_fail(err, ST_EPARSE, "descriptor %s: size is not a non-negative integer", dg);
  if ((atj = json_object_get(j, "artifactType"))) {
    if (!json_is_string(atj) || !st_oci_media_type_valid(at = json_string_value(atj)))
      return st_fail(err, ST_EPARSE, "descriptor %s: artifactType is not a media type", dg);
  }
  ann = json_object_get(j, "annotations");
  if (ann && annotations_check(ann, "descriptor", err))
    return st_fail(err, ST_EPARSE, "descriptor %s: annotations must map keys to strings", dg);
  plat = json_object_get(j, "platform");
  if (plat && !json_is_object(plat))
    return st_fail(err, ST_EPARSE, "descriptor %s: platform is not an object", dg);
  memset(dst, 0, sizeof(*dst));
  memcpy(dst->digest, dg, ST_OCI_DIGEST_LEN + 1);
  dst->size = (uint64_t)json_integer_value(size);
  if (!(dst->media_type = st_strdup(mt)) || (at && !(dst->artifact_type = st_strdup(at))) ||
      (ann && !(dst->annotations = json_deep_copy(ann))) ||
      (plat && !(dst->platform = json_deep_copy(plat)))) {
    st_oci_desc_release(dst);
    return st_fail(err, ST_ENOMEM, "descriptor: out of memory");
  }
  return 0;
}

static json_t *desc_json(const st_oci_desc_t *d, st_error_t *err) {
  json_t *o = NULL;
  if (!d->media_type || !st_oci_media_type_valid(d->media_type)) {
    st_fail(err, ST_EINVAL, "descriptor %s: mediaType '%.100s' is not a media type", d->digest,
            d->media_type ? d->media_type : "");
    return NULL;
  }
  if (!st_oci_digest_valid(d->digest)) {
    st_fail(err, ST_EINVAL, "descriptor: digest '%.80s' is not sha256:<64 hex>", d->digest);
    return NULL;
  }
  if (d->size > ((uint64_t)1 << 53)) {
    st_fail(err, ST_ERANGE, "descriptor %s: size past 2^53", d->digest);
    return NULL;
  }
  if (d->artifact_type && !st_oci_media_type_valid(d->artifact_type)) {
    st_fail(err, ST_EINVAL, "descriptor %s: artifactType is not a media type", d->digest);
    return NULL;
  }
  if (d->annotations && annotations_check(d->annotations, "descriptor", err))
    return NULL;
  if (!(o = json_pack("{s:s, s:s, s:I}", "mediaType", d->media_type, "digest", d->digest,
                      "size", (json_int_t)d->size)) ||
      (d->artifact_type &&
       json_object_set_new(o, "artifactType", json_string(d->artifact_type))) ||
      (d->annotations && json_object_set_new(o, "annotations", json_deep_copy(d->annotations))) ||
      (d->platform && json_object_set_new(o, "platform", json_deep_copy(d->platform)))) {
    json_decref(o);
    st_fail(err, ST_ENOMEM, "descriptor: out of memory");
    return NULL;
  }
  return o;
}

/* Members shared by manifests and indexes: schemaVersion, mediaType, artifactType,
 * subject, annotations. */
static json_t *doc_json(const char *media_type, const char *artifact_type,
                        const st_oci_desc_t *subject, const json_t *annotations,
                        st_error_t *err) {
  json_t *o = json_pack("{s:i, s:s}", "schemaVersion", 2, "mediaType", media_type), *sj;
  if (!o) {
    st_fail(err, ST_ENOMEM, "manifest: out of memory");
    return NULL;
  }
  if (artifact_type) {
    if (!st_oci_media_type_valid(artifact_type)) {
      st_fail(err, ST_EINVAL, "artifactType '%.100s' is not a media type", artifact_type);
      goto fail;
    }
    if (json_object_set_new(o, "artifactType", json_string(artifact_type)))
      goto oom;
  }
  if (subject) {
    if (!(sj = desc_json(subject, err)))
      goto fail;
    if (json_object_set_new(o, "subject", sj))
      goto oom;
  }
  if (annotations) {
    if (annotations_check(annotations, "manifest", err))
      goto fail;
    if (json_object_set_new(o, "annotations", json_deep_copy(annotations)))
      goto oom;
  }
  return o;
oom:
  st_fail(err, ST_ENOMEM, "manifest: out of memory");
fail:
  json_decref(o);
  return NULL;
}

static int desc_array(json_t *o, const char *key, const st_oci_desc_t *ds, size_t n,
                      st_error_t *err) {
  json_t *arr = json_array(), *dj;
  if (!arr || json_object_set_new(o, key, arr))
    return st_fail(err, ST_ENOMEM, "manifest: out of memory");
  for (size_t i = 0; i < n; i++) {
    if (!(dj = desc_json(&ds[i], err)))
      return err ? err->code : ST_EINVAL;
    if (json_array_append_new(arr, dj))
      return st_fail(err, ST_ENOMEM, "manifest: out of memory");
  }
  return 0;
}

int st_oci_manifest_encode(const st_oci_manifest_t *m, st_buf_t *out, st_error_t *err) {
  json_t *o = NULL, *cj;
  int rc = 0;
  if (!m->config || (m->nlayers && !m->layers))
    return st_fail(err, ST_EINVAL, "manifest: config and layers are required");
  if (!(o = doc_json(ST_OCI_MT_MANIFEST, m->artifact_type, m->subject, m->annotations, err)))
    return err && err->code ? err->code : ST_EINVAL;
  if (!(cj = desc_json(m->config, err))) {
    rc = err && err->code ? err->code : ST_EINVAL;
    goto done;
  }
  if (json_object_set_new(o, "config", cj)) {
    rc = st_fail(err, ST_ENOMEM, "manifest: out of memory");
    goto done;
  }
  if ((rc = desc_array(o, "layers", m->layers, m->nlayers, err)))
    goto done;
  rc = st_jcs_encode(o, out, err);
done:
  json_decref(o);
  return rc;
}

int st_oci_index_encode(const st_oci_index_t *ix, st_buf_t *out, st_error_t *err) {
  json_t *o;
  int rc;
  if (ix->nmanifests && !ix->manifests)
    return st_fail(err, ST_EINVAL, "index: manifests missing");
  if (!(o = doc_json(ST_OCI_MT_INDEX, ix->artifact_type, ix->subject, ix->annotations, err)))
    return err && err->code ? err->code : ST_EINVAL;
  if (!(rc = desc_array(o, "manifests", ix->manifests, ix->nmanifests, err)))
    rc = st_jcs_encode(o, out, err);
  json_decref(o);
  return rc;
}

static int is_index_type(const char *mt) {
  return !strcmp(mt, ST_OCI_MT_INDEX) || !strcmp(mt, ST_OCI_MT_DOCKER_LIST);
}

int st_oci_children(const char *json, size_t len, const char *media_type,
                    const st_oci_limits_t *lim, st_oci_desc_t **out, size_t *n,
                    st_oci_desc_t *subject, st_error_t *err) {
  st_json_limits_t jl = {lim ? lim->max_json_bytes : 0, 32};
  json_t *doc = NULL, *arr, *cfg, *sj, *mtj;
  st_oci_desc_t *ds = NULL;
  size_t count = 0, want, max_entries = lim && lim->max_entries ? lim->max_entries : 100000;
  int index, rc;

  *out = NULL;
  *n = 0;
  if ((rc = st_json_parse(json, len, &jl, &doc, err)))
    goto done;
  if (!json_is_object(doc)) {
    rc = st_fail(err, ST_EPARSE, "manifest: not a JSON object");
    goto done;
  }
  mtj = json_object_get(doc, "mediaType");
  if (mtj && (!json_is_string(mtj) || strcmp(json_string_value(mtj), media_type))) {
    rc = st_fail(err, ST_EPARSE, "manifest: mediaType does not match the descriptor's %.100s",
                 media_type);
    goto done;
  }
  index = is_index_type(media_type);
  arr = json_object_get(doc, index ? "manifests" : "layers");
  cfg = index ? NULL : json_object_get(doc, "config");
  if (!json_is_array(arr) || (!index && !cfg)) {
    rc = st_fail(err, ST_EPARSE, "manifest: %s missing or not an array",
                 index ? "manifests" : "config/layers");
    goto done;
  }
  want = json_array_size(arr) + (cfg ? 1 : 0);
  if (want > max_entries) {
    rc = st_fail(err, ST_ETOOBIG, "manifest: %zu descriptors (limit %zu)", want, max_entries);
    goto done;
  }
  if (want && !(ds = st_calloc(want, sizeof(*ds)))) {
    rc = st_fail(err, ST_ENOMEM, "manifest: out of memory");
    goto done;
  }
  if (cfg) {
    if ((rc = st_oci_desc_from_json(cfg, &ds[count], err)))
      goto done;
    count++;
  }
  for (size_t i = 0; i < json_array_size(arr); i++) {
    if ((rc = st_oci_desc_from_json(json_array_get(arr, i), &ds[count], err)))
      goto done;
    count++;
  }
  if (subject && (sj = json_object_get(doc, "subject")) &&
      (rc = st_oci_desc_from_json(sj, subject, err)))
    goto done;
  *out = ds;
  *n = count;
  ds = NULL;
done:
  if (ds) {
    for (size_t i = 0; i < count; i++)
      st_oci_desc_release(&ds[i]);
    st_free(ds);
  }
  json_decref(doc);
  return rc;
}
