/* oci_registry_push.c: pushing a whole image or artifact from a layout directory, and
 * referrers (oci_registry.h). Children go first (blobs, then child manifests by digest),
 * the root last, so a tag never names something incomplete. A manifest with a subject is
 * added to the `sha256-<hex>` tag-schema index unless the registry answered OCI-Subject
 * (distribution-spec v1.1 "Pushing Manifests with Subject"). */
#include "oci_registry_internal.h"

#include <string.h>
#include <unistd.h>

#include "oci_internal.h"
#include "stella/json.h"
#include "stella/mem.h"

static void descs_free(st_oci_desc_t *ds, size_t n) {
  for (size_t i = 0; i < n; i++)
    st_oci_desc_release(&ds[i]);
  st_free(ds);
}

/* The descriptors listed in an index text (manifests[]); empty text = none. */
static int index_descs(st_oci_client_t *c, const st_buf_t *text, st_oci_desc_t **out,
                       size_t *n, st_error_t *err) {
  st_oci_limits_t lim;
  st_oci_limits_default(&lim);
  lim.max_json_bytes = c->o.max_response_bytes;
  *out = NULL;
  *n = 0;
  if (!text->len)
    return 0;
  return st_oci_children(text->data, text->len, ST_OCI_MT_INDEX, &lim, out, n, NULL, err);
}

/* "sha256:<hex>" -> "sha256-<hex>" (digest already validated). */
static void fallback_tag(const char *digest, char tag[ST_OCI_DIGEST_LEN + 1]) {
  memcpy(tag, digest, ST_OCI_DIGEST_LEN + 1);
  tag[6] = '-';
}

/* Add desc to the tag-schema index of subject in repo (no-op when already listed). */
static int fallback_add(st_oci_client_t *c, const char *repo, const char *subject,
                        const st_oci_desc_t *desc, st_error_t *err) {
  st_buf_t text = ST_BUF_INIT, out = ST_BUF_INIT;
  st_oci_desc_t *ds = NULL, *nds;
  size_t n = 0;
  char tag[ST_OCI_DIGEST_LEN + 1];
  int rc;

  fallback_tag(subject, tag);
  st_buf_init(&text, c->o.max_response_bytes);
  rc = st_oci_manifest_get(c, repo, tag, &text, NULL, NULL, err);
  if (rc == ST_ENOENT) {
    st_buf_reset(&text);
    rc = 0;
  }
  if (rc || (rc = index_descs(c, &text, &ds, &n, err)))
    goto done;
  for (size_t i = 0; i < n; i++)
    if (!strcmp(ds[i].digest, desc->digest))
      goto done;
  if (!(nds = st_realloc(ds, (n + 1) * sizeof(*ds)))) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  ds = nds;
  if ((rc = st_oci_desc_copy(&ds[n], desc, err)))
    goto done;
  n++;
  {
    st_oci_index_t ix = {.manifests = ds, .nmanifests = n};
    if ((rc = st_oci_index_encode(&ix, &out, err)))
      goto done;
  }
  rc = st_oci_manifest_push(c, repo, tag, ST_OCI_MT_INDEX, out.data, out.len, NULL, err);
done:
  descs_free(ds, n);
  st_buf_release(&text);
  st_buf_release(&out);
  return rc;
}

/* The descriptor a referrers index lists for a manifest: its artifactType (or config
 * media type) and annotations. */
static int referrer_desc(const st_oci_desc_t *root, const st_buf_t *json, st_oci_desc_t *out,
                         st_error_t *err) {
  json_t *doc = NULL, *ann;
  const char *at;
  int rc;
  if ((rc = st_oci_desc_copy(out, root, err)))
    return rc;
  if ((rc = st_json_parse(json->data, json->len, NULL, &doc, err)))
    return rc;
  at = json_string_value(json_object_get(doc, "artifactType"));
  if (!at)
    at = json_string_value(json_object_get(json_object_get(doc, "config"), "mediaType"));
  st_free(out->artifact_type);
  out->artifact_type = NULL;
  if (at && st_oci_media_type_valid(at) && !(out->artifact_type = st_strdup(at)))
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
  if (!rc && json_is_object(ann = json_object_get(doc, "annotations"))) {
    json_decref(out->annotations);
    out->annotations = json_deep_copy(ann);
  }
  json_decref(doc);
  return rc;
}

static int push_desc(st_oci_client_t *c, const st_oci_dir_t *d, const st_oci_desc_t *desc,
                     const char *repo, const char *tag, const char *from, int depth,
                     st_error_t *err) {
  st_oci_limits_t lim;
  st_buf_t json = ST_BUF_INIT;
  st_oci_desc_t *kids = NULL, subject = {0}, ref = {0};
  size_t nk = 0;
  int rc = 0, subject_ok = 0;

  st_oci_limits_default(&lim);
  if (!st__oci_is_manifest_type(desc->media_type)) {
    int fd = -1;
    if ((rc = st_oci_dir_blob_fd(d, desc, &fd, err)))
      return rc;
    rc = st_oci_blob_push(c, repo, desc, fd, NULL, from, err);
    close(fd);
    return rc;
  }
  if (depth > lim.max_depth)
    return st_fail(err, ST_EDEPTH, "registry push: indexes nested deeper than %d",
                   lim.max_depth);
  if ((rc = st_oci_dir_read_blob(d, desc, 0, &json, err)) ||
      (rc = st_oci_children(json.data, json.len, desc->media_type, &lim, &kids, &nk, &subject,
                            err)))
    goto done;
  for (size_t i = 0; i < nk && !rc; i++) {
    if (c->cancelled && c->cancelled(c->cancel_ud))
      rc = st_fail(err, ST_ECANCELED, "registry: cancelled");
    else
      rc = push_desc(c, d, &kids[i], repo, NULL, from, depth + 1, err);
  }
  if (rc)
    goto done;
  if ((rc = st_oci_manifest_push(c, repo, tag ? tag : desc->digest, desc->media_type,
                                 json.data, json.len, &subject_ok, err)))
    goto done;
  if (tag && (rc = st_oci_manifest_push(c, repo, desc->digest, desc->media_type, json.data,
                                        json.len, NULL, err)))
    goto done;
  if (subject.media_type && !subject_ok) {
    if ((rc = referrer_desc(desc, &json, &ref, err)))
      goto done;
    rc = fallback_add(c, repo, subject.digest, &ref, err);
  }
done:
  descs_free(kids, nk);
  st_oci_desc_release(&subject);
  st_oci_desc_release(&ref);
  st_buf_release(&json);
  return rc;
}

int st_oci_push_dir(st_oci_client_t *c, const st_oci_dir_t *d, const st_oci_desc_t *root,
                    const char *repo, const char *tag, const char *from_repo,
                    st_error_t *err) {
  if (tag && !st_oci_tag_valid(tag))
    return st_fail(err, ST_EINVAL, "registry push: '%.100s' is not a tag", tag);
  if (!st__oci_is_manifest_type(root->media_type))
    return st_fail(err, ST_EINVAL, "registry push: %s is a %.100s, not a manifest or index",
                   root->digest, root->media_type);
  return push_desc(c, d, root, repo, tag, from_repo, 0, err);
}

int st_oci_referrers(st_oci_client_t *c, const char *repo, const char *digest,
                     const char *artifact_type, st_buf_t *out, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT, scope = ST_BUF_INIT;
  st__oci_resp_t resp;
  st__oci_req_t req = {.method = "GET", .fd = -1, .accept = ST_OCI_MT_INDEX};
  st_oci_desc_t *ds = NULL;
  size_t n = 0, kept = 0;
  char tag[ST_OCI_DIGEST_LEN + 1];
  int rc;

  st_buf_reset(out);
  if (!st_oci_repo_valid(repo) || !st_oci_digest_valid(digest) ||
      (artifact_type && !st_oci_media_type_valid(artifact_type)))
    return st_fail(err, ST_EINVAL, "referrers: bad repository, digest or artifact type");
  st__oci_resp_init(&resp, c->o.max_response_bytes);
  if (st_buf_addf(&url, "%s/v2/%s/referrers/%s", c->origin, repo, digest) ||
      st_buf_addf(&scope, "repository:%s:pull", repo)) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  req.url = url.data;
  req.scope = scope.data;
  if ((rc = st__oci_call(c, &req, &resp, err)))
    goto done;
  if (resp.status == 404) {
    fallback_tag(digest, tag);
    rc = st_oci_manifest_get(c, repo, tag, &resp.body, NULL, NULL, err);
    if (rc == ST_ENOENT) {
      st_buf_reset(&resp.body);
      rc = 0;
    }
    if (rc)
      goto done;
  } else if (resp.status != 200) {
    rc = st__oci_status_fail(&resp, err, "GET referrers");
    goto done;
  }
  if ((rc = index_descs(c, &resp.body, &ds, &n, err)))
    goto done;
  for (size_t i = 0; i < n; i++) {
    if (artifact_type && (!ds[i].artifact_type || strcmp(ds[i].artifact_type, artifact_type))) {
      st_oci_desc_release(&ds[i]);
      continue;
    }
    if (kept != i) {
      ds[kept] = ds[i];
      memset(&ds[i], 0, sizeof(ds[i]));
    }
    kept++;
  }
  {
    st_oci_index_t ix = {.manifests = ds, .nmanifests = kept};
    rc = st_oci_index_encode(&ix, out, err);
  }
done:
  descs_free(ds, n);
  st__oci_resp_release(&resp);
  st_buf_release(&url);
  st_buf_release(&scope);
  return rc;
}
