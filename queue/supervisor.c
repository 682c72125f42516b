/* supervisor.c: the worker role: loop-side dispatch, timers, signals and drain.
 * What runs where: the loop thread owns the transport, the in-flight list and every
 * counter of slots; worker threads (supervisor_pool.c) run st__job_process and hand the
 * finished job back through the done list and uv_async_send. */
#include "supervisor_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stella/log.h"
#include "stella/mem.h"
#include "stella/metrics.h"

#define TICK_MS 100

uint64_t st__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned free_slots(void *ud, int ti) {
  st__sup_t *s = ud;
  unsigned limit = (unsigned)s->types[ti].limit, run = s->types[ti].running;
  unsigned total = s->threads > s->inflight ? s->threads - s->inflight : 0;
  unsigned f = limit > run ? limit - run : 0;
  return s->draining ? 0 : f < total ? f : total;
}

static unsigned free_total(void *ud) {
  st__sup_t *s = ud;
  return s->draining || s->threads <= s->inflight ? 0 : s->threads - s->inflight;
}

static void on_ready(void *ud, int ready, const char *reason) {
  st__sup_t *s = ud;
  st_health_set_ready(ready && !s->draining, s->draining ? "draining" : reason);
}

static void on_delivery(void *ud, st_delivery_t *d) {
  st__sup_t *s = ud;
  st__job_t *j = st_calloc(1, sizeof(*j));

  if (!j) {
    st_error("supervisor: out of memory for entry %s; it stays pending", d->entry_id);
    st_transport_release(s->tr, d->stream, d->entry_id);
    st_delivery_free(d);
    return;
  }
  j->s = s;
  j->d = d;
  j->ti = d->type_index;
  st_buf_init(&j->next, 0);
  j->deadline_ms = st__mono_ms() + s->timeout_ms;
  atomic_init(&j->ctx.cancel, ST_CANCEL_NONE);
  j->ctx.priv = j;
  j->ctx.db = s->db;
  j->ctx.cfg = s->cfg;
  j->in_next = s->in_head;
  j->in_prev = &s->in_head;
  if (s->in_head)
    s->in_head->in_prev = &j->in_next;
  s->in_head = j;
  s->inflight++;
  s->types[j->ti].running++;
  st_metric_set(s->m_busy, (double)s->inflight);
  st_metric_set(s->m_util, (double)s->inflight / (double)s->threads);
  st__pool_submit(s, j);
}

static void count_outcome(st__sup_t *s, st__job_t *j) {
  st__styp_t *ty = &s->types[j->ti];
  const char *out = st_job_outcome_name(j->outcome);

  if (j->ran) {
    st_metric_observe(st_metric_histogram("stella_job_duration_seconds",
                                          "Run time of jobs by type and outcome", ty->w->name,
                                          out),
                      (double)j->duration_ms / 1000.0);
  }
  switch (j->action) {
  case ST_ACTION_ACK:
    if (j->skipped)
      break;
    if (j->outcome == ST_JOB_SUCCEEDED)
      st_metric_inc(ty->m_succeeded);
    else
      st_metric_inc(st_metric_counter("stella_jobs_failed_total",
                                      "Job runs that did not succeed, by failure class",
                                      ty->w->name, out));
    break;
  case ST_ACTION_RETRY:
    st_metric_inc(st_metric_counter("stella_jobs_failed_total",
                                    "Job runs that did not succeed, by failure class",
                                    ty->w->name, out));
    st_metric_inc(ty->m_retried);
    break;
  case ST_ACTION_DEAD_LETTER:
    if (j->ran || j->klass[0] != 'm')
      st_metric_inc(st_metric_counter("stella_jobs_failed_total",
                                      "Job runs that did not succeed, by failure class",
                                      ty->w->name, out));
    st_metric_inc(st_metric_counter("stella_jobs_dead_lettered_total",
                                    "Jobs moved to stella:dlq, by class", ty->w->name,
                                    j->klass));
    break;
  case ST_ACTION_RELEASE: break;
  }
}

/* A job came back from its worker thread: settle it and free the slot. */
static void finish_job(st__sup_t *s, st__job_t *j) {
  st_delivery_t *d = j->d;

  *j->in_prev = j->in_next;
  if (j->in_next)
    j->in_next->in_prev = j->in_prev;
  s->inflight--;
  s->types[j->ti].running--;
  st_metric_set(s->m_busy, (double)s->inflight);
  st_metric_set(s->m_util, (double)s->inflight / (double)s->threads);
  count_outcome(s, j);
  switch (j->action) {
  case ST_ACTION_ACK: st_transport_ack(s->tr, d->stream, d->entry_id); break;
  case ST_ACTION_RETRY:
    st_transport_retry(s->tr, d->stream, d->entry_id, j->next.data, j->next.len, j->due_ms);
    break;
  case ST_ACTION_DEAD_LETTER:
    st_transport_dead_letter(s->tr, d->stream, d->entry_id, d->type, j->job_id, j->tenant,
                             j->reason, j->klass, d->data, d->len);
    break;
  case ST_ACTION_RELEASE: st_transport_release(s->tr, d->stream, d->entry_id); break;
  }
  st__job_free(j);
  st_transport_poke(s->tr);
}

static void on_done(uv_async_t *h) {
  st__sup_t *s = h->data;
  st__job_t *list = st__pool_take_done(s);
  while (list) {
    st__job_t *next = list->done_next;
    finish_job(s, list);
    list = next;
  }
}

static void closed(uv_handle_t *h) {}

static void transport_closed(void *ud) {
  st__sup_t *s = ud;
  uv_close((uv_handle_t *)&s->async, closed);
}

static void shutdown_now(st__sup_t *s) {
  if (s->stopping)
    return;
  s->stopping = 1;
  st_info("supervisor: drained (%u jobs still running were released)", s->released);
  uv_close((uv_handle_t *)&s->tick, closed);
  uv_close((uv_handle_t *)&s->lease, closed);
  uv_close((uv_handle_t *)&s->sigterm, closed);
  uv_close((uv_handle_t *)&s->sigint, closed);
  st_transport_close(s->tr, transport_closed, s);
}

static void tick(uv_timer_t *h) {
  st__sup_t *s = h->data;
  uint64_t now = st__mono_ms();

  st_health_beat();
  for (st__job_t *j = s->in_head; j; j = j->in_next) {
    if (now > j->deadline_ms && atomic_load(&j->ctx.cancel) == ST_CANCEL_NONE) {
      st_warn("supervisor: job in %s entry %s passed job_timeout_ms; cancelling", j->d->stream,
              j->d->entry_id);
      atomic_store(&j->ctx.cancel, ST_CANCEL_TIMEOUT);
    }
  }
  if (!s->draining)
    return;
  if (now >= s->drain_deadline_ms && !s->drain_expired) {
    s->drain_expired = 1;
    for (st__job_t *j = s->in_head; j; j = j->in_next) {
      atomic_store(&j->ctx.cancel, ST_CANCEL_SHUTDOWN);
      s->released++;
    }
    if (s->released)
      st_warn("supervisor: drain_timeout_ms passed; releasing %u running jobs", s->released);
  }
  if (s->inflight == 0 && (s->drain_expired || st_transport_unsettled(s->tr) == 0))
    shutdown_now(s);
}

static void lease_tick(uv_timer_t *h) {
  st__sup_t *s = h->data;
  for (st__job_t *j = s->in_head; j; j = j->in_next)
    st_transport_touch(s->tr, j->d->stream, j->d->entry_id);
}

static void on_signal(uv_signal_t *h, int signum) {
  st__sup_t *s = h->data;
  if (s->draining) {
    st_info("supervisor: signal %d again; already draining", signum);
    return;
  }
  st_info("supervisor: signal %d: draining %u in-flight jobs (up to %llu ms)", signum,
          s->inflight, (unsigned long long)s->drain_ms);
  s->draining = 1;
  s->drain_deadline_ms = st__mono_ms() + s->drain_ms;
  st_health_set_ready(0, "draining");
  st_transport_stop_claiming(s->tr);
}

static int setup(st__sup_t *s, const st_config_t *cfg, const st_worker_t *const *workers,
                 st_error_t *err) {
  char host[256], consumer[320];
  int n = 0;
  st_transport_opts_t topts;
  st_transport_cbs_t cbs = {free_slots, free_total, on_delivery, on_ready, s};

  while (workers[n])
    n++;
  s->threads = (unsigned)st_config_int(cfg, "worker_threads");
  s->lease_ms = (uint64_t)st_config_int(cfg, "job_lease_ms");
  s->timeout_ms = (uint64_t)st_config_int(cfg, "job_timeout_ms");
  s->drain_ms = (uint64_t)st_config_int(cfg, "drain_timeout_ms");
  s->max_attempts = (unsigned)st_config_int(cfg, "job_max_attempts");
  s->max_deliveries = (unsigned)st_config_int(cfg, "job_max_deliveries");
  s->cancel_poll_ms = (uint64_t)st_config_int(cfg, "job_cancel_poll_ms");
  s->backoff_base_ms = (uint64_t)st_config_int(cfg, "job_backoff_base_ms");
  s->backoff_cap_ms = (uint64_t)st_config_int(cfg, "job_backoff_cap_ms");
  s->limits.max_bytes = (size_t)st_config_int(cfg, "max_envelope_bytes");
  s->ntypes = n;
  s->types = st_calloc((size_t)n, sizeof(*s->types));
  s->names = st_calloc((size_t)n + 1, sizeof(char *));
  if (!s->types || !s->names)
    return st_fail(err, ST_ENOMEM, "supervisor: out of memory");
  for (int i = 0; i < n; i++) {
    const st_worker_t *w = workers[i];
    s->types[i].w = w;
    s->types[i].limit = w->max_concurrency > 0 ? w->max_concurrency : (int)s->threads;
    s->types[i].max_attempts = w->max_attempts > 0 ? (unsigned)w->max_attempts : s->max_attempts;
    s->types[i].m_started = st_metric_counter("stella_jobs_started_total", "Job runs started",
                                              w->name, NULL);
    s->types[i].m_succeeded = st_metric_counter("stella_jobs_succeeded_total",
                                                "Job runs that succeeded", w->name, NULL);
    s->types[i].m_retried = st_metric_counter("stella_jobs_retried_total",
                                              "Retries scheduled with backoff", w->name, NULL);
    s->names[i] = w->name;
  }
  s->limits.types = s->names;
  s->m_busy = st_metric_gauge("stella_worker_busy_threads", "Jobs in flight in this process",
                              NULL, NULL);
  s->m_util = st_metric_gauge("stella_worker_utilisation_ratio",
                              "Jobs in flight divided by worker_threads", NULL, NULL);
  if (gethostname(host, sizeof(host)))
    snprintf(host, sizeof(host), "host");
  host[sizeof(host) - 1] = '\0';
  snprintf(consumer, sizeof(consumer), "%s-%ld", host, (long)getpid());
  if (!(s->consumer = st_strdup(consumer)))
    return st_fail(err, ST_ENOMEM, "supervisor: out of memory");
  topts.redis_url = st_config_str(cfg, "redis_url");
  topts.types = s->names;
  topts.consumer = s->consumer;
  topts.lease_ms = s->lease_ms;
  return st_transport_new(&s->tr, &s->loop, &topts, &cbs, err);
}

int st_supervisor_run(const st_config_t *cfg, const st_worker_t *const *workers,
                      st_state_sink_t *sink, st_db_pool_t *db, st_error_t *err) {
  st__sup_t *s = st_calloc(1, sizeof(*s));
  int rc = 0, pool = 0, loop = 0, cancel = 0;

  if (!s) {
    rc = st_fail(err, ST_ENOMEM, "supervisor: out of memory");
    goto done;
  }
  s->sink = *sink;
  s->db = db;
  s->cfg = cfg;
  if ((rc = uv_loop_init(&s->loop))) {
    rc = st_fail(err, ST_EINTERNAL, "supervisor: uv_loop_init: %s", uv_strerror(rc));
    goto done;
  }
  loop = 1;
  st_health_set_ready(0, "starting");
  uv_async_init(&s->loop, &s->async, on_done);
  s->async.data = s;
  if ((rc = setup(s, cfg, workers, err))) {
    uv_close((uv_handle_t *)&s->async, closed);
    goto done;
  }
  if ((rc = st__pool_start(s, err))) {
    s->stopping = 1;
    st_transport_close(s->tr, transport_closed, s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto done;
  }
  pool = 1;
  cancel = 1;
  if ((rc = st__cancel_start(s, err))) {
    s->stopping = 1;
    st_transport_close(s->tr, transport_closed, s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto done;
  }
  uv_timer_init(&s->loop, &s->tick);
  uv_timer_init(&s->loop, &s->lease);
  uv_signal_init(&s->loop, &s->sigterm);
  uv_signal_init(&s->loop, &s->sigint);
  s->tick.data = s->lease.data = s->sigterm.data = s->sigint.data = s;
  uv_timer_start(&s->tick, tick, TICK_MS, TICK_MS);
  uv_timer_start(&s->lease, lease_tick, s->lease_ms / 3 ? s->lease_ms / 3 : 1,
                 s->lease_ms / 3 ? s->lease_ms / 3 : 1);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  st_info("supervisor: consumer %s, %u worker threads, %d job types", s->consumer, s->threads,
          s->ntypes);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  st_info("supervisor: stopped");
done:
  if (pool)
    st__pool_stop(s);
  if (cancel)
    st__cancel_stop(s);
  if (loop) {
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop))
      st_error("supervisor: loop closed with handles still open");
  }
  if (s) {
    st_transport_free(s->tr);
    st_free(s->types);
    st_free(s->names);
    st_free(s->consumer);
    st_free(s);
  }
  if (sink->free)
    sink->free(sink->ud);
  return rc;
}
