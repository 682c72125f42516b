/* server_sse.c: Server-Sent Events on a response from callback.
 *
 * A stream has two owners: the producer (until st_api_sse_close) and MHD (until it frees
 * the response when the connection ends); the last one frees it. When the reader finds
 * no queued bytes it suspends the connection (returning 0 without suspending would
 * busy-loop MHD); st_api_sse_send and _close resume it. Suspended connections never time
 * out and MHD must not stop with one, so server shutdown ends every open stream first.
 * Locks: the list lock (open streams of every server) before a stream's own lock. */
#include <string.h>

#include "api_internal.h"
#include "stella/mem.h"

#define SSE_BACKLOG_MAX (1024 * 1024)
#define SSE_BLOCK 4096

struct st_api_sse_s {
  pthread_mutex_t lock;
  st_api_t *api; /* NULL once detached by shutdown */
  struct MHD_Connection *conn;
  st_buf_t queue;
  size_t off;
  int refs;
  int closed;    /* producer ended the stream */
  int gone;      /* MHD freed the response: the client is gone */
  int suspended;
  st_api_sse_t *next, *prev;
};

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;

static void sse_unref(st_api_sse_t *s) {
  int last;
  pthread_mutex_lock(&list_lock);
  pthread_mutex_lock(&s->lock);
  last = --s->refs == 0;
  pthread_mutex_unlock(&s->lock);
  if (last && s->api) {
    if (s->prev)
      s->prev->next = s->next;
    else
      s->api->sse_head = s->next;
    if (s->next)
      s->next->prev = s->prev;
  }
  pthread_mutex_unlock(&list_lock);
  if (last) {
    st_buf_release(&s->queue);
    pthread_mutex_destroy(&s->lock);
    st_free(s);
  }
}

static void resume_locked(st_api_sse_t *s) {
  if (s->suspended && !s->gone) {
    s->suspended = 0;
    MHD_resume_connection(s->conn);
  }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  st_api_sse_t *s = cls;
  ssize_t n = 0;

  pthread_mutex_lock(&s->lock);
  if (s->queue.len > s->off) {
    size_t avail = s->queue.len - s->off;
    n = (ssize_t)(avail < max ? avail : max);
    memcpy(buf, s->queue.data + s->off, (size_t)n);
    s->off += (size_t)n;
    if (s->off == s->queue.len) {
      st_buf_reset(&s->queue);
      s->off = 0;
    }
  } else if (s->closed) {
    n = MHD_CONTENT_READER_END_OF_STREAM;
  } else {
    s->suspended = 1;
    MHD_suspend_connection(s->conn);
  }
  pthread_mutex_unlock(&s->lock);
  return n;
}

static void sse_gone(void *cls) {
  st_api_sse_t *s = cls;
  pthread_mutex_lock(&s->lock);
  s->gone = 1;
  s->suspended = 0;
  pthread_mutex_unlock(&s->lock);
  sse_unref(s);
}

int st_api_reply_sse(st_api_req_t *req, st_api_sse_t **out) {
  st_api_sse_t *s = st_calloc(1, sizeof(*s));
  struct MHD_Response *r;
  int rc;

  *out = NULL;
  if (!s)
    return ST_ENOMEM;
  pthread_mutex_init(&s->lock, NULL);
  st_buf_init(&s->queue, SSE_BACKLOG_MAX);
  s->conn = req->conn;
  s->refs = 2;
  if (!(r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, s,
                                              sse_gone))) {
    s->refs = 1;
    sse_unref(s);
    return ST_ENOMEM;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(r, "X-Accel-Buffering", "no");
  pthread_mutex_lock(&list_lock);
  s->api = req->api;
  s->next = req->api->sse_head;
  if (s->next)
    s->next->prev = s;
  req->api->sse_head = s;
  pthread_mutex_unlock(&list_lock);
  /* st__queue drops our response reference; MHD keeps one (or frees it: sse_gone) */
  if ((rc = st__queue(req, 200, r, NULL, 0, "text/event-stream"))) {
    sse_unref(s);
    return rc;
  }
  *out = s;
  return 0;
}

static int field_ok(const char *s) { return !strpbrk(s, "\r\n"); }

int st_api_sse_send(st_api_sse_t *s, const char *id, const char *event, const char *data) {
  st_buf_t *q = &s->queue;
  size_t mark;
  int rc = 0;

  if (!id || !*id || !field_ok(id) || (event && !field_ok(event)) || !data ||
      strchr(data, '\r'))
    return ST_EINVAL;
  pthread_mutex_lock(&s->lock);
  if (s->gone || s->closed) {
    rc = ST_ECANCELED;
    goto done;
  }
  mark = q->len;
  rc = st_buf_addf(q, "id: %s\n", id);
  if (!rc && event)
    rc = st_buf_addf(q, "event: %s\n", event);
  for (const char *p = data; !rc;) {
    size_t n = strcspn(p, "\n");
    rc = st_buf_adds(q, "data: ");
    if (!rc)
      rc = st_buf_add(q, p, n);
    if (!rc)
      rc = st_buf_addc(q, '\n');
    if (!p[n])
      break;
    p += n + 1;
  }
  if (!rc)
    rc = st_buf_addc(q, '\n');
  if (rc) { /* keep the stream well-formed: drop the partial event */
    q->len = mark;
    q->data[mark] = '\0';
    goto done;
  }
  resume_locked(s);
done:
  pthread_mutex_unlock(&s->lock);
  return rc;
}

void st_api_sse_close(st_api_sse_t *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->lock);
  s->closed = 1;
  resume_locked(s);
  pthread_mutex_unlock(&s->lock);
  sse_unref(s);
}

void st__sse_shutdown(st_api_t *api) {
  pthread_mutex_lock(&list_lock);
  for (st_api_sse_t *s = api->sse_head; s; s = s->next) {
    pthread_mutex_lock(&s->lock);
    s->api = NULL;
    s->closed = 1;
    resume_locked(s);
    pthread_mutex_unlock(&s->lock);
  }
  api->sse_head = NULL;
  pthread_mutex_unlock(&list_lock);
}
