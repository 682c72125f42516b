/* ops_http.h: stellad's tiny operations listener (libmicrohttpd, its own thread):
 * GET /healthz (200 while the loop beats), /readyz (200 when ready, else 503 with the
 * reason), /metrics (Prometheus text 0.0.4). Anything else is 404; only GET/HEAD.
 * The API front is a separate server; this one exists so a worker-only stellad can be
 * probed and scraped.
 * Ownership: st_ops_http_stop frees what st_ops_http_start made. Main thread only. */
#ifndef STELLA_QUEUE_OPS_HTTP_H
#define STELLA_QUEUE_OPS_HTTP_H

#include "stella/err.h"

typedef struct st_ops_http_s st_ops_http_t;

/* listen: "host:port" (IPv4; port 0 = any free port) or "off" (then *out = NULL).
 * The bound port is logged. ST_ECONFIG for a bad address, ST_EIO if it cannot bind. */
int st_ops_http_start(st_ops_http_t **out, const char *listen, st_error_t *err) ST_MUST_CHECK;
void st_ops_http_stop(st_ops_http_t *h);

#endif
