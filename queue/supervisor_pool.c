/* supervisor_pool.c: the supervisor's own worker threads and what one job does on
 * them: decode -> check type -> validate -> run -> classify -> record in the state
 * sink -> hand back to the loop (which settles the entry in Redis). */
#include "supervisor_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "stella/log.h"
#include "stella/mem.h"

static uint64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void st__job_free(st__job_t *j) {
  st__cancel_unregister(j->s, j);
  st_delivery_free(j->d);
  st_free(j->job_id);
  st_free(j->tenant);
  st_buf_release(&j->next);
  st_free(j);
}

/* Record a transition; the sink's code (failures are logged when `failed` is given). */
static int record(st__job_t *j, st_job_state state, st_error_t *err, int *failed) {
  st__sup_t *s = j->s;
  st_job_transition_t t = {0};
  int rc;

  t.state = state;
  t.env = j->env;
  t.type = j->d->type;
  t.stream = j->d->stream;
  t.entry_id = j->d->entry_id;
  t.consumer = s->consumer;
  t.outcome = j->outcome;
  t.reason = j->reason[0] ? j->reason : NULL;
  t.at_ms = wall_ms();
  t.duration_ms = j->duration_ms;
  t.next_due_ms = j->due_ms;
  if (!j->env) {
    t.raw = j->d->data;
    t.raw_len = j->d->len;
  }
  if ((rc = s->sink.record(s->sink.ud, &t, err)) && failed) {
    st_error("state sink: recording %s failed: %s; the entry stays pending",
             st_job_state_name(state), st_error_text(err));
    *failed = 1;
  }
  return rc;
}

/* Progress is a heartbeat in the state store: at most one record per job per
 * PROGRESS_MIN_MS (counted from the start), so short jobs write none. */
#define PROGRESS_MIN_MS 1000

static void progress_cb(st_job_ctx_t *ctx, double fraction, const char *note) {
  st__job_t *j = ctx->priv;
  st_job_transition_t t = {0};
  st_error_t err = ST_ERROR_INIT;
  uint64_t now = st__mono_ms();
  if (now - j->beat_ms < PROGRESS_MIN_MS)
    return;
  j->beat_ms = now;
  t.state = ST_STATE_PROGRESS;
  t.env = j->env;
  t.type = j->d->type;
  t.stream = j->d->stream;
  t.entry_id = j->d->entry_id;
  t.consumer = j->s->consumer;
  t.reason = note;
  t.at_ms = wall_ms();
  t.progress = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
  (void)j->s->sink.record(j->s->sink.ud, &t, &err);
}

/* Dead-letter without running: the envelope or payload is unusable. */
static void reject(st__job_t *j, const char *klass, const char *why) {
  j->outcome = ST_JOB_PERMANENT;
  j->action = ST_ACTION_DEAD_LETTER;
  snprintf(j->klass, sizeof(j->klass), "%s", klass);
  snprintf(j->reason, sizeof(j->reason), "%s", why);
}

static void run_job(st__job_t *j, st_envelope_t *env) {
  st__sup_t *s = j->s;
  const st__styp_t *ty = &s->types[j->ti];
  st_job_t job = {env, j->d->stream, j->d->entry_id};
  st_error_t err = ST_ERROR_INIT;
  uint64_t t0;
  int rc, cancel;

  if (ty->w->validate && (rc = ty->w->validate(env->payload, &err))) {
    char why[ST_ERRMSG_MAX];
    snprintf(why, sizeof(why), "payload: %s", st_error_text(&err));
    reject(j, "permanent", why);
    return;
  }
  rc = record(j, ST_STATE_STARTED, &err, NULL);
  if (rc == ST_EEXIST) { /* final already (its acknowledgement was lost): just ack */
    st_info("job is already final in the state store; acknowledging without running");
    j->skipped = 1;
    j->outcome = ST_JOB_SUCCEEDED;
    j->action = ST_ACTION_ACK;
    return;
  }
  if (rc == ST_ECANCELED) {
    j->outcome = ST_JOB_CANCELLED;
    j->action = ST_ACTION_ACK;
    snprintf(j->reason, sizeof(j->reason), "cancel requested before it ran");
    snprintf(j->klass, sizeof(j->klass), "cancelled");
    return;
  }
  if (rc)
    st_warn("state sink: recording started failed: %s; running anyway", st_error_text(&err));
  st_metric_inc(ty->m_started);
  t0 = j->beat_ms = st__mono_ms();
  j->ctx.progress = progress_cb;
  rc = ty->w->run(&job, &j->ctx, &err);
  j->duration_ms = st__mono_ms() - t0;
  j->ran = 1;
  cancel = atomic_load(&j->ctx.cancel);
  if (rc == 0)
    j->outcome = ST_JOB_SUCCEEDED;
  else if (rc == ST_ECANCELED || cancel != ST_CANCEL_NONE)
    j->outcome = cancel == ST_CANCEL_TIMEOUT    ? ST_JOB_TIMEOUT
                 : cancel == ST_CANCEL_SHUTDOWN ? ST_JOB_RELEASED
                                                : ST_JOB_CANCELLED;
  else
    j->outcome = st_err_classify(rc) == ST_ERRCLASS_TRANSIENT ? ST_JOB_TRANSIENT
                                                              : ST_JOB_PERMANENT;
  if (rc)
    snprintf(j->reason, sizeof(j->reason), "%s", st_error_text(&err));
  j->action = st_job_decide(j->outcome, env->attempt, ty->max_attempts);
  snprintf(j->klass, sizeof(j->klass), "%s", st_job_outcome_name(j->outcome));
  if (j->action == ST_ACTION_DEAD_LETTER && j->outcome != ST_JOB_PERMANENT) {
    char why[ST_ERRMSG_MAX];
    snprintf(why, sizeof(why), "max attempts %u reached: %.400s", ty->max_attempts, j->reason);
    snprintf(j->reason, sizeof(j->reason), "%s", why);
  }
}

/* Prepare attempt+1 (or, for a not_before in the future, the same attempt) for the
 * delayed set; falls back to dead-lettering if it cannot be encoded. */
static void schedule(st__job_t *j, st_envelope_t *env, int bump) {
  st__sup_t *s = j->s;
  st_error_t err = ST_ERROR_INIT;
  uint64_t rnd = 0;

  if (bump) {
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
      rnd = wall_ms() * 2654435761u;
    j->due_ms = wall_ms() + st_backoff_ms(env->attempt, s->backoff_base_ms, s->backoff_cap_ms, rnd);
    env->attempt++;
    env->not_before = j->due_ms;
  } else {
    j->due_ms = env->not_before;
  }
  if (st_envelope_encode(env, s->limits.max_bytes, &j->next, &err)) {
    reject(j, "permanent", st_error_text(&err));
    return;
  }
}

static void process(st__job_t *j) {
  st__sup_t *s = j->s;
  st_envelope_t env;
  st_error_t err = ST_ERROR_INIT;
  int failed = 0;

  st_envelope_init(&env);
  if (!j->d->data) {
    reject(j, "malformed", "entry has no envelope field \"e\"");
  } else if (st_envelope_decode(&env, j->d->data, j->d->len, &s->limits, &err)) {
    reject(j, "malformed", st_error_text(&err));
  } else if (strcmp(env.type, j->d->type)) {
    char why[ST_ERRMSG_MAX];
    snprintf(why, sizeof(why), "envelope: type: \"%s\" does not match stream %s", env.type,
             j->d->stream);
    reject(j, "malformed", why);
    j->env = &env;
  } else {
    j->env = &env;
    char trace_id[33] = "";
    if (env.trace)
      snprintf(trace_id, sizeof(trace_id), "%.32s", env.trace + 3);
    st_log_ctx_set(env.tenant, env.job_id, env.trace ? trace_id : NULL);
    j->job_id = st_strdup(env.job_id);
    j->tenant = st_strdup(env.tenant);
    if (j->d->deliveries > s->max_deliveries) {
      char why[ST_ERRMSG_MAX];
      snprintf(why, sizeof(why), "poison: crashed %u times (delivered %u times, job_max_deliveries %u)",
               j->d->deliveries - 1, j->d->deliveries, s->max_deliveries);
      st_warn("job %s", why);
      reject(j, "poison", why);
      goto settle;
    }
    st__cancel_register(s, j);
    if (env.not_before > wall_ms() + 5) {
      j->outcome = ST_JOB_SUCCEEDED; /* not a failure: deferred without a new attempt */
      j->action = ST_ACTION_RETRY;
      schedule(j, &env, 0);
      st_info("job deferred until not_before %llu", (unsigned long long)env.not_before);
      goto out;
    }
    run_job(j, &env);
    if (j->action == ST_ACTION_RETRY)
      schedule(j, &env, 1);
  }
settle:
  switch (j->action) {
  case ST_ACTION_ACK:
    if (j->skipped)
      break;
    (void)record(j, j->outcome == ST_JOB_SUCCEEDED ? ST_STATE_SUCCEEDED : ST_STATE_CANCELLED, &err,
           &failed);
    break;
  case ST_ACTION_RETRY: (void)record(j, ST_STATE_RETRY_SCHEDULED, &err, &failed); break;
  case ST_ACTION_DEAD_LETTER: (void)record(j, ST_STATE_DEAD_LETTERED, &err, &failed); break;
  case ST_ACTION_RELEASE: (void)record(j, ST_STATE_RELEASED, &err, NULL); break;
  }
  if (failed)
    j->action = ST_ACTION_RELEASE;
out:
  j->env = NULL;
  st_envelope_release(&env);
  st_log_ctx_clear();
}

static void *thread_main(void *arg) {
  st__sup_t *s = arg;
  for (;;) {
    st__job_t *j;
    pthread_mutex_lock(&s->qlock);
    while (!s->q_head && !s->q_stop)
      pthread_cond_wait(&s->qcond, &s->qlock);
    if (!s->q_head) {
      pthread_mutex_unlock(&s->qlock);
      return NULL;
    }
    j = s->q_head;
    s->q_head = j->q_next;
    if (!s->q_head)
      s->q_tail = &s->q_head;
    pthread_mutex_unlock(&s->qlock);

    process(j);

    pthread_mutex_lock(&s->dlock);
    j->done_next = s->done_head;
    s->done_head = j;
    pthread_mutex_unlock(&s->dlock);
    uv_async_send(&s->async);
  }
}

int st__pool_start(st__sup_t *s, st_error_t *err) {
  pthread_mutex_init(&s->qlock, NULL);
  pthread_mutex_init(&s->dlock, NULL);
  pthread_cond_init(&s->qcond, NULL);
  s->q_tail = &s->q_head;
  if (!(s->tids = st_calloc(s->threads, sizeof(pthread_t))))
    return st_fail(err, ST_ENOMEM, "supervisor: out of memory");
  for (unsigned i = 0; i < s->threads; i++) {
    if (pthread_create(&s->tids[i], NULL, thread_main, s)) {
      st__pool_stop(s);
      return st_fail(err, ST_EINTERNAL, "supervisor: cannot start worker thread %u", i);
    }
    s->nthreads++;
  }
  return 0;
}

void st__pool_stop(st__sup_t *s) {
  pthread_mutex_lock(&s->qlock);
  s->q_stop = 1;
  pthread_cond_broadcast(&s->qcond);
  pthread_mutex_unlock(&s->qlock);
  for (unsigned i = 0; i < s->nthreads; i++)
    pthread_join(s->tids[i], NULL);
  st_free(s->tids);
  s->tids = NULL;
  s->nthreads = 0;
  while (s->done_head) { /* finished after the loop stopped: left pending in Redis */
    st__job_t *j = s->done_head;
    s->done_head = j->done_next;
    st__job_free(j);
  }
  pthread_mutex_destroy(&s->qlock);
  pthread_mutex_destroy(&s->dlock);
  pthread_cond_destroy(&s->qcond);
}

void st__pool_submit(st__sup_t *s, st__job_t *j) {
  pthread_mutex_lock(&s->qlock);
  j->q_next = NULL;
  *s->q_tail = j;
  s->q_tail = &j->q_next;
  pthread_cond_signal(&s->qcond);
  pthread_mutex_unlock(&s->qlock);
}

st__job_t *st__pool_take_done(st__sup_t *s) {
  st__job_t *list;
  pthread_mutex_lock(&s->dlock);
  list = s->done_head;
  s->done_head = NULL;
  pthread_mutex_unlock(&s->dlock);
  return list;
}
