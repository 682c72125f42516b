/* api_store_pg.c: the Postgres implementation of the audit/idempotency store
 * (api_store.h). Audit rows go into audit_log on the handler's own transaction when it
 * passes one (so they commit with the effect), else in a tenant transaction of their own.
 * Idempotency records live in api_idempotency (0040): claiming is one INSERT ... ON
 * CONFLICT DO UPDATE that only takes over an expired row, so two concurrent claims of one
 * key cannot both win (the loser waits for the winner's row and then sees it in flight).
 * Every statement runs in a transaction of the key's tenant: row-level security keeps
 * tenants apart even if a caller mixed them up. Bodies travel as hex (text protocol). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "stella/mem.h"

typedef struct pg_store_s {
  st_db_pool_t *pool;
  char ttl[24], inflight[24]; /* seconds, as SQL parameters */
} pg_store_t;

static int audit_insert(PGconn *c, void *arg, st_error_t *err) {
  const st_api_audit_t *a = arg;
  const char *p[7] = {a->tenant,  a->actor,      a->action,  a->resource,
                      a->outcome, a->request_id, a->trace_id};
  return st_db_exec(c,
                    "INSERT INTO audit_log (tenant_id, actor, action, resource, outcome,"
                    " request_id, detail) VALUES ($1, $2, $3, $4, $5, $6,"
                    " CASE WHEN $7::text IS NULL THEN '{}'::jsonb"
                    " ELSE jsonb_build_object('trace_id', $7::text) END)",
                    7, p, NULL, err);
}

static int pg_audit(void *self, PGconn *tx, const st_api_audit_t *a, st_error_t *err) {
  pg_store_t *s = self;
  if (tx)
    return audit_insert(tx, (void *)a, err);
  return st_db_tenant_tx(s->pool, a->tenant, audit_insert, (void *)a, err);
}

static char *hex_of(const void *data, size_t len) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *d = data;
  char *out = st_malloc(len * 2 + 1);
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[len * 2] = '\0';
  return out;
}

static int nibble(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode lower-case hex of even length into a fresh NUL-terminated buffer. */
static int unhex(const char *h, char **out, size_t *len) {
  size_t n = strlen(h);
  char *b;
  if (n % 2 || !(b = st_malloc(n / 2 + 1)))
    return n % 2 ? ST_EPARSE : ST_ENOMEM;
  for (size_t i = 0; i < n / 2; i++) {
    int hi = nibble(h[2 * i]), lo = nibble(h[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      st_free(b);
      return ST_EPARSE;
    }
    b[i] = (char)(hi << 4 | lo);
  }
  b[n / 2] = '\0';
  *out = b;
  *len = n / 2;
  return 0;
}

typedef struct begin_s {
  const pg_store_t *s;
  const st_api_idem_key_t *k;
  const char *hash_hex;
  st_api_idem_record_t *rec;
} begin_t;

static int fill_record(PGresult *res, st_api_idem_record_t *rec, st_error_t *err) {
  char *hash = NULL;
  size_t hlen = 0;
  int rc;

  rec->state = strcmp(PQgetvalue(res, 0, 0), "done") == 0 ? ST_API_IDEM_DONE
                                                            : ST_API_IDEM_IN_FLIGHT;
  if ((rc = unhex(PQgetvalue(res, 0, 1), &hash, &hlen)) || hlen != 32) {
    st_free(hash);
    return st_fail(err, rc ? rc : ST_EPARSE, "api_idempotency: bad request_sha256");
  }
  memcpy(rec->request_hash, hash, 32);
  st_free(hash);
  if (rec->state != ST_API_IDEM_DONE)
    return 0;
  rec->reply.status = (unsigned)atoi(PQgetvalue(res, 0, 2));
  if (!(rec->reply.content_type = st_strdup(PQgetvalue(res, 0, 3))))
    return st_fail(err, ST_ENOMEM, "api_idempotency: out of memory");
  if (!PQgetisnull(res, 0, 4) &&
      !(rec->reply.headers = json_loads(PQgetvalue(res, 0, 4), 0, NULL)))
    return st_fail(err, ST_EPARSE, "api_idempotency: bad headers");
  if ((rc = unhex(PQgetvalue(res, 0, 5), &rec->reply.body, &rec->reply.body_len)))
    return st_fail(err, rc, "api_idempotency: bad body");
  return 0;
}

static int begin_tx(PGconn *c, void *arg, st_error_t *err) {
  begin_t *b = arg;
  const char *p[5] = {b->k->tenant, b->k->key, b->k->route, b->hash_hex, b->s->inflight};
  PGresult *res = NULL;
  long long claimed = 0;
  int rc;

  st_api_idem_record_release(b->rec);
  if ((rc = st_db_exec_count(
           c,
           "INSERT INTO api_idempotency AS i (tenant_id, idem_key, route, request_sha256,"
           " state, expires_at)"
           " VALUES ($1, $2, $3, decode($4, 'hex'), 'in_flight',"
           " now() + make_interval(secs => $5::int))"
           " ON CONFLICT (tenant_id, idem_key, route) DO UPDATE SET"
           " request_sha256 = EXCLUDED.request_sha256, state = 'in_flight', status = NULL,"
           " content_type = NULL, headers = NULL, body = NULL, created_at = now(),"
           " expires_at = EXCLUDED.expires_at"
           " WHERE i.expires_at <= now()",
           5, p, &claimed, err)))
    return rc;
  if (claimed) {
    b->rec->state = ST_API_IDEM_NEW;
    return 0;
  }
  if ((rc = st_db_exec(c,
                       "SELECT state, encode(request_sha256, 'hex'), status,"
                       " coalesce(content_type, ''), headers::text, encode(body, 'hex')"
                       " FROM api_idempotency"
                       " WHERE tenant_id = $1 AND idem_key = $2 AND route = $3",
                       3, p, &res, err)))
    return rc;
  if (PQntuples(res) != 1)
    rc = st_fail(err, ST_EDBRETRY, "api_idempotency: record vanished while claiming");
  else
    rc = fill_record(res, b->rec, err);
  PQclear(res);
  return rc;
}

static int pg_begin(void *self, const st_api_idem_key_t *k, const unsigned char hash[32],
                    st_api_idem_record_t *rec, st_error_t *err) {
  pg_store_t *s = self;
  char *hex = hex_of(hash, 32);
  begin_t b = {s, k, hex, rec};
  int rc;

  memset(rec, 0, sizeof(*rec));
  if (!hex)
    return st_fail(err, ST_ENOMEM, "api_idempotency: out of memory");
  if ((rc = st_db_tenant_tx(s->pool, k->tenant, begin_tx, &b, err)))
    st_api_idem_record_release(rec);
  st_free(hex);
  return rc;
}

typedef struct finish_s {
  const pg_store_t *s;
  const st_api_idem_key_t *k;
  const st_api_idem_reply_t *r;
  const char *body_hex, *headers, *status;
} finish_t;

static int finish_tx(PGconn *c, void *arg, st_error_t *err) {
  finish_t *f = arg;
  const char *p[8] = {f->k->tenant,  f->k->key,     f->k->route, f->status,
                      f->r->content_type, f->headers, f->body_hex, f->s->ttl};
  return st_db_exec(c,
                    "UPDATE api_idempotency SET state = 'done', status = $4::int,"
                    " content_type = $5, headers = $6::jsonb, body = decode($7, 'hex'),"
                    " expires_at = now() + make_interval(secs => $8::int)"
                    " WHERE tenant_id = $1 AND idem_key = $2 AND route = $3"
                    " AND state = 'in_flight'",
                    8, p, NULL, err);
}

static int pg_finish(void *self, const st_api_idem_key_t *k, const st_api_idem_reply_t *r,
                     st_error_t *err) {
  pg_store_t *s = self;
  char status[16];
  char *hex = hex_of(r->body ? r->body : "", r->body ? r->body_len : 0);
  char *headers = r->headers ? json_dumps(r->headers, JSON_COMPACT) : NULL;
  finish_t f = {s, k, r, hex, headers, status};
  int rc;

  snprintf(status, sizeof(status), "%u", r->status);
  if (!hex || (r->headers && !headers))
    rc = st_fail(err, ST_ENOMEM, "api_idempotency: out of memory");
  else
    rc = st_db_tenant_tx(s->pool, k->tenant, finish_tx, &f, err);
  st_free(hex);
  free(headers);
  return rc;
}

static int abort_tx(PGconn *c, void *arg, st_error_t *err) {
  const st_api_idem_key_t *k = arg;
  const char *p[3] = {k->tenant, k->key, k->route};
  return st_db_exec(c,
                    "DELETE FROM api_idempotency WHERE tenant_id = $1 AND idem_key = $2"
                    " AND route = $3 AND state = 'in_flight'",
                    3, p, NULL, err);
}

static int pg_abort(void *self, const st_api_idem_key_t *k, st_error_t *err) {
  pg_store_t *s = self;
  return st_db_tenant_tx(s->pool, k->tenant, abort_tx, (void *)k, err);
}

static void pg_release(void *self) { st_free(self); }

int st_api_store_pg(st_api_store_t *out, st_db_pool_t *pool, long long ttl_s,
                    long long inflight_s, st_error_t *err) {
  pg_store_t *s;

  memset(out, 0, sizeof(*out));
  if (!pool || ttl_s < 1 || inflight_s < 1 || ttl_s > 0x7fffffff || inflight_s > 0x7fffffff)
    return st_fail(err, ST_EINVAL, "api store: pool and positive expiry times required");
  if (!(s = st_calloc(1, sizeof(*s))))
    return st_fail(err, ST_ENOMEM, "api store: out of memory");
  s->pool = pool;
  snprintf(s->ttl, sizeof(s->ttl), "%lld", ttl_s);
  snprintf(s->inflight, sizeof(s->inflight), "%lld", inflight_s);
  out->self = s;
  out->audit_record = pg_audit;
  out->idem_begin = pg_begin;
  out->idem_finish = pg_finish;
  out->idem_abort = pg_abort;
  out->release = pg_release;
  return 0;
}
