/* bundle_manifest.c: the manifest model: path/id/kind/time rules, the canonical entry
 * encoding and Merkle tree over it, and manifest.json written directly in RFC 8785 form
 * (members in sorted order, so no JSON tree is built for 100,000 entries) and parsed back
 * strictly (canonical bytes, exact member sets, sorted unique entries, root recomputed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle_internal.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/merkle.h"

#define MAX_SAFE_INT 9007199254740992ULL /* 2^53: JCS prints integers exactly up to here */

int st__bundle_path_check(const char *path, size_t len, st_error_t *err) {
  const size_t plen = strlen(ST__BUNDLE_PAYLOAD_DIR);
  size_t start;

  if (len <= plen || len > ST_BUNDLE_PATH_MAX || memcmp(path, ST__BUNDLE_PAYLOAD_DIR, plen))
    return st_fail(err, ST_EUNSAFE, "bundle path '%.*s': must be payload/<path>, at most %d bytes",
                   (int)(len > 200 ? 200 : len), path, ST_BUNDLE_PATH_MAX);
  if (!st_utf8_valid(path, len))
    return st_fail(err, ST_EUNSAFE, "bundle path: invalid UTF-8");
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)path[i];
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
      return st_fail(err, ST_EUNSAFE,
                     "bundle path '%.*s': control character, '\"' or '\\' at byte %zu",
                     (int)(len > 200 ? 200 : len), path, i);
  }
  start = plen;
  for (size_t i = plen; i <= len; i++) {
    if (i < len && path[i] != '/')
      continue;
    size_t clen = i - start;
    if (clen == 0 || (clen == 1 && path[start] == '.') ||
        (clen == 2 && path[start] == '.' && path[start + 1] == '.'))
      return st_fail(err, ST_EUNSAFE, "bundle path '%.*s': empty, '.' or '..' component",
                     (int)(len > 200 ? 200 : len), path);
    start = i + 1;
  }
  return 0;
}

int st__bundle_time_parse(const char *s, int64_t *out) {
  struct tm tm;
  time_t t;
  static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";

  if (strlen(s) != sizeof(pat) - 1)
    return ST_EPARSE;
  for (size_t i = 0; i < sizeof(pat) - 1; i++)
    if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
      return ST_EPARSE;
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = atoi(s) - 1900;
  tm.tm_mon = atoi(s + 5) - 1;
  tm.tm_mday = atoi(s + 8);
  tm.tm_hour = atoi(s + 11);
  tm.tm_min = atoi(s + 14);
  tm.tm_sec = atoi(s + 17);
  t = timegm(&tm);
  if (t < 0)
    return ST_ERANGE;
  {
    char back[21];
    st__bundle_time_format((int64_t)t, back);
    if (strcmp(back, s) != 0) /* 2025-02-30, 25:00:00, leap seconds */
      return ST_ERANGE;
  }
  *out = (int64_t)t;
  return 0;
}

void st__bundle_time_format(int64_t t, char out[21]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int st__bundle_created(const char *given, char out[21], int64_t *epoch, st_error_t *err) {
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  int64_t t;

  if (given) {
    if (st__bundle_time_parse(given, &t))
      return st_fail(err, ST_EINVAL, "created '%.40s': not an RFC 3339 UTC time "
                     "YYYY-MM-DDTHH:MM:SSZ", given);
  } else if (sde && *sde) {
    char *end;
    long long v = strtoll(sde, &end, 10);
    if (*end || v < 0 || v > 253402300799LL || sde[0] < '0' || sde[0] > '9')
      return st_fail(err, ST_EINVAL, "SOURCE_DATE_EPOCH '%.40s': not a decimal time", sde);
    t = (int64_t)v;
  } else {
    t = (int64_t)time(NULL);
  }
  if (t > 253402300799LL)
    return st_fail(err, ST_EINVAL, "created: after year 9999");
  st__bundle_time_format(t, out);
  *epoch = t;
  return 0;
}

static int charset_ok(const char *s, size_t len, size_t max, const char *extra, int lower) {
  if (len == 0 || len > max)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             (!lower && c >= 'A' && c <= 'Z') || (c && strchr(extra, c));
    if (!ok)
      return 0;
  }
  return 1;
}

int st__bundle_id_valid(const char *s, size_t len) {
  return charset_ok(s, len, ST_BUNDLE_ID_MAX, "._:-", 0);
}

int st__bundle_kind_valid(const char *s, size_t len) {
  return charset_ok(s, len, ST_BUNDLE_KIND_MAX, "-", 1) && s[0] >= 'a' && s[0] <= 'z';
}

/* type "/" subtype with RFC 6838 restricted-name characters, optional "+suffix" and
 * parameters are not allowed (keep the field comparable byte for byte). */
int st__bundle_media_type_valid(const char *s, size_t len) {
  const char *slash = memchr(s, '/', len);
  if (!slash || slash == s || slash == s + len - 1)
    return 0;
  return charset_ok(s, (size_t)(slash - s), 127, "!#$&-^_.+", 0) &&
         charset_ok(slash + 1, len - (size_t)(slash - s) - 1, 127, "!#$&-^_.+", 0) &&
         len <= ST_BUNDLE_MEDIA_TYPE_MAX;
}

int st__bundle_entry_jcs(st_buf_t *out, const st__bentry_t *e) {
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc;
  st_sha256_hex(e->sha256, hex);
  if ((rc = st_buf_adds(out, "{\"mediaType\":")) ||
      (rc = st_buf_add_json_str(out, e->media_type, strlen(e->media_type))) ||
      (rc = st_buf_adds(out, ",\"path\":")) ||
      (rc = st_buf_add_json_str(out, e->path, strlen(e->path))) ||
      (rc = st_buf_addf(out, ",\"sha256\":\"%s\",\"size\":%llu}", hex,
                        (unsigned long long)e->size)))
    return rc;
  return 0;
}

int st__bundle_merkle(const st__bentry_t *e, size_t n, uint8_t **leaves,
                      uint8_t root[ST_SHA256_LEN], st_error_t *err) {
  st_merkle_t m;
  st_buf_t b = ST_BUF_INIT;
  uint8_t *l = NULL;
  int rc;

  *leaves = NULL;
  if ((rc = st_merkle_init(&m)))
    return st_fail(err, rc, "merkle: %s", st_strerror(rc));
  if (n && !(l = st_malloc(n * ST_SHA256_LEN))) {
    rc = st_fail(err, ST_ENOMEM, "merkle: %zu leaves", n);
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    st_buf_reset(&b);
    if ((rc = st__bundle_entry_jcs(&b, &e[i])) ||
        (rc = st_merkle_leaf_hash(b.data, b.len, l + i * ST_SHA256_LEN)) ||
        (rc = st_merkle_add_hash(&m, l + i * ST_SHA256_LEN))) {
      st_fail(err, rc, "merkle: entry %s: %s", e[i].path, st_strerror(rc));
      goto done;
    }
  }
  if ((rc = st_merkle_root(&m, root)))
    st_fail(err, rc, "merkle: %s", st_strerror(rc));
done:
  st_merkle_release(&m);
  st_buf_release(&b);
  if (rc)
    st_free(l);
  else
    *leaves = l;
  return rc;
}

static int add_str_member(st_buf_t *out, const char *sep_name, const char *v) {
  int rc;
  if ((rc = st_buf_adds(out, sep_name)))
    return rc;
  return st_buf_add_json_str(out, v, strlen(v));
}

int st__bundle_manifest_write(const st__manifest_in_t *in, st_buf_t *out, st_error_t *err) {
  char hex[ST_SHA256_HEX_LEN + 1];
  size_t start = out->len;
  int rc;

  st_sha256_hex(in->root, hex);
  if ((rc = add_str_member(out, "{\"created\":", in->created)) ||
      (rc = st_buf_adds(out, ",\"entries\":[")))
    goto done;
  for (size_t i = 0; i < in->n; i++)
    if ((i && (rc = st_buf_addc(out, ','))) || (rc = st__bundle_entry_jcs(out, &in->entries[i])))
      goto done;
  if ((rc = st_buf_addc(out, ']')) ||
      (in->id && (rc = add_str_member(out, ",\"id\":", in->id))) ||
      (rc = add_str_member(out, ",\"kind\":", in->kind)) ||
      (rc = st_buf_addf(out, ",\"merkle\":{\"algorithm\":\"rfc6962-sha256\",\"root\":\"%s\","
                        "\"size\":%zu},\"metadata\":", hex, in->n)))
    goto done;
  if (in->metadata) {
    if ((rc = st_jcs_encode(in->metadata, out, err))) {
      st_error_wrap(err, "manifest metadata");
      goto done;
    }
  } else if ((rc = st_buf_adds(out, "{}"))) {
    goto done;
  }
  if ((rc = add_str_member(out, ",\"schema\":", ST_BUNDLE_SCHEMA)) ||
      (rc = add_str_member(out, ",\"tenant\":", in->tenant)) || (rc = st_buf_addc(out, '}')))
    goto done;
done:
  if (rc) {
    if (err && !err->code)
      st_fail(err, rc, "manifest: %s", st_strerror(rc));
    out->len = start;
    out->data[start] = '\0';
  }
  return rc;
}

/* ---- parsing ---- */

static int exact_members(const json_t *o, const char *const *names, size_t n, const char *where,
                         st_error_t *err) {
  const char *key;
  json_t *v;
  if (!json_is_object(o))
    return st_fail(err, ST_EPARSE, "%s: not an object", where);
  json_object_foreach((json_t *)o, key, v) {
    size_t i;
    for (i = 0; i < n && strcmp(key, names[i]); i++)
      ;
    if (i == n)
      return st_fail(err, ST_EPARSE, "%s: unknown member '%.64s'", where, key);
  }
  for (size_t i = 0; i < n; i++)
    if (!json_object_get(o, names[i]))
      return st_fail(err, ST_EPARSE, "%s: missing member '%s'", where, names[i]);
  return 0;
}

static int get_hex(const json_t *o, const char *name, uint8_t out[ST_SHA256_LEN],
                   const char *where, st_error_t *err) {
  json_t *v = json_object_get(o, name);
  const char *s = json_string_value(v);
  if (!s || json_string_length(v) != ST_SHA256_HEX_LEN ||
      strspn(s, "0123456789abcdef") != ST_SHA256_HEX_LEN ||
      st_sha256_from_hex(s, ST_SHA256_HEX_LEN, out))
    return st_fail(err, ST_EPARSE, "%s.%s: not 64 lower-case hex digits", where, name);
  return 0;
}

static int get_size(const json_t *o, const char *name, uint64_t *out, const char *where,
                    st_error_t *err) {
  json_t *v = json_object_get(o, name);
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      (unsigned long long)json_integer_value(v) > MAX_SAFE_INT)
    return st_fail(err, ST_EPARSE, "%s.%s: not an integer in 0..2^53", where, name);
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int parse_entries(const json_t *arr, st__manifest_t *m, st_error_t *err) {
  static const char *const names[] = {"mediaType", "path", "sha256", "size"};
  size_t n = json_array_size(arr);

  if (!json_is_array(arr))
    return st_fail(err, ST_EPARSE, "manifest.entries: not an array");
  if (n > ST_BUNDLE_MAX_ENTRIES)
    return st_fail(err, ST_ETOOBIG, "manifest.entries: %zu entries (at most %d)", n,
                   ST_BUNDLE_MAX_ENTRIES);
  if (n && !(m->entries = st_calloc(n, sizeof(*m->entries))))
    return st_fail(err, ST_ENOMEM, "manifest.entries");
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(arr, i);
    st__bentry_t *b = &m->entries[i];
    char where[48];
    int rc;
    snprintf(where, sizeof(where), "manifest.entries[%zu]", i);
    if ((rc = exact_members(e, names, 4, where, err)))
      return rc;
    b->path = (char *)json_string_value(json_object_get(e, "path"));
    b->media_type = (char *)json_string_value(json_object_get(e, "mediaType"));
    if (!b->path || !b->media_type)
      return st_fail(err, ST_EPARSE, "%s: path and mediaType must be strings", where);
    if ((rc = st__bundle_path_check(b->path, strlen(b->path), err)))
      return st_error_wrap(err, "%s", where);
    if (!st__bundle_media_type_valid(b->media_type, strlen(b->media_type)))
      return st_fail(err, ST_EPARSE, "%s (%s): invalid mediaType", where, b->path);
    if ((rc = get_hex(e, "sha256", b->sha256, where, err)) ||
        (rc = get_size(e, "size", &b->size, where, err)))
      return rc;
    if (i && strcmp(m->entries[i - 1].path, b->path) >= 0)
      return st_fail(err, ST_EPARSE, "manifest.entries: '%s' %s '%s' (must be sorted by path "
                     "bytes, unique)", b->path,
                     strcmp(m->entries[i - 1].path, b->path) ? "after" : "repeats",
                     m->entries[i - 1].path);
    m->n = i + 1;
  }
  return 0;
}

static int str_member(const json_t *o, const char *name, const char **out, st_error_t *err) {
  const char *s = json_string_value(json_object_get(o, name));
  if (!s)
    return st_fail(err, ST_EPARSE, "manifest.%s: not a string", name);
  *out = s;
  return 0;
}

int st__bundle_manifest_parse(const char *data, size_t len, st__manifest_t *m,
                              const char **reason_check, st_error_t *err) {
  static const char *const top[] = {"created", "entries", "id", "kind", "merkle", "metadata",
                                    "schema", "tenant"};
  static const char *const mk[] = {"algorithm", "root", "size"};
  st_json_limits_t lim = {ST_BUNDLE_META_MAX, 0};
  st_buf_t canon = ST_BUF_INIT;
  const json_t *merkle;
  const char *schema = NULL, *alg;
  uint8_t *leaves = NULL, root[ST_SHA256_LEN];
  int64_t t;
  int rc;

  memset(m, 0, sizeof(*m));
  *reason_check = "manifest";
  if ((rc = st_json_parse(data, len, &lim, &m->root, err))) {
    st_error_wrap(err, "manifest.json");
    goto done;
  }
  if ((rc = st_jcs_encode(m->root, &canon, err)))
    goto done;
  if (canon.len != len || memcmp(canon.data, data, len)) {
    rc = st_fail(err, ST_EPARSE, "manifest.json: not in canonical form (RFC 8785)");
    goto done;
  }
  if ((rc = exact_members(m->root, top, 8, "manifest", err)) ||
      (rc = str_member(m->root, "schema", &schema, err)) ||
      (rc = str_member(m->root, "kind", &m->kind, err)) ||
      (rc = str_member(m->root, "id", &m->id, err)) ||
      (rc = str_member(m->root, "tenant", &m->tenant, err)) ||
      (rc = str_member(m->root, "created", &m->created, err)))
    goto done;
  if (strcmp(schema, ST_BUNDLE_SCHEMA)) {
    rc = st_fail(err, ST_EPARSE, "manifest.schema: '%.64s', expected %s", schema,
                 ST_BUNDLE_SCHEMA);
    goto done;
  }
  if (!st__bundle_kind_valid(m->kind, strlen(m->kind)) ||
      !st__bundle_id_valid(m->id, strlen(m->id)) ||
      st__bundle_time_parse(m->created, &t) || !*m->tenant || strlen(m->tenant) > 64 ||
      strspn(m->tenant, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
          strlen(m->tenant)) {
    rc = st_fail(err, ST_EPARSE, "manifest: invalid kind, id, tenant or created");
    goto done;
  }
  m->metadata = json_object_get(m->root, "metadata");
  if (!json_is_object(m->metadata)) {
    rc = st_fail(err, ST_EPARSE, "manifest.metadata: not an object");
    goto done;
  }
  merkle = json_object_get(m->root, "merkle");
  if ((rc = parse_entries(json_object_get(m->root, "entries"), m, err)) ||
      (rc = exact_members(merkle, mk, 3, "manifest.merkle", err)) ||
      (rc = get_hex(merkle, "root", m->root_hash, "manifest.merkle", err)) ||
      (rc = get_size(merkle, "size", &m->merkle_size, "manifest.merkle", err)))
    goto done;
  alg = json_string_value(json_object_get(merkle, "algorithm"));
  if (!alg || strcmp(alg, "rfc6962-sha256")) {
    rc = st_fail(err, ST_EPARSE, "manifest.merkle.algorithm: expected rfc6962-sha256");
    goto done;
  }
  *reason_check = "merkle";
  if (m->merkle_size != m->n) {
    rc = st_fail(err, ST_EVERIFY, "merkle.size %llu but %zu entries",
                 (unsigned long long)m->merkle_size, m->n);
    goto done;
  }
  if ((rc = st__bundle_merkle(m->entries, m->n, &leaves, root, err)))
    goto done;
  if (!st_sha256_equal(root, m->root_hash)) {
    rc = st_fail(err, ST_EVERIFY, "root over the %zu entries differs from merkle.root", m->n);
    goto done;
  }
done:
  st_free(leaves);
  st_buf_release(&canon);
  if (rc)
    st__bundle_manifest_release(m);
  return rc;
}

void st__bundle_manifest_release(st__manifest_t *m) {
  st_free(m->entries);
  json_decref(m->root);
  memset(m, 0, sizeof(*m));
}
