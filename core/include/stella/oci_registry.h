/* oci_registry.h: a client of OCI distribution registries (distribution-spec v1.1) over
 * libcurl, for pushing what stella/oci.h builds.
 *
 * Pushes are idempotent: every blob is checked with HEAD first and skipped when present,
 * manifests are checked by digest and tags by the digest they resolve to, so pushing the
 * same thing twice sends no blob or manifest bytes the second time. Blob uploads are
 * monolithic (POST, then one PUT) or chunked (POST, PATCHes of chunk_size with
 * Content-Range, closing PUT); a cross-repository mount (`?mount=&from=`) is tried first
 * when the caller names a source repository.
 *
 * Retries. Every request is retried on a dropped connection (any libcurl transport
 * error) and on 408, 429 and 5xx, up to max_attempts, sleeping a capped exponential
 * backoff with full jitter (uniform in [0, min(cap, base * 2^n)]). A chunk that fails is
 * not blindly re-sent: the client GETs the upload URL, continues from the Range the
 * registry reports, and starts a new upload session only when the old one is gone.
 *
 * Auth. Anonymous until the registry answers 401; then `WWW-Authenticate: Basic` is
 * answered with the configured (or docker config.json) credentials, and `Bearer
 * realm=,service=,scope=` with a token fetched from the realm (credentials sent as Basic
 * when there are any), cached per scope for the client's life. A second 401 after
 * answering the challenge fails with ST_EPERM and the registry's message.
 *
 * Validation. Repository names, tags, digests and media types are checked before any
 * request (stella/oci.h validators). Everything that comes back is bounded (headers 8 KiB
 * each, bodies max_response_bytes) and checked: Location must be a relative path or on
 * the same origin (ST_EUNSAFE otherwise: credentials are never sent elsewhere, except to
 * a token realm the registry named), manifests fetched by digest must hash to it,
 * Docker-Content-Digest must match what was pushed.
 *
 * Ownership: st_oci_client_new allocates, st_oci_client_free frees; option strings are
 * copied. Thread rules: one client per thread (it owns one libcurl handle and reuses its
 * connections). Errors: ST_EPERM (401/403), ST_ENOENT (404), ST_EINVAL (a bad name or a
 * 4xx the registry explains), ST_EVERIFY (digest mismatch), ST_ENET (transport failure or
 * 408/429/5xx after the last attempt: transient), ST_ETOOBIG, ST_EUNSAFE, ST_ECANCELED
 * (the cancel hook said so), ST_EIO (reading the source).
 */
#ifndef STELLA_OCI_REGISTRY_H
#define STELLA_OCI_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "stella/buf.h"
#include "stella/err.h"
#include "stella/oci.h"

typedef struct st_oci_client_s st_oci_client_t;

typedef struct st_oci_client_opts_s {
  /* "http://host:port", "https://host[:port]" or "host[:port]" (https); no path. */
  const char *registry;
  const char *username; /* NULL: look in docker_config, else anonymous */
  const char *password;
  const char *docker_config; /* config.json: auths["host:port"].auth = base64(user:pass) */
  const char *ca_file;       /* PEM CA bundle for https; NULL = system store */
  int max_attempts;          /* per request; 0 = 6 */
  long backoff_base_ms;      /* 0 = 200 */
  long backoff_cap_ms;       /* 0 = 5000 */
  uint64_t chunk_size;       /* 0 = monolithic uploads */
  long connect_timeout_ms;   /* 0 = 10000 */
  size_t max_response_bytes; /* manifests, tokens, error bodies; 0 = 4 MiB */
  /* Polled between attempts and during transfers; non-zero stops with ST_ECANCELED. */
  int (*cancelled)(void *ud);
  void *cancel_ud;
} st_oci_client_opts_t;

typedef struct st_oci_stats_s {
  uint64_t requests;
  uint64_t retries;         /* attempts after the first, all requests */
  uint64_t blobs_present;   /* HEAD hit: not uploaded */
  uint64_t blobs_mounted;
  uint64_t blobs_uploaded;
  uint64_t bytes_uploaded;  /* blob bytes the registry accepted */
  uint64_t uploads_resumed; /* chunked uploads continued from the registry's Range */
  uint64_t uploads_restarted;
  uint64_t manifests_present;
  uint64_t manifests_pushed;
} st_oci_stats_t;

int st_oci_client_new(const st_oci_client_opts_t *opts, st_oci_client_t **out,
                      st_error_t *err) ST_MUST_CHECK;
void st_oci_client_free(st_oci_client_t *c);
const st_oci_stats_t *st_oci_client_stats(const st_oci_client_t *c);

/* GET /v2/: reachable and the credentials accepted. */
int st_oci_ping(st_oci_client_t *c, st_error_t *err) ST_MUST_CHECK;

/* 1 present (with *size, may be NULL), 0 absent, negative on error. */
int st_oci_blob_exists(st_oci_client_t *c, const char *repo, const char *digest,
                       uint64_t *size, st_error_t *err) ST_MUST_CHECK;
/* Make desc's blob present in repo: HEAD, then a mount from from_repo (NULL = none),
 * then an upload of desc->size bytes read with pread from fd (offset 0) or from mem
 * (fd < 0). The registry checks the digest; a mismatch is ST_EVERIFY. */
int st_oci_blob_push(st_oci_client_t *c, const char *repo, const st_oci_desc_t *desc, int fd,
                     const void *mem, const char *from_repo, st_error_t *err) ST_MUST_CHECK;

/* PUT a manifest or index under ref (a tag or its digest), unless ref already resolves
 * to its digest. *subject_ok (may be NULL) is 1 when the registry answered OCI-Subject
 * (it indexes referrers itself). */
int st_oci_manifest_push(st_oci_client_t *c, const char *repo, const char *ref,
                         const char *media_type, const void *data, size_t len,
                         int *subject_ok, st_error_t *err) ST_MUST_CHECK;
/* GET a manifest by tag or digest (verified when ref is a digest); body and media_type
 * (may be NULL) are reset and filled; digest_out (may be NULL) gets its digest. */
int st_oci_manifest_get(st_oci_client_t *c, const char *repo, const char *ref, st_buf_t *body,
                        st_buf_t *media_type, char digest_out[ST_OCI_DIGEST_LEN + 1],
                        st_error_t *err) ST_MUST_CHECK;

/* The referrers of digest as an image index (canonical JSON appended to out, reset first):
 * the referrers API, or when that is 404 the `sha256-<hex>` tag-schema index, or an empty
 * index. artifact_type (may be NULL) filters. */
int st_oci_referrers(st_oci_client_t *c, const char *repo, const char *digest,
                     const char *artifact_type, st_buf_t *out, st_error_t *err) ST_MUST_CHECK;

/* Push root (an entry of layout d) and everything it references into repo: blobs,
 * child manifests by digest, then root under tag (NULL = by digest). A manifest with a
 * subject is also listed in the `sha256-<subject hex>` fallback index when the registry
 * does not index referrers itself. from_repo as in st_oci_blob_push. */
int st_oci_push_dir(st_oci_client_t *c, const st_oci_dir_t *d, const st_oci_desc_t *root,
                    const char *repo, const char *tag, const char *from_repo,
                    st_error_t *err) ST_MUST_CHECK;

/* Split "host[:port]/repo/path[:tag|@digest]" (what `docker push` takes; an http:// or
 * https:// prefix kept on the registry) into a registry (appended to registry), a
 * validated repository and a tag or digest (NULL when absent). All three appended
 * strings are reset first. */
int st_oci_ref_parse(const char *ref, st_buf_t *registry, st_buf_t *repo, st_buf_t *tag,
                     st_error_t *err) ST_MUST_CHECK;

#endif
