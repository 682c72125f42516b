/* mirror_util.c: the small pieces the mirror builder and importer share: index entry lists,
 * files and directories (bounded reads, recursive removal without following links),
 * times, index lines, mirror.json and the README of the receiving side. */
#define _GNU_SOURCE /* nftw FTW_PHYS, timegm */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mirror_int.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"

static const char *const dir_names[ST_MIRROR_NDIRS] = {"advisories", "vex", "policy-packs"};

const char *st_mirror_dir_name(st_mirror_dir d) {
  return (unsigned)d < ST_MIRROR_NDIRS ? dir_names[d] : NULL;
}

int st__mlist_push(st__mlist_t *l, const char *id, const uint8_t sha[ST_SHA256_LEN], long long size,
                   long long off, st_error_t *err) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    st__mentry_t *v = st_realloc(l->v, cap * sizeof(*v));
    if (!v)
      return st_fail(err, ST_ENOMEM, "mirror: out of memory");
    l->v = v;
    l->cap = cap;
  }
  if (!(l->v[l->n].id = st_strdup(id)))
    return st_fail(err, ST_ENOMEM, "mirror: out of memory");
  memcpy(l->v[l->n].sha, sha, ST_SHA256_LEN);
  l->v[l->n].size = size;
  l->v[l->n].off = off;
  l->n++;
  return 0;
}

static int by_id(const void *a, const void *b) {
  return strcmp(((const st__mentry_t *)a)->id, ((const st__mentry_t *)b)->id);
}

int st__mlist_sort(st__mlist_t *l, const char *dir, st_error_t *err) {
  if (l->n > 1)
    qsort(l->v, l->n, sizeof(*l->v), by_id);
  for (size_t i = 1; i < l->n; i++)
    if (!strcmp(l->v[i - 1].id, l->v[i].id))
      return st_fail(err, ST_EEXIST, "mirror %s: id '%.200s' appears twice", dir, l->v[i].id);
  return 0;
}

void st__mlist_release(st__mlist_t *l) {
  for (size_t i = 0; i < l->n; i++)
    st_free(l->v[i].id);
  st_free(l->v);
  memset(l, 0, sizeof(*l));
}

int st__mirror_mkdirs(const char *path, st_error_t *err) {
  st_buf_t p = ST_BUF_INIT;
  int rc = 0;
  if (st_buf_adds(&p, path))
    return st_fail(err, ST_ENOMEM, "mirror: out of memory");
  for (char *s = p.data + 1; !rc; s++) {
    int end = *s == '\0';
    if (*s != '/' && !end)
      continue;
    *s = '\0';
    if (mkdir(p.data, 0755) && errno != EEXIST)
      rc = st_fail(err, ST_EIO, "mirror: cannot create %s: %s", p.data, strerror(errno));
    if (end)
      break;
    *s = '/';
  }
  st_buf_release(&p);
  return rc;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

void st__mirror_rmtree(const char *path) {
  if (path)
    nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

int st__mirror_write(const char *path, const void *data, size_t len, st_error_t *err) {
  FILE *f = fopen(path, "wbx");
  int ok = f && (len == 0 || fwrite(data, 1, len, f) == len);
  if (f && fclose(f))
    ok = 0;
  return ok ? 0 : st_fail(err, ST_EIO, "mirror: cannot write %s", path);
}

int st__mirror_read(const char *path, size_t max, st_buf_t *out, st_error_t *err) {
  char chunk[65536];
  size_t n;
  int rc = 0, fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
  st_buf_reset(out);
  if (!f) {
    if (fd >= 0)
      close(fd);
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "mirror: cannot read %s", path);
  }
  while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    if (out->len + n > max)
      rc = st_fail(err, ST_ETOOBIG, "mirror: %s is larger than %zu bytes", path, max);
    else if (st_buf_add(out, chunk, n))
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
  if (!rc && ferror(f))
    rc = st_fail(err, ST_EIO, "mirror: reading %s", path);
  fclose(f);
  return rc;
}

int st__mirror_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

int st__mirror_path(st_buf_t *out, const char *dir, const char *rel, st_error_t *err) {
  st_buf_reset(out);
  return st_buf_addf(out, "%s/%s", dir, rel) ? st_fail(err, ST_ENOMEM, "mirror: out of memory") : 0;
}

void st__mirror_blob_rel(const uint8_t sha[ST_SHA256_LEN], char *out) {
  char hex[ST_SHA256_HEX_LEN + 1];
  st_sha256_hex(sha, hex);
  memcpy(out, "blobs/sha256/", 13);
  memcpy(out + 13, hex, 2);
  out[15] = '/';
  memcpy(out + 16, hex, ST_SHA256_HEX_LEN + 1);
}

void st__mirror_time_format(int64_t t, char out[21]) {
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int st__mirror_time_parse(const char *s, int64_t *out) {
  struct tm tm;
  const char *end;
  memset(&tm, 0, sizeof(tm));
  if (!s || strlen(s) != 20 || !(end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *end)
    return ST_EINVAL;
  *out = (int64_t)timegm(&tm);
  return 0;
}

int st__mirror_index_line(st_buf_t *out, const st__mentry_t *e, st_error_t *err) {
  char hex[ST_SHA256_HEX_LEN + 1];
  st_sha256_hex(e->sha, hex);
  if (st_buf_adds(out, "{\"id\":") || st_buf_add_json_str(out, e->id, strlen(e->id)) ||
      st_buf_addf(out, ",\"sha256\":\"%s\",\"size\":%lld}\n", hex, e->size))
    return st_fail(err, ST_ENOMEM, "mirror: out of memory");
  return 0;
}

int st__mirror_index_parse(const char *line, size_t len, int patch, st__mentry_t *e, int *del,
                           st_error_t *err) {
  json_t *j = NULL;
  const char *id, *sha, *op = NULL;
  size_t idlen, want = 3;
  long long size = 0;
  int rc;
  st_json_limits_t lim = {ST__MIRROR_LINE_MAX, 2};

  memset(e, 0, sizeof(*e));
  *del = 0;
  if ((rc = st_json_parse(line, len, &lim, &j, err)))
    goto done;
  if (patch && (rc = st_json_get_str(j, "op", &op, NULL, err)))
    goto done;
  if (op && strcmp(op, "put") && strcmp(op, "del")) {
    rc = st_fail(err, ST_EPARSE, "op: want put or del");
    goto done;
  }
  *del = op && !strcmp(op, "del");
  if ((rc = st_json_get_str(j, "id", &id, &idlen, err)))
    goto done;
  if (!idlen || idlen > ST__MIRROR_ID_MAX || strlen(id) != idlen) {
    rc = st_fail(err, ST_EPARSE, "id: want 1..%d bytes without NUL", ST__MIRROR_ID_MAX);
    goto done;
  }
  want = (patch ? 1 : 0) + (*del ? 1 : 3);
  if (json_object_size(j) != want) {
    rc = st_fail(err, ST_EPARSE, "unexpected members (want %s)",
                 *del    ? "op, id"
                 : patch ? "op, id, sha256, size"
                         : "id, sha256, size");
    goto done;
  }
  if (!*del) {
    if ((rc = st_json_get_str(j, "sha256", &sha, NULL, err)) ||
        (rc = st_json_get_int(j, "size", &size, err)))
      goto done;
    if (strlen(sha) != ST_SHA256_HEX_LEN || strspn(sha, "0123456789abcdef") != ST_SHA256_HEX_LEN ||
        st_sha256_from_hex(sha, ST_SHA256_HEX_LEN, e->sha)) {
      rc = st_fail(err, ST_EPARSE, "sha256: want 64 lower-case hex digits");
      goto done;
    }
    if (size < 0 || (size_t)size > ST__MIRROR_BLOB_MAX) {
      rc = st_fail(err, ST_EPARSE, "size: out of range");
      goto done;
    }
  }
  e->size = size;
  e->off = -1;
  if (!(e->id = st_strdup(id)))
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
done:
  json_decref(j);
  return rc;
}

int st__mirror_index_load(const char *path, st__mlist_t *l, st_error_t *err) {
  FILE *f = fopen(path, "rb");
  char *line = NULL;
  size_t cap = 0, lineno = 0;
  ssize_t n;
  int rc = 0;
  st__mentry_t e;
  int del;

  if (!f)
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "mirror: cannot read %s", path);
  while (!rc && (n = getline(&line, &cap, f)) > 0) {
    lineno++;
    if ((size_t)n > ST__MIRROR_LINE_MAX || line[n - 1] != '\n') {
      rc = st_fail(err, ST_EPARSE, "%s:%zu: line too long or unterminated", path, lineno);
      break;
    }
    if ((rc = st__mirror_index_parse(line, (size_t)n - 1, 0, &e, &del, err))) {
      st_error_wrap(err, "%s:%zu", path, lineno);
      break;
    }
    if (l->n && strcmp(l->v[l->n - 1].id, e.id) >= 0)
      rc = st_fail(err, ST_EPARSE, "%s:%zu: ids not in strictly increasing byte order", path,
                   lineno);
    else
      rc = st__mlist_push(l, e.id, e.sha, e.size, -1, err);
    st_free(e.id);
  }
  free(line);
  fclose(f);
  return rc;
}

int st__mirror_json(const char *tenant, const char *created, const st__mirror_sum_t *s,
                    st_buf_t *out, st_error_t *err) {
  json_t *dirs = json_object(), *j = NULL;
  int rc = 0;
  for (int d = 0; dirs && d < ST_MIRROR_NDIRS; d++) {
    char hex[ST_SHA256_HEX_LEN + 1], path[64];
    st_sha256_hex(s->index_sha[d], hex);
    snprintf(path, sizeof(path), "%s/index.ndjson", dir_names[d]);
    if (json_object_set_new(dirs, dir_names[d],
                            json_pack("{s:I, s:{s:s, s:s, s:I}}", "count", (json_int_t)s->count[d],
                                      "index", "path", path, "sha256", hex, "size",
                                      (json_int_t)s->index_size[d])))
      rc = ST_ENOMEM;
  }
  if (!rc && dirs)
    j = json_pack("{s:s, s:s, s:s, s:o, s:{s:I, s:I}}", "schema", ST__MIRROR_SCHEMA, "tenant",
                  tenant, "created", created, "directories", dirs, "blobs", "count",
                  (json_int_t)s->blobs, "bytes", (json_int_t)s->blob_bytes);
  else
    json_decref(dirs);
  if (!j)
    return st_fail(err, ST_ENOMEM, "mirror: out of memory");
  st_buf_reset(out);
  rc = st_jcs_encode(j, out, err);
  if (!rc && st_buf_addc(out, '\n'))
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
  json_decref(j);
  return rc;
}

const char *st__mirror_readme(void) {
  return "# Stella mirror\n"
         "\n"
         "A mirror of advisories (OSV), VEX documents (OpenVEX) and policy packs, made by the\n"
         "Stella Export Center. Layout:\n"
         "\n"
         "- `mirror.json`: per directory the document count and its index's SHA-256.\n"
         "- `<dir>/index.ndjson` (`advisories`, `vex`, `policy-packs`): one line per\n"
         "  document, `{\"id\", \"sha256\", \"size\"}`, sorted by id.\n"
         "- `blobs/sha256/<hh>/<sha256>`: each document in RFC 8785 canonical JSON, named by\n"
         "  its SHA-256 (`sha256sum` of the file prints its name).\n"
         "- `tuf/`: TUF 1.0 metadata (root, targets, snapshot, timestamp). The targets are\n"
         "  this README, mirror.json and the indexes; a TUF client given `tuf/root.json`\n"
         "  checks their freshness, versions and hashes.\n"
         "\n"
         "Check the tree with `stella mirror verify DIR --key signer.pub`; apply a newer full\n"
         "or delta bundle with `stella mirror import BUNDLE --into DIR --key signer.pub`\n"
         "(built beside the tree and swapped in: a failed import changes nothing).\n";
}
