/* mirror_apply.c: `stella mirror import` and `stella mirror verify`.
 *
 * Import works in a private staging directory beside the target (same filesystem), under
 * an exclusive lock file: copy the bundle there (so what is verified is what is read),
 * verify it as a sealed bundle of kind mirror with the caller's keys, extract it with the
 * safe reader, build the complete new tree (full: from the payload; delta: the installed
 * tree's indexes patched, its blobs hard-linked, new blobs added), check that tree exactly
 * as `verify` does (TUF roles against the trusted keys and the installed versions, indexes
 * against mirror.json, every blob's digest, no stray file), and only then exchange it with
 * the installed tree in one renameat2(RENAME_EXCHANGE). Any failure before the exchange
 * leaves the installed tree as it was; the staging directory is always removed. */
#define _GNU_SOURCE /* renameat2, mkdtemp */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mirror_int.h"
#include "stella/bundle.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/tgz.h"

static const char *const tuf_files[4] = {"tuf/root.json", "tuf/snapshot.json", "tuf/targets.json",
                                         "tuf/timestamp.json"};

static int sha_cmp(const void *a, const void *b) { return memcmp(a, b, ST_SHA256_LEN); }

static int copy_file(const char *from, const char *to, st_error_t *err) {
  char buf[65536];
  ssize_t n = 0;
  int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
  if (in < 0)
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "mirror: cannot open %s", from);
  if ((out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
    rc = st_fail(err, ST_EIO, "mirror: cannot create %s", to);
  while (!rc && (n = read(in, buf, sizeof(buf))) > 0)
    if (write(out, buf, (size_t)n) != n)
      rc = st_fail(err, ST_EIO, "mirror: writing %s", to);
  if (!rc && n < 0)
    rc = st_fail(err, ST_EIO, "mirror: reading %s", from);
  close(in);
  if (out >= 0 && close(out) && !rc)
    rc = st_fail(err, ST_EIO, "mirror: closing %s", to);
  return rc;
}

/* ---- checking a tree ---- */

/* tree/sub holds exactly its files: tuf/ the four roles, a directory its index. */
static int only_files(const char *tree, const char *sub, st_error_t *err) {
  st_buf_t p = ST_BUF_INIT;
  DIR *d;
  struct dirent *e;
  int rc = 0, tuf = !strcmp(sub, "tuf");
  size_t n = 0;
  if ((rc = st__mirror_path(&p, tree, sub, err)))
    return rc;
  if (!(d = opendir(p.data)))
    rc = st_fail(err, ST_EVERIFY, "mirror: %s/ is missing", sub);
  while (!rc && (e = readdir(d))) {
    int ok = 0;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    for (size_t i = 0; tuf && i < 4; i++)
      ok |= !strcmp(e->d_name, tuf_files[i] + 4);
    ok |= !tuf && !strcmp(e->d_name, "index.ndjson");
    if (!ok)
      rc = st_fail(err, ST_EVERIFY, "mirror: stray file %s/%.200s", sub, e->d_name);
    n++;
  }
  if (d)
    closedir(d);
  if (!rc && n != (tuf ? 4u : 1u))
    rc = st_fail(err, ST_EVERIFY, "mirror: %s/ is incomplete", sub);
  st_buf_release(&p);
  return rc;
}

/* Every file of the tree is one it should have (no links, no strays); counts blobs. */
static int walk_tree(const char *tree, long long *blob_files, st_error_t *err) {
  static const char *const top[] = {"README.md",  "mirror.json", "tuf",         "blobs",
                                    "advisories", "vex",         "policy-packs"};
  st_buf_t p = ST_BUF_INIT;
  DIR *d = NULL, *sub = NULL;
  struct dirent *e;
  int rc = 0;

  *blob_files = 0;
  if (!(d = opendir(tree)))
    return st_fail(err, ST_ENOENT, "mirror: %s is not a directory", tree);
  while (!rc && (e = readdir(d))) {
    int ok = 0;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
      ok |= !strcmp(e->d_name, top[i]);
    if (!ok)
      rc = st_fail(err, ST_EVERIFY, "mirror: stray file %s/%.200s", tree, e->d_name);
  }
  closedir(d);
  d = NULL;
  for (size_t i = 2; !rc && i < sizeof(top) / sizeof(top[0]); i++)
    if (strcmp(top[i], "blobs"))
      rc = only_files(tree, top[i], err);
  if (rc || (rc = st__mirror_path(&p, tree, "blobs/sha256", err)))
    goto done;
  if (!(d = opendir(p.data))) {
    rc = st_fail(err, ST_EVERIFY, "mirror: %s is missing", p.data);
    goto done;
  }
  while (!rc && (e = readdir(d))) {
    st_buf_t q = ST_BUF_INIT;
    struct dirent *f;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    if (strlen(e->d_name) != 2 || strspn(e->d_name, "0123456789abcdef") != 2 ||
        st_buf_addf(&q, "%s/%s", p.data, e->d_name) || !(sub = opendir(q.data))) {
      rc = st_fail(err, ST_EVERIFY, "mirror: stray entry blobs/sha256/%.200s", e->d_name);
      st_buf_release(&q);
      break;
    }
    while (!rc && (f = readdir(sub))) {
      struct stat st;
      st_buf_t r = ST_BUF_INIT;
      if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, ".."))
        continue;
      if (strlen(f->d_name) != ST_SHA256_HEX_LEN ||
          strspn(f->d_name, "0123456789abcdef") != ST_SHA256_HEX_LEN ||
          strncmp(f->d_name, e->d_name, 2) || st_buf_addf(&r, "%s/%s", q.data, f->d_name) ||
          lstat(r.data, &st) || !S_ISREG(st.st_mode))
        rc = st_fail(err, ST_EVERIFY, "mirror: stray entry blobs/sha256/%s/%.200s", e->d_name,
                     f->d_name);
      (*blob_files)++;
      st_buf_release(&r);
    }
    closedir(sub);
    sub = NULL;
    st_buf_release(&q);
  }
done:
  if (d)
    closedir(d);
  st_buf_release(&p);
  return rc;
}

/* A blob file's digest and size against an index entry. */
static int check_blob(const char *tree, const st__mentry_t *e, const char *dir, st_error_t *err) {
  char rel[ST__MIRROR_BLOB_REL], hex[ST_SHA256_HEX_LEN + 1];
  st_buf_t p = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  uint64_t n = 0;
  st_error_t e2 = ST_ERROR_INIT;
  int rc;
  st__mirror_blob_rel(e->sha, rel);
  st_sha256_hex(e->sha, hex);
  if ((rc = st__mirror_path(&p, tree, rel, err)))
    return rc;
  if (st_sha256_file(p.data, d, &n, &e2))
    rc = st_fail(err, ST_EVERIFY, "mirror %s: %.200s: blob %s is missing", dir, e->id, hex);
  else if (memcmp(d, e->sha, ST_SHA256_LEN) || (long long)n != e->size)
    rc = st_fail(err, ST_EVERIFY, "mirror %s: %.200s: blob %s does not match its name or size", dir,
                 e->id, hex);
  st_buf_release(&p);
  return rc;
}

/* The whole tree (see st_mirror_verify_tree); old: the tree it replaces, for rollback. */
static int check_tree(const char *tree, const st_mirror_trust_t *trust, const char *old,
                      long long docs[ST_MIRROR_NDIRS], st_error_t *err) {
  st_buf_t p = ST_BUF_INIT, mj = ST_BUF_INIT;
  st__mlist_t l[ST_MIRROR_NDIRS];
  json_t *m = NULL;
  uint8_t(*shas)[ST_SHA256_LEN] = NULL;
  size_t nshas = 0, uniq = 0, total = 0;
  long long files = 0;
  int rc;

  memset(l, 0, sizeof(l));
  if ((rc = walk_tree(tree, &files, err)) || (rc = st__tuf_verify(tree, trust, old, err)) ||
      (rc = st__mirror_path(&p, tree, "mirror.json", err)) ||
      (rc = st__mirror_read(p.data, ST__MIRROR_META_MAX, &mj, err)) ||
      (rc = st_json_parse(mj.data, mj.len, NULL, &m, err)))
    goto done;
  for (int d = 0; d < ST_MIRROR_NDIRS && !rc; d++) {
    const json_t *dj = json_object_get(json_object_get(m, "directories"), st_mirror_dir_name(d));
    const char *want = json_string_value(json_object_get(json_object_get(dj, "index"), "sha256"));
    char hex[ST_SHA256_HEX_LEN + 1];
    uint8_t dg[ST_SHA256_LEN];
    uint64_t n = 0;
    st_buf_reset(&p);
    if (st_buf_addf(&p, "%s/%s/index.ndjson", tree, st_mirror_dir_name(d))) {
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      break;
    }
    if ((rc = st_sha256_file(p.data, dg, &n, err)) ||
        (rc = st__mirror_index_load(p.data, &l[d], err)))
      break;
    st_sha256_hex(dg, hex);
    if (!want || strcmp(want, hex) ||
        json_integer_value(json_object_get(dj, "count")) != (json_int_t)l[d].n)
      rc = st_fail(err, ST_EVERIFY, "mirror: %s/index.ndjson does not match mirror.json",
                   st_mirror_dir_name(d));
    total += l[d].n;
    if (docs)
      docs[d] = (long long)l[d].n;
  }
  if (rc)
    goto done;
  if (!(shas = st_calloc(total ? total : 1, ST_SHA256_LEN))) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  for (int d = 0; d < ST_MIRROR_NDIRS && !rc; d++)
    for (size_t i = 0; i < l[d].n && !rc; i++) {
      memcpy(shas[nshas++], l[d].v[i].sha, ST_SHA256_LEN);
      rc = check_blob(tree, &l[d].v[i], st_mirror_dir_name(d), err);
    }
  if (rc)
    goto done;
  qsort(shas, nshas, ST_SHA256_LEN, sha_cmp);
  for (size_t i = 0; i < nshas; i++)
    uniq += !i || memcmp(shas[i], shas[i - 1], ST_SHA256_LEN);
  if ((long long)uniq != files)
    rc =
        st_fail(err, ST_EVERIFY, "mirror: %lld blob files, the indexes reference %zu", files, uniq);
  else if (json_integer_value(json_object_get(json_object_get(m, "blobs"), "count")) !=
           (json_int_t)uniq)
    rc = st_fail(err, ST_EVERIFY, "mirror: mirror.json blobs.count is not %zu", uniq);
done:
  for (int d = 0; d < ST_MIRROR_NDIRS; d++)
    st__mlist_release(&l[d]);
  st_free(shas);
  json_decref(m);
  st_buf_release(&p);
  st_buf_release(&mj);
  return rc;
}

int st_mirror_verify_tree(const char *dir, const st_mirror_trust_t *trust,
                          long long docs[ST_MIRROR_NDIRS], st_error_t *err) {
  return check_tree(dir, trust, NULL, docs, err);
}

/* ---- building the new tree ---- */

typedef struct imp_s {
  const char *dir;  /* installed tree */
  char *stage;      /* private staging directory */
  st_buf_t x, tree; /* extracted bundle, new tree */
  json_t *manifest;
  int delta, have_old;
  st_mirror_import_t *sum;
} imp_t;

/* payload/blobs.ndjson into tree/blobs (each digest once). */
static int unpack_blobs(imp_t *im, st_error_t *err) {
  st_buf_t p = ST_BUF_INIT, q = ST_BUF_INIT;
  FILE *f = NULL;
  char *line = NULL;
  size_t cap = 0, no = 0;
  ssize_t n;
  int rc;

  if ((rc = st__mirror_path(&p, im->x.data, "payload/blobs.ndjson", err)))
    goto done;
  if (!(f = fopen(p.data, "rb"))) {
    rc = st_fail(err, ST_EVERIFY, "mirror: payload/blobs.ndjson is missing");
    goto done;
  }
  while (!rc && (n = getline(&line, &cap, f)) > 0) {
    uint8_t d[ST_SHA256_LEN];
    char rel[ST__MIRROR_BLOB_REL];
    no++;
    if (line[n - 1] != '\n' || n == 1 || (size_t)n - 1 > ST__MIRROR_BLOB_MAX) {
      rc =
          st_fail(err, ST_EVERIFY, "mirror: blobs.ndjson:%zu: empty, too long or unterminated", no);
      break;
    }
    if (st_sha256(line, (size_t)n - 1, d)) {
      rc = st_fail(err, ST_ECRYPTO, "mirror: sha256");
      break;
    }
    st__mirror_blob_rel(d, rel);
    st_buf_reset(&q);
    if (st_buf_addf(&q, "%s/%.15s", im->tree.data, rel)) {
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      break;
    }
    if ((rc = st__mirror_mkdirs(q.data, err)) ||
        (rc = st__mirror_path(&q, im->tree.data, rel, err)))
      break;
    if (st__mirror_write(q.data, line, (size_t)n - 1, err))
      rc =
          st_fail(err, ST_EVERIFY, "mirror: blobs.ndjson:%zu: blob %s appears twice", no, rel + 16);
    im->sum->blobs_written++;
  }
done:
  free(line);
  if (f)
    fclose(f);
  st_buf_release(&p);
  st_buf_release(&q);
  return rc;
}

/* Apply the delta's patch for one directory to the installed index. */
static int patch_index(imp_t *im, int d, st__mlist_t *out, st_error_t *err) {
  st__mlist_t old = {0};
  st_buf_t p = ST_BUF_INIT;
  FILE *f = NULL;
  char *line = NULL, *prev = NULL;
  size_t cap = 0, no = 0, j = 0;
  ssize_t n;
  int rc;

  if ((rc = st__mirror_path(&p, im->dir, st_mirror_dir_name(d), err)) ||
      st_buf_adds(&p, "/index.ndjson") || (rc = st__mirror_index_load(p.data, &old, err)))
    goto done;
  st_buf_reset(&p);
  if (st_buf_addf(&p, "%s/payload/%s/index.patch.ndjson", im->x.data, st_mirror_dir_name(d)) ||
      !(f = fopen(p.data, "rb"))) {
    rc = st_fail(err, ST_EVERIFY, "mirror: payload/%s/index.patch.ndjson is missing",
                 st_mirror_dir_name(d));
    goto done;
  }
  while (!rc && (n = getline(&line, &cap, f)) > 0) {
    st__mentry_t e;
    int del;
    no++;
    if (line[n - 1] != '\n' || (size_t)n > ST__MIRROR_LINE_MAX ||
        (rc = st__mirror_index_parse(line, (size_t)n - 1, 1, &e, &del, err))) {
      rc = rc ? rc : st_fail(err, ST_EPARSE, "bad line");
      st_error_wrap(err, "mirror: %s/index.patch.ndjson:%zu", st_mirror_dir_name(d), no);
      break;
    }
    if (prev && strcmp(prev, e.id) >= 0) {
      rc = st_fail(err, ST_EVERIFY,
                   "mirror: %s/index.patch.ndjson:%zu: ids not in increasing "
                   "order",
                   st_mirror_dir_name(d), no);
      st_free(e.id);
      break;
    }
    while (!rc && j < old.n && strcmp(old.v[j].id, e.id) < 0) {
      rc = st__mlist_push(out, old.v[j].id, old.v[j].sha, old.v[j].size, -1, err);
      j++;
    }
    {
      int found = j < old.n && !strcmp(old.v[j].id, e.id);
      if (!rc && del && !found)
        rc = st_fail(err, ST_EVERIFY, "mirror: %s: removes %.200s, which the tree lacks",
                     st_mirror_dir_name(d), e.id);
      if (!rc && !del)
        rc = st__mlist_push(out, e.id, e.sha, e.size, -1, err);
      if (!rc) {
        if (del)
          im->sum->removed++;
        else if (found)
          im->sum->changed++;
        else
          im->sum->added++;
      }
      j += found;
    }
    st_free(prev);
    prev = e.id;
  }
  while (!rc && j < old.n) {
    rc = st__mlist_push(out, old.v[j].id, old.v[j].sha, old.v[j].size, -1, err);
    j++;
  }
done:
  st_free(prev);
  free(line);
  if (f)
    fclose(f);
  st__mlist_release(&old);
  st_buf_release(&p);
  return rc;
}

/* Link (delta) the blobs the new indexes reference that the bundle did not carry. */
static int link_blobs(imp_t *im, const st__mlist_t *l, st_error_t *err) {
  st_buf_t from = ST_BUF_INIT, to = ST_BUF_INIT;
  int rc = 0;
  for (size_t i = 0; i < l->n && !rc; i++) {
    char rel[ST__MIRROR_BLOB_REL];
    st__mirror_blob_rel(l->v[i].sha, rel);
    if ((rc = st__mirror_path(&to, im->tree.data, rel, err)))
      break;
    if (st__mirror_exists(to.data) || !im->delta)
      continue; /* present, or missing (the check names it) */
    if ((rc = st__mirror_path(&from, im->dir, rel, err)))
      break;
    to.data[to.len - ST_SHA256_HEX_LEN - 1] = '\0';
    rc = st__mirror_mkdirs(to.data, err);
    to.data[to.len - ST_SHA256_HEX_LEN - 1] = '/';
    if (!rc && link(from.data, to.data) && errno != ENOENT)
      rc = st_fail(err, ST_EIO, "mirror: cannot link %s: %s", from.data, strerror(errno));
  }
  st_buf_release(&from);
  st_buf_release(&to);
  return rc;
}

/* The payload files a full or a delta bundle must have, and nothing else. */
static int check_payload(imp_t *im, st_error_t *err) {
  static const char *const full[] = {"README.md",
                                     "mirror.json",
                                     "advisories/index.ndjson",
                                     "vex/index.ndjson",
                                     "policy-packs/index.ndjson",
                                     "blobs.ndjson"};
  static const char *const delta[] = {"README.md",
                                      "mirror.json",
                                      "advisories/index.patch.ndjson",
                                      "vex/index.patch.ndjson",
                                      "policy-packs/index.patch.ndjson",
                                      "blobs.ndjson",
                                      "delta.json"};
  const json_t *entries = json_object_get(im->manifest, "entries"), *e;
  size_t i, want = (im->delta ? 7 : 6) + 4;
  if (json_array_size(entries) != want)
    return st_fail(err, ST_EVERIFY, "mirror: the payload has %zu files, a %s bundle has %zu",
                   json_array_size(entries), im->delta ? "delta" : "full", want);
  json_array_foreach(entries, i, e) {
    const char *path = json_string_value(json_object_get(e, "path"));
    int ok = 0;
    if (!path || strncmp(path, "payload/", 8))
      return st_fail(err, ST_EVERIFY, "mirror: entry %zu is not under payload/", i);
    path += 8;
    for (size_t k = 0; k < (im->delta ? 7u : 6u); k++)
      ok |= !strcmp(path, im->delta ? delta[k] : full[k]);
    for (size_t k = 0; k < 4; k++)
      ok |= !strcmp(path, tuf_files[k]);
    if (!ok)
      return st_fail(err, ST_EVERIFY, "mirror: payload/%.200s is not part of a mirror bundle",
                     path);
  }
  return 0;
}

static int build_tree(imp_t *im, const char *mirror_sha, const char *base_sha, st_error_t *err) {
  static const char *const small[] = {"README.md",        "mirror.json",
                                      "tuf/root.json",    "tuf/snapshot.json",
                                      "tuf/targets.json", "tuf/timestamp.json"};
  st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT, mj = ST_BUF_INIT;
  st__mlist_t l = {0};
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc = 0;

  if (im->delta) {
    if (!im->have_old)
      return st_fail(err, ST_ECONFLICT, "mirror: a delta needs its base tree; %s has none",
                     im->dir);
    if ((rc = st__mirror_path(&a, im->dir, "mirror.json", err)) ||
        (rc = st__mirror_read(a.data, ST__MIRROR_META_MAX, &mj, err)))
      goto done;
    if (st_sha256(mj.data, mj.len, d)) {
      rc = st_fail(err, ST_ECRYPTO, "mirror: sha256");
      goto done;
    }
    st_sha256_hex(d, hex);
    if (!base_sha || strcmp(hex, base_sha)) {
      rc = st_fail(err, ST_ECONFLICT,
                   "mirror: wrong base: the delta applies to mirror.json "
                   "sha256 %.64s, %s has %s",
                   base_sha ? base_sha : "?", im->dir, hex);
      goto done;
    }
  }
  if ((rc = st__mirror_path(&a, im->tree.data, "tuf", err)) ||
      (rc = st__mirror_mkdirs(a.data, err)))
    goto done;
  for (size_t i = 0; i < sizeof(small) / sizeof(small[0]) && !rc; i++) {
    st_buf_reset(&a);
    if (st_buf_addf(&a, "%s/payload/%s", im->x.data, small[i]))
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    else if (!(rc = st__mirror_path(&b, im->tree.data, small[i], err)))
      rc = copy_file(a.data, b.data, err);
  }
  if (rc || (rc = unpack_blobs(im, err)))
    goto done;
  for (int k = 0; k < ST_MIRROR_NDIRS && !rc; k++) {
    st_buf_reset(&b);
    if (st_buf_addf(&b, "%s/%s", im->tree.data, st_mirror_dir_name(k))) {
      rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      break;
    }
    if ((rc = st__mirror_mkdirs(b.data, err)) || st_buf_adds(&b, "/index.ndjson"))
      break;
    st__mlist_release(&l);
    if (im->delta) {
      st_buf_t all = ST_BUF_INIT;
      if (!(rc = patch_index(im, k, &l, err))) {
        for (size_t i = 0; i < l.n && !rc; i++)
          rc = st__mirror_index_line(&all, &l.v[i], err);
        if (!rc)
          rc = st__mirror_write(b.data, all.data, all.len, err);
      }
      st_buf_release(&all);
    } else {
      st_buf_reset(&a);
      if (st_buf_addf(&a, "%s/payload/%s/index.ndjson", im->x.data, st_mirror_dir_name(k)))
        rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
      else if (!(rc = copy_file(a.data, b.data, err)))
        rc = st__mirror_index_load(b.data, &l, err);
    }
    if (!rc)
      rc = link_blobs(im, &l, err);
    im->sum->docs[k] = (long long)l.n;
  }
  if (rc)
    goto done;
  if (!im->delta)
    im->sum->added = im->sum->docs[0] + im->sum->docs[1] + im->sum->docs[2];
  if ((rc = st__mirror_path(&a, im->tree.data, "mirror.json", err)) ||
      (rc = st_sha256_file(a.data, d, NULL, err)))
    goto done;
  st_sha256_hex(d, im->sum->mirror_sha256);
  if (!mirror_sha || strcmp(mirror_sha, im->sum->mirror_sha256))
    rc = st_fail(err, ST_EVERIFY, "mirror: mirror.json is not the one the bundle names");
done:
  st__mlist_release(&l);
  st_buf_release(&a);
  st_buf_release(&b);
  st_buf_release(&mj);
  return rc;
}

/* Verify the private copy, extract it, read its manifest. */
static int open_bundle(imp_t *im, const char *bundle, const st_mirror_trust_t *trust,
                       st_error_t *err) {
  st_bundle_trust_t bt = {trust->keys, trust->nkeys, trust->tsa_ca_pem, trust->tsa_ca_len, NULL};
  st_bundle_report_t rep;
  st_tgz_reader_t *r = NULL;
  st_buf_t copy = ST_BUF_INIT, mj = ST_BUF_INIT;
  int rc;

  st_bundle_report_init(&rep);
  if ((rc = st__mirror_path(&copy, im->stage, "bundle.tgz", err)) ||
      (rc = copy_file(bundle, copy.data, err)))
    goto done;
  if ((rc = st_bundle_verify(copy.data, &bt, &rep, err))) {
    st_error_wrap(err, "mirror: the bundle fails verification");
    goto done;
  }
  if (strcmp(rep.kind.data, "mirror")) {
    rc = st_fail(err, ST_EVERIFY, "mirror: the bundle's kind is %.32s, not mirror", rep.kind.data);
    goto done;
  }
  if ((rc = st__mirror_path(&im->x, im->stage, "x", err)) ||
      (rc = st__mirror_mkdirs(im->x.data, err)) ||
      (rc = st_tgz_reader_open(copy.data, NULL, &r, err)) ||
      (rc = st_tgz_reader_extract(r, im->x.data, err)) ||
      (rc = st__mirror_path(&copy, im->x.data, "manifest.json", err)) ||
      (rc = st__mirror_read(copy.data, ST_BUNDLE_META_MAX, &mj, err)) ||
      (rc = st_json_parse(mj.data, mj.len, NULL, &im->manifest, err)))
    goto done;
done:
  st_tgz_reader_free(r);
  st_bundle_report_release(&rep);
  st_buf_release(&copy);
  st_buf_release(&mj);
  return rc;
}

int st_mirror_import(const char *bundle, const char *dir, const st_mirror_trust_t *trust,
                     st_mirror_import_t *sum, st_error_t *err) {
  st_mirror_import_t local;
  imp_t im;
  st_buf_t lock = ST_BUF_INIT, tmpl = ST_BUF_INIT;
  char *dcopy = NULL, *bcopy = NULL, *parent, *name;
  const json_t *meta;
  const char *mode;
  struct stat st;
  int rc = 0, lfd = -1;

  memset(&im, 0, sizeof(im));
  im.x = (st_buf_t)ST_BUF_INIT;
  im.tree = (st_buf_t)ST_BUF_INIT;
  im.dir = dir;
  im.sum = sum ? sum : &local;
  memset(im.sum, 0, sizeof(*im.sum));
  if (!(dcopy = st_strdup(dir)) || !(bcopy = st_strdup(dir)) || !(parent = dirname(dcopy)) ||
      !(name = basename(bcopy)) || st_buf_addf(&lock, "%s/.%s.lock", parent, name) ||
      st_buf_addf(&tmpl, "%s/.%s.import-XXXXXX", parent, name)) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  if ((lfd = open(lock.data, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
    rc = st_fail(err, ST_EIO, "mirror: cannot create %s: %s", lock.data, strerror(errno));
    goto done;
  }
  if (flock(lfd, LOCK_EX | LOCK_NB)) {
    rc = st_fail(err, ST_EBUSY, "mirror: %s is locked by another import (%s)", dir, lock.data);
    goto done;
  }
  if (!mkdtemp(tmpl.data)) {
    rc = st_fail(err, ST_EIO, "mirror: cannot create %s: %s", tmpl.data, strerror(errno));
    goto done;
  }
  im.stage = st_buf_detach(&tmpl, NULL);
  if (!stat(dir, &st)) {
    st_buf_t mj = ST_BUF_INIT;
    DIR *d = opendir(dir);
    struct dirent *e;
    int entries = 0;
    while (d && (e = readdir(d)))
      entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
      closedir(d);
    rc = st__mirror_path(&mj, dir, "mirror.json", err);
    im.have_old = !rc && st__mirror_exists(mj.data);
    st_buf_release(&mj);
    if (!rc && (!S_ISDIR(st.st_mode) || (entries && !im.have_old)))
      rc = st_fail(err, ST_EINVAL, "mirror: %s exists and is not a mirror tree", dir);
    if (rc)
      goto done;
  }
  if ((rc = open_bundle(&im, bundle, trust, err)))
    goto done;
  meta = json_object_get(im.manifest, "metadata");
  mode = json_string_value(json_object_get(meta, "mode"));
  if (!mode || (strcmp(mode, "full") && strcmp(mode, "delta")) ||
      strcmp(json_string_value(json_object_get(meta, "format"))
                 ? json_string_value(json_object_get(meta, "format"))
                 : "",
             ST__MIRROR_SCHEMA)) {
    rc = st_fail(err, ST_EVERIFY, "mirror: metadata format/mode: not a %s full or delta",
                 ST__MIRROR_SCHEMA);
    goto done;
  }
  im.delta = im.sum->delta = !strcmp(mode, "delta");
  if ((rc = check_payload(&im, err)) || (rc = st__mirror_path(&im.tree, im.stage, "tree", err)) ||
      (rc = st__mirror_mkdirs(im.tree.data, err)) ||
      (rc = build_tree(&im, json_string_value(json_object_get(meta, "mirror_sha256")),
                       json_string_value(json_object_get(meta, "base_sha256")), err)) ||
      (rc = check_tree(im.tree.data, trust, im.have_old ? dir : NULL, im.sum->docs, err)))
    goto done;
  if (!stat(dir, &st) ? renameat2(AT_FDCWD, im.tree.data, AT_FDCWD, dir, RENAME_EXCHANGE)
                      : rename(im.tree.data, dir))
    rc = st_fail(err, ST_EIO, "mirror: cannot swap %s into %s: %s", im.tree.data, dir,
                 strerror(errno));
done:
  st__mirror_rmtree(im.stage);
  st_free(im.stage);
  if (lfd >= 0)
    close(lfd);
  json_decref(im.manifest);
  st_buf_release(&im.x);
  st_buf_release(&im.tree);
  st_buf_release(&lock);
  st_buf_release(&tmpl);
  st_free(dcopy);
  st_free(bcopy);
  return rc;
}
