/* server.c: the libmicrohttpd daemon and the life of one request.
 *
 * MHD calls the access handler first when the headers are in: that call assigns the
 * request id and trace, and for a request with a body routes (404/405), authenticates
 * (401/403), takes a rate token (429) and checks the declared body against the route
 * (413 from Content-Length, 415), queueing the refusal at once so the body is never read
 * (MHD then closes the connection). A request without a body is decided on its final
 * call instead, which keeps the connection alive after a refusal. Body chunks are
 * counted against the route limit as they arrive and handed to the route's body mode.
 * libmicrohttpd 0.9.75 cannot queue a response while a body is arriving, so a body
 * without Content-Length that passes the limit (or whose sink fails) stops being stored,
 * is discarded for at most DISCARD_MAX more bytes and answered 413 at its end; past that
 * the connection is closed without a reply. The last call runs the handler. The completion callback logs one access line and frees the request.
 * Threads: MHD's pool (api_threads); one connection stays on one thread. */
#define _GNU_SOURCE /* O_TMPFILE */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_internal.h"
#include "routes_export.h"
#include "routes_timeline.h"
#include "stella/log.h"
#include "stella/mem.h"

#define MHD_MEMORY_LIMIT (64 * 1024) /* per connection: bounds request headers */
#define DISCARD_MAX (64 * 1024)       /* body bytes read past a failure before closing */

static void req_free(st_api_req_t *req) {
  st__hdr_t *h, *next;
  if (!req)
    return;
  if (req->user_free)
    req->user_free(req->user);
  for (h = req->headers; h; h = next) {
    next = h->next;
    st_free(h->name);
    st_free(h->value);
    st_free(h);
  }
  st__match_release(&req->match);
  st_jwt_claims_release(&req->claims);
  st_buf_release(&req->body);
  json_decref(req->json);
  if (req->body_fd >= 0)
    close(req->body_fd);
  st_free(req->idem_key);
  st_free(req->idem_route);
  st_free(req->path);
  st_free(req);
}

static void log_ctx(const st_api_req_t *req) {
  st_log_ctx_set(req->authed ? req->auth.tenant : NULL, NULL, req->trace.trace_id);
}

/* Strict decimal Content-Length; -1 when absent, -2 when malformed. */
static long long content_length(st_api_req_t *req) {
  const char *v = st_api_req_header(req, "Content-Length");
  unsigned long long n = 0;
  if (!v)
    return -1;
  if (!*v)
    return -2;
  for (; *v; v++) {
    if (*v < '0' || *v > '9' || n > (~0ULL >> 1) / 10)
      return -2;
    n = n * 10 + (unsigned)(*v - '0');
  }
  return (long long)(n > (~0ULL >> 1) ? (~0ULL >> 1) : n);
}

static int has_body(st_api_req_t *req) {
  long long cl = content_length(req);
  return cl > 0 || cl == -2 || (cl == -1 && st_api_req_header(req, "Transfer-Encoding"));
}

static unsigned long long body_limit(const st_api_req_t *req) {
  const st_api_route_t *r = req->route;
  if (r->body == ST_API_BODY_NONE)
    return 0;
  if (r->body_limit)
    return r->body_limit;
  return r->body == ST_API_BODY_JSON ? req->api->json_max : req->api->body_max;
}

static int open_tmp(st_api_req_t *req) {
  const char *dir = req->api->tmp_dir;
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    st_logkv(ST_LOG_ERROR, "cannot create upload file", "dir", dir, "error", strerror(errno),
             NULL);
    return ST_EIO;
  }
  req->body_fd = fd;
  return 0;
}

static int is_json_type(const char *ct) {
  size_t n;
  if (!ct)
    return 0;
  n = strcspn(ct, "; \t");
  return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Everything decided from the request line and headers. 0 = go on reading. */
static int req_begin(st_api_req_t *req) {
  st_api_t *api = req->api;
  long long cl = content_length(req);
  int body = has_body(req);
  char retry[32];
  long wait;
  int rc;

  rc = st__router_match(&api->router, req->method, req->path, &req->match);
  if (rc == ST_ENOENT)
    return st_api_reply_problem(req, ST_API_P_NOT_FOUND, NULL), 1;
  if (rc == ST_EPERM) {
    if (!st_api_add_header(req, "Allow", req->match.allow))
      st_api_reply_problem(req, ST_API_P_METHOD_NOT_ALLOWED, "allowed: %s", req->match.allow);
    return 1;
  }
  if (rc)
    return st_api_reply_error(req, rc, NULL), 1;
  req->route = &req->match.route->r;
  if (!(req->route->flags & ST_API_PUBLIC)) {
    if (st__auth_check(req))
      return 1;
    log_ctx(req);
    if ((wait = st__quota_take(api->quota, req->auth.tenant, st__now_ms())) > 0) {
      snprintf(retry, sizeof(retry), "%ld", wait);
      if (!st_api_add_header(req, "Retry-After", retry))
        st_api_reply_problem(req, ST_API_P_RATE_LIMITED, "rate limit of this tenant reached");
      return 1;
    }
  }
  if (cl == -2)
    return st_api_reply_problem(req, ST_API_P_BAD_REQUEST, "malformed Content-Length"), 1;
  if (body && (cl > 0 ? (unsigned long long)cl : 1) > body_limit(req))
    return st_api_reply_problem(req, ST_API_P_PAYLOAD_TOO_LARGE,
                                "this route accepts at most %llu body bytes", body_limit(req)),
           1;
  if (body && req->route->body == ST_API_BODY_JSON &&
      !is_json_type(st_api_req_header(req, "Content-Type")))
    return st_api_reply_problem(req, ST_API_P_UNSUPPORTED_MEDIA_TYPE,
                                "expected Content-Type application/json"),
           1;
  if (req->route->body == ST_API_BODY_JSON)
    st_buf_init(&req->body, (size_t)body_limit(req));
  if (req->route->body == ST_API_BODY_FILE && (rc = open_tmp(req)))
    return st_api_reply_error(req, rc, NULL), 1;
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return ST_EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One body chunk; 0 or a code whose problem must be sent. */
static int body_feed(st_api_req_t *req, const char *data, size_t n) {
  const st_api_route_t *r = req->route;
  if (n > body_limit(req) - req->body_len)
    return ST_ETOOBIG;
  req->body_len += n;
  switch (r->body) {
  case ST_API_BODY_JSON:
    return st_buf_add(&req->body, data, n);
  case ST_API_BODY_SINK:
    return r->sink(req, data, n, r->arg);
  case ST_API_BODY_FILE:
    return write_all(req->body_fd, data, n);
  default:
    return ST_ETOOBIG;
  }
}

static void run_handler(st_api_req_t *req) {
  const st_api_route_t *r = req->route;
  int rc;

  req->handled = 1;
  if (r->body == ST_API_BODY_JSON && req->body_len) {
    json_error_t jerr;
    req->json = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req->json) {
      st_api_reply_problem(req, ST_API_P_MALFORMED_JSON, "line %d column %d: %s", jerr.line,
                           jerr.column, jerr.text);
      return;
    }
  }
  if (r->body == ST_API_BODY_FILE && lseek(req->body_fd, 0, SEEK_SET) != 0) {
    st_api_reply_error(req, ST_EIO, NULL);
    return;
  }
  rc = r->handler(req, r->arg);
  if (req->replied) {
    if (rc < 0)
      st_logkv(ST_LOG_WARN, "handler failed after replying", "error", st_err_name(rc), NULL);
    return;
  }
  if (rc >= 0)
    st_logkv(ST_LOG_ERROR, "handler returned without a reply", "route", r->pattern, NULL);
  st_api_reply_error(req, rc < 0 ? rc : ST_EINTERNAL, NULL);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload, size_t *upload_size, void **con_cls) {
  st_api_t *api = cls;
  st_api_req_t *req = *con_cls;
  enum MHD_Result ret = MHD_YES;

  if (!req) {
    if (!(req = st_calloc(1, sizeof(*req))) || !(req->path = st_strdup(url))) {
      st_free(req);
      return MHD_NO;
    }
    req->api = api;
    req->conn = conn;
    req->method = method;
    req->body_fd = -1;
    st_buf_init(&req->body, 1);
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    *con_cls = req;
    st__req_ids(req);
    log_ctx(req);
    /* a request without a body is decided on the final call, so that a refusal keeps
     * the connection alive; one with a body is refused before its body is read */
    if (has_body(req) && req_begin(req) && !req->replied)
      ret = MHD_NO;
    req->begun = has_body(req);
  } else if (*upload_size) {
    size_t n = *upload_size;
    log_ctx(req);
    *upload_size = 0;
    if (req->body_err) {
      req->discarded += n;
      if (req->discarded > DISCARD_MAX)
        ret = MHD_NO; /* do not read an endless body just to say 413 */
    } else if (!req->replied) {
      req->body_err = body_feed(req, upload, n);
    }
  } else if (!req->replied && !req->handled) {
    log_ctx(req);
    if (req->body_err == ST_ETOOBIG)
      st_api_reply_problem(req, ST_API_P_PAYLOAD_TOO_LARGE,
                           "this route accepts at most %llu body bytes", body_limit(req));
    else if (req->body_err)
      st_api_reply_error(req, req->body_err, NULL);
    else if (req->begun || !req_begin(req))
      run_handler(req);
    if (!req->replied)
      ret = MHD_NO;
  }
  st_log_ctx_clear();
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  st_api_req_t *req = *con_cls;
  struct timespec now;
  char status[16], ms[32];

  if (!req)
    return;
  *con_cls = NULL;
  clock_gettime(CLOCK_MONOTONIC, &now);
  snprintf(status, sizeof(status), "%u", req->status);
  snprintf(ms, sizeof(ms), "%.3f",
           (double)(now.tv_sec - req->start.tv_sec) * 1e3 +
               (double)(now.tv_nsec - req->start.tv_nsec) / 1e6);
  log_ctx(req);
  st_logkv(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ST_LOG_INFO : ST_LOG_WARN, "http",
           "method", req->method, "path", req->path, "status", status, "ms", ms, "request_id",
           req->id, "completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "yes" : "no",
           NULL);
  st_log_ctx_clear();
  if (req->idem_key)
    st__idem_on_drop(req);
  req_free(req);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  char buf[512];
  size_t n;
  vsnprintf(buf, sizeof(buf), fmt, ap);
  n = strlen(buf);
  while (n && buf[n - 1] == '\n')
    buf[--n] = '\0';
  st_logkv(ST_LOG_WARN, "libmicrohttpd", "detail", buf, NULL);
}

/* "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, int *v6, st_error_t *err) {
  char host[256];
  const char *colon = strrchr(s, ':');
  size_t hl;
  char *end;
  long port;

  memset(ss, 0, sizeof(*ss));
  if (!colon || colon == s)
    return st_fail(err, ST_ECONFIG, "api_listen: expected host:port, got \"%s\"", s);
  hl = (size_t)(colon - s);
  if (s[0] == '[' && colon[-1] == ']') {
    s++;
    hl -= 2;
  }
  port = strtol(colon + 1, &end, 10);
  if (hl >= sizeof(host) || *end || end == colon + 1 || port < 0 || port > 65535)
    return st_fail(err, ST_ECONFIG, "api_listen: bad address or port in \"%s\"", s);
  memcpy(host, s, hl);
  host[hl] = '\0';
  if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
    ((struct sockaddr_in *)ss)->sin_family = AF_INET;
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    *v6 = 0;
  } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
    ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    *v6 = 1;
  } else {
    return st_fail(err, ST_ECONFIG, "api_listen: \"%s\" is not a numeric IP address", host);
  }
  return 0;
}

int st_api_new(st_api_t **out, const st_config_t *cfg, st_error_t *err) {
  st_api_t *api = st_calloc(1, sizeof(*api));
  const char *tmp = st_config_str(cfg, "api_tmp_dir");
  int rc = 0;

  *out = NULL;
  if (!api)
    return st_fail(err, ST_ENOMEM, "api: out of memory");
  st__router_init(&api->router);
  api->threads = (unsigned)st_config_int(cfg, "api_threads");
  api->max_conns = (unsigned)st_config_int(cfg, "api_max_connections");
  api->max_conns_per_ip = (unsigned)st_config_int(cfg, "api_max_connections_per_ip");
  api->conn_timeout_s = (unsigned)st_config_int(cfg, "api_connection_timeout_s");
  api->json_max = (unsigned long long)st_config_int(cfg, "api_json_body_max");
  api->body_max = (unsigned long long)st_config_int(cfg, "max_body_bytes");
  api->jwt_leeway = st_config_int(cfg, "jwt_leeway_s");
  api->storage_quota = (unsigned long long)st_config_int(cfg, "api_storage_quota_bytes");
  if (!(api->listen_host = st_strdup(st_config_str(cfg, "api_listen"))) ||
      !(api->tmp_dir = st_strdup(tmp ? tmp : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp")))) {
    rc = st_fail(err, ST_ENOMEM, "api: out of memory");
    goto done;
  }
  if ((rc = st_jwt_keys_from_config(&api->keys, cfg, err)))
    goto done;
  if ((rc = st__quota_new(&api->quota, (double)st_config_int(cfg, "api_rate_per_s"),
                          (double)st_config_int(cfg, "api_rate_burst")))) {
    rc = st_fail(err, rc, "api: out of memory");
    goto done;
  }
  if ((rc = st__openapi_load(api, cfg, err)) || (rc = st__builtin_routes(api, err)))
    goto done;
done:
  if (rc)
    st_api_free(api);
  else
    *out = api;
  return rc;
}

int st_api_add_routes(st_api_t *api, const st_api_route_t *routes, size_t n,
                      st_error_t *err) {
  int rc = 0;
  if (api->daemon)
    return st_fail(err, ST_EINVAL, "api: routes must be added before listening");
  for (size_t i = 0; i < n && !rc; i++)
    rc = st__router_add(&api->router, &routes[i], err);
  return rc;
}

int st_api_listen(st_api_t *api, st_error_t *err) {
  struct sockaddr_storage ss;
  const union MHD_DaemonInfo *info;
  int v6 = 0, rc;
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                   MHD_USE_ERROR_LOG;

  if ((rc = parse_listen(api->listen_host, &ss, &v6, err)))
    return rc;
  if (v6)
    flags |= MHD_USE_IPv6;
  api->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_THREAD_POOL_SIZE, api->threads, MHD_OPTION_CONNECTION_LIMIT, api->max_conns,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, api->max_conns_per_ip,
      MHD_OPTION_CONNECTION_TIMEOUT, api->conn_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)MHD_MEMORY_LIMIT, MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
      MHD_OPTION_END);
  if (!api->daemon)
    return st_fail(err, ST_EIO, "api_listen: cannot listen on %s", api->listen_host);
  info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
  api->port = info ? info->port : 0;
  st_logkv(ST_LOG_INFO, "api listening", "listen", api->listen_host, NULL);
  return 0;
}

unsigned st_api_port(const st_api_t *api) { return api->port; }

void st_api_free(st_api_t *api) {
  if (!api)
    return;
  if (api->daemon) {
    st__sse_shutdown(api);
    MHD_stop_daemon(api->daemon);
  }
  st__export_routes_free(api->exports);
  st__timeline_routes_free(api->timeline);
  st__evidence_routes_free(api->evidence);
  if (api->has_store && api->store.release)
    api->store.release(api->store.self);
  st_db_pool_free(api->own_db);
  st__router_release(&api->router);
  st_jwt_keys_free(api->keys);
  st__quota_free(api->quota);
  st_free(api->listen_host);
  st_free(api->redis_url);
  st_free(api->tmp_dir);
  st_free(api->spec);
  st_free(api->spec_version);
  st_free(api);
}

/* With pg_url: a pool, the Postgres audit/idempotency store and the routes that need
 * them. Without it the server runs with the built-in routes only. */
static int start_db(st_api_t *api, const st_config_t *cfg, st_error_t *err) {
  const char *pg = st_config_str(cfg, "pg_url");
  st_api_store_t store;
  int rc;

  if (!pg)
    return 0;
  if ((rc = st_db_pool_new(pg, (int)st_config_int(cfg, "pg_pool_size"), &api->own_db, err)))
    return rc;
  api->db = api->own_db;
  if ((rc = st_api_store_pg(&store, api->db, st_config_int(cfg, "api_idempotency_ttl_s"),
                            st_config_int(cfg, "api_idempotency_inflight_s"), err)))
    return rc;
  st_api_set_store(api, &store);
  if ((rc = st__jobs_routes(api, cfg, err)) || (rc = st__audit_routes(api, err)) ||
      (rc = st__export_routes(api, cfg, api->db, &api->exports, err)) ||
      (rc = st__timeline_routes(api, cfg, &api->timeline, err)) ||
      (rc = st__evidence_routes(api, cfg, &api->evidence, err)) ||
      (rc = st__incident_routes(api, api->evidence, err)))
    return rc;
  return 0;
}

int st_api_start(const st_config_t *cfg, st_api_t **out, st_error_t *err) {
  st_api_t *api = NULL;
  int rc;

  *out = NULL;
  if ((rc = st_api_new(&api, cfg, err)))
    return rc;
  /* service modules add their route tables here (st_api_add_routes) */
  if ((rc = start_db(api, cfg, err)) || (rc = st_api_listen(api, err))) {
    st_api_free(api);
    return rc;
  }
  *out = api;
  return 0;
}

void st_api_stop(st_api_t *api) { st_api_free(api); }

const char *st_api_req_method(const st_api_req_t *req) { return req->method; }
const char *st_api_req_path(const st_api_req_t *req) { return req->path; }

const char *st_api_req_query(const st_api_req_t *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *st_api_req_header(const st_api_req_t *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

json_t *st_api_req_json(const st_api_req_t *req) { return req->json; }
int st_api_req_body_fd(const st_api_req_t *req) { return req->body_fd; }
unsigned long long st_api_req_body_len(const st_api_req_t *req) { return req->body_len; }

const char *st_api_req_last_event_id(const st_api_req_t *req) {
  return st_api_req_header(req, "Last-Event-ID");
}

void st_api_req_set_user(st_api_req_t *req, void *user, void (*free_fn)(void *)) {
  req->user = user;
  req->user_free = free_fn;
}

void *st_api_req_user(const st_api_req_t *req) { return req->user; }
