/* submit.c: a blocking XADD of one job envelope (submit.h). */
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "stella/mem.h"
#include "submit.h"
#include "transport.h"

int st_queue_xadd(const char *redis_url, const char *type, const void *bytes, size_t len,
                  st_error_t *err) {
  struct timeval tv = {ST_SUBMIT_TIMEOUT_S, 0};
  st_buf_t stream = ST_BUF_INIT;
  redisContext *c = NULL;
  redisReply *r = NULL;
  char *host = NULL;
  int port = 0, db = 0, rc;

  if ((rc = st_redis_url_parse(redis_url, &host, &port, &db, err)))
    goto done;
  if (st_envelope_stream(type, &stream)) {
    rc = st_fail(err, ST_ENOMEM, "submit: out of memory");
    goto done;
  }
  c = redisConnectWithTimeout(host, port, tv);
  if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
    rc = st_fail(err, ST_EREDIS, "submit: redis %s:%d: %s", host, port,
                 c ? c->errstr : "out of memory");
    goto done;
  }
  if (db) {
    r = redisCommand(c, "SELECT %d", db);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      rc = st_fail(err, ST_EREDIS, "submit: redis SELECT %d failed", db);
      goto done;
    }
    freeReplyObject(r);
  }
  r = redisCommand(c, "XADD %s * e %b", stream.data, bytes, len);
  if (!r || r->type != REDIS_REPLY_STRING)
    rc = st_fail(err, ST_EREDIS, "submit: XADD %s: %s", stream.data,
                 r && r->str ? r->str : c->errstr);
done:
  freeReplyObject(r);
  if (c)
    redisFree(c);
  st_free(host);
  st_buf_release(&stream);
  return rc;
}

int st_queue_submit(const char *redis_url, const st_envelope_t *env, size_t max_bytes,
                    st_error_t *err) {
  st_buf_t bytes = ST_BUF_INIT;
  int rc = st_envelope_encode(env, max_bytes, &bytes, err);
  if (!rc)
    rc = st_queue_xadd(redis_url, env->type, bytes.data, bytes.len, err);
  st_buf_release(&bytes);
  return rc;
}
