/* bundle_kind.c: the kind registry (kinds add typed metadata and checks on it, never a new
 * layout) and media types by extension. Every kind for now shares the generic rule: metadata
 * is an object of at most 256 members whose names are [A-Za-z0-9._-]{1,64}. A kind with
 * stricter metadata adds its function to the table. */
#include <string.h>

#include "bundle_internal.h"

typedef struct kind_s {
  const char *name;
  int (*check)(const json_t *metadata, st_error_t *err);
} kind_t;

static int generic_check(const json_t *metadata, st_error_t *err) {
  const char *key;
  json_t *v;
  if (!json_is_object(metadata))
    return st_fail(err, ST_EVERIFY, "metadata is not an object");
  if (json_object_size(metadata) > 256)
    return st_fail(err, ST_EVERIFY, "metadata has %zu members (at most 256)",
                   json_object_size(metadata));
  json_object_foreach((json_t *)metadata, key, v) {
    size_t n = strlen(key);
    (void)v;
    if (n == 0 || n > 64 ||
        strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
      return st_fail(err, ST_EVERIFY, "metadata key '%.64s': want [A-Za-z0-9._-]{1,64}", key);
  }
  return 0;
}

/* export (workers/export_json): when the adapter's fields are present they must be
 * well-formed: export_kind a known profile kind, plan_digest 64 lower-hex, counts an
 * object of non-negative integers, format "ndjson", compression none|gzip|zstd. Bundles
 * of kind export without them (hand-made ones) keep the generic rule only. */
static int export_check(const json_t *metadata, st_error_t *err) {
  static const char *const kinds_ok[] = {"json:raw", "json:policy", "mirror:full",
                                         "mirror:delta", "trivy:db", "trivy:java-db", NULL};
  const json_t *v, *counts = json_object_get(metadata, "counts");
  const char *s, *key;
  int rc = generic_check(metadata, err), ok = 0;

  if (rc || !(v = json_object_get(metadata, "export_kind")))
    return rc;
  for (const char *const *k = kinds_ok; (s = json_string_value(v)) && *k; k++)
    ok |= !strcmp(s, *k);
  if (!ok)
    return st_fail(err, ST_EVERIFY, "metadata export_kind: not a known export kind");
  s = json_string_value(json_object_get(metadata, "plan_digest"));
  if (!s || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
    return st_fail(err, ST_EVERIFY, "metadata plan_digest: want 64 lower-case hex digits");
  s = json_string_value(json_object_get(metadata, "format"));
  if (!s || strcmp(s, "ndjson"))
    return st_fail(err, ST_EVERIFY, "metadata format: want \"ndjson\"");
  s = json_string_value(json_object_get(metadata, "compression"));
  if (!s || (strcmp(s, "none") && strcmp(s, "gzip") && strcmp(s, "zstd")))
    return st_fail(err, ST_EVERIFY, "metadata compression: want none, gzip or zstd");
  if (!json_is_object(counts))
    return st_fail(err, ST_EVERIFY, "metadata counts: want an object");
  json_object_foreach((json_t *)counts, key, v) if (!json_is_integer(v) ||
                                                   json_integer_value(v) < 0)
      return st_fail(err, ST_EVERIFY, "metadata counts.%.64s: want a non-negative integer", key);
  return 0;
}

static const kind_t kinds[] = {
    {"attestation", generic_check}, {"bootstrap", generic_check}, {"devportal", generic_check},
    {"evidence", generic_check},    {"export", export_check},    {"generic", generic_check},
    {"mirror", generic_check},      {"risk", generic_check},
};

static const kind_t *find(const char *kind) {
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(kinds[i].name, kind) == 0)
      return &kinds[i];
  return NULL;
}

int st_bundle_kind_known(const char *kind) { return kind && find(kind) != NULL; }

int st__bundle_kind_check(const char *kind, const json_t *metadata, st_error_t *err) {
  const kind_t *k = find(kind);
  if (!k)
    return st_fail(err, ST_EVERIFY, "unknown kind '%.32s'", kind);
  return k->check(metadata, err);
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
