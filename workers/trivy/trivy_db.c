/* trivy_db.c: the Trivy DB v2 builder (trivy.h): documents in, records through the
 * bounded external sort (trivy_sort.c), then one ordered pass into the streaming bbolt
 * writer (stella/bbolt.h), then metadata.json and db.tar.gz (trivy_meta.c).
 *
 * The record key is "<top bucket>\0<package>\0<vulnerability id>" for advisories and
 * "<top bucket>\0<key>" for data-source and vulnerability rows; the tie is the document
 * id. Records with the same key arrive together in tie order and the last one (greatest
 * document id) is written. "data-source" and "vulnerability" are always present, empty
 * or not, since Trivy opens them unconditionally. */
#include <string.h>

#include "stella/bbolt.h"
#include "stella/ledger.h"
#include "stella/mem.h"
#include "trivy_internal.h"

struct st_trivy_db_s {
  char *dir;
  st_trivy_opts_t opts;
  char *source_id, *source_name, *source_url; /* owned copies behind opts */
  st__tsort_t *sort;
  st_buf_t doc_recs;
  int64_t latest;
  st_trivy_result_t res;
  int fixed_time; /* UpdatedAt given: documents' `modified` do not move it */
  int failed, spent;
};

static int text_ok(const char *s) {
  if (!s || !*s || strlen(s) > 200)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 0;
  return 1;
}

int st_trivy_db_new(const char *out_dir, const st_trivy_opts_t *opts, st_trivy_db_t **out,
                    st_error_t *err) {
  st_trivy_opts_t o = opts ? *opts : (st_trivy_opts_t){0};
  st_trivy_db_t *b = NULL;
  int rc;

  *out = NULL;
  if (o.schema_version && o.schema_version != ST_TRIVY_DB_SCHEMA)
    return st_fail(err, ST_EUNSUPPORTED, "schema version %d: this build writes Trivy DB "
                   "schema %d only", o.schema_version, ST_TRIVY_DB_SCHEMA);
  if (!o.source_id)
    o.source_id = "stella";
  if (!o.source_name)
    o.source_name = "Stella Ledger";
  if (!text_ok(o.source_id) || !text_ok(o.source_name) ||
      (o.source_url && !text_ok(o.source_url)))
    return st_fail(err, ST_EINVAL, "source id/name/url: 1..200 bytes without control "
                   "characters");
  if (o.sort_mem && o.sort_mem < ((size_t)64 << 10))
    return st_fail(err, ST_EINVAL, "sort_mem: at least 64 KiB");
  if (o.next_update_s < 0)
    return st_fail(err, ST_EINVAL, "next_update_s: negative");
  if ((rc = st__trivy_mkdir(out_dir, err)))
    return rc;
  if (!(b = st_calloc(1, sizeof(*b))) || !(b->dir = st_strdup(out_dir)) ||
      !(b->source_id = st_strdup(o.source_id)) ||
      !(b->source_name = st_strdup(o.source_name)) ||
      (o.source_url && !(b->source_url = st_strdup(o.source_url)))) {
    rc = st_fail(err, ST_ENOMEM, "trivy db");
    goto fail;
  }
  o.source_id = b->source_id;
  o.source_name = b->source_name;
  o.source_url = b->source_url;
  if ((rc = st__trivy_updated_at(&o, 0, &b->latest, err)))
    goto fail;
  b->fixed_time = o.updated_at != NULL;
  o.updated_at = NULL; /* borrowed: b->latest holds it */
  b->opts = o;
  b->doc_recs = (st_buf_t)ST_BUF_INIT;
  if ((rc = st__tsort_new(o.scratch_dir ? o.scratch_dir : out_dir,
                          o.sort_mem ? o.sort_mem : ST_TRIVY_SORT_MEM_DEFAULT, &b->sort, err)))
    goto fail;
  *out = b;
  return 0;
fail:
  st_trivy_db_free(b);
  return rc;
}

int st_trivy_db_add(st_trivy_db_t *b, const char *json, size_t len, st_error_t *err) {
  st_ledger_doc_t d = {0};
  json_t *doc = NULL;
  json_error_t je;
  char modified[32];
  int withdrawn = 0, rc;
  st__tmap_opts_t mo = {b->opts.source_id, b->opts.source_name, b->opts.source_url};

  if (b->failed || b->spent)
    return st_fail(err, ST_EIO, "trivy db: builder failed or finished");
  if ((rc = st_ledger_doc_parse(json, len, &d, err)))
    goto done;
  if (d.kind != ST_LEDGER_ADVISORY) {
    rc = st_fail(err, ST_EINVAL, "%s: a %s document, not an OSV advisory", d.key,
                 st_ledger_kind_name(d.kind));
    goto done;
  }
  if (!(doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je))) {
    rc = st_fail(err, ST_EPARSE, "%s", je.text);
    goto done;
  }
  st_buf_reset(&b->doc_recs);
  if ((rc = st__trivy_map_osv(doc, &mo, &b->doc_recs, &withdrawn, modified, err))) {
    st_error_wrap(err, "%s", d.key);
    goto done;
  }
  if (withdrawn) {
    b->res.withdrawn++;
    goto done;
  }
  {
    int64_t t;
    if (!b->fixed_time && !st__trivy_time(modified, &t) && t > b->latest)
      b->latest = t;
  }
  for (size_t off = 0; off < b->doc_recs.len;) {
    const uint8_t *p = (const uint8_t *)b->doc_recs.data + off;
    uint32_t h[3];
    st__trec_t r;
    memcpy(h, p, sizeof(h));
    r.klen = h[0];
    r.tlen = h[1];
    r.vlen = h[2];
    r.key = p + 12;
    r.tie = r.key + r.klen;
    r.val = r.tie + r.tlen;
    if ((rc = st__tsort_add(b->sort, &r, err))) {
      b->failed = 1;
      goto done;
    }
    off += 12 + r.klen + r.tlen + r.vlen;
  }
  b->res.documents++;
done:
  json_decref(doc);
  st_ledger_doc_release(&d);
  return rc;
}

/* ---- writing ---- */

typedef struct wstate_s {
  st_bbolt_writer_t *w;
  st_buf_t top, pkg;
  int in_top, in_pkg;
  int done_ds, done_vuln; /* the always-present buckets written */
} wstate_t;

static int same(const st_buf_t *b, const uint8_t *p, size_t n) {
  return b->len == n && !memcmp(b->data, p, n);
}

static int close_pkg(wstate_t *s, st_error_t *err) {
  int rc = 0;
  if (s->in_pkg && !(rc = st_bbolt_bucket_end(s->w, err)))
    s->in_pkg = 0;
  return rc;
}

static int close_top(wstate_t *s, st_error_t *err) {
  int rc = close_pkg(s, err);
  if (!rc && s->in_top && !(rc = st_bbolt_bucket_end(s->w, err)))
    s->in_top = 0;
  return rc;
}

static int empty_bucket(wstate_t *s, const char *name, st_error_t *err) {
  int rc = st_bbolt_bucket_begin(s->w, name, strlen(name), err);
  return rc ? rc : st_bbolt_bucket_end(s->w, err);
}

/* Before opening top bucket `name` (NULL = at the end), write the always-present buckets
 * that sort before it and have not appeared. */
static int required_before(wstate_t *s, const uint8_t *name, size_t n, st_error_t *err) {
  static const char *const req[2] = {"data-source", "vulnerability"};
  int *done[2] = {&s->done_ds, &s->done_vuln};
  int rc;
  for (int i = 0; i < 2; i++) {
    size_t rl = strlen(req[i]);
    int c;
    if (*done[i])
      continue;
    if (name) {
      c = memcmp(req[i], name, rl < n ? rl : n);
      c = c ? c : (rl > n) - (rl < n);
      if (c == 0) {
        *done[i] = 1;
        continue;
      }
      if (c > 0)
        continue;
    }
    if ((rc = empty_bucket(s, req[i], err)))
      return rc;
    *done[i] = 1;
  }
  return 0;
}

static int write_rec(wstate_t *s, const st__trec_t *r, st_error_t *err) {
  const uint8_t *k = r->key, *end = r->key + r->klen;
  const uint8_t *z1 = memchr(k, 0, r->klen), *z2;
  int rc;

  if (!z1)
    return st_fail(err, ST_EINTERNAL, "trivy db: record key without a bucket");
  z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
  if (!s->in_top || !same(&s->top, k, (size_t)(z1 - k))) {
    if ((rc = close_top(s, err)) || (rc = required_before(s, k, (size_t)(z1 - k), err)) ||
        (rc = st_bbolt_bucket_begin(s->w, k, (size_t)(z1 - k), err)))
      return rc;
    st_buf_reset(&s->top);
    if (st_buf_add(&s->top, k, (size_t)(z1 - k)))
      return st_fail(err, ST_ENOMEM, "trivy db");
    s->in_top = 1;
  }
  if (!z2) {
    if ((rc = close_pkg(s, err)))
      return rc;
    return st_bbolt_put(s->w, z1 + 1, (size_t)(end - z1 - 1), r->val, r->vlen, err);
  }
  if (!s->in_pkg || !same(&s->pkg, z1 + 1, (size_t)(z2 - z1 - 1))) {
    if ((rc = close_pkg(s, err)) ||
        (rc = st_bbolt_bucket_begin(s->w, z1 + 1, (size_t)(z2 - z1 - 1), err)))
      return rc;
    st_buf_reset(&s->pkg);
    if (st_buf_add(&s->pkg, z1 + 1, (size_t)(z2 - z1 - 1)))
      return st_fail(err, ST_ENOMEM, "trivy db");
    s->in_pkg = 1;
  }
  return st_bbolt_put(s->w, z2 + 1, (size_t)(end - z2 - 1), r->val, r->vlen, err);
}

static int write_db(st_trivy_db_t *b, const char *path, st_error_t *err) {
  wstate_t s = {.top = ST_BUF_INIT, .pkg = ST_BUF_INIT};
  st_buf_t held = ST_BUF_INIT; /* the pending record: written once its key group ends */
  st__trec_t r, h = {0};
  int rc, have = 0;

  if ((rc = st_bbolt_writer_new(path, &s.w, err)) || (rc = st__tsort_start(b->sort, err)))
    goto done;
  while ((rc = st__tsort_next(b->sort, &r, err)) == 1) {
    if (have && h.klen == r.klen && !memcmp(h.key, r.key, r.klen)) {
      b->res.duplicates++;
    } else if (have) {
      if ((rc = write_rec(&s, &h, err)))
        goto done;
      b->res.records++;
    }
    st_buf_reset(&held);
    if (st_buf_add(&held, r.key, r.klen) || st_buf_add(&held, r.val, r.vlen)) {
      rc = st_fail(err, ST_ENOMEM, "trivy db");
      goto done;
    }
    h.key = (const uint8_t *)held.data;
    h.klen = r.klen;
    h.val = h.key + r.klen;
    h.vlen = r.vlen;
    have = 1;
  }
  if (rc < 0)
    goto done;
  if (have) {
    if ((rc = write_rec(&s, &h, err)))
      goto done;
    b->res.records++;
  }
  if ((rc = close_top(&s, err)) || (rc = required_before(&s, NULL, 0, err)))
    goto done;
  rc = st_bbolt_writer_finish(s.w, err);
done:
  st_bbolt_writer_free(s.w);
  st_buf_release(&s.top);
  st_buf_release(&s.pkg);
  st_buf_release(&held);
  return rc;
}

int st_trivy_db_finish(st_trivy_db_t *b, st_trivy_result_t *res, st_error_t *err) {
  char *path = NULL;
  int rc;

  if (b->failed || b->spent)
    return st_fail(err, ST_EIO, "trivy db: builder failed or finished");
  b->spent = 1;
  if (!(path = st__trivy_path(b->dir, "trivy.db"))) {
    rc = st_fail(err, ST_ENOMEM, "trivy db");
    goto done;
  }
  if ((rc = write_db(b, path, err)))
    goto done;
  b->res.runs = st__tsort_runs(b->sort);
  if ((rc = st__trivy_publish(b->dir, "trivy.db", "db.tar.gz", ST_TRIVY_DB_SCHEMA, b->latest,
                              &b->opts, &b->res, err)))
    goto done;
  if (res)
    *res = b->res;
done:
  st_free(path);
  return rc;
}

void st_trivy_db_free(st_trivy_db_t *b) {
  if (!b)
    return;
  st__tsort_free(b->sort);
  st_buf_release(&b->doc_recs);
  st_free(b->dir);
  st_free(b->source_id);
  st_free(b->source_name);
  st_free(b->source_url);
  st_free(b);
}
