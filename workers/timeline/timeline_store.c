/* timeline_store.c: batch insert of timeline events, one tenant per transaction.
 *
 * The rows are sent as one JSON text parameter: building it is a single pass of
 * st_buf_add_json_str over already validated UTF-8, and the server expands it with
 * jsonb_to_recordset. DISTINCT ON (event_id) keeps the first copy of an event repeated in
 * the batch, so the dependent inserts (details, digests) never see a key twice. The
 * statement returns the batch index `i` of each inserted row.
 */
#define _GNU_SOURCE /* qsort_r */
#include "timeline/timeline_store.h"

#include <stdlib.h>
#include <string.h>

#include "stella/buf.h"
#include "stella/mem.h"

static const char insert_sql[] =
    "WITH v AS ("
    " SELECT DISTINCT ON (x.event_id) x.* FROM jsonb_to_recordset($2::jsonb) AS x("
    "  i int, event_id text, source text, seq bigint, seq_minor bigint, type text,"
    "  occurred_at timestamptz, subject text, actor text, trace_id text,"
    "  correlation_id text, payload jsonb, evidence jsonb)"
    " ORDER BY x.event_id, x.i),"
    " ins AS ("
    " INSERT INTO timeline_events (tenant_id, event_id, source, source_seq,"
    "  source_seq_minor, type, occurred_at, subject, actor, trace_id, correlation_id)"
    " SELECT $1, event_id, source, seq, seq_minor, type, occurred_at, subject, actor,"
    "  trace_id, correlation_id FROM v"
    " ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id),"
    " det AS ("
    " INSERT INTO timeline_event_details (tenant_id, event_id, payload)"
    " SELECT $1, v.event_id, v.payload FROM v JOIN ins USING (event_id)),"
    " dig AS ("
    " INSERT INTO timeline_event_digests (tenant_id, event_id, digest, bundle_id,"
    "  manifest_ref)"
    " SELECT DISTINCT ON (v.event_id, e.digest) $1, v.event_id, e.digest, e.bundle_id,"
    "  e.manifest_ref FROM v JOIN ins USING (event_id)"
    " CROSS JOIN LATERAL jsonb_to_recordset(v.evidence)"
    "  AS e(digest text, bundle_id text, manifest_ref text)"
    " ORDER BY v.event_id, e.digest)"
    " SELECT v.i FROM v JOIN ins USING (event_id)";

const char *st_tl_outcome_name(st_tl_outcome o) {
  switch (o) {
  case ST_TL_STORED: return "stored";
  case ST_TL_DUPLICATE: return "duplicate";
  case ST_TL_POISON: return "poison";
  case ST_TL_RETRY: return "retry";
  default: return "pending";
  }
}

static int add_opt(st_buf_t *b, const char *key, const char *v) {
  if (st_buf_addf(b, ",\"%s\":", key))
    return ST_ENOMEM;
  return v ? st_buf_add_json_str(b, v, strlen(v)) : st_buf_adds(b, "null");
}

static int add_row(st_buf_t *b, size_t i, const st_tl_event_t *e) {
  if (st_buf_addf(b, "%s{\"i\":%zu,\"seq\":%llu,\"seq_minor\":%llu,\"event_id\":",
                  b->len > 1 ? "," : "", i, (unsigned long long)e->seq,
                  (unsigned long long)e->seq_minor) ||
      st_buf_add_json_str(b, e->event_id, strlen(e->event_id)) ||
      add_opt(b, "source", e->source) || add_opt(b, "type", e->type) ||
      add_opt(b, "occurred_at", e->occurred_at) || add_opt(b, "subject", e->subject) ||
      add_opt(b, "actor", e->actor) || add_opt(b, "trace_id", e->trace_id) ||
      add_opt(b, "correlation_id", e->correlation_id) ||
      st_buf_addf(b, ",\"payload\":%s,\"evidence\":[", e->payload ? e->payload : "{}"))
    return ST_ENOMEM;
  for (size_t k = 0; k < e->n_evidence; k++) {
    const st_tl_evidence_t *d = &e->evidence[k];
    if (st_buf_adds(b, k ? ",{\"digest\":" : "{\"digest\":") ||
        st_buf_add_json_str(b, d->digest, strlen(d->digest)) ||
        add_opt(b, "bundle_id", d->bundle_id) || add_opt(b, "manifest_ref", d->manifest_ref) ||
        st_buf_addc(b, '}'))
      return ST_ENOMEM;
  }
  return st_buf_adds(b, "]}");
}

typedef struct group_s {
  const char *tenant;
  const char *rows; /* JSON array */
  const size_t *idx;
  size_t n;
  st_tl_outcome *outcome;
} group_t;

static int insert_tx(PGconn *c, void *arg, st_error_t *err) {
  group_t *g = arg;
  const char *params[2] = {g->tenant, g->rows};
  PGresult *res = NULL;
  int rc;

  /* The body may run again after a retry: start from "all duplicates" each time. */
  for (size_t k = 0; k < g->n; k++)
    g->outcome[g->idx[k]] = ST_TL_DUPLICATE;
  if ((rc = st_db_exec(c, insert_sql, 2, params, &res, err)))
    return rc;
  for (int r = 0; r < PQntuples(res); r++) {
    long i = strtol(PQgetvalue(res, r, 0), NULL, 10);
    if (i >= 0 && (size_t)i < g->n)
      g->outcome[g->idx[i]] = ST_TL_STORED;
  }
  PQclear(res);
  return 0;
}

/* Insert events idx[0..n) (one tenant); rows are numbered by position in idx. */
static int insert_group(st_db_pool_t *pool, const st_tl_event_t *events, const size_t *idx,
                        size_t n, st_tl_outcome *outcome, st_error_t *err) {
  st_buf_t rows = ST_BUF_INIT;
  group_t g = {events[idx[0]].tenant, NULL, idx, n, outcome};
  int rc = 0;

  if (st_buf_addc(&rows, '[')) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
  for (size_t k = 0; k < n; k++)
    if (add_row(&rows, k, &events[idx[k]])) {
      rc = st_fail(err, ST_ENOMEM, "timeline: out of memory building the batch");
      goto done;
    }
  if (st_buf_addc(&rows, ']')) {
    rc = st_fail(err, ST_ENOMEM, "timeline: out of memory");
    goto done;
  }
  g.rows = rows.data;
  rc = st_db_tenant_tx(pool, g.tenant, insert_tx, &g, err);
done:
  st_buf_release(&rows);
  return rc;
}

static void set_reason(char **reason, size_t i, const st_error_t *e) {
  if (reason) {
    st_free(reason[i]);
    reason[i] = st_strdup(st_error_text(e));
  }
}

static int by_tenant(const void *a, const void *b, void *ctx) {
  const st_tl_event_t *ev = ctx;
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  int c = strcmp(ev[x].tenant, ev[y].tenant);
  return c ? c : (x > y) - (x < y);
}

int st_tl_store_batch(st_db_pool_t *pool, const st_tl_event_t *events, size_t n,
                      st_tl_outcome *outcome, char **reason, st_error_t *err) {
  size_t *idx = NULL, m = 0;
  int rc = 0;

  if (!n)
    return 0;
  if (!(idx = st_malloc(n * sizeof(*idx))))
    return st_fail(err, ST_ENOMEM, "timeline: out of memory");
  for (size_t i = 0; i < n; i++)
    if (outcome[i] == ST_TL_PENDING)
      idx[m++] = i;
  qsort_r(idx, m, sizeof(*idx), by_tenant, (void *)events);

  for (size_t s = 0, e; s < m; s = e) {
    st_error_t gerr = ST_ERROR_INIT;
    int grc;
    for (e = s + 1; e < m && !strcmp(events[idx[e]].tenant, events[idx[s]].tenant); e++)
      ;
    grc = insert_group(pool, events, idx + s, e - s, outcome, &gerr);
    if (grc && st_err_classify(grc) == ST_ERRCLASS_PERMANENT && grc != ST_ENOMEM) {
      /* Find the refused rows: one event per transaction. */
      grc = 0;
      for (size_t k = s; k < e; k++) {
        st_error_t one = ST_ERROR_INIT;
        int orc = insert_group(pool, events, idx + k, 1, outcome, &one);
        if (orc && st_err_classify(orc) == ST_ERRCLASS_PERMANENT && orc != ST_ENOMEM) {
          outcome[idx[k]] = ST_TL_POISON;
          set_reason(reason, idx[k], &one);
        } else if (orc) {
          outcome[idx[k]] = ST_TL_RETRY;
          set_reason(reason, idx[k], &one);
          if (!grc)
            grc = orc, gerr = one;
        }
      }
    } else if (grc) {
      for (size_t k = s; k < e; k++) {
        outcome[idx[k]] = ST_TL_RETRY;
        set_reason(reason, idx[k], &gerr);
      }
    }
    if (grc && !rc) {
      rc = grc;
      if (err)
        *err = gerr;
    }
  }
  st_free(idx);
  return rc;
}
