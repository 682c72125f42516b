/* bgthread.h: what the outbox relay and the scheduler share: a background thread with a
 * stop flag and an interruptible wait, and a synchronous hiredis connection made from a
 * redis:// URL (these threads block on purpose; the libuv loop never runs them). Internal. */
#ifndef STELLA_QUEUE_BGTHREAD_H
#define STELLA_QUEUE_BGTHREAD_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdint.h>

#include "stella/err.h"

typedef struct st__bg_s {
  pthread_t tid;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int stop, started;
} st__bg_t;

int st__bg_start(st__bg_t *bg, void *(*fn)(void *), void *arg, st_error_t *err);
/* Set the stop flag, wake the thread and join it. */
void st__bg_stop(st__bg_t *bg);
/* Sleep up to ms; 1 if the thread should stop (at once when already stopping). */
int st__bg_wait(st__bg_t *bg, uint64_t ms);
int st__bg_stopping(st__bg_t *bg);

/* Connect (5 s timeouts) and SELECT the URL's database; NULL with err set on failure. */
redisContext *st__redis_sync(const char *url, st_error_t *err);

#endif
