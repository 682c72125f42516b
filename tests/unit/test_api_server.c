/* test_api_server.c: a real server (libmicrohttpd on 127.0.0.1, ephemeral port) with test
 * routes, driven by libcurl and raw sockets: auth 401/403, cross-tenant 404, JSON 400/415/
 * 413, 413 from Content-Length without reading the body, 413 mid-stream for a chunked
 * upload, streamed sink and spooled file bodies, ranged and chunked downloads, SSE with
 * Last-Event-ID, request ids and traceparent, slow-loris dropped while others are served,
 * per-tenant 429, and the audit/idempotency seams backed by an in-memory store. */
#include "st_test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"
#include "stella/buf.h"
#include "stella/jwt.h"
#include "stella/mem.h"

#define SECRET "test-secret-test-secret-test-secret!"

static st_api_t *api;
static st_config_t *cfg;
static unsigned port;
static char *tok_rw, *tok_ro, *tok_other, *tok_expired;
static char dl_path[] = "/tmp/st_api_dl_XXXXXX";
static pthread_t sse_thread;
static int sse_started;
static size_t sink_max_seen;

/* ---- in-memory store: the test double behind the audit/idempotency seam ---- */

typedef struct idem_s {
  char tenant[65], key[256], route[64];
  st_api_idem_state state;
  unsigned char hash[32];
  unsigned status;
  char *ctype, *body;
  json_t *headers;
  size_t len;
  struct idem_s *next;
} idem_t;

static struct {
  pthread_mutex_t lock;
  idem_t *idem;
  int audits;
  char last_action[64], last_actor[64], last_tenant[65], last_req[129], last_outcome[16];
} mem = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, "", "", "", "", ""};

static idem_t *idem_find(const char *tenant, const char *key, const char *route) {
  for (idem_t *e = mem.idem; e; e = e->next)
    if (strcmp(e->tenant, tenant) == 0 && strcmp(e->key, key) == 0 &&
        strcmp(e->route, route) == 0)
      return e;
  return NULL;
}

static int m_audit(void *self, PGconn *tx, const st_api_audit_t *a, st_error_t *err) {
  pthread_mutex_lock(&mem.lock);
  mem.audits++;
  snprintf(mem.last_action, sizeof(mem.last_action), "%s", a->action);
  snprintf(mem.last_actor, sizeof(mem.last_actor), "%s", a->actor);
  snprintf(mem.last_tenant, sizeof(mem.last_tenant), "%s", a->tenant);
  snprintf(mem.last_req, sizeof(mem.last_req), "%s", a->request_id);
  snprintf(mem.last_outcome, sizeof(mem.last_outcome), "%s", a->outcome);
  pthread_mutex_unlock(&mem.lock);
  return 0;
}

static int m_begin(void *self, const st_api_idem_key_t *k, const unsigned char h[32],
                   st_api_idem_record_t *rec, st_error_t *err) {
  idem_t *e;
  pthread_mutex_lock(&mem.lock);
  if (!(e = idem_find(k->tenant, k->key, k->route))) {
    e = st_calloc(1, sizeof(*e));
    snprintf(e->tenant, sizeof(e->tenant), "%s", k->tenant);
    snprintf(e->key, sizeof(e->key), "%s", k->key);
    snprintf(e->route, sizeof(e->route), "%s", k->route);
    memcpy(e->hash, h, 32);
    e->state = ST_API_IDEM_IN_FLIGHT;
    e->next = mem.idem;
    mem.idem = e;
    rec->state = ST_API_IDEM_NEW;
  } else {
    rec->state = e->state;
    memcpy(rec->request_hash, e->hash, 32);
    if (e->state == ST_API_IDEM_DONE) {
      rec->reply.status = e->status;
      rec->reply.content_type = st_strdup(e->ctype);
      rec->reply.body = st_strndup(e->body, e->len);
      rec->reply.body_len = e->len;
      rec->reply.headers = json_deep_copy(e->headers);
    }
  }
  pthread_mutex_unlock(&mem.lock);
  return 0;
}

static int m_finish(void *self, const st_api_idem_key_t *k, const st_api_idem_reply_t *r,
                    st_error_t *err) {
  idem_t *e;
  pthread_mutex_lock(&mem.lock);
  e = idem_find(k->tenant, k->key, k->route);
  assert_non_null(e);
  e->state = ST_API_IDEM_DONE;
  e->status = r->status;
  e->ctype = st_strdup(r->content_type);
  e->body = st_strndup(r->body, r->body_len);
  e->len = r->body_len;
  e->headers = json_deep_copy(r->headers);
  pthread_mutex_unlock(&mem.lock);
  return 0;
}

static int m_abort(void *self, const st_api_idem_key_t *k, st_error_t *err) {
  pthread_mutex_lock(&mem.lock);
  for (idem_t **pp = &mem.idem; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->tenant, k->tenant) == 0 && strcmp((*pp)->key, k->key) == 0 &&
        strcmp((*pp)->route, k->route) == 0) {
      idem_t *e = *pp;
      *pp = e->next;
      st_free(e);
      break;
    }
  pthread_mutex_unlock(&mem.lock);
  return 0;
}

static void mem_release(void) {
  for (idem_t *e = mem.idem, *n; e; e = n) {
    n = e->next;
    st_free(e->ctype);
    st_free(e->body);
    json_decref(e->headers);
    st_free(e);
  }
  mem.idem = NULL;
}

/* ---- routes ---- */

static int items_create(st_api_req_t *req, void *arg) {
  json_t *in = st_api_req_json(req), *out;
  const char *name;
  char res[128];
  int rc;

  if ((rc = st_api_idempotency_begin(req)))
    return 0;
  name = json_string_value(json_object_get(in, "name"));
  if (!name)
    return st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "name: required string");
  snprintf(res, sizeof(res), "items/%s", name);
  if ((rc = st_api_audit(req, NULL, "item.create", res, "ok")))
    return rc;
  out = json_pack("{s:s, s:s}", "name", name, "tenant", st_api_req_auth(req)->tenant);
  rc = st_api_add_header(req, "Location", res);
  if (!rc)
    rc = st_api_reply_json(req, 201, out);
  json_decref(out);
  return rc;
}

static int items_fail(st_api_req_t *req, void *arg) {
  if (st_api_idempotency_begin(req))
    return 0;
  return ST_EDB; /* as a database failure would: 500, no detail, key released */
}

static int items_get(st_api_req_t *req, void *arg) {
  json_t *out;
  int rc;
  if ((rc = st_api_tenant_check(req, "acme"))) /* every item belongs to acme */
    return rc;
  out = json_pack("{s:s}", "id", st_api_req_param(req, "id"));
  rc = st_api_reply_json(req, 200, out);
  json_decref(out);
  return rc;
}

static int upload_sink(st_api_req_t *req, const char *data, size_t len, void *arg) {
  size_t *n = st_api_req_user(req);
  if (!n) {
    n = st_calloc(1, sizeof(*n));
    st_api_req_set_user(req, n, st_free);
  }
  *n += len;
  if (*n > sink_max_seen)
    sink_max_seen = *n;
  return 0;
}

static int upload_done(st_api_req_t *req, void *arg) {
  size_t *n = st_api_req_user(req);
  char buf[64];
  snprintf(buf, sizeof(buf), "{\"bytes\":%zu}", n ? *n : 0);
  return st_api_reply_bytes(req, 200, "application/json", buf, strlen(buf));
}

static int spool_done(st_api_req_t *req, void *arg) {
  int fd = st_api_req_body_fd(req);
  unsigned long long sum = 0, n = 0;
  unsigned char buf[4096];
  ssize_t r;
  char out[96];
  while ((r = read(fd, buf, sizeof(buf))) > 0)
    for (ssize_t i = 0; i < r; i++, n++)
      sum += buf[i];
  snprintf(out, sizeof(out), "{\"bytes\":%llu,\"sum\":%llu}", n, sum);
  return st_api_reply_bytes(req, 200, "application/json", out, strlen(out));
}

static int download(st_api_req_t *req, void *arg) {
  return st_api_reply_file(req, dl_path, "application/octet-stream");
}

static long chunk_read(void *arg, unsigned long long pos, char *buf, size_t max) {
  static const char *parts[] = {"one,", "two,", "three"};
  int *i = arg;
  size_t n;
  if (*i == 3)
    return 0;
  n = strlen(parts[*i]);
  memcpy(buf, parts[(*i)++], n);
  return (long)n;
}

static int chunks(st_api_req_t *req, void *arg) {
  int *i = st_calloc(1, sizeof(*i));
  return st_api_reply_stream(req, 200, "text/plain", chunk_read, i, st_free);
}

typedef struct {
  st_api_sse_t *sse;
  long next;
} sse_job_t;

static void *sse_producer(void *arg) {
  sse_job_t *j = arg;
  char id[32];
  struct timespec pause = {0, 20 * 1000 * 1000};
  for (int i = 0; i < 3; i++) {
    nanosleep(&pause, NULL); /* let the reader find the queue empty and suspend */
    snprintf(id, sizeof(id), "%ld", j->next + i);
    if (st_api_sse_send(j->sse, id, "tick", i == 1 ? "line1\nline2" : "x"))
      break;
  }
  st_api_sse_close(j->sse);
  st_free(j);
  return NULL;
}

static int events(st_api_req_t *req, void *arg) {
  const char *last = st_api_req_last_event_id(req);
  sse_job_t *j = st_calloc(1, sizeof(*j));
  int rc;
  j->next = last ? strtol(last, NULL, 10) + 1 : 1;
  if ((rc = st_api_reply_sse(req, &j->sse))) {
    st_free(j);
    return rc;
  }
  assert_int_equal(st_api_sse_send(j->sse, "bad\nid", NULL, "x"), ST_EINVAL);
  sse_started = 1;
  return pthread_create(&sse_thread, NULL, sse_producer, j) ? ST_EINTERNAL : 0;
}

static int trace(st_api_req_t *req, void *arg) {
  const st_api_trace_t *t = st_api_req_trace(req);
  json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "trace_id", t->trace_id, "parent_id",
                          t->parent_id, "traceparent", st_api_req_traceparent(req),
                          "request_id", st_api_req_id(req));
  int rc = st_api_reply_json(req, 200, out);
  json_decref(out);
  return rc;
}

static const st_api_route_t test_routes[] = {
    {"POST", "/items", "evidence:write", 0, ST_API_BODY_JSON, 0, items_create, NULL, NULL},
    {"POST", "/items/fail", "evidence:write", 0, ST_API_BODY_JSON, 0, items_fail, NULL, NULL},
    {"GET", "/items/{id}", "evidence:read", 0, ST_API_BODY_NONE, 0, items_get, NULL, NULL},
    {"POST", "/upload", "evidence:write", 0, ST_API_BODY_SINK, 1000, upload_done, upload_sink,
     NULL},
    {"PUT", "/spool", "evidence:write", 0, ST_API_BODY_FILE, 1 << 20, spool_done, NULL, NULL},
    {"GET", "/download", NULL, ST_API_PUBLIC, ST_API_BODY_NONE, 0, download, NULL, NULL},
    {"GET", "/chunks", NULL, ST_API_PUBLIC, ST_API_BODY_NONE, 0, chunks, NULL, NULL},
    {"GET", "/events", NULL, ST_API_PUBLIC, ST_API_BODY_NONE, 0, events, NULL, NULL},
    {"GET", "/trace", NULL, ST_API_PUBLIC, ST_API_BODY_NONE, 0, trace, NULL, NULL},
};

/* ---- clients ---- */

typedef struct {
  long status;
  st_buf_t body, hdrs;
} resp_t;

static size_t collect(char *p, size_t sz, size_t n, void *ud) {
  return st_buf_add(ud, p, sz * n) ? 0 : sz * n;
}

static void resp_release(resp_t *r) {
  st_buf_release(&r->body);
  st_buf_release(&r->hdrs);
}

/* Header value from a response (case-insensitive name), copied into out. */
static int hdr(const resp_t *r, const char *name, char *out, size_t cap) {
  const char *p = r->hdrs.data;
  size_t n = strlen(name);
  while ((p = strchr(p, '\n'))) {
    p++;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1, *e;
      while (*v == ' ')
        v++;
      e = v + strcspn(v, "\r\n");
      snprintf(out, cap, "%.*s", (int)(e - v), v);
      return 1;
    }
  }
  return 0;
}

static resp_t http(const char *method, const char *path, const char *token, const char *h1,
                   const char *h2, const char *body) {
  CURL *c = curl_easy_init();
  struct curl_slist *hl = NULL;
  char url[256], auth[ST_JWT_MAX_TOKEN + 32];
  resp_t r = {0, ST_BUF_INIT, ST_BUF_INIT};

  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (token) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    hl = curl_slist_append(hl, auth);
  }
  if (h1)
    hl = curl_slist_append(hl, h1);
  if (h2)
    hl = curl_slist_append(hl, h2);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.hdrs);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return r;
}

static json_t *body_json(const resp_t *r) {
  json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
  assert_non_null(j);
  return j;
}

/* A problem+json reply of the given kind, instance = X-Request-Id. */
static void assert_problem(const resp_t *r, long status, const char *slug) {
  char ct[128], id[160], type[128];
  json_t *j = body_json(r);
  assert_int_equal(r->status, status);
  assert_true(hdr(r, "Content-Type", ct, sizeof(ct)));
  assert_string_equal(ct, "application/problem+json");
  assert_true(hdr(r, "X-Request-Id", id, sizeof(id)));
  snprintf(type, sizeof(type), "https://stella.dev/problems/%s", slug);
  assert_string_equal(json_string_value(json_object_get(j, "type")), type);
  assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
  assert_string_equal(json_string_value(json_object_get(j, "instance")), id);
  assert_non_null(json_string_value(json_object_get(j, "title")));
  json_decref(j);
}

static int dial(void) {
  struct sockaddr_in a = {0};
  struct timeval tv = {20, 0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

/* Read until the server closes (bounded by SO_RCVTIMEO); -1 if it never did. */
static long read_to_eof(int fd, st_buf_t *out) {
  char buf[4096];
  while (1) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return (long)out->len;
    if (n < 0)
      return -1;
    assert_int_equal(st_buf_add(out, buf, (size_t)n), 0);
  }
}

static char *mint(const char *tenant, const char *scope, long long exp) {
  st_jwt_keys_t *k = NULL;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  char *t = NULL;
  assert_int_equal(st_jwt_keys_new(&k, SECRET, strlen(SECRET), NULL, NULL, &err), 0);
  c.tenant = (char *)tenant;
  c.scope = (char *)scope;
  c.sub = "alice";
  c.exp = exp;
  assert_int_equal(st_jwt_sign(k, ST_JWT_HS256, &c, &t, &err), 0);
  st_jwt_keys_free(k);
  return t;
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  const char *src = getenv("STELLA_SOURCE_DIR");
  char spec[4096];
  st_api_store_t store = {NULL, m_audit, m_begin, m_finish, m_abort, NULL};
  FILE *f;
  int fd;

  snprintf(spec, sizeof(spec), "%s/schemas/openapi/stella.yaml", src ? src : "../..");
  assert_int_equal(st_config_load(&cfg, "/dev/null", &err), 0);
  assert_int_equal(st_config_set(cfg, "api_listen", "127.0.0.1:0", &err), 0);
  assert_int_equal(st_config_set(cfg, "jwt_hs256_secret", SECRET, &err), 0);
  assert_int_equal(st_config_set(cfg, "api_openapi_spec", spec, &err), 0);
  assert_int_equal(st_config_set(cfg, "api_connection_timeout_s", "1", &err), 0);
  assert_int_equal(st_config_set(cfg, "api_json_body_max", "4096", &err), 0);
  assert_int_equal(st_config_set(cfg, "api_rate_per_s", "0", &err), 0);
  assert_int_equal(st_api_new(&api, cfg, &err), 0);
  assert_int_equal(st_api_add_routes(api, test_routes,
                                     sizeof(test_routes) / sizeof(test_routes[0]), &err), 0);
  st_api_set_store(api, &store);
  assert_int_equal(st_api_listen(api, &err), 0);
  port = st_api_port(api);
  assert_true(port > 0);
  tok_rw = mint("acme", "evidence:read evidence:write", time(NULL) + 600);
  tok_ro = mint("acme", "evidence:read", time(NULL) + 600);
  tok_other = mint("globex", "evidence:read evidence:write", time(NULL) + 600);
  tok_expired = mint("acme", "evidence:read", time(NULL) - 3600);
  fd = mkstemp(dl_path);
  assert_true(fd >= 0);
  f = fdopen(fd, "w");
  for (int i = 0; i < 1000; i++)
    fputc('a' + i % 26, f);
  fclose(f);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return 0;
}

static int teardown(void **state) {
  if (sse_started)
    pthread_join(sse_thread, NULL);
  st_api_free(api);
  st_config_free(cfg);
  st_free(tok_rw);
  st_free(tok_ro);
  st_free(tok_other);
  st_free(tok_expired);
  unlink(dl_path);
  mem_release();
  curl_global_cleanup();
  return 0;
}

/* ---- tests ---- */

static void test_auth(void **state) {
  resp_t r;
  char v[256], *forged;

  r = http("GET", "/whoami", NULL, NULL, NULL, NULL);
  assert_problem(&r, 401, "unauthorized");
  assert_true(hdr(&r, "WWW-Authenticate", v, sizeof(v)));
  assert_string_equal(v, "Bearer realm=\"stella\"");
  resp_release(&r);
  r = http("GET", "/whoami", tok_expired, NULL, NULL, NULL);
  assert_problem(&r, 401, "unauthorized");
  assert_true(hdr(&r, "WWW-Authenticate", v, sizeof(v)));
  assert_non_null(strstr(v, "invalid_token"));
  resp_release(&r);
  forged = st_strdup(tok_rw);
  forged[strlen(forged) - 2] ^= 1;
  r = http("GET", "/whoami", forged, NULL, NULL, NULL);
  assert_problem(&r, 401, "unauthorized");
  resp_release(&r);
  st_free(forged);
  r = http("GET", "/whoami", NULL, "Authorization: Basic YTpi", NULL, NULL);
  assert_problem(&r, 401, "unauthorized");
  resp_release(&r);
  /* wrong scope: 403 naming the scope in the challenge; the refused mutation is audited */
  {
    int audits = mem.audits;
    r = http("POST", "/items", tok_ro, "Content-Type: application/json", NULL,
             "{\"name\":\"x\"}");
    assert_problem(&r, 403, "forbidden");
    assert_true(hdr(&r, "WWW-Authenticate", v, sizeof(v)));
    assert_non_null(strstr(v, "scope=\"evidence:write\""));
    resp_release(&r);
    assert_int_equal(mem.audits, audits + 1);
    assert_string_equal(mem.last_action, "POST /items");
    assert_string_equal(mem.last_outcome, "denied");
  }
  /* whoami */
  r = http("GET", "/whoami", tok_ro, NULL, NULL, NULL);
  assert_int_equal(r.status, 200);
  {
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "tenant")), "acme");
    assert_string_equal(json_string_value(json_object_get(j, "subject")), "alice");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "scopes"), 0)),
                        "evidence:read");
    json_decref(j);
  }
  assert_true(hdr(&r, "Cache-Control", v, sizeof(v)));
  assert_string_equal(v, "no-store");
  resp_release(&r);
}

static void test_routing_and_tenancy(void **state) {
  resp_t r;
  char v[128];

  r = http("GET", "/items/i1", tok_ro, NULL, NULL, NULL);
  assert_int_equal(r.status, 200);
  resp_release(&r);
  r = http("GET", "/items/i1", tok_other, NULL, NULL, NULL); /* another tenant's item */
  assert_problem(&r, 404, "not-found");
  resp_release(&r);
  r = http("GET", "/nope", NULL, NULL, NULL, NULL);
  assert_problem(&r, 404, "not-found");
  resp_release(&r);
  r = http("DELETE", "/items/i1", tok_rw, NULL, NULL, NULL);
  assert_problem(&r, 405, "method-not-allowed");
  assert_true(hdr(&r, "Allow", v, sizeof(v)));
  assert_string_equal(v, "GET, HEAD");
  resp_release(&r);
}

static void test_json_bodies(void **state) {
  resp_t r;
  char big[5000];

  r = http("POST", "/items", tok_rw, "Content-Type: application/json", NULL, "{\"name\": ");
  assert_problem(&r, 400, "malformed-json");
  resp_release(&r);
  r = http("POST", "/items", tok_rw, "Content-Type: application/json", NULL,
           "{\"name\":\"a\",\"name\":\"b\"}");
  assert_problem(&r, 400, "malformed-json");
  resp_release(&r);
  r = http("POST", "/items", tok_rw, "Content-Type: text/plain", NULL, "{\"name\":\"x\"}");
  assert_problem(&r, 415, "unsupported-media-type");
  resp_release(&r);
  memset(big, ' ', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  big[0] = '{';
  big[sizeof(big) - 2] = '}';
  r = http("POST", "/items", tok_rw, "Content-Type: application/json", NULL, big);
  assert_problem(&r, 413, "payload-too-large");
  resp_release(&r);
  r = http("POST", "/items", tok_rw, "Content-Type: application/json; charset=utf-8", NULL,
           "{\"name\":\"ok\"}");
  assert_int_equal(r.status, 201);
  resp_release(&r);
  /* a body on a route that takes none */
  r = http("GET", "/whoami", tok_ro, "Content-Type: application/json", NULL, "{}");
  assert_problem(&r, 413, "payload-too-large");
  resp_release(&r);
}

static void test_huge_content_length(void **state) {
  st_buf_t out = ST_BUF_INIT;
  char req[ST_JWT_MAX_TOKEN + 512];
  int fd = dial();
  size_t before = sink_max_seen;

  snprintf(req, sizeof(req),
           "POST /upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
           "Content-Length: 2147483648\r\n\r\nabcd",
           tok_rw);
  assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
  /* answered and closed without waiting for 2 GB */
  assert_true(read_to_eof(fd, &out) > 0);
  assert_non_null(strstr(out.data, "HTTP/1.1 413"));
  assert_non_null(strstr(out.data, "payload-too-large"));
  assert_int_equal(sink_max_seen, before); /* the sink never saw a byte */
  close(fd);
  st_buf_release(&out);
}

static void test_chunked_over_limit(void **state) {
  st_buf_t out = ST_BUF_INIT;
  char req[ST_JWT_MAX_TOKEN + 512], chunk[600];
  int fd = dial();

  snprintf(req, sizeof(req),
           "POST /upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           tok_rw);
  send(fd, req, strlen(req), MSG_NOSIGNAL);
  snprintf(chunk, sizeof(chunk), "1f4\r\n%0500d\r\n", 0);
  for (int i = 0; i < 8; i++)
    send(fd, chunk, strlen(chunk), MSG_NOSIGNAL);
  send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
  assert_true(read_to_eof(fd, &out) > 0);
  assert_non_null(strstr(out.data, "HTTP/1.1 413"));
  assert_non_null(strstr(out.data, "payload-too-large"));
  assert_true(sink_max_seen <= 1000);
  close(fd);
  st_buf_reset(&out);

  /* an endless body past the limit is not read to its end: the server hangs up */
  fd = dial();
  send(fd, req, strlen(req), MSG_NOSIGNAL);
  for (int i = 0; i < 400; i++)
    if (send(fd, chunk, strlen(chunk), MSG_NOSIGNAL) < 0)
      break; /* closed by the server */
  assert_true(read_to_eof(fd, &out) >= 0);
  assert_null(strstr(out.data, "HTTP/1.1 200"));
  assert_true(sink_max_seen <= 1000);
  close(fd);
  st_buf_release(&out);

  /* within the limit the sink sees every byte */
  {
    char body[801];
    resp_t r;
    memset(body, 'x', 800);
    body[800] = '\0';
    r = http("POST", "/upload", tok_rw, NULL, NULL, body);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"bytes\":800"));
    resp_release(&r);
  }
}

static void test_spooled_file(void **state) {
  char *body = st_malloc(300001);
  unsigned long long sum = 0;
  char want[96];
  resp_t r;
  for (int i = 0; i < 300000; i++) {
    body[i] = (char)('a' + i % 26);
    sum += (unsigned char)body[i];
  }
  body[300000] = '\0';
  r = http("PUT", "/spool", tok_rw, "Content-Type: application/octet-stream", NULL, body);
  assert_int_equal(r.status, 200);
  snprintf(want, sizeof(want), "{\"bytes\":300000,\"sum\":%llu}", sum);
  assert_string_equal(r.body.data, want);
  resp_release(&r);
  st_free(body);
}

static void test_ranges(void **state) {
  resp_t r;
  char v[128];

  r = http("GET", "/download", NULL, NULL, NULL, NULL);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body.len, 1000);
  assert_true(hdr(&r, "Accept-Ranges", v, sizeof(v)));
  resp_release(&r);
  r = http("GET", "/download", NULL, "Range: bytes=26-30", NULL, NULL);
  assert_int_equal(r.status, 206);
  assert_string_equal(r.body.data, "abcde");
  assert_true(hdr(&r, "Content-Range", v, sizeof(v)));
  assert_string_equal(v, "bytes 26-30/1000");
  resp_release(&r);
  r = http("GET", "/download", NULL, "Range: bytes=-4", NULL, NULL);
  assert_int_equal(r.status, 206);
  assert_string_equal(r.body.data, "ijkl"); /* bytes 996..999: 996 % 26 = 8 */
  resp_release(&r);
  r = http("GET", "/download", NULL, "Range: bytes=990-", NULL, NULL);
  assert_int_equal(r.status, 206);
  assert_int_equal(r.body.len, 10);
  resp_release(&r);
  r = http("GET", "/download", NULL, "Range: bytes=1000-", NULL, NULL);
  assert_problem(&r, 416, "range-not-satisfiable");
  assert_true(hdr(&r, "Content-Range", v, sizeof(v)));
  assert_string_equal(v, "bytes */1000");
  resp_release(&r);
  r = http("GET", "/download", NULL, "Range: bytes=0-1,5-6", NULL, NULL); /* multi: whole */
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body.len, 1000);
  resp_release(&r);
}

static void test_chunked_response(void **state) {
  resp_t r = http("GET", "/chunks", NULL, NULL, NULL, NULL);
  char v[64];
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body.data, "one,two,three");
  assert_true(hdr(&r, "Transfer-Encoding", v, sizeof(v)));
  assert_string_equal(v, "chunked");
  resp_release(&r);
}

static void test_sse(void **state) {
  resp_t r = http("GET", "/events", NULL, "Last-Event-ID: 41", NULL, NULL);
  char v[64];
  assert_int_equal(r.status, 200);
  assert_true(hdr(&r, "Content-Type", v, sizeof(v)));
  assert_string_equal(v, "text/event-stream");
  assert_string_equal(r.body.data, "id: 42\nevent: tick\ndata: x\n\n"
                                   "id: 43\nevent: tick\ndata: line1\ndata: line2\n\n"
                                   "id: 44\nevent: tick\ndata: x\n\n");
  resp_release(&r);
  pthread_join(sse_thread, NULL);
  sse_started = 0;
}

static void test_request_ids_and_trace(void **state) {
  resp_t r;
  json_t *j;
  char v[160];

  r = http("GET", "/trace", NULL, "X-Request-Id: client-42.a",
           "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL);
  j = body_json(&r);
  assert_true(hdr(&r, "X-Request-Id", v, sizeof(v)));
  assert_string_equal(v, "client-42.a");
  assert_string_equal(json_string_value(json_object_get(j, "trace_id")),
                      "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(json_string_value(json_object_get(j, "parent_id")), "00f067aa0ba902b7");
  /* downstream gets the same trace with this request's own span */
  assert_int_equal(strncmp(json_string_value(json_object_get(j, "traceparent")),
                           "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0);
  assert_string_not_equal(json_string_value(json_object_get(j, "traceparent")) + 36,
                          "00f067aa0ba902b7-01");
  json_decref(j);
  resp_release(&r);
  /* unsafe id replaced, invalid traceparent starts a new trace */
  r = http("GET", "/trace", NULL, "X-Request-Id: a b<script>",
           "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01", NULL);
  j = body_json(&r);
  assert_true(hdr(&r, "X-Request-Id", v, sizeof(v)));
  assert_int_equal(strlen(v), 32);
  assert_int_equal(strlen(json_string_value(json_object_get(j, "trace_id"))), 32);
  assert_string_not_equal(json_string_value(json_object_get(j, "trace_id")),
                          "00000000000000000000000000000000");
  assert_string_equal(json_string_value(json_object_get(j, "parent_id")), "");
  json_decref(j);
  resp_release(&r);
}

static void test_slow_loris(void **state) {
  const char *partial = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ";
  st_buf_t out = ST_BUF_INIT;
  int fd = dial();
  resp_t r;

  assert_int_equal(send(fd, partial, strlen(partial), MSG_NOSIGNAL), (ssize_t)strlen(partial));
  /* another client is served while the slow one hangs */
  r = http("GET", "/healthz", NULL, NULL, NULL, NULL);
  assert_int_equal(r.status, 200);
  resp_release(&r);
  /* the idle timeout (1 s here) drops the slow client: EOF well before SO_RCVTIMEO */
  assert_int_equal(read_to_eof(fd, &out), 0);
  close(fd);
  st_buf_release(&out);
}

static void test_openapi(void **state) {
  resp_t r = http("GET", "/.well-known/openapi", NULL, NULL, NULL, NULL);
  char etag[128], inm[160], v[64];
  assert_int_equal(r.status, 200);
  assert_true(hdr(&r, "ETag", etag, sizeof(etag)));
  assert_int_equal(strlen(etag), 66);
  assert_true(hdr(&r, "X-API-Version", v, sizeof(v)));
  assert_string_equal(v, "0.1.0");
  assert_non_null(strstr(r.body.data, "openapi: 3.1.0"));
  resp_release(&r);
  snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
  r = http("GET", "/.well-known/openapi", NULL, inm, NULL, NULL);
  assert_int_equal(r.status, 304);
  assert_int_equal(r.body.len, 0);
  resp_release(&r);
  r = http("GET", "/.well-known/openapi", NULL, "If-None-Match: \"other\"", NULL, NULL);
  assert_int_equal(r.status, 200);
  resp_release(&r);
}

static void hash_of(const char *path, const char *body, unsigned char out[32]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  EVP_DigestUpdate(md, "POST", 5);
  EVP_DigestUpdate(md, path, strlen(path) + 1);
  EVP_DigestUpdate(md, body, strlen(body));
  EVP_DigestFinal_ex(md, out, NULL);
  EVP_MD_CTX_free(md);
}

static void test_idempotency_and_audit(void **state) {
  const char *ct = "Content-Type: application/json";
  resp_t r1, r2;
  char id[160], v[32];
  int audits = mem.audits;

  r1 = http("POST", "/items", tok_rw, ct, "Idempotency-Key: k1", "{\"name\":\"n1\"}");
  assert_int_equal(r1.status, 201);
  assert_int_equal(mem.audits, audits + 1);
  assert_string_equal(mem.last_action, "item.create");
  assert_string_equal(mem.last_actor, "alice");
  assert_string_equal(mem.last_tenant, "acme");
  assert_true(hdr(&r1, "X-Request-Id", id, sizeof(id)));
  assert_string_equal(mem.last_req, id);
  /* replay: the first reply again, no second effect */
  r2 = http("POST", "/items", tok_rw, ct, "Idempotency-Key: k1", "{\"name\":\"n1\"}");
  assert_int_equal(r2.status, 201);
  assert_string_equal(r2.body.data, r1.body.data);
  assert_true(hdr(&r2, "Idempotent-Replayed", v, sizeof(v)));
  assert_true(hdr(&r2, "Location", v, sizeof(v))); /* the handler's header is kept too */
  assert_string_equal(v, "items/n1");
  assert_int_equal(mem.audits, audits + 1);
  resp_release(&r2);
  resp_release(&r1);
  /* same key, other body */
  r2 = http("POST", "/items", tok_rw, ct, "Idempotency-Key: k1", "{\"name\":\"n2\"}");
  assert_problem(&r2, 422, "idempotency-key-reused");
  resp_release(&r2);
  /* the same key in another tenant is another key */
  r2 = http("POST", "/items", tok_other, ct, "Idempotency-Key: k1", "{\"name\":\"n2\"}");
  assert_int_equal(r2.status, 201);
  resp_release(&r2);
  /* in flight: another request holds the key */
  {
    st_api_idem_record_t rec = {0};
    unsigned char h[32];
    hash_of("/items", "{\"name\":\"n3\"}", h);
    st_api_idem_key_t k2 = {"acme", "k2", "POST /items"};
    assert_int_equal(m_begin(NULL, &k2, h, &rec, NULL), 0);
    assert_int_equal(rec.state, ST_API_IDEM_NEW);
    r2 = http("POST", "/items", tok_rw, ct, "Idempotency-Key: k2", "{\"name\":\"n3\"}");
    assert_problem(&r2, 409, "idempotency-in-flight");
    resp_release(&r2);
    m_abort(NULL, &k2, NULL);
  }
  /* a 5xx releases the key so a retry runs again */
  r2 = http("POST", "/items/fail", tok_rw, ct, "Idempotency-Key: k3", "{}");
  assert_problem(&r2, 500, "internal");
  assert_null(strstr(r2.body.data, "detail"));
  resp_release(&r2);
  pthread_mutex_lock(&mem.lock);
  assert_null(idem_find("acme", "k3", "POST /items/fail"));
  pthread_mutex_unlock(&mem.lock);
  r2 = http("POST", "/items", tok_rw, ct, "Idempotency-Key: bad key", "{\"name\":\"n4\"}");
  assert_problem(&r2, 400, "bad-request");
  resp_release(&r2);
}

static void test_rate_limit(void **state) {
  st_api_t *limited = NULL;
  st_error_t err = ST_ERROR_INIT;
  unsigned saved = port;
  char v[32];
  resp_t r;

  assert_int_equal(st_config_set(cfg, "api_rate_per_s", "1", &err), 0);
  assert_int_equal(st_config_set(cfg, "api_rate_burst", "2", &err), 0);
  assert_int_equal(st_api_new(&limited, cfg, &err), 0);
  assert_int_equal(st_api_listen(limited, &err), 0);
  port = st_api_port(limited);
  for (int i = 0; i < 2; i++) {
    r = http("GET", "/whoami", tok_ro, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    resp_release(&r);
  }
  r = http("GET", "/whoami", tok_ro, NULL, NULL, NULL);
  assert_problem(&r, 429, "rate-limited");
  assert_true(hdr(&r, "Retry-After", v, sizeof(v)));
  assert_true(atoi(v) >= 1);
  resp_release(&r);
  r = http("GET", "/whoami", tok_other, NULL, NULL, NULL); /* other tenants unaffected */
  assert_int_equal(r.status, 200);
  resp_release(&r);
  r = http("GET", "/healthz", NULL, NULL, NULL, NULL); /* public routes are not metered */
  assert_int_equal(r.status, 200);
  resp_release(&r);
  port = saved;
  st_api_free(limited);
  assert_int_equal(st_config_set(cfg, "api_rate_per_s", "0", &err), 0);
}

static void test_config_errors(void **state) {
  st_config_t *c = NULL;
  st_api_t *a = NULL;
  st_error_t err = ST_ERROR_INIT;
  unsetenv("STELLA_JWT_HS256_SECRET"); /* ops/services.sh env exports a dev secret */
  assert_int_equal(st_config_load(&c, "/dev/null", &err), 0);
  assert_int_equal(st_api_new(&a, c, &err), ST_ECONFIG); /* no JWT key */
  assert_non_null(strstr(err.msg, "jwt_hs256_secret"));
  assert_int_equal(st_config_set(c, "jwt_hs256_secret", SECRET, &err), 0);
  assert_int_equal(st_config_set(c, "api_openapi_spec", "/nonexistent.yaml", &err), 0);
  assert_int_equal(st_api_new(&a, c, &err), ST_ECONFIG);
  assert_non_null(strstr(err.msg, "api_openapi_spec"));
  st_config_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_auth),
      cmocka_unit_test(test_routing_and_tenancy),
      cmocka_unit_test(test_json_bodies),
      cmocka_unit_test(test_huge_content_length),
      cmocka_unit_test(test_chunked_over_limit),
      cmocka_unit_test(test_spooled_file),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_chunked_response),
      cmocka_unit_test(test_sse),
      cmocka_unit_test(test_request_ids_and_trace),
      cmocka_unit_test(test_slow_loris),
      cmocka_unit_test(test_openapi),
      cmocka_unit_test(test_idempotency_and_audit),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test(test_config_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
