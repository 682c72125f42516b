/* supervisor_int.h: state shared by supervisor.c (loop side) and supervisor_pool.c
 * (worker threads). Fields marked [loop] are touched only on the loop thread. */
#ifndef STELLA_QUEUE_SUPERVISOR_INT_H
#define STELLA_QUEUE_SUPERVISOR_INT_H

#include <pthread.h>
#include <uv.h>

#include "stella/metrics.h"
#include "supervisor.h"
#include "transport.h"

typedef struct st__sup_s st__sup_t;

typedef struct st__job_s {
  st__sup_t *s;
  st_delivery_t *d;
  int ti;
  st_job_ctx_t ctx;
  uint64_t deadline_ms;                     /* monotonic [loop] */
  struct st__job_s *in_next, **in_prev;     /* in-flight list [loop] */
  struct st__job_s *q_next;                 /* pool FIFO [pool lock] */
  struct st__job_s *done_next;              /* done list [done lock] */
  struct st__job_s *c_next, **c_prev;       /* cancel-poll list [cancel lock] */
  st_envelope_t *env;                       /* set while running [worker] */
  /* results, written by the worker thread before the job goes on the done list */
  int ran;
  int skipped; /* already final in the state store: acknowledged without running */
  st_job_outcome outcome;
  st_job_action action;
  uint64_t duration_ms, due_ms;
  uint64_t beat_ms; /* last progress recorded (monotonic) [worker] */
  char reason[ST_ERRMSG_MAX];
  char klass[16]; /* dead-letter class: malformed, permanent, transient, timeout */
  char *job_id, *tenant;
  st_buf_t next;  /* retry: the envelope of the next attempt */
} st__job_t;

typedef struct st__styp_s {
  const st_worker_t *w;
  int limit;
  unsigned max_attempts;
  unsigned running; /* [loop] */
  st_metric_t *m_started, *m_succeeded, *m_retried;
} st__styp_t;

struct st__sup_s {
  uv_loop_t loop;
  uv_async_t async;
  uv_timer_t tick, lease;
  uv_signal_t sigterm, sigint;
  st_transport_t *tr;
  st_state_sink_t sink;
  st_envelope_limits_t limits;
  const char **names;
  char *consumer;
  st__styp_t *types;
  int ntypes;
  unsigned threads, max_attempts, max_deliveries;
  st_db_pool_t *db; /* borrowed; NULL without pg_url */
  const st_config_t *cfg; /* borrowed for the run, handed to workers */
  uint64_t lease_ms, timeout_ms, drain_ms, backoff_base_ms, backoff_cap_ms;
  /* [loop] */
  st__job_t *in_head;
  unsigned inflight, released;
  int draining, drain_expired, stopping;
  uint64_t drain_deadline_ms;
  st_metric_t *m_busy, *m_util;
  /* pool */
  pthread_t *tids;
  unsigned nthreads;
  pthread_mutex_t qlock, dlock;
  pthread_cond_t qcond;
  st__job_t *q_head, **q_tail;
  int q_stop;
  st__job_t *done_head;
  /* cancel poller (supervisor_cancel.c), only with a database */
  pthread_t cancel_tid;
  int cancel_started, cancel_stop;
  uint64_t cancel_poll_ms;
  pthread_mutex_t clock;
  pthread_cond_t ccond;
  st__job_t *c_head;
};

uint64_t st__mono_ms(void);
/* supervisor_pool.c */
int st__pool_start(st__sup_t *s, st_error_t *err);
void st__pool_stop(st__sup_t *s); /* joins the threads; the queue must be empty */
void st__pool_submit(st__sup_t *s, st__job_t *j);
st__job_t *st__pool_take_done(st__sup_t *s);
void st__job_free(st__job_t *j);
/* supervisor_cancel.c: a thread that every cancel_poll_ms reads the cancel requests of
 * the registered (running) jobs from Postgres and sets their cancel flag. Register on the
 * worker thread once tenant and job_id are known; unregister before the job is freed. */
int st__cancel_start(st__sup_t *s, st_error_t *err);
void st__cancel_stop(st__sup_t *s);
void st__cancel_register(st__sup_t *s, st__job_t *j);
void st__cancel_unregister(st__sup_t *s, st__job_t *j);

#endif
