/* oci.h: OCI image layouts (image-spec v1.1): build them deterministically, read them
 * safely.
 *
 * Encoding. Every manifest, index and the layout's index.json is written as RFC 8785
 * canonical JSON (stella/jcs.h): members sorted, no whitespace, no trailing newline.
 * The image spec fixes no byte form, digests are over bytes, so one fixed form makes the
 * same inputs give the same digests on every run and every machine. Descriptors carry
 * mediaType, digest, size and, when set, artifactType, annotations and platform.
 * The `oci-layout` file is `{"imageLayoutVersion":"1.0.0"}`.
 *
 * Writer. Blobs are added from memory (copied) or from a file (hashed at add time,
 * streamed and re-hashed at write time: a file changed in between fails with
 * ST_ECONFLICT). Adding the same digest twice stores it once. st_oci_layout_tag adds a
 * descriptor to the layout's index.json, with `org.opencontainers.image.ref.name` when a
 * name is given, in call order. Output: a directory (built under `<dir>.tmp.XXXXXX` and
 * renamed, so it appears whole or not at all; dir must not exist) or one uncompressed tar
 * (`oci-archive`, what skopeo reads): entries sorted by path, directories first, mtime
 * fixed, uid/gid 0, no owner names, modes 0644/0755, POSIX ustar headers via libarchive's
 * pax-restricted writer, published atomically as the .tgz writer does.
 *
 * Reader. st_oci_archive_extract unpacks a tar (oci-archive or docker-archive) into an
 * empty directory: only regular files and directories, each path a clean relative path
 * over [A-Za-z0-9._-/] (no `..`, no empty or `.` component), opened O_EXCL|O_NOFOLLOW
 * relative to the directory, counts and sizes bounded, and every `blobs/sha256/<hex>`
 * entry hashed while it is written and refused (ST_EVERIFY) when the name is not its
 * digest. st_oci_dir_open reads an OCI layout directory: `oci-layout` version checked,
 * index.json parsed with limits; blobs are opened O_NOFOLLOW, must be regular files, and
 * are verified (size and digest) whenever they are read. st_oci_dir_verify walks every
 * descriptor reachable from index.json (indexes nested up to max_depth) and verifies
 * each blob; a manifest's subject need not be present (it may live in a registry).
 *
 * Ownership: *_new/open allocate, *_free release (NULL is a no-op); descriptors own
 * their strings (st_oci_desc_release). Thread rules: one object per thread at a time.
 * Errors: ST_EINVAL (bad media type, digest, annotation or ref name), ST_EPARSE
 * (malformed JSON or layout), ST_EVERIFY (digest or size mismatch), ST_EUNSAFE (path
 * tricks, links, devices), ST_ETOOBIG (a limit), ST_ENOENT (missing blob or ref),
 * ST_EEXIST (output exists), ST_EIO.
 */
#ifndef STELLA_OCI_H
#define STELLA_OCI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "stella/buf.h"
#include "stella/err.h"

#define ST_OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define ST_OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define ST_OCI_MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define ST_OCI_MT_EMPTY "application/vnd.oci.empty.v1+json"
#define ST_OCI_MT_LAYER "application/vnd.oci.image.layer.v1.tar"
#define ST_OCI_MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define ST_OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define ST_OCI_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define ST_OCI_ANN_REF_NAME "org.opencontainers.image.ref.name"
#define ST_OCI_ANN_TITLE "org.opencontainers.image.title"
#define ST_OCI_ANN_CREATED "org.opencontainers.image.created"
/* The empty descriptor's content `{}` and digest (image-spec v1.1 "Guidance for an
 * Empty Descriptor"). */
#define ST_OCI_EMPTY_DIGEST \
  "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

/* "sha256:" + 64 lower-case hex digits. */
#define ST_OCI_DIGEST_LEN 71
#define ST_OCI_MEDIA_TYPE_MAX 255 /* RFC 6838 type "/" subtype, each <= 127 */
#define ST_OCI_REF_NAME_MAX 255

typedef struct st_oci_desc_s {
  char *media_type;                       /* owned */
  char digest[ST_OCI_DIGEST_LEN + 1];     /* "sha256:<hex>" */
  uint64_t size;
  char *artifact_type;                    /* owned, NULL = absent */
  json_t *annotations;                    /* owned reference to an object of strings, or NULL */
  json_t *platform;                       /* owned reference, or NULL (index entries) */
} st_oci_desc_t;

/* Free a descriptor's contents and zero it (safe on a zeroed descriptor). */
void st_oci_desc_release(st_oci_desc_t *d);
/* Deep copy into dst (zeroed or released first by the caller). */
int st_oci_desc_copy(st_oci_desc_t *dst, const st_oci_desc_t *src, st_error_t *err)
    ST_MUST_CHECK;
/* Set annotation key=value (both valid UTF-8, key non-empty). */
int st_oci_desc_annotate(st_oci_desc_t *d, const char *key, const char *value,
                         st_error_t *err) ST_MUST_CHECK;
/* Parse a descriptor object (mediaType, digest, size required; artifactType,
 * annotations, platform kept; other members ignored). dst must be zeroed. */
int st_oci_desc_from_json(const json_t *j, st_oci_desc_t *dst, st_error_t *err) ST_MUST_CHECK;

/* Validation of outside strings. 1 if valid, 0 if not. */
int st_oci_digest_valid(const char *s);       /* sha256:<64 lower hex> only */
int st_oci_media_type_valid(const char *s);   /* RFC 6838 restricted-name/restricted-name */
int st_oci_repo_valid(const char *s);         /* distribution's path-component grammar, <= 255 */
int st_oci_tag_valid(const char *s);          /* [A-Za-z0-9_][A-Za-z0-9._-]{0,127} */

/* An image manifest. config and layers are required (layers may be empty: nlayers 0). */
typedef struct st_oci_manifest_s {
  const char *artifact_type;       /* NULL = absent */
  const st_oci_desc_t *config;
  const st_oci_desc_t *layers;
  size_t nlayers;
  const st_oci_desc_t *subject;    /* NULL = absent */
  const json_t *annotations;       /* object of strings or NULL */
} st_oci_manifest_t;

typedef struct st_oci_index_s {
  const char *artifact_type;
  const st_oci_desc_t *manifests;
  size_t nmanifests;
  const st_oci_desc_t *subject;
  const json_t *annotations;
} st_oci_index_t;

/* Append the canonical JSON of a manifest / an index to out. */
int st_oci_manifest_encode(const st_oci_manifest_t *m, st_buf_t *out, st_error_t *err)
    ST_MUST_CHECK;
int st_oci_index_encode(const st_oci_index_t *ix, st_buf_t *out, st_error_t *err)
    ST_MUST_CHECK;

/* ---- layout writer ---- */

typedef struct st_oci_layout_s st_oci_layout_t;

int st_oci_layout_new(st_oci_layout_t **out, st_error_t *err) ST_MUST_CHECK;
void st_oci_layout_free(st_oci_layout_t *l);

/* Add a blob; *desc (zeroed by the caller, may be NULL) gets mediaType, digest, size. */
int st_oci_layout_add_mem(st_oci_layout_t *l, const void *data, size_t len,
                          const char *media_type, st_oci_desc_t *desc,
                          st_error_t *err) ST_MUST_CHECK;
int st_oci_layout_add_file(st_oci_layout_t *l, const char *path, const char *media_type,
                           st_oci_desc_t *desc, st_error_t *err) ST_MUST_CHECK;
/* A blob whose digest and size are already known, streamed from path at write time
 * (and verified then); for copying from another layout without hashing twice. */
int st_oci_layout_add_known(st_oci_layout_t *l, const char *path, const st_oci_desc_t *d,
                            st_error_t *err) ST_MUST_CHECK;
/* The empty config `{}` with media type ST_OCI_MT_EMPTY. */
int st_oci_layout_add_empty(st_oci_layout_t *l, st_oci_desc_t *desc, st_error_t *err)
    ST_MUST_CHECK;
/* Encode and add a manifest / index; *desc gets its descriptor (with artifactType). */
int st_oci_layout_add_manifest(st_oci_layout_t *l, const st_oci_manifest_t *m,
                               st_oci_desc_t *desc, st_error_t *err) ST_MUST_CHECK;
int st_oci_layout_add_index(st_oci_layout_t *l, const st_oci_index_t *ix,
                            st_oci_desc_t *desc, st_error_t *err) ST_MUST_CHECK;
/* List d in index.json, with ref_name (NULL = none) as its ref.name annotation. A
 * ref_name already used is ST_EEXIST. d's own annotations are kept. */
int st_oci_layout_tag(st_oci_layout_t *l, const st_oci_desc_t *d, const char *ref_name,
                      st_error_t *err) ST_MUST_CHECK;
/* The index.json bytes the writers will produce (appended to out). */
int st_oci_layout_index_json(const st_oci_layout_t *l, st_buf_t *out, st_error_t *err)
    ST_MUST_CHECK;
int st_oci_layout_write_dir(st_oci_layout_t *l, const char *dir, st_error_t *err)
    ST_MUST_CHECK;
/* mtime: seconds since the epoch for every tar header. */
int st_oci_layout_write_tar(st_oci_layout_t *l, const char *path, int64_t mtime,
                            st_error_t *err) ST_MUST_CHECK;

/* ---- reader ---- */

typedef struct st_oci_limits_s {
  uint64_t max_blob_bytes;  /* one blob / tar entry */
  uint64_t max_total_bytes; /* a whole archive */
  size_t max_json_bytes;    /* index.json, manifests, indexes, docker manifest.json */
  size_t max_entries;       /* tar entries; descriptors walked */
  int max_depth;            /* nested indexes */
} st_oci_limits_t;

/* 16 GiB per blob, 64 GiB per archive, 4 MiB JSON, 100,000 entries, depth 8. */
void st_oci_limits_default(st_oci_limits_t *lim);

/* Unpack a tar into dir (which must exist and be empty); lim NULL = defaults. On
 * failure what was written stays: the caller removes dir. */
int st_oci_archive_extract(const char *tar_path, const char *dir, const st_oci_limits_t *lim,
                           st_error_t *err) ST_MUST_CHECK;

typedef struct st_oci_dir_s st_oci_dir_t;

int st_oci_dir_open(const char *dir, const st_oci_limits_t *lim, st_oci_dir_t **out,
                    st_error_t *err) ST_MUST_CHECK;
void st_oci_dir_free(st_oci_dir_t *d);
/* Number of descriptors in index.json and a copy of the i-th one. */
size_t st_oci_dir_count(const st_oci_dir_t *d);
int st_oci_dir_entry(const st_oci_dir_t *d, size_t i, st_oci_desc_t *out, st_error_t *err)
    ST_MUST_CHECK;
/* The index.json entry whose ref.name is ref, or whose digest is ref; ref NULL = the
 * only entry (ST_EINVAL if there are several). */
int st_oci_dir_resolve(const st_oci_dir_t *d, const char *ref, st_oci_desc_t *out,
                       st_error_t *err) ST_MUST_CHECK;
/* Read a whole blob (at most max bytes, 0 = lim.max_json_bytes) and verify it against
 * desc's digest and size. out is reset first. */
int st_oci_dir_read_blob(const st_oci_dir_t *d, const st_oci_desc_t *desc, size_t max,
                         st_buf_t *out, st_error_t *err) ST_MUST_CHECK;
/* An fd open on a blob (O_NOFOLLOW, a regular file of desc->size bytes; not verified:
 * the caller streams and hashes it, or a registry does). The caller closes it. */
int st_oci_dir_blob_fd(const st_oci_dir_t *d, const st_oci_desc_t *desc, int *fd,
                       st_error_t *err) ST_MUST_CHECK;
/* "<dir>/blobs/sha256/<hex>" appended to out, after the same checks; dir is the path the
 * layout was opened with. */
int st_oci_dir_blob_path(const st_oci_dir_t *d, const st_oci_desc_t *desc, const char *dir,
                         st_buf_t *out, st_error_t *err) ST_MUST_CHECK;
/* Verify every blob reachable from index.json; *nblobs (may be NULL) gets how many. */
int st_oci_dir_verify(const st_oci_dir_t *d, size_t *nblobs, st_error_t *err) ST_MUST_CHECK;

/* Children of a manifest or index in push order: for a manifest config then layers;
 * for an index its manifests. json is the verified manifest/index text. *out is an
 * array of n descriptors (free each with st_oci_desc_release, then st_free). *subject
 * (may be NULL; zeroed by the caller) gets the subject when there is one. */
int st_oci_children(const char *json, size_t len, const char *media_type,
                    const st_oci_limits_t *lim, st_oci_desc_t **out, size_t *n,
                    st_oci_desc_t *subject, st_error_t *err) ST_MUST_CHECK;

/* Convert a docker-archive already unpacked in src_dir (docker save: manifest.json with
 * Config, Layers, RepoTags) into OCI blobs added to l; each image's manifest is tagged
 * with its first RepoTag (or none). Layers become ST_OCI_MT_LAYER (uncompressed tar),
 * config ST_OCI_MT_CONFIG; digests are of the bytes as they are. */
int st_oci_docker_archive_import(st_oci_layout_t *l, const char *src_dir,
                                 const st_oci_limits_t *lim, st_error_t *err) ST_MUST_CHECK;

/* Remove a directory tree (a scratch directory of extract or write_dir), never following
 * links; best effort. */
void st_oci_rmtree(const char *dir);

#endif
