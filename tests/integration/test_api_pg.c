/* test_api_pg.c: the API front with its Postgres store, against a real stellad
 * (fork/exec of build/bin/stellad --roles api with pg_url) on the test Postgres and Redis
 * (database 11), driven over HTTP with libcurl; rows are checked with the admin role.
 *
 * Proves: POST /jobs writes the jobs row, the job.queued outbox row and the audit row in
 * one transaction and XADDs an envelope carrying the request's trace; an idempotent
 * replay returns the first reply (one job, one audit row); the same key with another body
 * is 422; a key in flight is 409 until its record goes stale, then the request runs; a
 * wrong scope is 403 and audited as denied; malformed JSON is 400 with a problem body;
 * GET /audit filters, pages with a cursor that is refused with other filters, by another
 * tenant and when malformed, and never shows another tenant's rows; the storage quota
 * charge refuses (413/429 codes) without leaving anything of the transaction behind. */
#include "st_test_db.h"

#include <fcntl.h>
#include <strings.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "api_store.h"
#include "envelope.h"
#include "stella/jwt.h"
#include "stella/mem.h"
#include "transport.h"

#define SECRET "integration-secret-integration-secret-0"
#define REDIS_DB 11

static const char *app_url, *admin_url;
static char ta[64], tb[64], base[64], conf[] = "/tmp/stella-api-itest-XXXXXX";
static char redis_url[256];
static pid_t kid;
static PGconn *admin;
static char *tok_a, *tok_a_ro, *tok_a_op, *tok_b;

typedef struct resp_s {
  long status;
  st_buf_t body, head;
} resp_t;

static size_t on_data(char *p, size_t s, size_t n, void *ud) {
  return st_buf_add(ud, p, s * n) ? 0 : s * n;
}

/* One request; extra is a NULL-terminated list of header lines. */
static resp_t http(const char *method, const char *path, const char *token, const char *body,
                   const char *const *extra) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  char url[1024], auth[2048];
  resp_t r;

  st_buf_init(&r.body, 1 << 20);
  st_buf_init(&r.head, 1 << 16);
  snprintf(url, sizeof(url), "%s%s", base, path);
  if (token) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
  }
  if (body)
    h = curl_slist_append(h, "Content-Type: application/json");
  for (; extra && *extra; extra++)
    h = curl_slist_append(h, *extra);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.head);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

static void resp_release(resp_t *r) {
  st_buf_release(&r->body);
  st_buf_release(&r->head);
}

/* Value of a response header (case-insensitive name) into out; 0 when absent. */
static int hdr(const resp_t *r, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  for (const char *p = r->head.data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      size_t l;
      while (*v == ' ')
        v++;
      l = strcspn(v, "\r\n");
      snprintf(out, cap, "%.*s", (int)l, v);
      return 1;
    }
  return 0;
}

static json_t *json_of(const resp_t *r) {
  json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
  assert_non_null(j);
  return j;
}

static void assert_problem(resp_t *r, long status, const char *kind) {
  char ct[128], type[160];
  json_t *j;
  assert_int_equal(r->status, status);
  assert_true(hdr(r, "Content-Type", ct, sizeof(ct)));
  assert_string_equal(ct, "application/problem+json");
  j = json_of(r);
  snprintf(type, sizeof(type), "https://stella.dev/problems/%s", kind);
  assert_string_equal(json_string_value(json_object_get(j, "type")), type);
  assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
  json_decref(j);
  resp_release(r);
}

static long long admin_int(const char *sql, int n, const char *const *p) {
  PGresult *res = PQexecParams(admin, sql, n, NULL, p, NULL, NULL, 0);
  long long v;
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(admin));
  v = atoll(PQgetvalue(res, 0, 0));
  PQclear(res);
  return v;
}

static void admin_exec(const char *sql, int n, const char *const *p) {
  PGresult *res = PQexecParams(admin, sql, n, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(admin));
  PQclear(res);
}

static char *mint(const char *tenant, const char *scope) {
  st_jwt_keys_t *k = NULL;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  char *t = NULL;
  assert_int_equal(st_jwt_keys_new(&k, SECRET, strlen(SECRET), NULL, NULL, &err), 0);
  c.tenant = (char *)tenant;
  c.scope = (char *)scope;
  c.sub = "itest";
  c.exp = time(NULL) + 600;
  assert_int_equal(st_jwt_sign(k, ST_JWT_HS256, &c, &t, &err), 0);
  st_jwt_keys_free(k);
  return t;
}

static int free_port(void) {
  struct sockaddr_in a = {0};
  socklen_t len = sizeof(a);
  int s = socket(AF_INET, SOCK_STREAM, 0), port;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  port = ntohs(a.sin_port);
  close(s);
  return port;
}

static int setup(void **state) {
  const char *bin = getenv("STELLA_BIN_DIR"), *redis = st_test_env("STELLA_REDIS_URL");
  char path[4096], stellad[4096];
  int port, fd;
  FILE *f;

  st_test_db_setup(&app_url, &admin_url, "api", ta, tb, sizeof(ta));
  snprintf(redis_url, sizeof(redis_url), "%s/%d", redis, REDIS_DB);
  admin = PQconnectdb(admin_url);
  assert_int_equal(PQstatus(admin), CONNECTION_OK);
  assert_non_null(mkdtemp(conf));
  port = free_port();
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
  snprintf(path, sizeof(path), "%s/stella.conf", conf);
  assert_non_null(f = fopen(path, "w"));
  fprintf(f,
          "api_listen = 127.0.0.1:%d\npg_url = %s\nredis_url = %s\njwt_hs256_secret = %s\n"
          "api_rate_per_s = 0\napi_idempotency_inflight_s = 60\n",
          port, app_url, redis_url, SECRET);
  fclose(f);
  snprintf(stellad, sizeof(stellad), "%s/bin/stellad", bin ? bin : "../..");
  if ((kid = fork()) == 0) {
    char log[4200];
    snprintf(log, sizeof(log), "%s/stellad.log", conf);
    fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    /* the services' environment (STELLA_<KEY>) would override the config file */
    unsetenv("STELLA_JWT_HS256_SECRET");
    unsetenv("STELLA_REDIS_URL");
    unsetenv("STELLA_PG_URL");
    unsetenv("STELLA_API_LISTEN");
    execl(stellad, stellad, "--config", path, "--roles", "api", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 100; i++) {
    CURL *c = curl_easy_init();
    char url[128];
    long code = 0;
    snprintf(url, sizeof(url), "%s/healthz", base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (code == 200)
      break;
    usleep(100000);
  }
  tok_a = mint(ta, "export:operator audit:read");
  tok_a_ro = mint(ta, "audit:read");
  tok_a_op = mint(ta, "export:operator");
  tok_b = mint(tb, "export:operator audit:read");
  return 0;
}

static int teardown(void **state) {
  char cmd[4200];
  if (kid > 0) {
    kill(kid, SIGTERM);
    waitpid(kid, NULL, 0);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf %s", conf);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", conf);
  PQfinish(admin);
  st_free(tok_a);
  st_free(tok_a_ro);
  st_free(tok_a_op);
  st_free(tok_b);
  return 0;
}

static long long audit_rows(const char *tenant, const char *request_id, const char *outcome) {
  const char *p[3] = {tenant, request_id, outcome};
  return admin_int("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND request_id = $2"
                   " AND outcome = $3",
                   3, p);
}

/* The request hash of idempotency.c: SHA-256 over method, path and body with NULs. */
static void request_hex(const char *path, const char *body, char hex[65]) {
  unsigned char d[32];
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  EVP_DigestUpdate(md, "POST", 5);
  EVP_DigestUpdate(md, path, strlen(path) + 1);
  EVP_DigestUpdate(md, body, strlen(body));
  EVP_DigestFinal_ex(md, d, NULL);
  EVP_MD_CTX_free(md);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* The envelope of job_id from the Redis stream; its trace must carry trace_id. */
static void assert_envelope(const char *job_id, const char *trace_id) {
  char *host = NULL;
  int port = 0, db = 0, found = 0;
  st_error_t err = ST_ERROR_INIT;
  redisContext *c;
  redisReply *r;

  assert_int_equal(st_redis_url_parse(redis_url, &host, &port, &db, &err), 0);
  c = redisConnect(host, port);
  assert_true(c && !c->err);
  freeReplyObject(redisCommand(c, "SELECT %d", db));
  r = redisCommand(c, "XRANGE stella:jobs:probe - +");
  assert_true(r && r->type == REDIS_REPLY_ARRAY);
  for (size_t i = 0; i < r->elements; i++) {
    redisReply *fields = r->element[i]->element[1];
    st_envelope_t env;
    st_envelope_init(&env);
    assert_int_equal(st_envelope_decode(&env, fields->element[1]->str, fields->element[1]->len,
                                        &(st_envelope_limits_t){1 << 20, NULL}, &err),
                     0);
    if (strcmp(env.job_id, job_id) == 0) {
      found++;
      assert_string_equal(env.tenant, ta);
      assert_non_null(env.trace);
      assert_memory_equal(env.trace + 3, trace_id, 32);
    }
    st_envelope_release(&env);
  }
  assert_int_equal(found, 1);
  freeReplyObject(r);
  redisFree(c);
  st_free(host);
}

static void test_jobs_audit_idempotency(void **state) {
  const char *body = "{\"type\":\"probe\",\"payload\":{\"sleep_ms\":1}}";
  const char *trace = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const char *h1[] = {"Idempotency-Key: job-1", trace, NULL};
  char rid[160], rid2[160], v[64], key[80];
  const char *p[3];
  resp_t r1, r2;
  json_t *j;

  r1 = http("POST", "/jobs", tok_a, body, h1);
  assert_int_equal(r1.status, 202);
  assert_true(hdr(&r1, "X-Request-Id", rid, sizeof(rid)));
  j = json_of(&r1);
  p[0] = ta;
  p[1] = json_string_value(json_object_get(j, "job_id"));
  assert_non_null(p[1]);
  /* one transaction wrote all three rows */
  assert_int_equal(admin_int("SELECT count(*) FROM jobs WHERE tenant_id = $1 AND job_id = $2"
                             " AND state = 'queued' AND idempotency_key = 'job-1'",
                             2, p),
                   1);
  assert_int_equal(admin_int("SELECT count(*) FROM outbox WHERE tenant_id = $1"
                             " AND type = 'job.queued' AND payload->'payload'->>'job_id' = $2",
                             2, p),
                   1);
  assert_int_equal(audit_rows(ta, rid, "ok"), 1);
  assert_envelope(p[1], "4bf92f3577b34da6a3ce929d0e0e4736");
  /* replay: the first reply, no second job or audit row */
  r2 = http("POST", "/jobs", tok_a, body, h1);
  assert_int_equal(r2.status, 202);
  assert_string_equal(r2.body.data, r1.body.data);
  assert_true(hdr(&r2, "Idempotent-Replayed", v, sizeof(v)));
  assert_true(hdr(&r2, "X-Request-Id", rid2, sizeof(rid2)));
  assert_int_equal(audit_rows(ta, rid2, "ok"), 0);
  assert_int_equal(admin_int("SELECT count(*) FROM jobs WHERE tenant_id = $1", 1, p), 1);
  resp_release(&r2);
  json_decref(j);
  resp_release(&r1);
  /* same key, other body */
  r2 = http("POST", "/jobs", tok_a, "{\"type\":\"probe\",\"payload\":{\"sleep_ms\":2}}", h1);
  assert_problem(&r2, 422, "idempotency-key-reused");
  /* the same key in tenant B is another key */
  r2 = http("POST", "/jobs", tok_b, body, h1);
  assert_int_equal(r2.status, 202);
  resp_release(&r2);
  /* in flight: a claim made by another (crashed) server */
  {
    char hex[65];
    const char *q[3] = {ta, "job-2", hex};
    const char *h2[] = {"Idempotency-Key: job-2", NULL};
    request_hex("/jobs", body, hex);
    admin_exec("INSERT INTO api_idempotency (tenant_id, idem_key, route, request_sha256, state,"
               " expires_at) VALUES ($1, $2, 'POST /jobs', decode($3, 'hex'), 'in_flight',"
               " now() + interval '1 hour')",
               3, q);
    r2 = http("POST", "/jobs", tok_a, body, h2);
    assert_problem(&r2, 409, "idempotency-in-flight");
    /* once stale, the key is free again */
    admin_exec("UPDATE api_idempotency SET expires_at = now() - interval '1 second'"
               " WHERE tenant_id = $1 AND idem_key = $2",
               2, q);
    r2 = http("POST", "/jobs", tok_a, body, h2);
    assert_int_equal(r2.status, 202);
    resp_release(&r2);
    assert_int_equal(admin_int("SELECT count(*) FROM api_idempotency WHERE tenant_id = $1"
                               " AND idem_key = $2 AND state = 'done'",
                               2, q),
                     1);
  }
  /* wrong scope: 403, audited as denied */
  r2 = http("POST", "/jobs", tok_a_ro, body, NULL);
  assert_true(hdr(&r2, "X-Request-Id", rid, sizeof(rid)));
  assert_problem(&r2, 403, "forbidden");
  assert_int_equal(audit_rows(ta, rid, "denied"), 1);
  /* malformed JSON, unknown type, bad payload: problems, no job */
  snprintf(key, sizeof(key), "Idempotency-Key: bad-%d", (int)getpid());
  r2 = http("POST", "/jobs", tok_a, "{\"type\":", NULL);
  assert_problem(&r2, 400, "malformed-json");
  r2 = http("POST", "/jobs", tok_a, "{\"type\":\"nope\"}", NULL);
  assert_problem(&r2, 422, "unprocessable");
  r2 = http("POST", "/jobs", tok_a, "{\"type\":\"probe\",\"payload\":{\"x\":1}}", NULL);
  assert_problem(&r2, 422, "unprocessable");
  assert_int_equal(admin_int("SELECT count(*) FROM jobs WHERE tenant_id = $1", 1, p), 2);
}

/* Every audit row of tenant A for action job.submit, walked one per page. */
static void test_audit_query(void **state) {
  const char *body = "{\"type\":\"probe\"}";
  const char *p[1] = {ta};
  char path[1024], cursor[128] = "", rid[160];
  long long want, seen = 0, last = -1;
  resp_t r;
  json_t *j;

  for (int i = 0; i < 3; i++) {
    r = http("POST", "/jobs", tok_a, body, NULL);
    assert_int_equal(r.status, 202);
    assert_true(hdr(&r, "X-Request-Id", rid, sizeof(rid)));
    resp_release(&r);
  }
  want = admin_int("SELECT count(*) FROM audit_log WHERE tenant_id = $1"
                   " AND action = 'job.submit'",
                   1, p);
  assert_true(want >= 3);
  do {
    snprintf(path, sizeof(path), "/audit?action=job.submit&limit=1%s%s", *cursor ? "&cursor=" : "",
             cursor);
    r = http("GET", path, tok_a, NULL, NULL);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
    {
      json_t *it = json_array_get(json_object_get(j, "items"), 0);
      long long id = json_integer_value(json_object_get(it, "id"));
      assert_true(last < 0 || id < last); /* newest first, no repeats */
      last = id;
      assert_string_equal(json_string_value(json_object_get(it, "action")), "job.submit");
      assert_string_equal(json_string_value(json_object_get(it, "actor")), "itest");
      assert_int_equal(json_string_length(json_object_get(it, "trace_id")), 32);
    }
    seen++;
    snprintf(cursor, sizeof(cursor), "%s",
             json_is_string(json_object_get(j, "next_cursor"))
                 ? json_string_value(json_object_get(j, "next_cursor"))
                 : "");
    json_decref(j);
    resp_release(&r);
  } while (*cursor && seen <= want);
  assert_int_equal(seen, want);
  /* a cursor from the first page, misused */
  r = http("GET", "/audit?action=job.submit&limit=1", tok_a, NULL, NULL);
  j = json_of(&r);
  snprintf(cursor, sizeof(cursor), "%s", json_string_value(json_object_get(j, "next_cursor")));
  json_decref(j);
  resp_release(&r);
  snprintf(path, sizeof(path), "/audit?action=job.submit&outcome=ok&cursor=%s", cursor);
  r = http("GET", path, tok_a, NULL, NULL);
  assert_problem(&r, 400, "bad-request");
  snprintf(path, sizeof(path), "/audit?action=job.submit&cursor=%s", cursor);
  r = http("GET", path, tok_b, NULL, NULL); /* another tenant */
  assert_problem(&r, 400, "bad-request");
  r = http("GET", "/audit?cursor=1.99.zzzz", tok_a, NULL, NULL);
  assert_problem(&r, 400, "bad-request");
  r = http("GET", "/audit?since=yesterday", tok_a, NULL, NULL);
  assert_problem(&r, 400, "bad-request");
  r = http("GET", "/audit?until=2025-02-30T00:00:00Z", tok_a, NULL, NULL);
  assert_problem(&r, 400, "bad-request");
  r = http("GET", "/audit?limit=0", tok_a, NULL, NULL);
  assert_problem(&r, 400, "bad-request");
  /* filters */
  snprintf(path, sizeof(path), "/audit?request_id=%s", rid);
  r = http("GET", path, tok_a, NULL, NULL);
  j = json_of(&r);
  assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
  json_decref(j);
  resp_release(&r);
  r = http("GET", path, tok_b, NULL, NULL); /* A's request is invisible to B */
  j = json_of(&r);
  assert_int_equal(r.status, 200);
  assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
  json_decref(j);
  resp_release(&r);
  r = http("GET", "/audit?outcome=denied&actor=itest", tok_a, NULL, NULL);
  j = json_of(&r);
  assert_true(json_array_size(json_object_get(j, "items")) >= 1);
  json_decref(j);
  resp_release(&r);
  r = http("GET", "/audit?until=2000-01-01T00:00:00Z", tok_a, NULL, NULL);
  j = json_of(&r);
  assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
  json_decref(j);
  resp_release(&r);
  r = http("GET", "/audit?since=2000-01-01T00:00:00%2B02:00&actor=nobody", tok_a, NULL, NULL);
  j = json_of(&r);
  assert_int_equal(r.status, 200);
  assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
  json_decref(j);
  resp_release(&r);
  /* scope */
  r = http("GET", "/audit", tok_a_op, NULL, NULL);
  assert_problem(&r, 403, "forbidden");
}

typedef struct charge_s {
  const char *tenant;
  unsigned long long bytes, def;
  int with_audit; /* also write an audit row first: it must roll back with a refusal */
} charge_t;

static int charge_tx(PGconn *c, void *arg, st_error_t *err) {
  charge_t *ch = arg;
  const char *p[1] = {ch->tenant};
  int rc;
  if (ch->with_audit &&
      (rc = st_db_exec(c,
                       "INSERT INTO audit_log (tenant_id, actor, action, resource, outcome)"
                       " VALUES ($1, 'itest', 'quota.probe', 'x', 'ok')",
                       1, p, NULL, err)))
    return rc;
  return st_api_storage_charge(c, ch->tenant, ch->bytes, ch->def, err);
}

static int credit_tx(PGconn *c, void *arg, st_error_t *err) {
  charge_t *ch = arg;
  return st_api_storage_credit(c, ch->tenant, ch->bytes, err);
}

static int raise_tx(PGconn *c, void *arg, st_error_t *err) {
  return st_db_exec(c, "UPDATE tenant_quotas SET storage_bytes_max = 1 << 40", 0, NULL, NULL,
                    err);
}

static void test_storage_quota(void **state) {
  st_db_pool_t *pool = NULL;
  st_error_t err = ST_ERROR_INIT;
  char tq[80];
  const char *p[1] = {tq};
  charge_t ch = {tq, 60, 100, 0};

  snprintf(tq, sizeof(tq), "%s-quota", ta);
  assert_int_equal(st_db_pool_new(app_url, 2, &pool, &err), 0);
  /* the configured default applies without a row */
  assert_int_equal(st_db_tenant_tx(pool, tq, charge_tx, &ch, &err), 0);
  ch.bytes = 50; /* fits the quota, not what is left: 429 */
  assert_int_equal(st_db_tenant_tx(pool, tq, charge_tx, &ch, &err), ST_EQUOTA);
  assert_int_equal(st_api_problem_status(st_api_problem_for_err(ST_EQUOTA)), 429);
  ch.bytes = 101; /* bigger than the whole quota: 413 */
  assert_int_equal(st_db_tenant_tx(pool, tq, charge_tx, &ch, &err), ST_ETOOBIG);
  /* a refusal rolls back what the same transaction wrote */
  ch.bytes = 50;
  ch.with_audit = 1;
  assert_int_equal(st_db_tenant_tx(pool, tq, charge_tx, &ch, &err), ST_EQUOTA);
  assert_int_equal(admin_int("SELECT count(*) FROM audit_log WHERE tenant_id = $1", 1, p), 0);
  assert_int_equal(admin_int("SELECT storage_bytes_used FROM tenant_quotas WHERE tenant_id = $1",
                             1, p),
                   60);
  /* the tenant's own limit overrides the default; the service role cannot raise it */
  assert_int_not_equal(st_db_tenant_tx(pool, tq, raise_tx, NULL, &err), 0);
  admin_exec("UPDATE tenant_quotas SET storage_bytes_max = 1000 WHERE tenant_id = $1", 1, p);
  ch.bytes = 950; /* 60 + 950 > 1000 */
  assert_int_equal(st_db_tenant_tx(pool, tq, charge_tx, &ch, &err), ST_EQUOTA);
  ch.bytes = 940;
  assert_int_equal(st_db_tenant_tx(pool, tq, charge_tx, &ch, &err), 0);
  /* credits give space back, never below zero */
  ch.bytes = 5000;
  assert_int_equal(st_db_tenant_tx(pool, tq, credit_tx, &ch, &err), 0);
  assert_int_equal(admin_int("SELECT storage_bytes_used FROM tenant_quotas WHERE tenant_id = $1",
                             1, p),
                   0);
  /* unlimited: default 0 and no tenant limit */
  snprintf(tq, sizeof(tq), "%s-unlimited", ta);
  ch.bytes = 1ULL << 50;
  ch.def = 0;
  ch.with_audit = 0;
  assert_int_equal(st_db_tenant_tx(pool, tq, charge_tx, &ch, &err), 0);
  st_db_pool_free(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jobs_audit_idempotency),
      cmocka_unit_test(test_audit_query),
      cmocka_unit_test(test_storage_quota),
  };
  int rc;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return rc;
}
