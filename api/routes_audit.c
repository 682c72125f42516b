/* routes_audit.c: GET /audit (scope audit:read), the caller's tenant's audit trail, newest
 * first, with exact-match filters (actor, action, resource, outcome, request_id), a time
 * range (since inclusive, until exclusive, RFC 3339) and keyset pagination on the row id.
 *
 * The cursor is opaque to clients: "1.<last id>.<16 hex>", the hex being a SHA-256 prefix
 * over the tenant and every filter. A cursor used with other filters or by another tenant
 * is refused (400) instead of silently paging a different result. It carries no secret and
 * needs none: rows are read in a tenant transaction, so row-level security is what keeps
 * tenants apart, and a doctored id only moves the page start. Ids come from an identity
 * column: a row committed after a page was read but numbered before its end is not shown
 * by later pages (an audit reader that tails re-reads from the top). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/sha256.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 500
#define FILTER_MAX 256
#define NFILTERS 7

/* Query names, in SQL parameter order ($1..$7). */
static const char *const filter_names[NFILTERS] = {"actor",  "action", "resource",  "outcome",
                                                    "since", "until",  "request_id"};

typedef struct page_s {
  const char *f[NFILTERS];
  char after[24]; /* id bound from the cursor, "" = first page */
  char limit[8];  /* rows asked from Postgres: page size + 1 */
  const char *tenant;
  PGresult *res;
} page_t;

static int digits(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

static int num2(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), a real calendar day
 * (Postgres would otherwise fail the query on 2025-02-30). */
static int rfc3339(const char *s) {
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  size_t n = strlen(s), i = 19;
  int y, m, d;
  if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
      !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) ||
      s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
    return 0;
  y = num2(s) * 100 + num2(s + 2);
  m = num2(s + 5);
  d = num2(s + 8);
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
      (m == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) || num2(s + 11) > 23 ||
      num2(s + 14) > 59 || num2(s + 17) > 59)
    return 0;
  if (s[i] == '.') {
    size_t j = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == j || i - j > 9)
      return 0;
  }
  if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
    return 1;
  return (s[i] == '+' || s[i] == '-') && n - i == 6 && digits(s + i + 1, 2) && s[i + 3] == ':' &&
         digits(s + i + 4, 2) && num2(s + i + 1) < 24 && num2(s + i + 4) < 60;
}

/* First 16 hex of SHA-256 over the tenant and the filters (absent and empty differ). */
static int filter_tag(const page_t *pg, char tag[17]) {
  st_buf_t b = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc = st_buf_addf(&b, "audit-cursor-1\n%s\n", pg->tenant);
  for (int i = 0; i < NFILTERS && !rc; i++)
    rc = pg->f[i] ? st_buf_addf(&b, "+%s\n", pg->f[i]) : st_buf_add(&b, "-\n", 2);
  if (!rc)
    rc = st_sha256(b.data, b.len, d);
  if (!rc) {
    st_sha256_hex(d, hex);
    memcpy(tag, hex, 16);
    tag[16] = '\0';
  }
  st_buf_release(&b);
  return rc;
}

/* "1.<id>.<tag>" with the tag of these filters; the id into pg->after. */
static int cursor_parse(page_t *pg, const char *cur) {
  char tag[17];
  const char *dot;
  size_t idlen;

  if (strncmp(cur, "1.", 2) != 0 || !(dot = strchr(cur + 2, '.')))
    return ST_EINVAL;
  idlen = (size_t)(dot - (cur + 2));
  if (idlen < 1 || idlen > 18 || !digits(cur + 2, idlen) || strlen(dot + 1) != 16)
    return ST_EINVAL;
  if (filter_tag(pg, tag))
    return ST_ENOMEM;
  if (strcmp(dot + 1, tag) != 0)
    return ST_ECONFLICT;
  memcpy(pg->after, cur + 2, idlen);
  pg->after[idlen] = '\0';
  return 0;
}

static int page_tx(PGconn *c, void *arg, st_error_t *err) {
  page_t *pg = arg;
  const char *p[10] = {pg->f[0], pg->f[1], pg->f[2], pg->f[3], pg->f[4],
                       pg->f[5], pg->f[6], *pg->after ? pg->after : NULL, pg->limit,
                       pg->tenant};
  PQclear(pg->res);
  pg->res = NULL;
  return st_db_exec(
      c,
      "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor,"
      " action, resource, outcome, request_id, detail->>'trace_id'"
      " FROM audit_log WHERE tenant_id = $10"
      " AND ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2)"
      " AND ($3::text IS NULL OR resource = $3) AND ($4::text IS NULL OR outcome = $4)"
      " AND ($5::timestamptz IS NULL OR at >= $5::timestamptz)"
      " AND ($6::timestamptz IS NULL OR at < $6::timestamptz)"
      " AND ($7::text IS NULL OR request_id = $7) AND ($8::bigint IS NULL OR id < $8::bigint)"
      " ORDER BY id DESC LIMIT $9::int",
      10, p, &pg->res, err);
}

static json_t *nullable(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static int reply_page(st_api_req_t *req, page_t *pg, int limit) {
  json_t *items = json_array(), *out = NULL;
  int rows = PQntuples(pg->res), n = rows > limit ? limit : rows, rc = ST_ENOMEM;
  char cursor[64], tag[17];

  if (!items)
    goto done;
  for (int i = 0; i < n; i++) {
    json_t *it = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id",
                           (json_int_t)strtoll(PQgetvalue(pg->res, i, 0), NULL, 10), "at",
                           PQgetvalue(pg->res, i, 1), "actor", PQgetvalue(pg->res, i, 2),
                           "action", PQgetvalue(pg->res, i, 3), "resource",
                           PQgetvalue(pg->res, i, 4), "outcome", PQgetvalue(pg->res, i, 5),
                           "request_id", nullable(pg->res, i, 6), "trace_id",
                           nullable(pg->res, i, 7));
    if (!it || json_array_append_new(items, it))
      goto done;
  }
  if (rows > limit) {
    if (filter_tag(pg, tag))
      goto done;
    snprintf(cursor, sizeof(cursor), "1.%s.%s", PQgetvalue(pg->res, n - 1, 0), tag);
  }
  if (!(out = json_pack("{s:O, s:o}", "items", items,
                        "next_cursor", rows > limit ? json_string(cursor) : json_null())))
    goto done;
  rc = st_api_reply_json(req, 200, out);
done:
  json_decref(items);
  json_decref(out);
  return rc;
}

static int audit_list(st_api_req_t *req, void *arg) {
  const char *lim = st_api_req_query(req, "limit"), *cur = st_api_req_query(req, "cursor");
  page_t pg;
  st_error_t err = ST_ERROR_INIT;
  long limit = LIMIT_DEFAULT;
  int rc;

  memset(&pg, 0, sizeof(pg));
  pg.tenant = st_api_req_auth(req)->tenant;
  for (int i = 0; i < NFILTERS; i++) {
    const char *v = st_api_req_query(req, filter_names[i]);
    if (v && (!*v || strlen(v) > FILTER_MAX || !st_utf8_valid(v, strlen(v))))
      return st_api_reply_problem(req, ST_API_P_BAD_REQUEST,
                                  "%s: 1..%d characters of UTF-8", filter_names[i], FILTER_MAX);
    if (v && i >= 4 && i <= 5 && !rfc3339(v))
      return st_api_reply_problem(req, ST_API_P_BAD_REQUEST,
                                  "%s: expected an RFC 3339 date-time", filter_names[i]);
    pg.f[i] = v;
  }
  if (lim) {
    size_t n = strlen(lim);
    if (n < 1 || n > 3 || !digits(lim, n) || (limit = atol(lim)) < 1 || limit > LIMIT_MAX)
      return st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "limit: an integer in 1..%d",
                                  LIMIT_MAX);
  }
  if (cur && (rc = cursor_parse(&pg, cur)))
    return rc == ST_ENOMEM ? rc
                           : st_api_reply_problem(req, ST_API_P_BAD_REQUEST,
                                                  rc == ST_ECONFLICT
                                                      ? "cursor: issued for other filters"
                                                      : "cursor: malformed");
  snprintf(pg.limit, sizeof(pg.limit), "%ld", limit + 1);
  if ((rc = st_api_tx(req, ST_DB_TX_READ_ONLY, page_tx, &pg, &err)))
    st_logkv(ST_LOG_ERROR, "audit query failed", "error", st_error_text(&err), NULL);
  else
    rc = reply_page(req, &pg, (int)limit);
  PQclear(pg.res);
  return rc;
}

int st__audit_routes(st_api_t *api, st_error_t *err) {
  static const st_api_route_t routes[] = {
      {"GET", "/audit", "audit:read", 0, ST_API_BODY_NONE, 0, audit_list, NULL, NULL},
  };
  return st_api_add_routes(api, routes, sizeof(routes) / sizeof(routes[0]), err);
}
