/* ledger_iter.c: ordered, filtered reads of the ledger (st_ledger_iter_*).
 *
 * Each kind has a key tuple in byte order (COLLATE "C" columns): advisories (id), VEX
 * documents (doc_id), policy packs (name, version), policy results (pack_name,
 * pack_version, vuln_id, purl), Maven rows (group_id, artifact_id, version, sha1). A page is one READ ONLY tenant transaction running
 * `... WHERE <scope> [AND (key) > (last key)] ORDER BY key LIMIT page`: keyset pagination,
 * so a page costs the same wherever it starts and rows inserted behind the cursor do not
 * shift it. The scope is compiled to SQL once: filter parameters are $1..$m, the last key
 * $m+1.. on later pages. Sampling runs in SQL with the same rule as st_ledger_sample_keep.
 *
 * Items report times as UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` whatever the session's TimeZone. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ledger_internal.h"
#include "stella/mem.h"

#define PAGE_MAX 10000
#define PARAMS_MAX 16
#define KEYS_MAX 4

struct st_ledger_iter_s {
  st_db_pool_t *pool;
  char tenant[ST_DB_TENANT_MAX + 1];
  st_ledger_kind kind;
  st_buf_t sql_first, sql_next;
  char *params[PARAMS_MAX + KEYS_MAX];
  int nfilter, nkeys;
  size_t page;
  PGresult *res, *next;
  int row, done, first;
  st_ledger_item_t item;
};

int st_ledger_sample_keep(const char *seed, const char *id, double rate) {
  st_buf_t b = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  uint32_t v;
  int ok;

  if (!(rate < 1.0))
    return 1;
  if (!(rate > 0.0))
    return 0;
  if (st_buf_addf(&b, "%s\n%s", seed ? seed : "", id) || st_sha256(b.data, b.len, d)) {
    st_buf_release(&b);
    return 0;
  }
  v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
  ok = (double)v < floor(rate * 4294967296.0);
  st_buf_release(&b);
  return ok;
}

/* A Postgres array literal of strings: {"a","b\"c"}. */
static char *array_literal(const char *const *v, size_t n) {
  st_buf_t b = ST_BUF_INIT;
  int rc = st_buf_addc(&b, '{');
  for (size_t i = 0; i < n && !rc; i++) {
    rc = st_buf_adds(&b, i ? ",\"" : "\"");
    for (const char *p = v[i]; *p && !rc; p++)
      rc = (*p == '"' || *p == '\\') ? st_buf_addc(&b, '\\') || st_buf_addc(&b, *p)
                                     : st_buf_addc(&b, *p);
    rc = rc || st_buf_addc(&b, '"');
  }
  if (rc || st_buf_addc(&b, '}')) {
    st_buf_release(&b);
    return NULL;
  }
  return st_buf_detach(&b, NULL);
}

/* Add a parameter (taken), return its number or 0 on failure. */
static int param(st_ledger_iter_t *it, char *v) {
  if (!v || it->nfilter >= PARAMS_MAX) {
    st_free(v);
    return 0;
  }
  it->params[it->nfilter++] = v;
  return it->nfilter;
}

/* Append " AND <cond>" where cond is fmt with every %d the new parameter's number. */
static int cond(st_ledger_iter_t *it, st_buf_t *w, const char *fmt, char *value) {
  int n = param(it, value);
  st_buf_t c = ST_BUF_INIT;
  int rc = 0;

  if (!n)
    return ST_ENOMEM;
  for (const char *p = fmt; *p && !rc; p++)
    rc = (p[0] == '%' && p[1] == 'd') ? (p++, st_buf_addf(&c, "%d", n)) : st_buf_addc(&c, *p);
  rc = rc || st_buf_addf(w, " AND %s", c.data);
  st_buf_release(&c);
  return rc ? ST_ENOMEM : 0;
}

/* Time window and sampling over `at` and `id` expressions; ids over `ids_fmt`. */
static int common(st_ledger_iter_t *it, st_buf_t *w, const st_ledger_scope_t *s,
                  const char *at, const char *id, const char *ids_fmt) {
  int rc = 0;
  st_buf_t f = ST_BUF_INIT;

  if (s->since) {
    rc = rc || st_buf_addf(&f, "%s >= $%%d::timestamptz", at) ||
         cond(it, w, f.data, st_strdup(s->since));
    st_buf_reset(&f);
  }
  if (s->until) {
    rc = rc || st_buf_addf(&f, "%s <= $%%d::timestamptz", at) ||
         cond(it, w, f.data, st_strdup(s->until));
    st_buf_reset(&f);
  }
  if (s->n_ids && ids_fmt)
    rc = rc || cond(it, w, ids_fmt, array_literal(s->ids, s->n_ids));
  if (s->sample_rate > 0 && s->sample_rate < 1) {
    st_buf_t thr = ST_BUF_INIT;
    int seed = 0;
    rc = rc || st_buf_addf(&thr, "%.0f", floor(s->sample_rate * 4294967296.0)) ||
         !(seed = param(it, st_strdup(s->seed ? s->seed : "")));
    if (!rc) {
      rc = st_buf_addf(&f,
                       "('x' || encode(substr(sha256(convert_to($%d || E'\\n' || %s, "
                       "'UTF8')), 1, 4), 'hex'))::bit(32)::bigint < $%%d::bigint",
                       seed, id) ||
           cond(it, w, f.data, st_buf_detach(&thr, NULL));
    }
    st_buf_release(&thr);
  }
  st_buf_release(&f);
  return rc ? ST_ENOMEM : 0;
}

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define MAVEN_ID "m.group_id || ':' || m.artifact_id || ':' || m.version || ':' || m.sha1"
#define RESULT_ID "r.pack_name || '@' || r.pack_version || E'\\n' || r.vuln_id || E'\\n' || r.purl"

static int compile(st_ledger_iter_t *it, const st_ledger_scope_t *s, int with_docs) {
  st_buf_t w = ST_BUF_INIT, sel = ST_BUF_INIT;
  const char *keys, *from, *order;
  int rc = 0;

  switch (it->kind) {
  case ST_LEDGER_ADVISORY:
    rc = st_buf_addf(&sel, "a.id, a.doc_sha256, " TS("a.modified") ", %s",
                     with_docs ? "a.doc::text" : "NULL");
    from = "ledger_advisories a";
    keys = order = "a.id";
    it->nkeys = 1;
    if (s->n_ecosystems)
      rc = rc || cond(it, &w, "a.ecosystems && $%d::text[]",
                      array_literal(s->ecosystems, s->n_ecosystems));
    if (s->n_severities)
      rc = rc || cond(it, &w, "a.severity = ANY($%d::ledger_severity[])",
                      array_literal(s->severities, s->n_severities));
    rc = rc || common(it, &w, s, "a.modified", "a.id",
                      "(a.id = ANY($%d::text[]) OR a.aliases && $%d::text[])");
    break;
  case ST_LEDGER_VEX:
    rc = st_buf_addf(&sel, "v.doc_id, v.doc_sha256, " TS("v.updated") ", %s",
                     with_docs ? "v.doc::text" : "NULL");
    from = "ledger_vex_documents v";
    keys = order = "v.doc_id";
    it->nkeys = 1;
    rc = rc || common(it, &w, s, "v.updated", "v.doc_id",
                      "EXISTS (SELECT 1 FROM ledger_vex_statements s WHERE s.doc_id = "
                      "v.doc_id AND s.vuln_id = ANY($%d::text[]))");
    break;
  case ST_LEDGER_POLICY_PACK: {
    st_buf_t inner = ST_BUF_INIT;
    rc = st_buf_addf(&sel, "p.name || '@' || p.version, p.doc_sha256, NULL, %s",
                     with_docs ? "p.doc::text" : "NULL");
    from = "ledger_policy_packs p";
    keys = order = "p.name, p.version";
    it->nkeys = 2;
    /* The packs the in-scope results reference. */
    rc = rc || common(it, &inner, s, "r.evaluated_at", RESULT_ID, "r.vuln_id = ANY($%d::text[])");
    rc = rc || st_buf_addf(&w, " AND EXISTS (SELECT 1 FROM ledger_policy_results r WHERE "
                               "r.pack_name = p.name AND r.pack_version = p.version%s)",
                           inner.data);
    st_buf_release(&inner);
    break;
  }
  case ST_LEDGER_POLICY_RESULT:
    rc = st_buf_addf(&sel, RESULT_ID ", r.row_sha256, " TS("r.evaluated_at") ", %s",
                     with_docs ? "jsonb_build_object('pack', jsonb_build_object('name', "
                                 "r.pack_name, 'version', r.pack_version), 'vulnerability', "
                                 "r.vuln_id, 'component', r.purl, 'verdict', r.verdict, "
                                 "'rationale', r.rationale, 'evaluated_at', " TS("r.evaluated_at")
                                 ")::text"
                               : "NULL");
    from = "ledger_policy_results r";
    keys = order = "r.pack_name, r.pack_version, r.vuln_id, r.purl";
    it->nkeys = 4;
    rc = rc || common(it, &w, s, "r.evaluated_at", RESULT_ID, "r.vuln_id = ANY($%d::text[])");
    break;
  case ST_LEDGER_MAVEN:
    rc = st_buf_addf(&sel, MAVEN_ID ", m.row_sha256, " TS("m.modified") ", %s",
                     with_docs ? "jsonb_strip_nulls(jsonb_build_object('group_id', m.group_id, "
                                 "'artifact_id', m.artifact_id, 'version', m.version, 'sha1', "
                                 "m.sha1, 'packaging', m.packaging, 'modified', "
                                 TS("m.modified") "))::text"
                               : "NULL");
    from = "ledger_maven_artifacts m";
    keys = order = "m.group_id, m.artifact_id, m.version, m.sha1";
    it->nkeys = 4;
    rc = rc || common(it, &w, s, "m.modified", MAVEN_ID,
                      "m.group_id || ':' || m.artifact_id = ANY($%d::text[])");
    break;
  default:
    rc = ST_EINVAL;
    keys = order = from = "";
  }
  /* Key columns ride along at the end for the next page's cursor. */
  rc = rc || st_buf_addf(&it->sql_first, "SELECT %s, %s FROM %s WHERE true%s ORDER BY %s "
                                         "LIMIT %zu",
                         sel.data, keys, from, w.data, order, it->page);
  if (!rc) {
    st_buf_t k = ST_BUF_INIT;
    for (int i = 0; i < it->nkeys && !rc; i++)
      rc = st_buf_addf(&k, "%s$%d", i ? ", " : "", it->nfilter + 1 + i);
    rc = rc || st_buf_addf(&it->sql_next, "SELECT %s, %s FROM %s WHERE (%s) > (%s)%s "
                                          "ORDER BY %s LIMIT %zu",
                           sel.data, keys, from, keys, k.data, w.data, order, it->page);
    st_buf_release(&k);
  }
  st_buf_release(&w);
  st_buf_release(&sel);
  return rc ? ST_ENOMEM : 0;
}

int st_ledger_iter_new(st_db_pool_t *pool, const char *tenant, st_ledger_kind kind,
                       const st_ledger_scope_t *scope, int with_docs, size_t page,
                       st_ledger_iter_t **out, st_error_t *err) {
  static const st_ledger_scope_t all = {0};
  st_ledger_iter_t *it;
  int rc;

  *out = NULL;
  if ((rc = st_db_tenant_check(tenant, err)))
    return rc;
  if (!pool || (unsigned)kind >= ST_LEDGER_NKINDS || page > PAGE_MAX)
    return st_fail(err, ST_EINVAL, "ledger iterator: bad kind or page (max %d)", PAGE_MAX);
  if (!(it = st_calloc(1, sizeof(*it))))
    return st_fail(err, ST_ENOMEM, "ledger iterator");
  it->pool = pool;
  strcpy(it->tenant, tenant);
  it->kind = kind;
  it->page = page ? page : ST_LEDGER_PAGE_DEFAULT;
  st_buf_init(&it->sql_first, 0);
  st_buf_init(&it->sql_next, 0);
  if ((rc = compile(it, scope ? scope : &all, with_docs))) {
    st_ledger_iter_free(it);
    return st_fail(err, rc, "ledger iterator: %s",
                   rc == ST_ENOMEM ? "out of memory or too many filters" : "bad kind");
  }
  *out = it;
  return 0;
}

/* May run more than once (retries): it only replaces it->next. */
static int page_tx(PGconn *c, void *arg, st_error_t *err) {
  st_ledger_iter_t *it = arg;
  PGresult *res = NULL;
  int rc = st_db_exec(c, it->first ? it->sql_first.data : it->sql_next.data,
                      it->nfilter + (it->first ? 0 : it->nkeys),
                      (const char *const *)it->params, &res, err);
  if (rc)
    return rc;
  PQclear(it->next);
  it->next = res;
  return 0;
}

static int next_page(st_ledger_iter_t *it, st_error_t *err) {
  int rc;

  it->first = !it->res;
  if (!it->first) /* the cursor: the last row's key columns */
    for (int i = 0; i < it->nkeys; i++) {
      st_free(it->params[it->nfilter + i]);
      it->params[it->nfilter + i] =
          st_strdup(PQgetvalue(it->res, PQntuples(it->res) - 1, 4 + i));
      if (!it->params[it->nfilter + i])
        return st_fail(err, ST_ENOMEM, "ledger iterator");
    }
  if ((rc = st_db_tenant_txf(it->pool, it->tenant, ST_DB_TX_READ_ONLY, page_tx, it, err)))
    return rc;
  PQclear(it->res);
  it->res = it->next;
  it->next = NULL;
  it->row = 0;
  return 0;
}

int st_ledger_iter_next(st_ledger_iter_t *it, const st_ledger_item_t **item, st_error_t *err) {
  int rc;

  *item = NULL;
  if (it->done)
    return 0;
  if (!it->res || it->row >= PQntuples(it->res)) {
    if (it->res && (size_t)PQntuples(it->res) < it->page) {
      it->done = 1;
      return 0;
    }
    if ((rc = next_page(it, err)))
      return rc;
    if (PQntuples(it->res) == 0) {
      it->done = 1;
      return 0;
    }
  }
  it->item.kind = it->kind;
  it->item.id = PQgetvalue(it->res, it->row, 0);
  it->item.digest = PQgetvalue(it->res, it->row, 1);
  it->item.modified = PQgetisnull(it->res, it->row, 2) ? NULL : PQgetvalue(it->res, it->row, 2);
  it->item.doc = PQgetisnull(it->res, it->row, 3) ? NULL : PQgetvalue(it->res, it->row, 3);
  it->row++;
  *item = &it->item;
  return 1;
}

void st_ledger_iter_free(st_ledger_iter_t *it) {
  if (!it)
    return;
  PQclear(it->res);
  PQclear(it->next);
  for (int i = 0; i < PARAMS_MAX + KEYS_MAX; i++)
    st_free(it->params[i]);
  st_buf_release(&it->sql_first);
  st_buf_release(&it->sql_next);
  st_free(it);
}
