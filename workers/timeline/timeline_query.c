/* timeline_query.c: filtered, keyset-paginated timeline reads, get by id, evidence links.
 *
 * The list statement is assembled from fixed fragments, one per filter in use, each with
 * its own bind parameter: no value is ever spliced into SQL text. The row comparison
 * (occurred_at, source, source_seq, source_seq_minor, event_id) > (cursor) matches the
 * trailing columns of timeline_events_time / _type, so the next page is an index range scan.
 * One extra row is fetched to know whether a next page exists.
 */
#include "timeline/timeline_query.h"

#include <stdlib.h>
#include <string.h>

#include "stella/buf.h"
#include "stella/mem.h"
#include "timeline/timeline_cursor.h"
#include "timeline/timeline_event.h"

#define UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
/* Whether an active legal hold (Evidence Locker, 0050_evidence.sql) covers the bundle: read
 * under the tenant's RLS like everything here, and also filtered on the tenant. The C
 * collation is evidence_hold_items.bundle_id's (so its index serves the lookup). */
#define HELD(tenant, bundle)                                                              \
  "EXISTS (SELECT 1 FROM evidence_hold_items i JOIN evidence_holds h"                     \
  " ON h.tenant_id = i.tenant_id AND h.case_id = i.case_id WHERE i.tenant_id = " tenant   \
  " AND i.bundle_id = " bundle " COLLATE \"C\" AND h.released_at IS NULL)"
/* An event is held when any bundle it links is held. */
#define EVENT_HELD                                                                        \
  "EXISTS (SELECT 1 FROM timeline_event_digests l WHERE l.tenant_id = e.tenant_id"        \
  " AND l.event_id = e.event_id AND l.bundle_id IS NOT NULL AND "                         \
  HELD("l.tenant_id", "l.bundle_id") ")"
#define ROW_COLS                                                                          \
  "e.event_id, e.source, e.source_seq, e.source_seq_minor, e.type, " UTC("e.occurred_at") \
  ", e.subject, e.actor, e.trace_id, e.correlation_id, " UTC("e.ingested_at") ", " EVENT_HELD
#define PAYLOAD_COL 12
#define NPARAMS_MAX 16

static char *dupv(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : st_strdup(PQgetvalue(r, row, col));
}

void st_tl_row_release(st_tl_row_t *r) {
  char **s[] = {&r->event_id, &r->source,   &r->type,           &r->occurred_at,
                &r->subject,  &r->actor,    &r->trace_id,       &r->correlation_id,
                &r->ingested_at};
  for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
    st_free(*s[i]);
  memset(r, 0, sizeof(*r));
}

/* Copy ROW_COLS at row into out (starting at column 0). */
static int read_row(const PGresult *res, int row, st_tl_row_t *out) {
  char **s[] = {&out->event_id, &out->source};
  char **t[] = {&out->type,  &out->occurred_at,    &out->subject,
                &out->actor, &out->trace_id,       &out->correlation_id,
                &out->ingested_at};
  for (int i = 0; i < 2; i++)
    if (!(*s[i] = dupv(res, row, i)))
      return ST_ENOMEM;
  out->seq = strtoull(PQgetvalue(res, row, 2), NULL, 10);
  out->seq_minor = strtoull(PQgetvalue(res, row, 3), NULL, 10);
  for (int i = 0; i < 7; i++)
    if (!(*t[i] = dupv(res, row, 4 + i)) && !PQgetisnull(res, row, 4 + i))
      return ST_ENOMEM;
  out->legal_hold = !strcmp(PQgetvalue(res, row, 11), "t");
  return 0;
}

void st_tl_page_release(st_tl_page_t *page) {
  for (size_t i = 0; i < page->n; i++)
    st_tl_row_release(&page->rows[i]);
  st_free(page->rows);
  st_free(page->next_cursor);
  memset(page, 0, sizeof(*page));
}

static int check_filter(const st_tl_filter_t *f, st_error_t *err) {
  const struct {
    const char *name, *v;
    size_t max;
  } lens[] = {{"type", f->type, 128},         {"subject", f->subject, 512},
              {"trace_id", f->trace_id, 128}, {"actor", f->actor, 256},
              {"correlation_id", f->correlation_id, 128}};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
    if (lens[i].v && (!*lens[i].v || strlen(lens[i].v) > lens[i].max ||
                      !st_utf8_valid(lens[i].v, strlen(lens[i].v))))
      return st_fail(err, ST_EINVAL, "filter %s: must be 1..%zu bytes of UTF-8", lens[i].name,
                     lens[i].max);
  if (f->since && !st_tl_rfc3339_valid(f->since))
    return st_fail(err, ST_EINVAL, "filter since: not an RFC 3339 date-time");
  if (f->until && !st_tl_rfc3339_valid(f->until))
    return st_fail(err, ST_EINVAL, "filter until: not an RFC 3339 date-time");
  if (f->digest && (strlen(f->digest) > 135 || strncmp(f->digest, "sha", 3)))
    return st_fail(err, ST_EINVAL, "filter digest: expected sha256:<hex> or sha512:<hex>");
  if (f->limit > ST_TL_LIMIT_MAX)
    return st_fail(err, ST_EINVAL, "filter limit: 1..%d", ST_TL_LIMIT_MAX);
  return 0;
}

typedef struct list_s {
  const char *sql;
  const char *params[NPARAMS_MAX];
  int np;
  size_t limit;
  PGresult *res;
} list_t;

static int list_tx(PGconn *c, void *arg, st_error_t *err) {
  list_t *q = arg;
  PQclear(q->res);
  q->res = NULL;
  return st_db_exec(c, q->sql, q->np, q->params, &q->res, err);
}

/* Append " AND <frag>$n" binding v, when v is set. */
static int add_cond(st_buf_t *sql, list_t *q, const char *frag, const char *cast,
                    const char *v) {
  if (!v)
    return 0;
  q->params[q->np++] = v;
  return st_buf_addf(sql, " AND %s$%d%s", frag, q->np, cast);
}

int st_tl_query(st_db_pool_t *pool, const char *tenant, const st_tl_filter_t *f,
                const char *cursor, const st_tl_cursor_key_t *key, st_tl_page_t *page,
                st_error_t *err) {
  st_buf_t sql = ST_BUF_INIT;
  list_t q = {0};
  st_tl_sortkey_t k = {0};
  char fhash[65], seq[24], minor[24], lim[24];
  size_t rows;
  int rc;

  memset(page, 0, sizeof(*page));
  if ((rc = check_filter(f, err)))
    return rc;
  q.limit = f->limit ? f->limit : ST_TL_LIMIT_DEFAULT;
  if (st__tl_filter_hash(tenant, f, fhash))
    return st_fail(err, ST_ECRYPTO, "timeline: hashing the filter failed");
  if (cursor && (rc = st__tl_cursor_decode(key, fhash, cursor, &k, err)))
    return rc;
  q.params[q.np++] = tenant;
  rc = st_buf_adds(&sql, "SELECT " ROW_COLS " FROM timeline_events e WHERE e.tenant_id = $1") ||
       add_cond(&sql, &q, "e.type = ", "", f->type) ||
       add_cond(&sql, &q, "e.occurred_at >= ", "::timestamptz", f->since) ||
       add_cond(&sql, &q, "e.occurred_at < ", "::timestamptz", f->until) ||
       add_cond(&sql, &q, "e.subject = ", "", f->subject) ||
       add_cond(&sql, &q, "e.trace_id = ", "", f->trace_id) ||
       add_cond(&sql, &q, "e.actor = ", "", f->actor) ||
       add_cond(&sql, &q, "e.correlation_id = ", "", f->correlation_id) ||
       add_cond(&sql, &q,
                "EXISTS (SELECT 1 FROM timeline_event_digests d WHERE d.tenant_id = "
                "e.tenant_id AND d.event_id = e.event_id AND d.digest = ",
                ")", f->digest);
  if (!rc && cursor) {
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)k.seq);
    snprintf(minor, sizeof(minor), "%llu", (unsigned long long)k.seq_minor);
    q.params[q.np] = k.occurred_at, q.params[q.np + 1] = k.source, q.params[q.np + 2] = seq;
    q.params[q.np + 3] = minor, q.params[q.np + 4] = k.event_id;
    rc = st_buf_addf(&sql,
                     " AND (e.occurred_at, e.source, e.source_seq, e.source_seq_minor, "
                     "e.event_id) > ($%d::timestamptz, $%d, $%d::bigint, $%d::bigint, $%d)",
                     q.np + 1, q.np + 2, q.np + 3, q.np + 4, q.np + 5);
    q.np += 5;
  }
  snprintf(lim, sizeof(lim), "%zu", q.limit + 1);
  q.params[q.np++] = lim;
  if (rc || st_buf_addf(&sql,
                        " ORDER BY e.occurred_at, e.source, e.source_seq, e.source_seq_minor,"
                        " e.event_id LIMIT $%d::int",
                        q.np)) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
  q.sql = sql.data;
  if ((rc = st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, list_tx, &q, err)))
    goto done;
  rows = (size_t)PQntuples(q.res);
  page->n = rows > q.limit ? q.limit : rows;
  if (page->n && !(page->rows = st_calloc(page->n, sizeof(*page->rows)))) {
    page->n = 0;
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
  for (size_t i = 0; i < page->n; i++)
    if (read_row(q.res, (int)i, &page->rows[i])) {
      rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
      goto done;
    }
  if (rows > q.limit) {
    const st_tl_row_t *last = &page->rows[page->n - 1];
    st_tl_sortkey_t nk = {last->occurred_at, last->source, last->event_id, last->seq,
                          last->seq_minor};
    rc = st__tl_cursor_encode(key, fhash, &nk, &page->next_cursor, err);
  }
done:
  if (rc)
    st_tl_page_release(page);
  PQclear(q.res);
  st__tl_sortkey_release(&k);
  st_buf_release(&sql);
  return rc;
}

/* ---- get by id ---- */

typedef struct get_s {
  const char *tenant, *event_id;
  PGresult *res;
} get_t;

static int get_tx(PGconn *c, void *arg, st_error_t *err) {
  get_t *g = arg;
  const char *p[2] = {g->tenant, g->event_id};
  PQclear(g->res);
  g->res = NULL;
  return st_db_exec(c,
                    "SELECT " ROW_COLS ", d.payload::text FROM timeline_events e"
                    " LEFT JOIN timeline_event_details d"
                    " ON d.tenant_id = e.tenant_id AND d.event_id = e.event_id"
                    " WHERE e.tenant_id = $1 AND e.event_id = $2",
                    2, p, &g->res, err);
}

int st_tl_get(st_db_pool_t *pool, const char *tenant, const char *event_id, st_tl_row_t *row,
              char **payload, st_error_t *err) {
  get_t g = {tenant, event_id, NULL};
  int rc;

  memset(row, 0, sizeof(*row));
  *payload = NULL;
  if ((rc = st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, get_tx, &g, err)))
    goto done;
  if (PQntuples(g.res) != 1) {
    rc = st_fail(err, ST_ENOENT, "timeline: no event with that id");
    goto done;
  }
  if (read_row(g.res, 0, row) ||
      !(*payload = st_strdup(PQgetisnull(g.res, 0, PAYLOAD_COL) ? "{}"
                                                                 : PQgetvalue(g.res, 0, PAYLOAD_COL)))) {
    st_tl_row_release(row);
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
  }
done:
  PQclear(g.res);
  return rc;
}

/* ---- evidence links ---- */

typedef struct ev_s {
  const char *tenant, *event_id;
  st_tl_link_t *links;
  size_t n;
} ev_t;

static int evidence_tx(PGconn *c, void *arg, st_error_t *err) {
  ev_t *e = arg;
  const char *p[2] = {e->tenant, e->event_id};
  PGresult *res = NULL;
  long long found = 0;
  int rc;

  st_tl_links_free(e->links, e->n);
  e->links = NULL, e->n = 0;
  if ((rc = st_db_query_int(c,
                            "SELECT count(*) FROM timeline_events"
                            " WHERE tenant_id = $1 AND event_id = $2",
                            2, p, &found, err)))
    return rc;
  if (!found)
    return st_fail(err, ST_ENOENT, "timeline: no event with that id");
  if ((rc = st_db_exec(c,
                       "SELECT d.digest, d.bundle_id, d.manifest_ref, d.bundle_id IS NOT NULL"
                       " AND " HELD("d.tenant_id", "d.bundle_id")
                       " FROM timeline_event_digests d"
                       " WHERE d.tenant_id = $1 AND d.event_id = $2 ORDER BY d.digest",
                       2, p, &res, err)))
    return rc;
  if (PQntuples(res) && !(e->links = st_calloc((size_t)PQntuples(res), sizeof(*e->links)))) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
  for (int i = 0; i < PQntuples(res); i++) {
    st_tl_link_t *l = &e->links[i];
    e->n = (size_t)i + 1;
    if (!(l->digest = dupv(res, i, 0)) ||
        (!(l->bundle_id = dupv(res, i, 1)) && !PQgetisnull(res, i, 1)) ||
        (!(l->manifest_ref = dupv(res, i, 2)) && !PQgetisnull(res, i, 2))) {
      rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
      goto done;
    }
    l->legal_hold = !strcmp(PQgetvalue(res, i, 3), "t");
  }
done:
  PQclear(res);
  return rc;
}

int st_tl_evidence(st_db_pool_t *pool, const char *tenant, const char *event_id,
                   st_tl_link_t **links, size_t *n, st_error_t *err) {
  ev_t e = {tenant, event_id, NULL, 0};
  int rc = st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, evidence_tx, &e, err);
  if (rc) {
    st_tl_links_free(e.links, e.n);
    *links = NULL, *n = 0;
    return rc;
  }
  *links = e.links, *n = e.n;
  return 0;
}

void st_tl_links_free(st_tl_link_t *links, size_t n) {
  for (size_t i = 0; links && i < n; i++) {
    st_free(links[i].digest);
    st_free(links[i].bundle_id);
    st_free(links[i].manifest_ref);
  }
  st_free(links);
}

static void put(json_t *o, const char *k, const char *v) {
  json_object_set_new(o, k, v ? json_string(v) : json_null());
}

json_t *st_tl_row_json(const st_tl_row_t *r) {
  json_t *o = json_object();
  if (!o)
    return NULL;
  put(o, "event_id", r->event_id);
  put(o, "type", r->type);
  put(o, "occurred_at", r->occurred_at);
  put(o, "source", r->source);
  json_object_set_new(o, "source_seq", json_integer((json_int_t)r->seq));
  json_object_set_new(o, "source_seq_minor", json_integer((json_int_t)r->seq_minor));
  put(o, "subject", r->subject);
  put(o, "actor", r->actor);
  put(o, "trace_id", r->trace_id);
  put(o, "correlation_id", r->correlation_id);
  put(o, "ingested_at", r->ingested_at);
  json_object_set_new(o, "legal_hold", json_boolean(r->legal_hold));
  return o;
}
