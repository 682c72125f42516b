/* mirror_build.c: the mirror builder and base states. Documents are spooled to one file
 * as they come (memory holds only the index entries), then sealing writes the tree's
 * small files (README.md, indexes, mirror.json, TUF) into a private directory, packs the
 * blobs the bundle ships into payload/blobs.ndjson (sorted by digest, each once) and, for
 * a delta, diffs the sorted indexes against the base into index patches. */
#define _GNU_SOURCE /* mkdtemp */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mirror_int.h"
#include "stella/bundle.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"

struct st_mirror_builder_s {
  char *dir;
  FILE *spool;
  long long spool_len;
  st__mlist_t lists[ST_MIRROR_NDIRS];
  char created[21];
  int spent;
};

struct st_mirror_state_s {
  char digest[ST_SHA256_HEX_LEN + 1];
  st__mlist_t lists[ST_MIRROR_NDIRS];
  uint8_t (*shas)[ST_SHA256_LEN]; /* every blob digest, sorted */
  size_t nshas;
};

static int sha_cmp(const void *a, const void *b) { return memcmp(a, b, ST_SHA256_LEN); }

/* ---- builder ---- */

int st_mirror_builder_new(const char *tmp_dir, st_mirror_builder_t **out, st_error_t *err) {
  st_mirror_builder_t *b = st_calloc(1, sizeof(*b));
  st_buf_t p = ST_BUF_INIT;
  int rc = 0;
  *out = NULL;
  if (!b || st_buf_addf(&p, "%s/stella-mirror-XXXXXX", tmp_dir ? tmp_dir : "/tmp")) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  if (!mkdtemp(p.data)) {
    rc = st_fail(err, ST_EIO, "mirror: cannot create a directory under %s",
                 tmp_dir ? tmp_dir : "/tmp");
    goto done;
  }
  b->dir = st_buf_detach(&p, NULL);
  strcpy(b->created, "1970-01-01T00:00:00Z");
  if ((rc = st__mirror_path(&p, b->dir, "spool", err)))
    goto done;
  if (!(b->spool = fopen(p.data, "w+bx")))
    rc = st_fail(err, ST_EIO, "mirror: cannot create %s", p.data);
done:
  st_buf_release(&p);
  if (rc)
    st_mirror_builder_free(b);
  else
    *out = b;
  return rc;
}

void st_mirror_builder_free(st_mirror_builder_t *b) {
  if (!b)
    return;
  if (b->spool)
    fclose(b->spool);
  st__mirror_rmtree(b->dir);
  st_free(b->dir);
  for (int d = 0; d < ST_MIRROR_NDIRS; d++)
    st__mlist_release(&b->lists[d]);
  st_free(b);
}

int st_mirror_builder_add(st_mirror_builder_t *b, st_mirror_dir dir, const char *id,
                          const char *canon, size_t len, const char *modified, st_error_t *err) {
  uint8_t sha[ST_SHA256_LEN];
  size_t idlen = id ? strlen(id) : 0;
  if (b->spent)
    return st_fail(err, ST_EINVAL, "mirror: the builder is sealed");
  if ((unsigned)dir >= ST_MIRROR_NDIRS)
    return st_fail(err, ST_EINVAL, "mirror: no such directory");
  if (!idlen || idlen > ST__MIRROR_ID_MAX || !st_utf8_valid(id, idlen))
    return st_fail(err, ST_EINVAL, "mirror: id must be 1..%d bytes of UTF-8", ST__MIRROR_ID_MAX);
  if (!len || len > ST__MIRROR_BLOB_MAX || memchr(canon, '\n', len))
    return st_fail(err, ST_EINVAL,
                   "mirror %s: document %.200s is empty, too large or not "
                   "one line",
                   st_mirror_dir_name(dir), id);
  if (st_sha256(canon, len, sha))
    return st_fail(err, ST_ECRYPTO, "mirror: sha256");
  if (fwrite(canon, 1, len, b->spool) != len)
    return st_fail(err, ST_EIO, "mirror: writing the spool");
  if (st__mlist_push(&b->lists[dir], id, sha, (long long)len, b->spool_len, err))
    return err->code;
  b->spool_len += (long long)len;
  if (modified && strlen(modified) >= 19 && strncmp(modified, b->created, 19) > 0) {
    memcpy(b->created, modified, 19);
    memcpy(b->created + 19, "Z", 2);
  }
  return 0;
}

/* A blob to ship: its digest and spool place. */
typedef struct blob_s {
  uint8_t sha[ST_SHA256_LEN];
  long long off, size;
} blob_t;

/* Write payload blobs.ndjson: each digest once, sorted, minus those base has. */
static int write_blobs(st_mirror_builder_t *b, const st_mirror_state_t *base, const char *path,
                       st__mirror_sum_t *sum, long long *shipped, st_error_t *err) {
  blob_t *v = NULL;
  size_t n = 0, total = 0, k = 0;
  FILE *out = NULL;
  char *buf = NULL;
  int rc = 0;

  for (int d = 0; d < ST_MIRROR_NDIRS; d++)
    total += b->lists[d].n;
  if (!(v = st_calloc(total ? total : 1, sizeof(*v))) || !(buf = st_malloc(ST__MIRROR_BLOB_MAX))) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  for (int d = 0; d < ST_MIRROR_NDIRS; d++)
    for (size_t i = 0; i < b->lists[d].n; i++) {
      memcpy(v[n].sha, b->lists[d].v[i].sha, ST_SHA256_LEN);
      v[n].off = b->lists[d].v[i].off;
      v[n++].size = b->lists[d].v[i].size;
    }
  qsort(v, n, sizeof(*v), sha_cmp);
  if (!(out = fopen(path, "wbx"))) {
    rc = st_fail(err, ST_EIO, "mirror: cannot create %s", path);
    goto done;
  }
  if (fflush(b->spool)) {
    rc = st_fail(err, ST_EIO, "mirror: flushing the spool");
    goto done;
  }
  for (size_t i = 0; i < n && !rc; i++) {
    if (i && !memcmp(v[i].sha, v[i - 1].sha, ST_SHA256_LEN))
      continue;
    sum->blobs++;
    sum->blob_bytes += v[i].size;
    if (base && bsearch(v[i].sha, base->shas, base->nshas, ST_SHA256_LEN, sha_cmp))
      continue;
    k++;
    if (pread(fileno(b->spool), buf, (size_t)v[i].size, v[i].off) != v[i].size ||
        fwrite(buf, 1, (size_t)v[i].size, out) != (size_t)v[i].size || fputc('\n', out) == EOF)
      rc = st_fail(err, ST_EIO, "mirror: writing %s", path);
  }
  *shipped = (long long)k;
done:
  if (out && fclose(out) && !rc)
    rc = st_fail(err, ST_EIO, "mirror: closing %s", path);
  st_free(v);
  st_free(buf);
  return rc;
}

static int write_index(const st__mlist_t *l, const char *path, uint8_t sha[ST_SHA256_LEN],
                       long long *size, st_error_t *err) {
  st_buf_t all = ST_BUF_INIT;
  int rc = 0;
  for (size_t i = 0; i < l->n && !rc; i++)
    rc = st__mirror_index_line(&all, &l->v[i], err);
  if (!rc && st_sha256(all.data, all.len, sha))
    rc = st_fail(err, ST_ECRYPTO, "mirror: sha256");
  if (!rc)
    rc = st__mirror_write(path, all.data, all.len, err);
  *size = (long long)all.len;
  st_buf_release(&all);
  return rc;
}

/* payload/<dir>/index.patch.ndjson: merge the sorted new and base lists. */
static int write_patch(const st__mlist_t *nw, const st__mlist_t *old, const char *path,
                       st_mirror_result_t *res, st_error_t *err) {
  st_buf_t all = ST_BUF_INIT;
  size_t i = 0, j = 0;
  int rc = 0;
  while (!rc && (i < nw->n || j < old->n)) {
    int c = i == nw->n ? 1 : j == old->n ? -1 : strcmp(nw->v[i].id, old->v[j].id);
    if (c > 0) {
      res->removed++;
      if (st_buf_adds(&all, "{\"id\":") ||
          st_buf_add_json_str(&all, old->v[j].id, strlen(old->v[j].id)) ||
          st_buf_adds(&all, ",\"op\":\"del\"}\n"))
        rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      j++;
      continue;
    }
    if (c == 0 && !memcmp(nw->v[i].sha, old->v[j].sha, ST_SHA256_LEN)) {
      i++, j++;
      continue;
    }
    if (c == 0)
      res->changed++, j++;
    else
      res->added++;
    {
      char hex[ST_SHA256_HEX_LEN + 1];
      st_sha256_hex(nw->v[i].sha, hex);
      if (st_buf_adds(&all, "{\"id\":") ||
          st_buf_add_json_str(&all, nw->v[i].id, strlen(nw->v[i].id)) ||
          st_buf_addf(&all, ",\"op\":\"put\",\"sha256\":\"%s\",\"size\":%lld}\n", hex,
                      nw->v[i].size))
        rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    }
    i++;
  }
  if (!rc)
    rc = st__mirror_write(path, all.data, all.len, err);
  st_buf_release(&all);
  return rc;
}

static int write_state(const st_mirror_builder_t *b, const char *digest, const char *path,
                       st_error_t *err) {
  FILE *f = fopen(path, "wb");
  st_buf_t line = ST_BUF_INIT, ix = ST_BUF_INIT;
  int rc = 0;
  if (!f)
    return st_fail(err, ST_EIO, "mirror: cannot create %s", path);
  if (fprintf(f, "{\"mirror_sha256\":\"%s\",\"schema\":\"%s\"}\n", digest,
              ST__MIRROR_STATE_SCHEMA) < 0)
    rc = st_fail(err, ST_EIO, "mirror: writing %s", path);
  for (int d = 0; d < ST_MIRROR_NDIRS && !rc; d++)
    for (size_t i = 0; i < b->lists[d].n && !rc; i++) {
      st_buf_reset(&line);
      st_buf_reset(&ix);
      /* {"dir": ..., then the index line's members (keys stay in canonical order) */
      if ((rc = st__mirror_index_line(&ix, &b->lists[d].v[i], err)))
        break;
      if (st_buf_addf(&line, "{\"dir\":\"%s\",", st_mirror_dir_name(d)) ||
          st_buf_add(&line, ix.data + 1, ix.len - 1))
        rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      else if (fwrite(line.data, 1, line.len, f) != line.len)
        rc = st_fail(err, ST_EIO, "mirror: writing %s", path);
    }
  if (fclose(f) && !rc)
    rc = st_fail(err, ST_EIO, "mirror: closing %s", path);
  st_buf_release(&line);
  st_buf_release(&ix);
  return rc;
}

int st_mirror_builder_seal(st_mirror_builder_t *b, const st_mirror_opts_t *opts,
                           const st_mirror_state_t *base, st_signer_t *signer,
                           const st_tsa_opts_t *tsa, const char *out_bundle, const char *state_path,
                           st_mirror_result_t *res, st_error_t *err) {
  static const char *const tuf[4] = {"tuf/root.json", "tuf/snapshot.json", "tuf/targets.json",
                                     "tuf/timestamp.json"};
  st_mirror_result_t local;
  st_mirror_opts_t o = *opts;
  st__mirror_sum_t sum;
  st_buf_t tree = ST_BUF_INIT, p = ST_BUF_INIT, mj = ST_BUF_INIT, dj = ST_BUF_INIT;
  st_bundle_input_t in[16];
  char *paths[16] = {0};
  json_t *meta = NULL, *counts = NULL, *delta = NULL;
  st_bundle_spec_t spec;
  uint8_t md[ST_SHA256_LEN];
  size_t nin = 0;
  int rc = 0;

  memset(&sum, 0, sizeof(sum));
  memset(&spec, 0, sizeof(spec));
  if (!res)
    res = &local;
  memset(res, 0, sizeof(*res));
  if (b->spent)
    return st_fail(err, ST_EINVAL, "mirror: the builder is sealed");
  b->spent = 1;
  if (!o.issued)
    o.issued = (int64_t)time(NULL);
  if (!o.ttl_timestamp)
    o.ttl_timestamp = ST_MIRROR_TTL_TIMESTAMP;
  if (!o.ttl_metadata)
    o.ttl_metadata = ST_MIRROR_TTL_METADATA;
  if (!o.ttl_root)
    o.ttl_root = ST_MIRROR_TTL_ROOT;
  for (int d = 0; d < ST_MIRROR_NDIRS && !rc; d++)
    rc = st__mlist_sort(&b->lists[d], st_mirror_dir_name(d), err);
  if (rc || (rc = st__mirror_path(&tree, b->dir, "tree", err)))
    goto done;
  for (int d = 0; d < ST_MIRROR_NDIRS && !rc; d++) {
    st_buf_reset(&p);
    if (st_buf_addf(&p, "%s/%s", tree.data, st_mirror_dir_name(d)))
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    else if (!(rc = st__mirror_mkdirs(p.data, err)) && !st_buf_adds(&p, "/index.ndjson"))
      rc = write_index(&b->lists[d], p.data, sum.index_sha[d], &sum.index_size[d], err);
    sum.count[d] = (long long)b->lists[d].n;
    res->docs[d] = sum.count[d];
  }
  if (rc || (rc = st__mirror_path(&p, b->dir, "blobs.ndjson", err)) ||
      (rc = write_blobs(b, base, p.data, &sum, &res->blobs, err)) ||
      (rc = st__mirror_json(o.tenant ? o.tenant : "default", b->created, &sum, &mj, err)) ||
      (rc = st__mirror_path(&p, tree.data, "mirror.json", err)) ||
      (rc = st__mirror_write(p.data, mj.data, mj.len, err)) ||
      (rc = st__mirror_path(&p, tree.data, "README.md", err)) ||
      (rc = st__mirror_write(p.data, st__mirror_readme(), strlen(st__mirror_readme()), err)) ||
      (rc = st__tuf_write(tree.data, signer, &o, err)))
    goto done;
  if (st_sha256(mj.data, mj.len, md)) {
    rc = st_fail(err, ST_ECRYPTO, "mirror: sha256");
    goto done;
  }
  st_sha256_hex(md, res->mirror_sha256);

  /* the payload list: tree files, then the delta's or the full tree's own */
  {
    const char *common[] = {"README.md", "mirror.json", tuf[0], tuf[1], tuf[2], tuf[3]};
    for (size_t i = 0; i < 6; i++) {
      st_buf_reset(&p);
      if (st_buf_addf(&p, "tree/%s", common[i]) || !(paths[nin] = st_strdup(p.data)))
        rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      in[nin++] = (st_bundle_input_t){common[i], ST_BUNDLE_SRC_FILE, NULL, NULL, 0, NULL};
    }
  }
  for (int d = 0; d < ST_MIRROR_NDIRS && !rc; d++) {
    static const char *const full_rel[] = {"advisories/index.ndjson", "vex/index.ndjson",
                                           "policy-packs/index.ndjson"};
    static const char *const patch_rel[] = {"advisories/index.patch.ndjson",
                                            "vex/index.patch.ndjson",
                                            "policy-packs/index.patch.ndjson"};
    st_buf_reset(&p);
    if (!base) {
      if (st_buf_addf(&p, "tree/%s", full_rel[d]))
        rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    } else if (st_buf_addf(&p, "%s/patch-%d", b->dir, d) || st__mirror_mkdirs(p.data, err) ||
               st_buf_adds(&p, "/index.patch.ndjson") ||
               write_patch(&b->lists[d], &base->lists[d], p.data, res, err)) {
      rc = err->code ? err->code : st_fail(err, ST_ENOMEM, "mirror: out of memory");
    } else {
      st_buf_reset(&p);
      if (st_buf_addf(&p, "patch-%d/index.patch.ndjson", d))
        rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    }
    if (!rc && !(paths[nin] = st_strdup(p.data)))
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    in[nin++] = (st_bundle_input_t){base ? patch_rel[d] : full_rel[d],
                                    ST_BUNDLE_SRC_FILE,
                                    NULL,
                                    NULL,
                                    0,
                                    "application/x-ndjson"};
  }
  if (!rc && !(paths[nin] = st_strdup("blobs.ndjson")))
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
  in[nin++] = (st_bundle_input_t){"blobs.ndjson",        ST_BUNDLE_SRC_FILE, NULL, NULL, 0,
                                  "application/x-ndjson"};
  if (!base)
    res->added = sum.count[0] + sum.count[1] + sum.count[2];
  if (!rc && base) {
    if (!(delta =
              json_pack("{s:s, s:{s:s}, s:s, s:{s:I, s:I, s:I}}", "schema", ST__MIRROR_DELTA_SCHEMA,
                        "base", "mirror_sha256", base->digest, "mirror_sha256", res->mirror_sha256,
                        "changes", "added", (json_int_t)res->added, "changed",
                        (json_int_t)res->changed, "removed", (json_int_t)res->removed)) ||
        st_jcs_encode(delta, &dj, err) || st_buf_addc(&dj, '\n') ||
        st__mirror_path(&p, b->dir, "delta.json", err) ||
        st__mirror_write(p.data, dj.data, dj.len, err) || !(paths[nin] = st_strdup("delta.json")))
      rc = err->code ? err->code : st_fail(err, ST_ENOMEM, "mirror: out of memory");
    in[nin++] = (st_bundle_input_t){"delta.json", ST_BUNDLE_SRC_FILE, NULL, NULL, 0, NULL};
  }
  if (rc)
    goto done;
  for (size_t i = 0; i < nin; i++) {
    st_buf_reset(&p);
    if (st_buf_addf(&p, "%s/%s", b->dir, paths[i])) {
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      goto done;
    }
    st_free(paths[i]);
    paths[i] = st_buf_detach(&p, NULL);
    in[i].fs_path = paths[i];
  }
  counts = json_object();
  for (int d = 0; counts && d < ST_MIRROR_NDIRS; d++)
    json_object_set_new(counts, st_mirror_dir_name(d), json_integer(sum.count[d]));
  meta = json_pack("{s:s, s:s, s:s, s:s, s:O, s:I, s:I}", "format", ST__MIRROR_SCHEMA, "mode",
                   base ? "delta" : "full", "mirror_sha256", res->mirror_sha256, "profile",
                   o.profile ? o.profile : "", "counts", counts, "blobs", (json_int_t)res->blobs,
                   "tuf_version", (json_int_t)o.issued);
  if (!meta || (base && json_object_set_new(meta, "base_sha256", json_string(base->digest)))) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  spec.kind = "mirror";
  spec.tenant = o.tenant;
  spec.created = b->created;
  spec.metadata = meta;
  spec.inputs = in;
  spec.ninputs = nin;
  spec.result = &res->sealed;
  if ((rc = st_bundle_seal(&spec, signer, tsa, out_bundle, err)))
    goto done;
  if (state_path)
    rc = write_state(b, res->mirror_sha256, state_path, err);
done:
  for (size_t i = 0; i < 16; i++)
    st_free(paths[i]);
  json_decref(meta);
  json_decref(counts);
  json_decref(delta);
  st_buf_release(&tree);
  st_buf_release(&p);
  st_buf_release(&mj);
  st_buf_release(&dj);
  return rc;
}

/* ---- base states ---- */

const char *st_mirror_state_digest(const st_mirror_state_t *s) { return s->digest; }

void st_mirror_state_free(st_mirror_state_t *s) {
  if (!s)
    return;
  for (int d = 0; d < ST_MIRROR_NDIRS; d++)
    st__mlist_release(&s->lists[d]);
  st_free(s->shas);
  st_free(s);
}

static int dir_index(const char *name) {
  for (int d = 0; d < ST_MIRROR_NDIRS; d++)
    if (name && !strcmp(name, st_mirror_dir_name(d)))
      return d;
  return -1;
}

/* A state file: the header line, then {"dir", "id", "sha256", "size"} lines. */
static int state_file(st_mirror_state_t *s, const char *path, st_error_t *err) {
  FILE *f = fopen(path, "rb");
  char *line = NULL;
  size_t cap = 0, no = 0;
  ssize_t n;
  int rc = 0;
  if (!f)
    return st_fail(err, ST_EIO, "mirror: cannot read %s", path);
  while (!rc && (n = getline(&line, &cap, f)) > 0) {
    json_t *j = NULL;
    st_json_limits_t lim = {ST__MIRROR_LINE_MAX, 2};
    const char *v;
    no++;
    if ((rc = st_json_parse(line, (size_t)n, &lim, &j, err))) {
      st_error_wrap(err, "%s:%zu", path, no);
      break;
    }
    if (no == 1) {
      v = json_string_value(json_object_get(j, "mirror_sha256"));
      if (strcmp(json_string_value(json_object_get(j, "schema"))
                     ? json_string_value(json_object_get(j, "schema"))
                     : "",
                 ST__MIRROR_STATE_SCHEMA) ||
          !v || strlen(v) != ST_SHA256_HEX_LEN)
        rc = st_fail(err, ST_EPARSE, "%s: not a %s file", path, ST__MIRROR_STATE_SCHEMA);
      else
        memcpy(s->digest, v, ST_SHA256_HEX_LEN + 1);
    } else {
      int d = dir_index(json_string_value(json_object_get(j, "dir")));
      st__mentry_t e;
      int del;
      char *text;
      json_object_del(j, "dir");
      if (d < 0 || !(text = json_dumps(j, JSON_COMPACT)))
        rc = st_fail(err, ST_EPARSE, "%s:%zu: want a dir of advisories, vex, policy-packs", path,
                     no);
      else {
        if (!(rc = st__mirror_index_parse(text, strlen(text), 0, &e, &del, err)))
          rc = st__mlist_push(&s->lists[d], e.id, e.sha, e.size, -1, err);
        st_free(e.id);
        free(text);
      }
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
  if (!rc && no == 0)
    rc = st_fail(err, ST_EPARSE, "%s: empty", path);
  return rc;
}

/* A tree: mirror.json's digest and the indexes. */
static int state_tree(st_mirror_state_t *s, const char *dir, st_error_t *err) {
  st_buf_t p = ST_BUF_INIT, mj = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  int rc;
  if ((rc = st__mirror_path(&p, dir, "mirror.json", err)) ||
      (rc = st__mirror_read(p.data, ST__MIRROR_META_MAX, &mj, err)))
    goto done;
  if (st_sha256(mj.data, mj.len, d)) {
    rc = st_fail(err, ST_ECRYPTO, "mirror: sha256");
    goto done;
  }
  st_sha256_hex(d, s->digest);
  for (int i = 0; i < ST_MIRROR_NDIRS && !rc; i++) {
    st_buf_reset(&p);
    if (st_buf_addf(&p, "%s/%s/index.ndjson", dir, st_mirror_dir_name(i)))
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    else
      rc = st__mirror_index_load(p.data, &s->lists[i], err);
  }
done:
  st_buf_release(&p);
  st_buf_release(&mj);
  return rc;
}

int st_mirror_state_load(const char *path, st_mirror_state_t **out, st_error_t *err) {
  st_mirror_state_t *s = st_calloc(1, sizeof(*s));
  struct stat st;
  size_t total = 0;
  int rc;
  *out = NULL;
  if (!s)
    return st_fail(err, ST_ENOMEM, "mirror: out of memory");
  if (stat(path, &st)) {
    rc = st_fail(err, ST_ENOENT, "mirror: base %s: not found", path);
    goto done;
  }
  if ((rc = S_ISDIR(st.st_mode) ? state_tree(s, path, err) : state_file(s, path, err)))
    goto done;
  for (int d = 0; d < ST_MIRROR_NDIRS && !rc; d++) {
    rc = st__mlist_sort(&s->lists[d], st_mirror_dir_name(d), err);
    total += s->lists[d].n;
  }
  if (rc)
    goto done;
  if (!(s->shas = st_calloc(total ? total : 1, ST_SHA256_LEN))) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  for (int d = 0; d < ST_MIRROR_NDIRS; d++)
    for (size_t i = 0; i < s->lists[d].n; i++)
      memcpy(s->shas[s->nshas++], s->lists[d].v[i].sha, ST_SHA256_LEN);
  qsort(s->shas, s->nshas, ST_SHA256_LEN, sha_cmp);
done:
  if (rc)
    st_mirror_state_free(s);
  else
    *out = s;
  return rc;
}
