/* ops_http.c: /healthz, /readyz, /metrics on libmicrohttpd's internal thread. */
#include "ops_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "stella/buf.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/metrics.h"

#define LIVE_MAX_AGE_MS 5000

struct st_ops_http_s {
  struct MHD_Daemon *d;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             st_buf_t *body) {
  size_t len;
  char *data = st_buf_detach(body, &len);
  struct MHD_Response *r =
      MHD_create_response_from_buffer_with_free_callback(len, data, st_free);
  enum MHD_Result ret;
  if (!r) {
    st_free(data);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", type);
  ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **state) {
  st_buf_t b = ST_BUF_INIT;
  unsigned status = 200;
  const char *type = "text/plain; charset=utf-8";

  if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    status = 405;
    if (st_buf_adds(&b, "method not allowed\n"))
      return MHD_NO;
  } else if (!strcmp(url, "/healthz")) {
    int live = st_health_live(LIVE_MAX_AGE_MS);
    status = live ? 200 : 503;
    if (st_buf_adds(&b, live ? "ok\n" : "event loop stalled\n"))
      return MHD_NO;
  } else if (!strcmp(url, "/readyz")) {
    status = st_health_ready(&b) ? 200 : 503;
    if (st_buf_addc(&b, '\n'))
      return MHD_NO;
  } else if (!strcmp(url, "/metrics")) {
    type = "text/plain; version=0.0.4; charset=utf-8";
    if (st_metrics_render(&b)) {
      st_buf_release(&b);
      return MHD_NO;
    }
  } else {
    status = 404;
    if (st_buf_adds(&b, "not found\n"))
      return MHD_NO;
  }
  return reply(c, status, type, &b);
}

int st_ops_http_start(st_ops_http_t **out, const char *listen, st_error_t *err) {
  struct sockaddr_in sa;
  const char *colon;
  char host[64];
  char *end;
  long port;
  st_ops_http_t *h;
  const union MHD_DaemonInfo *info;

  *out = NULL;
  if (!listen || !strcmp(listen, "off"))
    return 0;
  colon = strrchr(listen, ':');
  if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
    return st_fail(err, ST_ECONFIG, "ops_listen: expected host:port, got \"%s\"", listen);
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  port = strtol(colon + 1, &end, 10);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (*end || end == colon + 1 || port < 0 || port > 65535 ||
      inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return st_fail(err, ST_ECONFIG, "ops_listen: expected IPv4 host:port, got \"%s\"", listen);
  if (!(h = st_calloc(1, sizeof(*h))))
    return st_fail(err, ST_ENOMEM, "ops_listen: out of memory");
  h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                          handler, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                          MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                          MHD_OPTION_END);
  if (!h->d) {
    st_free(h);
    return st_fail(err, ST_EIO, "ops_listen: cannot listen on %s", listen);
  }
  info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  st_info("ops http listening on %s:%u", host, info ? (unsigned)info->port : (unsigned)port);
  *out = h;
  return 0;
}

void st_ops_http_stop(st_ops_http_t *h) {
  if (!h)
    return;
  MHD_stop_daemon(h->d);
  st_free(h);
}
