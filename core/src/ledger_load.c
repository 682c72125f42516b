/* ledger_load.c: writing validated documents into the ledger for one tenant.
 *
 * Advisories are queued as JSON rows and written in batches: one statement per batch,
 * expanding a jsonb array with jsonb_to_recordset into a multi-row INSERT ... ON CONFLICT
 * DO UPDATE inside one tenant transaction (COPY cannot target RLS tables, and one array
 * parameter avoids a 65,535-parameter ceiling). DISTINCT ON keeps one row per id within a
 * batch (the latest modified), since ON CONFLICT cannot touch a row twice in a statement.
 * The update's WHERE makes re-imports idempotent: only a later `modified` with a different
 * digest replaces. RETURNING (xmax = 0) tells inserts from updates.
 *
 * Maven index rows queue the same way in their own batch (ledger_maven.c).
 * VEX documents, policy packs and policy results files are written one transaction each.
 * Transactions may be retried by st_db_tenant_tx, so each body only sets counts it
 * recomputes from scratch. */
#include <string.h>

#include "ledger_internal.h"
#include "stella/mem.h"

#define BATCH_MAX 5000
#define BATCH_BYTES ST__LEDGER_BATCH_BYTES

typedef struct tx_arg_s {
  st_ledger_loader_t *l;
  const st_ledger_doc_t *doc;
  const char *json;
  long long added, replaced, total;
} tx_arg_t;

static const char advisory_sql[] =
    "WITH rows AS (\n"
    "  SELECT DISTINCT ON (r.id) r.* FROM jsonb_to_recordset($1::jsonb) AS r(\n"
    "    id text, modified timestamptz, published timestamptz, withdrawn timestamptz,\n"
    "    ecosystems text[], aliases text[], severity ledger_severity, doc jsonb,\n"
    "    doc_sha256 text)\n"
    "  ORDER BY r.id, r.modified DESC, r.doc_sha256),\n"
    "up AS (\n"
    "  INSERT INTO ledger_advisories AS a (tenant_id, id, modified, published, withdrawn,\n"
    "    ecosystems, aliases, severity, doc, doc_sha256)\n"
    "  SELECT $2, id, modified, published, withdrawn, ecosystems, aliases, severity, doc,\n"
    "    doc_sha256 FROM rows\n"
    "  ON CONFLICT (tenant_id, id) DO UPDATE SET modified = EXCLUDED.modified,\n"
    "    published = EXCLUDED.published, withdrawn = EXCLUDED.withdrawn,\n"
    "    ecosystems = EXCLUDED.ecosystems, aliases = EXCLUDED.aliases,\n"
    "    severity = EXCLUDED.severity, doc = EXCLUDED.doc, doc_sha256 = EXCLUDED.doc_sha256,\n"
    "    imported_at = now()\n"
    "  WHERE EXCLUDED.modified > a.modified AND EXCLUDED.doc_sha256 <> a.doc_sha256\n"
    "  RETURNING (xmax = 0) AS inserted)\n"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

static const char vex_sql[] =
    "INSERT INTO ledger_vex_documents AS v (tenant_id, doc_id, author, issued, updated,\n"
    "  version, doc, doc_sha256)\n"
    "SELECT $2, r.doc_id, r.author, r.issued, r.updated, r.version, r.doc, r.doc_sha256\n"
    "FROM jsonb_to_record($1::jsonb) AS r(doc_id text, author text, issued timestamptz,\n"
    "  updated timestamptz, version int, doc jsonb, doc_sha256 text)\n"
    "ON CONFLICT (tenant_id, doc_id) DO UPDATE SET author = EXCLUDED.author,\n"
    "  issued = EXCLUDED.issued, updated = EXCLUDED.updated, version = EXCLUDED.version,\n"
    "  doc = EXCLUDED.doc, doc_sha256 = EXCLUDED.doc_sha256, imported_at = now()\n"
    "WHERE EXCLUDED.updated > v.updated AND EXCLUDED.doc_sha256 <> v.doc_sha256\n"
    "RETURNING (xmax = 0)::int";

static const char vex_statements_sql[] =
    "INSERT INTO ledger_vex_statements (tenant_id, doc_id, ord, vuln_id, products, status,\n"
    "  justification, impact_statement, action_statement)\n"
    "SELECT $2, $1::jsonb->>'doc_id', s.ord, s.vuln_id, s.products, s.status,\n"
    "  s.justification, s.impact_statement, s.action_statement\n"
    "FROM jsonb_to_recordset($1::jsonb->'statements') AS s(ord int, vuln_id text,\n"
    "  products text[], status ledger_vex_status, justification text,\n"
    "  impact_statement text, action_statement text)";

static const char results_sql[] =
    "WITH rows AS (\n"
    "  SELECT r.* FROM jsonb_to_recordset($1::jsonb->'results') AS r(vuln_id text,\n"
    "    purl text, verdict ledger_verdict, rationale text, row_sha256 text)),\n"
    "up AS (\n"
    "  INSERT INTO ledger_policy_results AS p (tenant_id, pack_name, pack_version, vuln_id,\n"
    "    purl, verdict, rationale, evaluated_at, row_sha256)\n"
    "  SELECT $2, $1::jsonb->>'pack_name', $1::jsonb->>'pack_version', vuln_id, purl,\n"
    "    verdict, rationale, ($1::jsonb->>'evaluated_at')::timestamptz, row_sha256 FROM rows\n"
    "  ON CONFLICT (tenant_id, pack_name, pack_version, vuln_id, purl) DO UPDATE SET\n"
    "    verdict = EXCLUDED.verdict, rationale = EXCLUDED.rationale,\n"
    "    evaluated_at = EXCLUDED.evaluated_at, row_sha256 = EXCLUDED.row_sha256,\n"
    "    imported_at = now()\n"
    "  WHERE EXCLUDED.evaluated_at > p.evaluated_at AND EXCLUDED.row_sha256 <> p.row_sha256\n"
    "  RETURNING (xmax = 0) AS inserted)\n"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),\n"
    "  (SELECT count(*) FROM rows) FROM up";

static int two_counts(PGconn *c, const char *sql, const char *json, const char *tenant,
                      long long *a, long long *b, long long *total, st_error_t *err) {
  const char *p[2] = {json, tenant};
  PGresult *res = NULL;
  int rc = st_db_exec(c, sql, 2, p, &res, err);

  if (!rc && (PQntuples(res) != 1 || PQnfields(res) < 2))
    rc = st_fail(err, ST_EDB, "ledger: unexpected result shape");
  if (!rc) {
    *a = atoll(PQgetvalue(res, 0, 0));
    *b = atoll(PQgetvalue(res, 0, 1));
    if (total && PQnfields(res) > 2)
      *total = atoll(PQgetvalue(res, 0, 2));
  }
  PQclear(res);
  return rc;
}

static int advisories_tx(PGconn *c, void *arg, st_error_t *err) {
  tx_arg_t *t = arg;
  return two_counts(c, advisory_sql, t->json, t->l->tenant, &t->added, &t->replaced, NULL, err);
}

int st_ledger_loader_flush(st_ledger_loader_t *l, st_error_t *err) {
  tx_arg_t t = {l, NULL, NULL, 0, 0, 0};
  int rc;

  if ((rc = st__ledger_maven_flush(l, err)))
    return rc;
  if (!l->queued)
    return 0;
  if (st_buf_addc(&l->rows, ']'))
    return st_fail(err, ST_ETOOBIG, "ledger: batch too large");
  t.json = l->rows.data;
  rc = st_db_tenant_tx(l->pool, l->tenant, advisories_tx, &t, err);
  if (!rc) {
    l->stats.added[ST_LEDGER_ADVISORY] += t.added;
    l->stats.replaced[ST_LEDGER_ADVISORY] += t.replaced;
    l->stats.unchanged[ST_LEDGER_ADVISORY] += (long long)l->queued - t.added - t.replaced;
  }
  st_buf_reset(&l->rows);
  l->queued = 0;
  return rc;
}

static int vex_tx(PGconn *c, void *arg, st_error_t *err) {
  tx_arg_t *t = arg;
  const char *p[2] = {t->doc->row.data, t->l->tenant}, *pd[1] = {t->doc->key};
  PGresult *res = NULL;
  int rc;

  t->added = t->replaced = 0;
  if ((rc = st_db_exec(c, vex_sql, 2, p, &res, err)))
    return rc;
  if (PQntuples(res) == 1) {
    if (!strcmp(PQgetvalue(res, 0, 0), "1"))
      t->added = 1;
    else
      t->replaced = 1;
    rc = st_db_exec(c, "DELETE FROM ledger_vex_statements WHERE doc_id = $1", 1, pd, NULL,
                    err);
    if (!rc)
      rc = st_db_exec(c, vex_statements_sql, 2, p, NULL, err);
  }
  PQclear(res);
  return rc;
}

static int pack_tx(PGconn *c, void *arg, st_error_t *err) {
  tx_arg_t *t = arg;
  const char *p[2] = {t->doc->row.data, t->l->tenant};
  long long n = 0, same = 0;
  int rc;

  t->added = 0;
  rc = st_db_exec_count(c,
                        "INSERT INTO ledger_policy_packs (tenant_id, name, version, doc, "
                        "doc_sha256) SELECT $2, r.name, r.version, r.doc, r.doc_sha256 "
                        "FROM jsonb_to_record($1::jsonb) AS r(name text, version text, "
                        "doc jsonb, doc_sha256 text) ON CONFLICT DO NOTHING",
                        2, p, &n, err);
  if (rc || n == 1) {
    t->added = n;
    return rc;
  }
  rc = st_db_query_int(c,
                       "SELECT count(*) FROM ledger_policy_packs WHERE name = "
                       "$1::jsonb->>'name' AND version = $1::jsonb->>'version' AND "
                       "doc_sha256 = $1::jsonb->>'doc_sha256'",
                       1, p, &same, err);
  if (!rc && !same)
    rc = st_fail(err, ST_ECONFLICT,
                 "policy pack %s is already in the ledger with other content (a pack "
                 "version is immutable: publish a new version)", t->doc->key);
  return rc;
}

static int results_tx(PGconn *c, void *arg, st_error_t *err) {
  tx_arg_t *t = arg;
  const char *p[1] = {t->doc->row.data};
  long long n = 0;
  int rc = st_db_query_int(c,
                           "SELECT count(*) FROM ledger_policy_packs WHERE name = "
                           "$1::jsonb->>'pack_name' AND version = $1::jsonb->>'pack_version'",
                           1, p, &n, err);
  if (rc)
    return rc;
  if (!n)
    return st_fail(err, ST_ENOENT, "pack: policy pack %s is not in the ledger (import it "
                   "first)", t->doc->key);
  return two_counts(c, results_sql, t->doc->row.data, t->l->tenant, &t->added, &t->replaced,
                    &t->total, err);
}

int st_ledger_loader_add(st_ledger_loader_t *l, st_ledger_doc_t *doc, st_error_t *err) {
  tx_arg_t t = {l, doc, NULL, 0, 0, 1};
  st_db_tx_fn fn = NULL;
  int rc = 0;

  switch (doc->kind) {
  case ST_LEDGER_ADVISORY:
    if (st_buf_addc(&l->rows, l->queued ? ',' : '[') ||
        st_buf_add(&l->rows, doc->row.data, doc->row.len)) {
      rc = st_fail(err, ST_ETOOBIG, "ledger: batch too large");
      break;
    }
    l->queued++;
    if (l->queued >= l->batch || l->rows.len >= BATCH_BYTES)
      rc = st_ledger_loader_flush(l, err);
    break;
  case ST_LEDGER_VEX:
    fn = vex_tx;
    break;
  case ST_LEDGER_POLICY_PACK:
    fn = pack_tx;
    break;
  case ST_LEDGER_POLICY_RESULT:
    fn = results_tx;
    break;
  default:
    rc = st_fail(err, ST_EINVAL, "ledger: unknown document kind");
  }
  if (fn && !(rc = st_db_tenant_tx(l->pool, l->tenant, fn, &t, err))) {
    l->stats.added[doc->kind] += t.added;
    l->stats.replaced[doc->kind] += t.replaced;
    l->stats.unchanged[doc->kind] += t.total - t.added - t.replaced;
  }
  st_ledger_doc_release(doc);
  return rc;
}

int st_ledger_loader_new(st_db_pool_t *pool, const char *tenant, size_t batch,
                         st_ledger_loader_t **out, st_error_t *err) {
  st_ledger_loader_t *l;
  int rc;

  *out = NULL;
  if ((rc = st_db_tenant_check(tenant, err)))
    return rc;
  if (!pool || batch > BATCH_MAX)
    return st_fail(err, ST_EINVAL, "ledger loader: batch must be 0..%d", BATCH_MAX);
  if (!(l = st_calloc(1, sizeof(*l))))
    return st_fail(err, ST_ENOMEM, "ledger loader");
  l->pool = pool;
  strcpy(l->tenant, tenant);
  l->batch = batch ? batch : ST_LEDGER_BATCH_DEFAULT;
  st_buf_init(&l->rows, BATCH_BYTES + ST_LEDGER_DOC_MAX_BYTES * 2);
  st_buf_init(&l->maven, BATCH_BYTES);
  *out = l;
  return 0;
}

const st_ledger_stats_t *st_ledger_loader_stats(const st_ledger_loader_t *l) {
  return &l->stats;
}

void st_ledger_loader_free(st_ledger_loader_t *l) {
  if (!l)
    return;
  st_buf_release(&l->rows);
  st_buf_release(&l->maven);
  st_free(l);
}
