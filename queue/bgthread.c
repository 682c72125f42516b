/* bgthread.c: background thread with an interruptible wait; synchronous Redis connect. */
#include "bgthread.h"

#include <errno.h>
#include <time.h>

#include "stella/mem.h"
#include "transport.h"

int st__bg_start(st__bg_t *bg, void *(*fn)(void *), void *arg, st_error_t *err) {
  pthread_mutex_init(&bg->lock, NULL);
  pthread_cond_init(&bg->cond, NULL);
  bg->stop = 0;
  if (pthread_create(&bg->tid, NULL, fn, arg)) {
    pthread_mutex_destroy(&bg->lock);
    pthread_cond_destroy(&bg->cond);
    return st_fail(err, ST_EINTERNAL, "cannot start a background thread");
  }
  bg->started = 1;
  return 0;
}

void st__bg_stop(st__bg_t *bg) {
  if (!bg->started)
    return;
  pthread_mutex_lock(&bg->lock);
  bg->stop = 1;
  pthread_cond_broadcast(&bg->cond);
  pthread_mutex_unlock(&bg->lock);
  pthread_join(bg->tid, NULL);
  pthread_mutex_destroy(&bg->lock);
  pthread_cond_destroy(&bg->cond);
  bg->started = 0;
}

int st__bg_wait(st__bg_t *bg, uint64_t ms) {
  struct timespec until;
  int stop;

  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&bg->lock);
  while (!bg->stop && pthread_cond_timedwait(&bg->cond, &bg->lock, &until) != ETIMEDOUT)
    ;
  stop = bg->stop;
  pthread_mutex_unlock(&bg->lock);
  return stop;
}

int st__bg_stopping(st__bg_t *bg) {
  int stop;
  pthread_mutex_lock(&bg->lock);
  stop = bg->stop;
  pthread_mutex_unlock(&bg->lock);
  return stop;
}

redisContext *st__redis_sync(const char *url, st_error_t *err) {
  char *host = NULL;
  int port, db;
  struct timeval tv = {5, 0};
  redisContext *c = NULL;
  redisReply *r = NULL;

  if (st_redis_url_parse(url, &host, &port, &db, err))
    return NULL;
  c = redisConnectWithTimeout(host, port, tv);
  if (!c || c->err) {
    st_fail(err, ST_EREDIS, "redis %s:%d: %s", host, port, c ? c->errstr : "out of memory");
    goto fail;
  }
  redisSetTimeout(c, tv);
  if (db) {
    r = redisCommand(c, "SELECT %d", db);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      st_fail(err, ST_EREDIS, "redis: SELECT %d failed", db);
      goto fail;
    }
    freeReplyObject(r);
  }
  st_free(host);
  return c;
fail:
  freeReplyObject(r);
  if (c)
    redisFree(c);
  st_free(host);
  return NULL;
}
