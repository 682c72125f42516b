/* sink_pg.c: the Postgres job state sink.
 *
 * Each transition is one tenant transaction (st_db_tenant_tx, on the calling worker
 * thread): upsert the jobs row keyed on (tenant, job_id) so a job XADDed directly and one
 * submitted through the API converge, move its state forward (never back out of a final
 * state, never to an older attempt; the jobs trigger writes job_events), and for the
 * lifecycle transitions (succeeded, dead-lettered, cancelled) insert the outbox row (a
 * stella.event/v1 envelope of type job.succeeded, job.dead_lettered or job.cancelled, made
 * by st_job_event_make) whose event_id is stable: a re-run after a crash computes the
 * same id and ON CONFLICT DO NOTHING inserts nothing new. The outbox row is
 * written only when the state row actually changed, so a late result for a job already
 * final elsewhere (cancelled, say) emits no contradicting event.
 *
 * A job whose idempotency key another job id of the tenant already holds is recorded
 * without the key (its own job_id is still unique); the log says so.
 * Every transition is also logged through the logging sink (one JSON line each) once it
 * is committed; a failed one is logged by the supervisor instead. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "sink.h"
#include "stella/db.h"
#include "stella/log.h"
#include "stella/mem.h"

#define FINAL_STATES "('succeeded', 'failed', 'cancelled', 'dead')"

typedef struct pg_rec_s {
  const st_job_transition_t *t;
  const char *state;      /* jobs.state after the transition */
  const char *event_type; /* outbox type, NULL = no event */
  char attempt[16];
  char *payload;          /* envelope payload, compact JSON */
  char event_id[ST_SHA256_HEX_LEN + 1];
  char *event;            /* outbox payload, compact JSON (with event_type) */
  int started_rc;         /* STARTED: ST_ECANCELED / ST_EEXIST verdicts */
} pg_rec_t;

static const char *error_class(st_job_outcome o) {
  switch (o) {
  case ST_JOB_TRANSIENT: return "transient";
  case ST_JOB_PERMANENT: return "permanent";
  case ST_JOB_TIMEOUT: return "timeout";
  case ST_JOB_CANCELLED: return "cancelled";
  default: return NULL;
  }
}

/* INSERT the row in `state`; 1 if inserted. Falls back to no idempotency key when the
 * key belongs to another job id (the row then still exists afterwards). */
static int insert_row(PGconn *c, pg_rec_t *r, long long *inserted, st_error_t *err) {
  static const char sql[] =
      "INSERT INTO jobs (tenant_id, job_id, type, state, attempt, idempotency_key, payload,"
      " started_at, heartbeat_at, finished_at, error, error_class)"
      " VALUES ($1, $2, $3, $4, $5::int, $6, $7::jsonb,"
      " CASE WHEN $4 = 'running' THEN now() END, CASE WHEN $4 = 'running' THEN now() END,"
      " CASE WHEN $4 IN " FINAL_STATES " THEN now() END, $8, $9)"
      " ON CONFLICT DO NOTHING";
  const st_envelope_t *e = r->t->env;
  const char *p[9] = {e->tenant, e->job_id, e->type, r->state, r->attempt, e->idempotency_key,
                      r->payload, r->t->reason, error_class(r->t->outcome)};
  long long n = 0;
  int rc;

  if (r->t->outcome == ST_JOB_SUCCEEDED)
    p[7] = p[8] = NULL;
  if ((rc = st_db_exec_count(c, sql, 9, p, inserted, err)))
    return rc;
  if (*inserted || !e->idempotency_key)
    return 0;
  if ((rc = st_db_query_int(c, "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND job_id = $2",
                            2, p, &n, err)))
    return rc;
  if (n)
    return 0;
  st_warn("job state: idempotency key of job %s is held by another job of tenant %s; "
          "recorded without it", e->job_id, e->tenant);
  p[5] = NULL;
  return st_db_exec_count(c, sql, 9, p, inserted, err);
}

/* The outbox row's id and envelope (st_job_event_make), made once before the transaction
 * (which may rerun); the payload adds outcome, duration_ms and the reason. */
static int make_event(pg_rec_t *r, st_error_t *err) {
  const st_job_transition_t *t = r->t;
  json_t *extra = json_pack("{s:s, s:I}", "outcome", st_job_outcome_name(t->outcome),
                            "duration_ms", (json_int_t)t->duration_ms);
  st_job_event_t ev = {t->env, t->env->attempt, st_job_state_name(t->state), r->state,
                       r->event_type, t->at_ms, extra};
  int rc;

  if (extra && t->reason)
    json_object_set_new(extra, "reason", json_string(t->reason));
  rc = extra ? st_job_event_make(&ev, r->event_id, &r->event, err)
             : st_fail(err, ST_ENOMEM, "job state: out of memory for the event");
  json_decref(extra);
  return rc;
}

static int insert_event(PGconn *c, pg_rec_t *r, st_error_t *err) {
  const char *p[4] = {r->event_id, r->t->env->tenant, r->event_type, r->event};
  return st_db_exec(c,
                    "INSERT INTO outbox (event_id, tenant_id, type, payload)"
                    " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                    4, p, NULL, err);
}

/* Move an existing row forward, with its outbox row in the same statement (one round
 * trip in the common case); *changed 0 when there is no row or it is final already. */
static int update_row(PGconn *c, pg_rec_t *r, long long *changed, st_error_t *err) {
#define UPDATE_JOB                                                                            \
  "UPDATE jobs SET state = $3, attempt = $4::int, error = $5, error_class = $6,"              \
  " result = CASE WHEN $3 = 'succeeded'"                                                      \
  "   THEN jsonb_build_object('duration_ms', $7::bigint) ELSE result END,"                    \
  " finished_at = CASE WHEN $3 IN " FINAL_STATES " THEN now() END"                            \
  " WHERE tenant_id = $1 AND job_id = $2 AND state NOT IN " FINAL_STATES                      \
  " AND attempt <= $4::int"
  const st_job_transition_t *t = r->t;
  char dur[24];
  const char *cls = t->outcome == ST_JOB_SUCCEEDED ? NULL : error_class(t->outcome);
  const char *p[10] = {t->env->tenant, t->env->job_id, r->state, r->attempt,
                       t->outcome == ST_JOB_SUCCEEDED ? NULL : t->reason, cls, dur,
                       r->event_id, r->event_type, r->event};

  snprintf(dur, sizeof(dur), "%llu", (unsigned long long)t->duration_ms);
  if (!r->event_type)
    return st_db_exec_count(c, UPDATE_JOB, 7, p, changed, err);
  return st_db_query_int(c,
                         "WITH u AS (" UPDATE_JOB " RETURNING 1),"
                         " e AS (INSERT INTO outbox (event_id, tenant_id, type, payload)"
                         "   SELECT $8, $1, $9, $10::jsonb FROM u ON CONFLICT DO NOTHING)"
                         " SELECT count(*) FROM u",
                         10, p, changed, err);
#undef UPDATE_JOB
}

/* STARTED: the row is running unless the job is final (ST_EEXIST) or a cancel was
 * requested (ST_ECANCELED); both verdicts commit (nothing was changed). */
static int tx_started(PGconn *c, pg_rec_t *r, st_error_t *err) {
  const st_envelope_t *e = r->t->env;
  const char *p[3] = {e->tenant, e->job_id, r->attempt};
  PGresult *res = NULL;
  long long inserted = 0;
  int rc;

  r->started_rc = 0;
  if ((rc = insert_row(c, r, &inserted, err)) || inserted)
    goto done;
  if ((rc = st_db_exec(c,
                       "SELECT state IN " FINAL_STATES ", cancel_requested_at IS NOT NULL"
                       " FROM jobs WHERE tenant_id = $1 AND job_id = $2 FOR UPDATE",
                       2, p, &res, err)))
    goto done;
  if (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't') {
    r->started_rc = ST_EEXIST;
  } else if (PQntuples(res) == 1 && PQgetvalue(res, 0, 1)[0] == 't') {
    r->started_rc = ST_ECANCELED;
  } else {
    rc = st_db_exec(c,
                    "UPDATE jobs SET state = 'running', attempt = greatest(attempt, $3::int),"
                    " started_at = now(), heartbeat_at = now()"
                    " WHERE tenant_id = $1 AND job_id = $2",
                    3, p, NULL, err);
  }
done:
  PQclear(res);
  return rc;
}

static int tx_record(PGconn *c, void *arg, st_error_t *err) {
  pg_rec_t *r = arg;
  const st_job_transition_t *t = r->t;
  const st_envelope_t *e = t->env;
  long long changed = 0;
  int rc;

  if (t->state == ST_STATE_STARTED)
    return tx_started(c, r, err);
  if (t->state == ST_STATE_PROGRESS) {
    const char *p[2] = {e->tenant, e->job_id};
    return st_db_exec(c,
                      "UPDATE jobs SET heartbeat_at = now() WHERE tenant_id = $1"
                      " AND job_id = $2 AND state = 'running'",
                      2, p, NULL, err);
  }
  if ((rc = update_row(c, r, &changed, err)) || changed)
    return rc;
  /* no row yet (it never started here), or final already: insert or leave it */
  if ((rc = insert_row(c, r, &changed, err)) || !changed || !r->event_type)
    return rc;
  return insert_event(c, r, err);
}

static int pg_record(void *ud, const st_job_transition_t *t, st_error_t *err) {
  st_db_pool_t *pool = ud;
  st_state_sink_t log;
  pg_rec_t r = {0};
  int rc = 0;

  st_state_sink_log(&log);
  if (!t->env || t->state == ST_STATE_RELEASED)
    return log.record(log.ud, t, err); /* no tenant to record it under / nothing changed */
  r.t = t;
  snprintf(r.attempt, sizeof(r.attempt), "%u", t->env->attempt);
  switch (t->state) {
  case ST_STATE_STARTED:
  case ST_STATE_PROGRESS: r.state = "running"; break;
  case ST_STATE_SUCCEEDED:
    r.state = "succeeded";
    r.event_type = "job.succeeded";
    break;
  case ST_STATE_RETRY_SCHEDULED: r.state = "queued"; break;
  case ST_STATE_DEAD_LETTERED:
    r.state = "dead";
    r.event_type = "job.dead_lettered";
    break;
  case ST_STATE_CANCELLED:
    r.state = "cancelled";
    r.event_type = "job.cancelled";
    break;
  default: return 0;
  }
  if (!(r.payload = json_dumps(t->env->payload, JSON_COMPACT)))
    return st_fail(err, ST_ENOMEM, "job state: out of memory for the payload");
  if (r.event_type && (rc = make_event(&r, err)))
    goto done;
  rc = st_db_tenant_tx(pool, t->env->tenant, tx_record, &r, err);
  if (rc == 0 && !r.started_rc) /* a STARTED verdict logs as what it becomes instead */
    (void)log.record(log.ud, t, err);
  if (rc == 0 && r.started_rc)
    rc = st_fail(err, r.started_rc,
                 r.started_rc == ST_EEXIST ? "job %s is already final" : "job %s: cancel requested",
                 t->env->job_id);
done:
  free(r.payload);
  free(r.event);
  return rc;
}

void st_state_sink_pg(st_state_sink_t *out, st_db_pool_t *pool) {
  out->record = pg_record;
  out->free = NULL;
  out->ud = pool;
}
