/* supervisor_cancel.c: the cancel poller. One thread of its own (never the loop, never a
 * worker slot): every job_cancel_poll_ms it copies the (tenant, job_id) of the running jobs
 * registered with it, asks Postgres which have cancel_requested_at set (one read-only
 * tenant transaction per job; in-flight jobs are at most worker_threads), then, under the
 * same lock that unregistering takes, sets ST_CANCEL_USER on those still registered. The
 * lock is what keeps a job from being freed while its flag is set. */
#include "supervisor_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "stella/log.h"
#include "stella/mem.h"

typedef struct want_s {
  char *tenant, *job_id;
  int cancel;
} want_t;

static int tx_requested(PGconn *c, void *arg, st_error_t *err) {
  want_t *w = arg;
  const char *p[2] = {w->tenant, w->job_id};
  long long n = 0;
  int rc = st_db_query_int(c,
                           "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND job_id = $2"
                           " AND cancel_requested_at IS NOT NULL",
                           2, p, &n, err);
  w->cancel = rc == 0 && n > 0;
  return rc;
}

static void poll_once(st__sup_t *s) {
  want_t *w = NULL;
  size_t n = 0, cap = 0;

  pthread_mutex_lock(&s->clock);
  for (st__job_t *j = s->c_head; j; j = j->c_next)
    cap++;
  if (cap && (w = st_calloc(cap, sizeof(*w)))) {
    for (st__job_t *j = s->c_head; j && n < cap; j = j->c_next) {
      if (atomic_load(&j->ctx.cancel) != ST_CANCEL_NONE)
        continue;
      w[n].tenant = st_strdup(j->tenant);
      w[n].job_id = st_strdup(j->job_id);
      if (w[n].tenant && w[n].job_id)
        n++;
      else {
        st_free(w[n].tenant);
        st_free(w[n].job_id);
      }
    }
  }
  pthread_mutex_unlock(&s->clock);
  for (size_t i = 0; i < n; i++) {
    st_error_t err = ST_ERROR_INIT;
    if (st_db_tenant_txf(s->db, w[i].tenant, ST_DB_TX_READ_ONLY, tx_requested, &w[i], &err))
      st_warn("supervisor: reading cancel request of job %s: %s", w[i].job_id,
              st_error_text(&err));
  }
  pthread_mutex_lock(&s->clock);
  for (size_t i = 0; i < n; i++) {
    if (!w[i].cancel)
      continue;
    for (st__job_t *j = s->c_head; j; j = j->c_next)
      if (!strcmp(j->job_id, w[i].job_id) && !strcmp(j->tenant, w[i].tenant)) {
        int none = ST_CANCEL_NONE;
        if (atomic_compare_exchange_strong(&j->ctx.cancel, &none, ST_CANCEL_USER))
          st_info("supervisor: job %s of tenant %s: cancel requested; cancelling",
                  j->job_id, j->tenant);
      }
  }
  pthread_mutex_unlock(&s->clock);
  for (size_t i = 0; i < n; i++) {
    st_free(w[i].tenant);
    st_free(w[i].job_id);
  }
  st_free(w);
}

static void *cancel_main(void *arg) {
  st__sup_t *s = arg;
  pthread_mutex_lock(&s->clock);
  while (!s->cancel_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(s->cancel_poll_ms / 1000);
    until.tv_nsec += (long)(s->cancel_poll_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (!s->cancel_stop && pthread_cond_timedwait(&s->ccond, &s->clock, &until) != ETIMEDOUT)
      ;
    if (s->cancel_stop)
      break;
    pthread_mutex_unlock(&s->clock);
    poll_once(s);
    pthread_mutex_lock(&s->clock);
  }
  pthread_mutex_unlock(&s->clock);
  return NULL;
}

int st__cancel_start(st__sup_t *s, st_error_t *err) {
  pthread_mutex_init(&s->clock, NULL);
  pthread_cond_init(&s->ccond, NULL);
  if (!s->db)
    return 0;
  if (pthread_create(&s->cancel_tid, NULL, cancel_main, s))
    return st_fail(err, ST_EINTERNAL, "supervisor: cannot start the cancel poller thread");
  s->cancel_started = 1;
  return 0;
}

void st__cancel_stop(st__sup_t *s) {
  if (s->cancel_started) {
    pthread_mutex_lock(&s->clock);
    s->cancel_stop = 1;
    pthread_cond_signal(&s->ccond);
    pthread_mutex_unlock(&s->clock);
    pthread_join(s->cancel_tid, NULL);
    s->cancel_started = 0;
  }
  pthread_mutex_destroy(&s->clock);
  pthread_cond_destroy(&s->ccond);
}

void st__cancel_register(st__sup_t *s, st__job_t *j) {
  if (!s->db || !j->job_id || !j->tenant)
    return;
  pthread_mutex_lock(&s->clock);
  j->c_next = s->c_head;
  j->c_prev = &s->c_head;
  if (s->c_head)
    s->c_head->c_prev = &j->c_next;
  s->c_head = j;
  pthread_mutex_unlock(&s->clock);
}

void st__cancel_unregister(st__sup_t *s, st__job_t *j) {
  if (!j->c_prev)
    return;
  pthread_mutex_lock(&s->clock);
  *j->c_prev = j->c_next;
  if (j->c_next)
    j->c_next->c_prev = j->c_prev;
  j->c_prev = NULL;
  pthread_mutex_unlock(&s->clock);
}
