/* bundle_kind.c: the kind registry (kinds add typed metadata and checks on it, never a new
 * layout) and media types by extension. Every kind for now shares the generic rule: metadata
 * is an object of at most 256 members whose names are [A-Za-z0-9._-]{1,64}. A kind with
 * stricter metadata adds its function to the table. */
#include <string.h>

#include "bundle_internal.h"
#include "stella/oci.h"

typedef struct kind_s {
  const char *name;
  int (*check)(const json_t *metadata, const st__manifest_t *m, st_error_t *err);
} kind_t;

static int hex64(const char *s) { return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64; }

static int generic_check(const json_t *metadata, const st__manifest_t *m, st_error_t *err) {
  const char *key;
  json_t *v;
  if (!json_is_object(metadata))
    return st_fail(err, ST_EVERIFY, "metadata is not an object");
  if (json_object_size(metadata) > 256)
    return st_fail(err, ST_EVERIFY, "metadata has %zu members (at most 256)",
                   json_object_size(metadata));
  (void)m;
  json_object_foreach((json_t *)metadata, key, v) {
    size_t n = strlen(key);
    (void)v;
    if (n == 0 || n > 64 ||
        strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
      return st_fail(err, ST_EVERIFY, "metadata key '%.64s': want [A-Za-z0-9._-]{1,64}", key);
  }
  return 0;
}

/* The bundle entry for payload/oci/<rel>, or NULL. */
static const st__bentry_t *oci_entry(const st__manifest_t *m, const char *rel) {
  static const char pre[] = ST__BUNDLE_PAYLOAD_DIR "oci/";
  for (size_t i = 0; i < m->n; i++)
    if (!strncmp(m->entries[i].path, pre, sizeof(pre) - 1) &&
        !strcmp(m->entries[i].path + sizeof(pre) - 1, rel))
      return &m->entries[i];
  return NULL;
}

/* The payload is exactly an OCI layout under payload/oci/ (oci-layout, index.json whose
 * SHA-256 is ix, blobs/sha256/<hex> files whose signed SHA-256 is their name), plus the
 * payload file `extra` when given. */
static int layout_check(const st__manifest_t *m, const char *ix, const char *extra,
                        st_error_t *err) {
  static const char blobs[] = ST__BUNDLE_PAYLOAD_DIR "oci/blobs/sha256/";
  const st__bentry_t *e;
  char hex[ST_SHA256_HEX_LEN + 1];

  if (!oci_entry(m, "oci-layout"))
    return st_fail(err, ST_EVERIFY, "payload/oci/oci-layout is missing");
  if (!(e = oci_entry(m, "index.json")))
    return st_fail(err, ST_EVERIFY, "payload/oci/index.json is missing");
  st_sha256_hex(e->sha256, hex);
  if (strcmp(hex, ix))
    return st_fail(err, ST_EVERIFY, "payload/oci/index.json is not metadata index_sha256");
  for (size_t i = 0; i < m->n; i++) {
    const char *p = m->entries[i].path;
    if (!strcmp(p, ST__BUNDLE_PAYLOAD_DIR "oci/oci-layout") ||
        !strcmp(p, ST__BUNDLE_PAYLOAD_DIR "oci/index.json") ||
        (extra && !strncmp(p, ST__BUNDLE_PAYLOAD_DIR, sizeof(ST__BUNDLE_PAYLOAD_DIR) - 1) &&
         !strcmp(p + sizeof(ST__BUNDLE_PAYLOAD_DIR) - 1, extra)))
      continue;
    if (strncmp(p, blobs, sizeof(blobs) - 1) || !hex64(p + sizeof(blobs) - 1))
      return st_fail(err, ST_EVERIFY, "%.200s: not part of an OCI layout", p);
    st_sha256_hex(m->entries[i].sha256, hex);
    if (strcmp(hex, p + sizeof(blobs) - 1))
      return st_fail(err, ST_EVERIFY, "%.200s holds sha256:%s", p, hex);
  }
  return 0;
}

/* trivy:db / trivy:java-db exports (workers/trivy): format "oci-layout", compression
 * "gzip", index_sha256, media_type the kind's Trivy layer type, and with the manifest the
 * payload is the OCI layout Trivy pulls (plus rejects.ndjson). */
static int trivy_check(const json_t *metadata, const st__manifest_t *m, int java,
                       st_error_t *err) {
  const char *s = json_string_value(json_object_get(metadata, "format"));
  const char *ix = json_string_value(json_object_get(metadata, "index_sha256"));
  const char *want = java ? "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"
                          : "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip";
  if (!s || strcmp(s, "oci-layout"))
    return st_fail(err, ST_EVERIFY, "metadata format: want \"oci-layout\" for a Trivy export");
  s = json_string_value(json_object_get(metadata, "compression"));
  if (!s || strcmp(s, "gzip"))
    return st_fail(err, ST_EVERIFY, "metadata compression: want \"gzip\" for a Trivy export");
  if (!hex64(ix))
    return st_fail(err, ST_EVERIFY, "metadata index_sha256: want 64 lower-case hex digits");
  s = json_string_value(json_object_get(metadata, "media_type"));
  if (!s || strcmp(s, want))
    return st_fail(err, ST_EVERIFY, "metadata media_type: want %s", want);
  return m ? layout_check(m, ix, "rejects.ndjson", err) : 0;
}

/* export (workers/export_json, workers/trivy): when the adapter's fields are present they
 * must be well-formed: export_kind a known profile kind, plan_digest 64 lower-hex, counts
 * an object of non-negative integers, format "ndjson" and compression none|gzip|zstd, or
 * for the Trivy kinds trivy_check's rules. Bundles
 * of kind export without them (hand-made ones) keep the generic rule only. */
static int export_check(const json_t *metadata, const st__manifest_t *m, st_error_t *err) {
  static const char *const kinds_ok[] = {"json:raw", "json:policy", "mirror:full",
                                         "mirror:delta", "trivy:db", "trivy:java-db", NULL};
  const json_t *v, *counts = json_object_get(metadata, "counts");
  const char *s, *key;
  int rc = generic_check(metadata, m, err), ok = 0;

  if (rc || !(v = json_object_get(metadata, "export_kind")))
    return rc;
  for (const char *const *k = kinds_ok; (s = json_string_value(v)) && *k; k++)
    ok |= !strcmp(s, *k);
  if (!ok)
    return st_fail(err, ST_EVERIFY, "metadata export_kind: not a known export kind");
  s = json_string_value(json_object_get(metadata, "plan_digest"));
  if (!hex64(s))
    return st_fail(err, ST_EVERIFY, "metadata plan_digest: want 64 lower-case hex digits");
  if (!strncmp(json_string_value(json_object_get(metadata, "export_kind")), "trivy:", 6)) {
    if ((rc = trivy_check(metadata, m, !strcmp(json_string_value(json_object_get(
                                                   metadata, "export_kind")), "trivy:java-db"),
                          err)))
      return rc;
  } else {
    s = json_string_value(json_object_get(metadata, "format"));
    if (!s || strcmp(s, "ndjson"))
      return st_fail(err, ST_EVERIFY, "metadata format: want \"ndjson\"");
    s = json_string_value(json_object_get(metadata, "compression"));
    if (!s || (strcmp(s, "none") && strcmp(s, "gzip") && strcmp(s, "zstd")))
      return st_fail(err, ST_EVERIFY, "metadata compression: want none, gzip or zstd");
  }
  if (!json_is_object(counts))
    return st_fail(err, ST_EVERIFY, "metadata counts: want an object");
  json_object_foreach((json_t *)counts, key, v) if (!json_is_integer(v) ||
                                                   json_integer_value(v) < 0)
      return st_fail(err, ST_EVERIFY, "metadata counts.%.64s: want a non-negative integer", key);
  return 0;
}

/* bootstrap (cli/cmd_bootstrap.c): an OCI image layout under payload/oci/. Metadata:
 * format "oci-layout", index_sha256 (of payload/oci/index.json), refs [{ref, digest,
 * type image|chart}]. With the manifest: the payload is exactly oci-layout, index.json
 * (of that digest) and blobs/sha256/<hex> files whose signed SHA-256 is their name, and
 * every ref's digest is one of those blobs. Reading index.json and walking the manifests
 * is `stella bootstrap verify`'s job (it has the content). */
static int bootstrap_check(const json_t *metadata, const st__manifest_t *m, st_error_t *err) {
  const json_t *refs = json_object_get(metadata, "refs"), *r;
  const char *ix = json_string_value(json_object_get(metadata, "index_sha256")), *s;
  size_t i;
  int rc = generic_check(metadata, m, err);

  if (rc)
    return rc;
  s = json_string_value(json_object_get(metadata, "format"));
  if (!s || strcmp(s, "oci-layout"))
    return st_fail(err, ST_EVERIFY, "metadata format: want \"oci-layout\"");
  if (!hex64(ix))
    return st_fail(err, ST_EVERIFY, "metadata index_sha256: want 64 lower-case hex digits");
  if (!json_is_array(refs) || !json_array_size(refs) || json_array_size(refs) > 10000)
    return st_fail(err, ST_EVERIFY, "metadata refs: want an array of 1..10000 images/charts");
  json_array_foreach(refs, i, r) {
    const char *ref = json_string_value(json_object_get(r, "ref"));
    const char *type = json_string_value(json_object_get(r, "type"));
    if (!ref || !*ref || strlen(ref) > ST_OCI_REF_NAME_MAX ||
        !st_oci_digest_valid(json_string_value(json_object_get(r, "digest"))) || !type ||
        (strcmp(type, "image") && strcmp(type, "chart")))
      return st_fail(err, ST_EVERIFY, "metadata refs[%zu]: want {ref, digest sha256:HEX, "
                     "type image|chart}", i);
  }
  if (!m)
    return 0;
  if ((rc = layout_check(m, ix, NULL, err)))
    return rc;
  json_array_foreach(refs, i, r) {
    const char *d = json_string_value(json_object_get(r, "digest")) + 7;
    char rel[13 + 64 + 1] = "blobs/sha256/";
    memcpy(rel + 13, d, 65);
    if (!oci_entry(m, rel))
      return st_fail(err, ST_EVERIFY, "metadata refs[%zu]: blob %.71s is not in the payload",
                     i, d - 7);
  }
  return 0;
}

/* mirror (workers/mirror, docs/mirror.md): metadata format "stella.mirror/v1", mode
 * full|delta, mirror_sha256 (and base_sha256 for a delta only) 64 lower-hex, counts an
 * object of non-negative integers; with the manifest, payload/mirror.json and
 * payload/blobs.ndjson are present, and payload/delta.json exactly when mode is delta.
 * Bundles of kind mirror without a format (hand-made ones) keep the generic rule only. */
static int mirror_check(const json_t *metadata, const st__manifest_t *m, st_error_t *err) {
  const json_t *counts = json_object_get(metadata, "counts"), *v;
  const char *mode = json_string_value(json_object_get(metadata, "mode")), *s, *key;
  int rc = generic_check(metadata, m, err), delta, has[3] = {0, 0, 0};

  if (rc || !json_object_get(metadata, "format"))
    return rc;
  s = json_string_value(json_object_get(metadata, "format"));
  if (!s || strcmp(s, "stella.mirror/v1"))
    return st_fail(err, ST_EVERIFY, "metadata format: want \"stella.mirror/v1\"");
  if (!mode || (strcmp(mode, "full") && strcmp(mode, "delta")))
    return st_fail(err, ST_EVERIFY, "metadata mode: want full or delta");
  delta = !strcmp(mode, "delta");
  if (!hex64(json_string_value(json_object_get(metadata, "mirror_sha256"))))
    return st_fail(err, ST_EVERIFY, "metadata mirror_sha256: want 64 lower-case hex digits");
  v = json_object_get(metadata, "base_sha256");
  if (delta ? !hex64(json_string_value(v)) : v != NULL)
    return st_fail(err, ST_EVERIFY, "metadata base_sha256: %s", delta ? "want 64 lower-case "
                   "hex digits" : "only a delta has a base");
  if (!json_is_object(counts))
    return st_fail(err, ST_EVERIFY, "metadata counts: want an object");
  json_object_foreach((json_t *)counts, key, v) if (!json_is_integer(v) ||
                                                   json_integer_value(v) < 0)
      return st_fail(err, ST_EVERIFY, "metadata counts.%.64s: want a non-negative integer", key);
  if (!m)
    return 0;
  for (size_t i = 0; i < m->n; i++) {
    has[0] |= !strcmp(m->entries[i].path, ST__BUNDLE_PAYLOAD_DIR "mirror.json");
    has[1] |= !strcmp(m->entries[i].path, ST__BUNDLE_PAYLOAD_DIR "blobs.ndjson");
    has[2] |= !strcmp(m->entries[i].path, ST__BUNDLE_PAYLOAD_DIR "delta.json");
  }
  if (!has[0] || !has[1])
    return st_fail(err, ST_EVERIFY, "payload/mirror.json or payload/blobs.ndjson is missing");
  if (has[2] != delta)
    return st_fail(err, ST_EVERIFY, "payload/delta.json: %s", delta ? "missing from a delta"
                                                                    : "only a delta has one");
  return 0;
}

static const kind_t kinds[] = {
    {"attestation", generic_check}, {"bootstrap", bootstrap_check}, {"devportal", generic_check},
    {"evidence", st__bundle_kind_evidence_check}, {"export", export_check},
    {"generic", generic_check},
    {"mirror", mirror_check},      {"risk", generic_check},
};

int st__bundle_kind_generic_check(const json_t *metadata, const st__manifest_t *m,
                                  st_error_t *err) {
  return generic_check(metadata, m, err);
}

static const kind_t *find(const char *kind) {
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(kinds[i].name, kind) == 0)
      return &kinds[i];
  return NULL;
}

int st_bundle_kind_known(const char *kind) { return kind && find(kind) != NULL; }

int st__bundle_kind_check(const char *kind, const json_t *metadata, const st__manifest_t *m,
                          st_error_t *err) {
  const kind_t *k = find(kind);
  if (!k)
    return st_fail(err, ST_EVERIFY, "unknown kind '%.32s'", kind);
  return k->check(metadata, m, err);
}

const char *st_bundle_media_type(const char *path) {
  static const char *const map[][2] = {
      {".json", "application/json"},   {".jsonl", "application/jsonl"},
      {".txt", "text/plain"},          {".log", "text/plain"},
      {".csv", "text/csv"},            {".md", "text/markdown"},
      {".html", "text/html"},          {".xml", "application/xml"},
      {".yaml", "application/yaml"},   {".yml", "application/yaml"},
      {".pem", "application/x-pem-file"}, {".pdf", "application/pdf"},
      {".tgz", "application/gzip"},    {".gz", "application/gzip"},
      {".tar", "application/x-tar"},   {".zip", "application/zip"},
      {".sh", "text/x-shellscript"},   {".dsse", "application/vnd.dsse.envelope.v1+json"},
      {".spdx", "text/spdx"},          {".sarif", "application/sarif+json"},
  };
  const char *base = strrchr(path, '/'), *dot;
  base = base ? base + 1 : path;
  dot = strrchr(base, '.');
  if (dot && dot != base)
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
      if (strcmp(dot, map[i][0]) == 0)
        return map[i][1];
  return "application/octet-stream";
}
