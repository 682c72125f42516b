/* build.c: the document pass of the JSON adapters: read the ledger in plan order, check
 * each item against the recorded plan (kind, tenant, id, digest: a difference means the
 * ledger changed since planning), redact, and append the canonical line to its NDJSON
 * output (gzip through zlib: no name, mtime 0; or zstd: one thread, level 3, checksum; so
 * the bytes are reproducible).
 *
 * json:policy joins each policy result with its advisory (by id or alias: id, summary,
 * severity, modified, aliases; redacted like a document) and the VEX statements on the
 * same vulnerability whose products name the component (or that name none). Advisories
 * and VEX documents precede results in plan order, so one pass suffices; their summaries
 * are held in memory for the join only. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "export_json_int.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"

/* The JSON kinds never read the Maven index (st_export_kind_sources). */
static const char *const raw_names[ST_LEDGER_MAVEN] = {"advisories", "vex", "policy_packs",
                                                       "policy_results"};

#define ZSTD_LEVEL 3

/* comp: "none", "gzip" or "zstd" (validated with the profile). */
static int out_open(st__xout_t *o, const char *dir, const char *name, const char *comp,
                    st_error_t *err) {
  st_buf_t p = ST_BUF_INIT;
  int rc = 0, zstd = !strcmp(comp, "zstd");
  o->name = name;
  o->gz = !strcmp(comp, "gzip");
  if (st_buf_addf(&p, "%s/%s.ndjson%s", dir, name, o->gz ? ".gz" : zstd ? ".zst" : "")) {
    st_buf_release(&p);
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  }
  o->path = p.data; /* detached */
  if (!(o->f = fopen(o->path, "wbx")))
    return st_fail(err, ST_EIO, "export: cannot create %s", o->path);
  if (o->gz) {
    if (deflateInit2(&o->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      rc = st_fail(err, ST_ENOMEM, "export: zlib init");
    else
      o->zinit = 1;
  } else if (zstd) {
    /* one thread, fixed level, a checksum: the same input gives the same frame */
    if (!(o->zc = ZSTD_createCCtx()) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(o->zc, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(o->zc, ZSTD_c_checksumFlag, 1)))
      rc = st_fail(err, ST_ENOMEM, "export: zstd init");
  }
  return rc;
}

static int out_zstd(st__xout_t *o, const void *data, size_t len, int finish, st_error_t *err) {
  unsigned char buf[65536];
  ZSTD_inBuffer in = {data, len, 0};
  size_t left;
  do {
    ZSTD_outBuffer out = {buf, sizeof(buf), 0};
    left = ZSTD_compressStream2(o->zc, &out, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(left))
      return st_fail(err, ST_EIO, "export: zstd %s: %s", o->path, ZSTD_getErrorName(left));
    if (out.pos && fwrite(buf, 1, out.pos, o->f) != out.pos)
      return st_fail(err, ST_EIO, "export: writing %s", o->path);
  } while (finish ? left != 0 : in.pos < in.size);
  return 0;
}

static int out_put(st__xout_t *o, const void *data, size_t len, int finish, st_error_t *err) {
  unsigned char buf[65536];
  int zrc;
  if (o->zc)
    return out_zstd(o, data, len, finish, err);
  if (!o->gz) {
    if (len && fwrite(data, 1, len, o->f) != len)
      return st_fail(err, ST_EIO, "export: writing %s", o->path);
    return 0;
  }
  o->z.next_in = (unsigned char *)(uintptr_t)data;
  o->z.avail_in = (uInt)len;
  do {
    o->z.next_out = buf;
    o->z.avail_out = sizeof(buf);
    zrc = deflate(&o->z, finish ? Z_FINISH : Z_NO_FLUSH);
    if (zrc == Z_STREAM_ERROR)
      return st_fail(err, ST_EIO, "export: deflate %s", o->path);
    if (sizeof(buf) - o->z.avail_out &&
        fwrite(buf, 1, sizeof(buf) - o->z.avail_out, o->f) != sizeof(buf) - o->z.avail_out)
      return st_fail(err, ST_EIO, "export: writing %s", o->path);
  } while (o->z.avail_out == 0 || (finish && zrc != Z_STREAM_END));
  return 0;
}

static int out_line(st__xout_t *o, const st_buf_t *line, st_error_t *err) {
  int rc = out_put(o, line->data, line->len, 0, err);
  if (!rc)
    rc = out_put(o, "\n", 1, 0, err);
  if (!rc)
    o->count++;
  return rc;
}

static int out_close(st__xout_t *o, st_error_t *err) {
  int rc = o->gz || o->zc ? out_put(o, NULL, 0, 1, err) : 0;
  if (o->f && fclose(o->f) && !rc)
    rc = st_fail(err, ST_EIO, "export: closing %s", o->path);
  o->f = NULL;
  return rc;
}

void st__xout_release(st__xout_t *o) {
  if (o->f)
    fclose(o->f);
  if (o->zinit)
    deflateEnd(&o->z);
  ZSTD_freeCCtx(o->zc);
  st_free(o->path);
  memset(o, 0, sizeof(*o));
}

/* Keep only the allowlisted top-level fields (all when the list is empty). */
static void redact(const json_t *allow, json_t *doc) {
  const char *key;
  json_t *v, *keep;
  void *tmp;
  if (!json_array_size(allow) || !json_is_object(doc))
    return;
  json_object_foreach_safe(doc, tmp, key, v) {
    size_t i;
    int found = 0;
    json_array_foreach(allow, i, keep) if (!strcmp(json_string_value(keep), key)) found = 1;
    if (!found)
      json_object_del(doc, key);
  }
}

/* The canonical, redacted line of a document text into line. */
static int canon(const st__xbuild_t *b, const char *doc, st_buf_t *line, json_t **parsed,
                 st_error_t *err) {
  json_t *j = NULL;
  int rc;
  st_buf_reset(line);
  if (!parsed && !json_array_size(b->redaction))
    return st_jcs_canonicalize(doc, strlen(doc), NULL, line, err);
  if ((rc = st_json_parse(doc, strlen(doc), NULL, &j, err)))
    return rc;
  if (!parsed)
    redact(b->redaction, j);
  rc = parsed ? 0 : st_jcs_encode(j, line, err);
  if (parsed)
    *parsed = j;
  else
    json_decref(j);
  return rc;
}

/* json:policy: remember an advisory's summary under its id and aliases. */
static int keep_advisory(st__xbuild_t *b, json_t *doc) {
  json_t *sum = json_object(), *aliases = json_object_get(doc, "aliases"), *v;
  const char *keys[] = {"id", "summary", "modified", "aliases", "database_specific", "severity"};
  size_t i;
  if (!sum)
    return ST_ENOMEM;
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (json_object_get(doc, keys[i]))
      json_object_set(sum, keys[i], json_object_get(doc, keys[i]));
  redact(b->redaction, sum);
  json_object_set(b->adv, json_string_value(json_object_get(doc, "id")), sum);
  json_array_foreach(aliases, i, v) if (json_is_string(v) &&
                                        !json_object_get(b->adv, json_string_value(v)))
      json_object_set(b->adv, json_string_value(v), sum);
  json_decref(sum);
  return 0;
}

/* json:policy: remember a VEX document's statements under their vulnerability names. */
static int keep_vex(st__xbuild_t *b, json_t *doc) {
  json_t *st, *sts = json_object_get(doc, "statements");
  size_t i;
  json_array_foreach(sts, i, st) {
    const char *vuln = json_string_value(json_object_get(json_object_get(st, "vulnerability"),
                                                         "name"));
    json_t *list, *s;
    if (!vuln)
      continue;
    if (!(list = json_object_get(b->vex, vuln))) {
      if (!(list = json_array()) || json_object_set_new(b->vex, vuln, list))
        return ST_ENOMEM;
    }
    s = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "document", json_object_get(doc, "@id"),
                  "status", json_object_get(st, "status"), "justification",
                  json_object_get(st, "justification"), "impact_statement",
                  json_object_get(st, "impact_statement"), "products",
                  json_object_get(st, "products"));
    if (!s || json_array_append_new(list, s))
      return ST_ENOMEM;
  }
  return 0;
}

/* Whether a VEX statement applies to a component: it names no product, or one whose
 * @id is the component's purl. */
static int vex_applies(const json_t *st, const char *component) {
  const json_t *products = json_object_get(st, "products"), *p;
  size_t i;
  if (!json_array_size(products))
    return 1;
  json_array_foreach(products, i, p) {
    const char *id = json_is_string(p) ? json_string_value(p)
                                       : json_string_value(json_object_get(p, "@id"));
    if (id && component && !strcmp(id, component))
      return 1;
  }
  return 0;
}

static int finding(st__xbuild_t *b, json_t *res, st_buf_t *line, st_error_t *err) {
  const char *vuln = json_string_value(json_object_get(res, "vulnerability"));
  const char *comp = json_string_value(json_object_get(res, "component"));
  json_t *vex = json_array(), *all = vuln ? json_object_get(b->vex, vuln) : NULL, *st, *f;
  size_t i;
  int rc;

  if (!vex)
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  json_array_foreach(all, i, st) if (vex_applies(st, comp)) json_array_append(vex, st);
  f = json_pack("{s:{s:O?, s:O?}, s:O?, s:O?, s:O?, s:O?, s:O?, s:o}", "finding",
                "vulnerability", json_object_get(res, "vulnerability"), "component",
                json_object_get(res, "component"), "policy", json_object_get(res, "pack"),
                "verdict", json_object_get(res, "verdict"), "rationale",
                json_object_get(res, "rationale"), "evaluated_at",
                json_object_get(res, "evaluated_at"), "advisory",
                vuln ? json_object_get(b->adv, vuln) : NULL, "vex", vex);
  if (!f)
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  st_buf_reset(line);
  rc = st_jcs_encode(f, line, err);
  json_decref(f);
  return rc;
}

/* One ledger item, which must be plan input number b->next. */
static int item(st__xbuild_t *b, const char *tenant, const st_ledger_item_t *it, st_buf_t *line,
                st_error_t *err) {
  json_t *doc = NULL;
  int rc = 0;

  if ((rc = st_export_plan_expect(&b->plan, &b->next, tenant, it, err)))
    return rc;
  if (it->modified && strlen(it->modified) >= 19 && strncmp(it->modified, b->created, 19) > 0) {
    memcpy(b->created, it->modified, 19);
    memcpy(b->created + 19, "Z", 2);
  }
  if (!b->policy)
    return (rc = canon(b, it->doc, line, NULL, err)) ? rc : out_line(&b->outs[it->kind], line, err);
  if (it->kind == ST_LEDGER_POLICY_PACK)
    return (rc = canon(b, it->doc, line, NULL, err)) ? rc : out_line(&b->outs[1], line, err);
  if ((rc = canon(b, it->doc, line, &doc, err)))
    return rc;
  switch (it->kind) {
  case ST_LEDGER_ADVISORY:
    rc = keep_advisory(b, doc) ? st_fail(err, ST_ENOMEM, "export: out of memory") : 0;
    break;
  case ST_LEDGER_VEX:
    rc = keep_vex(b, doc) ? st_fail(err, ST_ENOMEM, "export: out of memory") : 0;
    break;
  default:
    if (!(rc = finding(b, doc, line, err)))
      rc = out_line(&b->outs[0], line, err);
  }
  json_decref(doc);
  return rc;
}

int st__xbuild_documents(st__xbuild_t *b, st_error_t *err) {
  st_export_filters_t f;
  st_ledger_iter_t *it = NULL;
  st_buf_t line = ST_BUF_INIT;
  const char *comp = b->prof.compression;
  int rc;

  if ((rc = st_export_filters_parse(b->prof.filters, &f, err)))
    return rc;
  strcpy(b->created, "1970-01-01T00:00:00Z");
  if (b->policy) {
    b->nouts = 2;
    if (!(b->adv = json_object()) || !(b->vex = json_object()))
      rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    else if (!(rc = out_open(&b->outs[0], b->dir, "findings", comp, err)))
      rc = out_open(&b->outs[1], b->dir, "policy_packs", comp, err);
  } else {
    b->nouts = ST_LEDGER_MAVEN;
    for (int k = 0; k < ST_LEDGER_MAVEN && !rc; k++)
      rc = out_open(&b->outs[k], b->dir, raw_names[k], comp, err);
  }
  for (size_t t = 0; t < b->plan.ntenants && !rc; t++) {
    for (int k = 0; k < ST_LEDGER_NKINDS && !rc; k++) {
      const st_ledger_item_t *li;
      if (!(st_export_kind_sources(b->prof.kind, f.sources) & (1u << k)))
        continue;
      if ((rc = st_ledger_iter_new(b->env->db, b->plan.tenants[t], (st_ledger_kind)k, &f.scope,
                                   1, 0, &it, err)))
        break;
      while ((rc = st_ledger_iter_next(it, &li, err)) == 1)
        if ((rc = st_export_poll(b->env, b->tenant, b->run_id, &b->since_poll, b->next,
                                 b->plan.n, err)) ||
            (rc = item(b, b->plan.tenants[t], li, &line, err)))
          break;
      st_ledger_iter_free(it);
      it = NULL;
    }
  }
  if (!rc && b->next != b->plan.n)
    rc = st_fail(err, ST_ECONFLICT, "export: the ledger changed since the run was planned "
                 "(%zu of %zu inputs found)", b->next, b->plan.n);
  for (size_t i = 0; i < b->nouts && !rc; i++)
    rc = out_close(&b->outs[i], err);
  st_buf_release(&line);
  st_export_filters_release(&f);
  return rc;
}
