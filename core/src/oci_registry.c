/* oci_registry.c: the distribution-spec operations (oci_registry.h): ping, blob HEAD,
 * mount, monolithic and chunked uploads with resume, manifest HEAD/PUT/GET. Every name
 * is validated before it becomes part of a URL. */
#include "oci_registry_internal.h"

#include <stdlib.h>
#include <string.h>

#include "oci_internal.h"
#include "stella/mem.h"

#define ACCEPT_MANIFESTS                                                                  \
  ST_OCI_MT_MANIFEST ", " ST_OCI_MT_INDEX ", " ST_OCI_MT_DOCKER_MANIFEST ", " \
  ST_OCI_MT_DOCKER_LIST

static int check_repo(const char *repo, st_error_t *err) {
  if (!st_oci_repo_valid(repo))
    return st_fail(err, ST_EINVAL, "registry: '%.100s' is not a repository name",
                   repo ? repo : "(null)");
  return 0;
}

static int check_ref(const char *ref, st_error_t *err) {
  if (!st_oci_tag_valid(ref) && !st_oci_digest_valid(ref))
    return st_fail(err, ST_EINVAL, "registry: '%.100s' is neither a tag nor a digest",
                   ref ? ref : "(null)");
  return 0;
}

static int url_of(st_oci_client_t *c, st_buf_t *url, st_error_t *err, const char *fmt,
                  const char *a, const char *b) {
  st_buf_reset(url);
  if (st_buf_adds(url, c->origin) || st_buf_addf(url, fmt, a, b))
    return st_fail(err, ST_ENOMEM, "registry: out of memory");
  return 0;
}

static int scope_of(st_buf_t *scope, const char *repo, int push, const char *from) {
  st_buf_reset(scope);
  if (st_buf_addf(scope, "repository:%s:%s", repo, push ? "pull,push" : "pull"))
    return ST_ENOMEM;
  if (from && st_buf_addf(scope, " repository:%s:pull", from))
    return ST_ENOMEM;
  return 0;
}

int st_oci_ping(st_oci_client_t *c, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT;
  st__oci_resp_t resp;
  st__oci_req_t req = {.method = "GET", .fd = -1};
  int rc;
  st__oci_resp_init(&resp, 65536);
  if (!(rc = url_of(c, &url, err, "/v2/%s%s", "", ""))) {
    req.url = url.data;
    if (!(rc = st__oci_call(c, &req, &resp, err)) && resp.status != 200)
      rc = st__oci_status_fail(&resp, err, "GET /v2/");
  }
  st__oci_resp_release(&resp);
  st_buf_release(&url);
  return rc;
}

int st_oci_blob_exists(st_oci_client_t *c, const char *repo, const char *digest,
                       uint64_t *size, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT, scope = ST_BUF_INIT;
  st__oci_resp_t resp;
  st__oci_req_t req = {.method = "HEAD", .fd = -1};
  int rc;

  if ((rc = check_repo(repo, err)))
    return rc;
  if (!st_oci_digest_valid(digest))
    return st_fail(err, ST_EINVAL, "registry: '%.80s' is not a digest", digest);
  st__oci_resp_init(&resp, 65536);
  if ((rc = url_of(c, &url, err, "/v2/%s/blobs/%s", repo, digest)))
    goto done;
  if (scope_of(&scope, repo, 1, NULL)) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  req.url = url.data;
  req.scope = scope.data;
  if ((rc = st__oci_call(c, &req, &resp, err)))
    goto done;
  if (resp.status == 404) {
    rc = 0;
  } else if (resp.status == 200) {
    rc = 1;
    if (size) {
      curl_off_t n = -1;
      curl_easy_getinfo(c->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &n);
      *size = n >= 0 ? (uint64_t)n : 0;
    }
  } else {
    rc = st__oci_status_fail(&resp, err, "HEAD blob");
  }
done:
  st__oci_resp_release(&resp);
  st_buf_release(&url);
  st_buf_release(&scope);
  return rc;
}

typedef struct up_s {
  st_oci_client_t *c;
  const st_oci_desc_t *desc;
  int fd;
  const void *mem;
  const char *scope;
  st_buf_t url; /* current upload URL */
  st__oci_resp_t resp;
} up_t;

/* POST a new upload session (or a mount); *mounted = 1 when the registry mounted it. */
static int up_start(up_t *u, const char *repo, const char *from, int *mounted,
                    st_error_t *err) {
  st__oci_req_t req = {.method = "POST", .fd = -1, .scope = u->scope};
  int rc;
  *mounted = 0;
  if (from) {
    char *ef = curl_easy_escape(u->c->h, from, 0);
    if (!ef)
      return st_fail(err, ST_ENOMEM, "registry: out of memory");
    rc = url_of(u->c, &u->url, err, "/v2/%s/blobs/uploads/?mount=%s", repo, u->desc->digest);
    if (!rc && st_buf_addf(&u->url, "&from=%s", ef))
      rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    curl_free(ef);
  } else {
    rc = url_of(u->c, &u->url, err, "/v2/%s/blobs/uploads/%s", repo, "");
  }
  if (rc)
    return rc;
  req.url = u->url.data;
  if ((rc = st__oci_call(u->c, &req, &u->resp, err)))
    return rc;
  if (from && u->resp.status == 201) {
    *mounted = 1;
    return 0;
  }
  if (u->resp.status != 202)
    return st__oci_status_fail(&u->resp, err, "POST blob upload");
  return st__oci_location(u->c, &u->resp.location, &u->url, err);
}

/* The registry's received size from `Range: 0-<last>` ("0-0" read as nothing yet). */
static int parse_range(const st_buf_t *r, uint64_t *next) {
  char *end;
  unsigned long long last;
  if (r->len < 3 || strncmp(r->data, "0-", 2) || r->data[2] < '0' || r->data[2] > '9')
    return -1;
  last = strtoull(r->data + 2, &end, 10);
  if (*end)
    return -1;
  *next = last == 0 ? 0 : last + 1;
  return 0;
}

static int up_put(up_t *u, uint64_t off, uint64_t len, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT;
  st__oci_req_t req = {.method = "PUT", .fd = u->fd, .mem = u->mem, .off = off, .len = len,
                       .scope = u->scope, .no_retry = 1,
                       .content_type = "application/octet-stream"};
  int rc;
  if (st_buf_add(&url, u->url.data, u->url.len) ||
      st_buf_addf(&url, "%cdigest=%s", strchr(u->url.data, '?') ? '&' : '?',
                  u->desc->digest)) {
    st_buf_release(&url);
    return st_fail(err, ST_ENOMEM, "registry: out of memory");
  }
  req.url = url.data;
  rc = st__oci_call(u->c, &req, &u->resp, err);
  st_buf_release(&url);
  if (rc)
    return rc;
  if (u->resp.status != 201)
    return st__oci_status_fail(&u->resp, err, "PUT blob");
  if (u->resp.digest.len && strcmp(u->resp.digest.data, u->desc->digest))
    return st_fail(err, ST_EVERIFY, "registry: stored %s as %.80s", u->desc->digest,
                   u->resp.digest.data);
  return 0;
}

static int up_patch(up_t *u, uint64_t off, uint64_t len, st_error_t *err) {
  char range[48];
  st__oci_req_t req = {.method = "PATCH", .fd = u->fd, .mem = u->mem, .off = off, .len = len,
                       .scope = u->scope, .no_retry = 1, .content_range = range,
                       .content_type = "application/octet-stream", .url = u->url.data};
  uint64_t next;
  int rc;
  snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)off,
           (unsigned long long)(off + len - 1));
  if ((rc = st__oci_call(u->c, &req, &u->resp, err)))
    return rc;
  if (u->resp.status != 202)
    return st__oci_status_fail(&u->resp, err, "PATCH blob chunk");
  if (u->resp.range.len && (parse_range(&u->resp.range, &next) || next != off + len))
    return st_fail(err, ST_EPARSE, "registry: chunk to %llu acknowledged as Range %.60s",
                   (unsigned long long)(off + len), u->resp.range.data);
  return st__oci_location(u->c, &u->resp.location, &u->url, err);
}

/* Where the registry stands on the current session: *next bytes received, or -1 when the
 * session is gone (start a new one). */
static int up_status(up_t *u, uint64_t *next, st_error_t *err) {
  st__oci_req_t req = {.method = "GET", .fd = -1, .scope = u->scope, .url = u->url.data};
  int rc;
  if ((rc = st__oci_call(u->c, &req, &u->resp, err)))
    return rc;
  if (u->resp.status != 204 || parse_range(&u->resp.range, next) || *next > u->desc->size)
    return 1;
  if (u->resp.location.len && st__oci_location(u->c, &u->resp.location, &u->url, err))
    return 1;
  return 0;
}

static int transient(int rc) { return rc == ST_ENET; }

int st_oci_blob_push(st_oci_client_t *c, const char *repo, const st_oci_desc_t *desc, int fd,
                     const void *mem, const char *from_repo, st_error_t *err) {
  st_buf_t scope = ST_BUF_INIT;
  up_t u = {c, desc, fd, mem, NULL, ST_BUF_INIT, {0}};
  uint64_t chunk = c->o.chunk_size, off = 0, have;
  unsigned failures = 0;
  int rc, mounted = 0, session = 0;

  if ((rc = check_repo(repo, err)) || (from_repo && (rc = check_repo(from_repo, err))))
    return rc;
  if (fd < 0 && !mem && desc->size)
    return st_fail(err, ST_EINVAL, "registry: blob %s has no source", desc->digest);
  st__oci_resp_init(&u.resp, c->o.max_response_bytes);
  if ((rc = st_oci_blob_exists(c, repo, desc->digest, NULL, err)) < 0)
    goto done;
  if (rc == 1) {
    c->stats.blobs_present++;
    rc = 0;
    goto done;
  }
  if (scope_of(&scope, repo, 1, from_repo)) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  u.scope = scope.data;
  for (;;) {
    if (!session) {
      if ((rc = up_start(&u, repo, from_repo, &mounted, err)))
        goto fail;
      if (mounted) {
        c->stats.blobs_mounted++;
        goto done;
      }
      session = 1;
      off = 0;
    }
    if (!chunk) {
      rc = up_put(&u, 0, desc->size, err);
    } else {
      while (off < desc->size) {
        uint64_t n = desc->size - off < chunk ? desc->size - off : chunk;
        if ((rc = up_patch(&u, off, n, err)))
          goto fail;
        off += n;
      }
      rc = up_put(&u, 0, 0, err);
    }
    if (!rc) {
      c->stats.blobs_uploaded++;
      c->stats.bytes_uploaded += desc->size;
      goto done;
    }
  fail:
    if (!transient(rc) || ++failures >= (unsigned)c->o.max_attempts)
      goto done;
    c->stats.retries++;
    if ((rc = st__oci_backoff(c, failures - 1, err)))
      goto done;
    /* The blob may have landed before the connection dropped. */
    if ((rc = st_oci_blob_exists(c, repo, desc->digest, NULL, err)) == 1) {
      c->stats.blobs_uploaded++;
      c->stats.bytes_uploaded += desc->size;
      rc = 0;
      goto done;
    }
    if (rc < 0 && !transient(rc))
      goto done;
    if (session && chunk) {
      int s = up_status(&u, &have, err);
      if (s < 0 && !transient(s)) {
        rc = s;
        goto done;
      }
      if (s == 0) {
        off = have;
        c->stats.uploads_resumed++;
        continue;
      }
    }
    session = 0;
    c->stats.uploads_restarted++;
  }
done:
  st__oci_resp_release(&u.resp);
  st_buf_release(&u.url);
  st_buf_release(&scope);
  return rc;
}

static int manifest_head(st_oci_client_t *c, const char *repo, const char *ref,
                         const char *scope, st_buf_t *digest, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT;
  st__oci_resp_t resp;
  st__oci_req_t req = {.method = "HEAD", .fd = -1, .scope = scope, .accept = ACCEPT_MANIFESTS};
  int rc;
  st__oci_resp_init(&resp, 65536);
  st_buf_reset(digest);
  if ((rc = url_of(c, &url, err, "/v2/%s/manifests/%s", repo, ref)))
    goto done;
  req.url = url.data;
  if ((rc = st__oci_call(c, &req, &resp, err)))
    goto done;
  if (resp.status == 200) {
    if (st_oci_digest_valid(resp.digest.data) && st_buf_add(digest, resp.digest.data,
                                                             resp.digest.len))
      rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
  } else if (resp.status != 404) {
    rc = st__oci_status_fail(&resp, err, "HEAD manifest");
  }
done:
  st__oci_resp_release(&resp);
  st_buf_release(&url);
  return rc;
}

int st_oci_manifest_push(st_oci_client_t *c, const char *repo, const char *ref,
                         const char *media_type, const void *data, size_t len,
                         int *subject_ok, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT, scope = ST_BUF_INIT, have = ST_BUF_INIT;
  st__oci_resp_t resp;
  st__oci_req_t req = {.method = "PUT", .fd = -1, .mem = data, .len = len,
                       .content_type = media_type};
  uint8_t d[ST_SHA256_LEN];
  char digest[ST_OCI_DIGEST_LEN + 1];
  int rc;

  if (subject_ok)
    *subject_ok = 0;
  if ((rc = check_repo(repo, err)) || (rc = check_ref(ref, err)))
    return rc;
  if (!st_oci_media_type_valid(media_type))
    return st_fail(err, ST_EINVAL, "registry: '%.100s' is not a media type", media_type);
  if ((rc = st_sha256(data, len, d)))
    return st_fail(err, rc, "registry: cannot hash the manifest");
  st__oci_digest_str(d, digest);
  if (st_oci_digest_valid(ref) && strcmp(ref, digest))
    return st_fail(err, ST_EVERIFY, "registry: manifest is %s, not %s", digest, ref);
  st__oci_resp_init(&resp, c->o.max_response_bytes);
  if (scope_of(&scope, repo, 1, NULL)) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  req.scope = scope.data;
  if ((rc = manifest_head(c, repo, ref, scope.data, &have, err)))
    goto done;
  if (have.len && !strcmp(have.data, digest)) {
    c->stats.manifests_present++;
    goto done;
  }
  if ((rc = url_of(c, &url, err, "/v2/%s/manifests/%s", repo, ref)))
    goto done;
  req.url = url.data;
  if ((rc = st__oci_call(c, &req, &resp, err)))
    goto done;
  if (resp.status != 201) {
    rc = st__oci_status_fail(&resp, err, "PUT manifest");
    goto done;
  }
  if (resp.digest.len && strcmp(resp.digest.data, digest)) {
    rc = st_fail(err, ST_EVERIFY, "registry: manifest %s stored as %.80s", digest,
                 resp.digest.data);
    goto done;
  }
  c->stats.manifests_pushed++;
  if (subject_ok)
    *subject_ok = resp.subject.len > 0;
done:
  st__oci_resp_release(&resp);
  st_buf_release(&url);
  st_buf_release(&scope);
  st_buf_release(&have);
  return rc;
}

int st_oci_manifest_get(st_oci_client_t *c, const char *repo, const char *ref, st_buf_t *body,
                        st_buf_t *media_type, char digest_out[ST_OCI_DIGEST_LEN + 1],
                        st_error_t *err) {
  st_buf_t url = ST_BUF_INIT, scope = ST_BUF_INIT;
  st__oci_resp_t resp;
  st__oci_req_t req = {.method = "GET", .fd = -1, .accept = ACCEPT_MANIFESTS};
  uint8_t d[ST_SHA256_LEN];
  char digest[ST_OCI_DIGEST_LEN + 1];
  size_t ctl;
  int rc;

  st_buf_reset(body);
  if (media_type)
    st_buf_reset(media_type);
  if ((rc = check_repo(repo, err)) || (rc = check_ref(ref, err)))
    return rc;
  st__oci_resp_init(&resp, c->o.max_response_bytes);
  if ((rc = url_of(c, &url, err, "/v2/%s/manifests/%s", repo, ref)))
    goto done;
  if (scope_of(&scope, repo, 0, NULL)) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  req.url = url.data;
  req.scope = scope.data;
  if ((rc = st__oci_call(c, &req, &resp, err)))
    goto done;
  if (resp.status != 200) {
    rc = st__oci_status_fail(&resp, err, "GET manifest");
    goto done;
  }
  if ((rc = st_sha256(resp.body.data, resp.body.len, d)))
    goto done;
  st__oci_digest_str(d, digest);
  if (st_oci_digest_valid(ref) && strcmp(ref, digest)) {
    rc = st_fail(err, ST_EVERIFY, "registry: manifest %s holds %s", ref, digest);
    goto done;
  }
  ctl = strcspn(resp.content_type.data, ";");
  if (media_type && st_buf_add(media_type, resp.content_type.data, ctl)) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  if (st_buf_add(body, resp.body.data, resp.body.len)) {
    rc = st_fail(err, ST_ETOOBIG, "registry: manifest larger than the buffer");
    goto done;
  }
  if (digest_out)
    memcpy(digest_out, digest, sizeof(digest));
done:
  st__oci_resp_release(&resp);
  st_buf_release(&url);
  st_buf_release(&scope);
  return rc;
}

int st_oci_ref_parse(const char *ref, st_buf_t *registry, st_buf_t *repo, st_buf_t *tag,
                     st_error_t *err) {
  const char *p = ref, *slash, *at, *colon, *rest;
  size_t plen = 0;
  st_buf_reset(registry);
  st_buf_reset(repo);
  st_buf_reset(tag);
  if (!strncmp(p, "http://", 7))
    plen = 7;
  else if (!strncmp(p, "https://", 8))
    plen = 8;
  if (!(slash = strchr(p + plen, '/')))
    return st_fail(err, ST_EINVAL, "reference '%.100s': expected host[:port]/repository",
                   ref);
  rest = slash + 1;
  if (st_buf_add(registry, p, (size_t)(slash - p)))
    return st_fail(err, ST_ENOMEM, "out of memory");
  at = strchr(rest, '@');
  colon = strrchr(rest, ':');
  if (at) {
    if (st_buf_add(repo, rest, (size_t)(at - rest)) || st_buf_adds(tag, at + 1))
      return st_fail(err, ST_ENOMEM, "out of memory");
  } else if (colon && !strchr(colon, '/')) {
    if (st_buf_add(repo, rest, (size_t)(colon - rest)) || st_buf_adds(tag, colon + 1))
      return st_fail(err, ST_ENOMEM, "out of memory");
  } else if (st_buf_adds(repo, rest)) {
    return st_fail(err, ST_ENOMEM, "out of memory");
  }
  if (!st_oci_repo_valid(repo->data))
    return st_fail(err, ST_EINVAL, "reference '%.100s': '%.100s' is not a repository name",
                   ref, repo->data);
  if (tag->len && !st_oci_tag_valid(tag->data) && !st_oci_digest_valid(tag->data))
    return st_fail(err, ST_EINVAL, "reference '%.100s': bad tag or digest", ref);
  return 0;
}
