/* server_reply.c: the ways a handler answers: bytes/JSON from memory, a chunked body from
 * a callback, and a file with single-range support (RFC 9110 §14). Every reply goes
 * through st__queue, which adds X-Request-Id and the handler's extra headers, marks the
 * request replied and lets idempotency keep the reply. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_internal.h"
#include "stella/log.h"
#include "stella/mem.h"

#define STREAM_BLOCK (64 * 1024)

static int header_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  return n > 0 && n <= max && !strpbrk(s, "\r\n");
}

int st_api_add_header(st_api_req_t *req, const char *name, const char *value) {
  st__hdr_t *h;
  if (!header_ok(name, 256) || !header_ok(value, 8192))
    return ST_EINVAL;
  if (!(h = st_calloc(1, sizeof(*h))) || !(h->name = st_strdup(name)) ||
      !(h->value = st_strdup(value))) {
    if (h)
      st_free(h->name);
    st_free(h);
    return ST_ENOMEM;
  }
  h->next = req->headers;
  req->headers = h;
  return 0;
}

int st__queue(st_api_req_t *req, unsigned status, struct MHD_Response *resp,
              const char *body, size_t body_len, const char *content_type) {
  enum MHD_Result ok;

  if (!resp)
    return ST_ENOMEM;
  if (req->replied) {
    MHD_destroy_response(resp);
    return ST_EINVAL;
  }
  if (content_type)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  MHD_add_response_header(resp, "X-Request-Id", req->id);
  for (st__hdr_t *h = req->headers; h; h = h->next)
    MHD_add_response_header(resp, h->name, h->value);
  if (req->authed && !MHD_get_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  ok = MHD_queue_response(req->conn, status, resp);
  MHD_destroy_response(resp);
  if (ok != MHD_YES)
    return ST_EIO;
  req->replied = 1;
  req->status = status;
  if (req->idem_key)
    st__idem_on_reply(req, status, content_type, body, body_len);
  return 0;
}

int st_api_reply_bytes(st_api_req_t *req, unsigned status, const char *content_type,
                       const void *data, size_t len) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
  return st__queue(req, status, r, data, len, content_type);
}

int st_api_reply_json(st_api_req_t *req, unsigned status, const json_t *body) {
  char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
  int rc;
  if (!text)
    return ST_ENOMEM;
  rc = st_api_reply_bytes(req, status, "application/json", text, strlen(text));
  free(text);
  return rc;
}

typedef struct stream_s {
  st_api_read_fn read;
  void *arg;
  void (*free_fn)(void *);
} stream_t;

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  stream_t *s = cls;
  long n = s->read(s->arg, pos, buf, max);
  if (n > 0)
    return (ssize_t)n;
  return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls) {
  stream_t *s = cls;
  if (s->free_fn)
    s->free_fn(s->arg);
  st_free(s);
}

int st_api_reply_stream(st_api_req_t *req, unsigned status, const char *content_type,
                        st_api_read_fn read, void *arg, void (*free_fn)(void *)) {
  stream_t *s = st_calloc(1, sizeof(*s));
  struct MHD_Response *r;

  if (!s) {
    if (free_fn)
      free_fn(arg);
    return ST_ENOMEM;
  }
  s->read = read;
  s->arg = arg;
  s->free_fn = free_fn;
  /* on failure MHD does not call stream_free */
  if (!(r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_cb, s,
                                              stream_free))) {
    stream_free(s);
    return ST_ENOMEM;
  }
  return st__queue(req, status, r, NULL, 0, content_type);
}

/* Parse one "bytes=" range against size. 0 = range in *first..*last; 1 = not a single
 * byte range (serve the whole file); -1 = unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last) {
  const char *p;
  char *end;
  unsigned long long a, b;

  if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
    return 1;
  p = h + 6;
  if (*p == '-') { /* suffix: the last N bytes */
    if (p[1] < '0' || p[1] > '9')
      return 1;
    errno = 0;
    b = strtoull(p + 1, &end, 10);
    if (errno || *end)
      return 1;
    if (b == 0 || size == 0)
      return -1;
    *first = b >= size ? 0 : size - b;
    *last = size - 1;
    return 0;
  }
  if (*p < '0' || *p > '9')
    return 1;
  errno = 0;
  a = strtoull(p, &end, 10);
  if (errno || *end != '-')
    return 1;
  p = end + 1;
  if (*p == '\0') {
    b = size ? size - 1 : 0;
  } else {
    if (*p < '0' || *p > '9')
      return 1;
    b = strtoull(p, &end, 10);
    if (errno || *end || b < a)
      return 1;
  }
  if (a >= size)
    return -1;
  *first = a;
  *last = b >= size ? size - 1 : b;
  return 0;
}

int st_api_reply_file(st_api_req_t *req, const char *path, const char *content_type) {
  const char *range = st_api_req_header(req, "Range");
  struct MHD_Response *r = NULL;
  struct stat st;
  uint64_t first = 0, last = 0, size;
  char cr[96];
  int fd = open(path, O_RDONLY | O_CLOEXEC), kind = 1, rc;

  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0)
      close(fd);
    return st_api_reply_problem(req, ST_API_P_NOT_FOUND, NULL);
  }
  size = (uint64_t)st.st_size;
  if (range && strcmp(req->method, "GET") == 0)
    kind = parse_range(range, size, &first, &last);
  if (kind < 0) {
    close(fd);
    snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
    if ((rc = st_api_add_header(req, "Content-Range", cr)))
      return rc;
    return st_api_reply_problem(req, ST_API_P_RANGE_NOT_SATISFIABLE,
                                "the file has %" PRIu64 " bytes", size);
  }
  if (kind == 0) {
    snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, size);
    if ((rc = st_api_add_header(req, "Content-Range", cr))) {
      close(fd);
      return rc;
    }
    r = MHD_create_response_from_fd_at_offset64(last - first + 1, fd, first);
  } else {
    r = MHD_create_response_from_fd_at_offset64(size, fd, 0);
  }
  if (!r) { /* MHD owns fd only once the response exists */
    close(fd);
    return ST_ENOMEM;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
  return st__queue(req, kind == 0 ? 206 : 200, r, NULL, 0, content_type);
}

typedef struct ranged_s {
  st_api_read_fn read;
  void *arg;
  void (*free_fn)(void *);
  uint64_t first;
} ranged_t;

static ssize_t ranged_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  ranged_t *s = cls;
  long n = s->read(s->arg, s->first + pos, buf, max);
  if (n > 0)
    return (ssize_t)n;
  return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void ranged_free(void *cls) {
  ranged_t *s = cls;
  if (s->free_fn)
    s->free_fn(s->arg);
  st_free(s);
}

int st_api_reply_ranged(st_api_req_t *req, const char *content_type, unsigned long long size,
                        st_api_read_fn read, void *arg, void (*free_fn)(void *)) {
  const char *range = st_api_req_header(req, "Range");
  ranged_t *s = st_calloc(1, sizeof(*s));
  struct MHD_Response *r;
  uint64_t first = 0, last = size ? size - 1 : 0;
  char cr[96];
  int kind = 1, rc;

  if (!s) {
    if (free_fn)
      free_fn(arg);
    return ST_ENOMEM;
  }
  *s = (ranged_t){read, arg, free_fn, 0};
  if (range && strcmp(req->method, "GET") == 0)
    kind = parse_range(range, size, &first, &last);
  if (kind < 0) {
    ranged_free(s);
    snprintf(cr, sizeof(cr), "bytes */%llu", size);
    if ((rc = st_api_add_header(req, "Content-Range", cr)))
      return rc;
    return st_api_reply_problem(req, ST_API_P_RANGE_NOT_SATISFIABLE, "the file has %llu bytes",
                                size);
  }
  if (kind == 0) {
    snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%llu", first, last, size);
    if ((rc = st_api_add_header(req, "Content-Range", cr))) {
      ranged_free(s);
      return rc;
    }
  } else {
    first = 0;
    last = size ? size - 1 : 0;
  }
  s->first = first;
  if (!(r = MHD_create_response_from_callback(size ? last - first + 1 : 0, STREAM_BLOCK,
                                              ranged_cb, s, ranged_free))) {
    ranged_free(s);
    return ST_ENOMEM;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
  return st__queue(req, kind == 0 ? 206 : 200, r, NULL, 0, content_type);
}
