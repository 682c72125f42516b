/* cmd_job_state.c: the Postgres side of `stella job`: get, watch, cancel (config pg_url,
 * service role, tenant-scoped by row-level security), and the queued row `job submit`
 * writes before its XADD.
 *   get ID --tenant T [--json]     state, attempt, result, error, transitions
 *   watch ID --tenant T            prints each new transition until the job is final;
 *                                  exit 0 if it succeeded, 1 otherwise
 *   cancel ID --tenant T           sets cancel_requested_at; the supervisor running it
 *                                  cancels it, one picking it up later does not run it */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "stella/db.h"
#include "stella/mem.h"

typedef struct q_s {
  const char *job_id, *type, *idem, *payload;
  PGresult *job, *events;
  char *existing; /* submit: job id already holding the idempotency key */
} q_t;

static int tx_read(PGconn *c, void *arg, st_error_t *err) {
  q_t *q = arg;
  const char *p[1] = {q->job_id};
  int rc;
  PQclear(q->job);
  PQclear(q->events);
  q->job = q->events = NULL;
  if ((rc = st_db_exec(c,
                       "SELECT job_id, tenant_id, type, state, attempt, coalesce(result::text, ''),"
                       " coalesce(error, ''), coalesce(error_class, ''),"
                       " coalesce(to_char(cancel_requested_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF'), ''),"
                       " to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF'),"
                       " state IN ('succeeded', 'failed', 'cancelled', 'dead'),"
                       " coalesce(idempotency_key, '')"
                       " FROM jobs WHERE job_id = $1",
                       1, p, &q->job, err)))
    return rc;
  return st_db_exec(c,
                    "SELECT to_char(at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF'), attempt,"
                    " coalesce(from_state, ''), to_state FROM job_events WHERE job_id = $1"
                    " ORDER BY at, attempt",
                    1, p, &q->events, err);
}

static void q_release(q_t *q) {
  PQclear(q->job);
  PQclear(q->events);
  st_free(q->existing);
}

static void print_transition(const PGresult *ev, int i) {
  printf("  %s  attempt %s  %s -> %s\n", PQgetvalue(ev, i, 0), PQgetvalue(ev, i, 1),
         *PQgetvalue(ev, i, 2) ? PQgetvalue(ev, i, 2) : "(new)", PQgetvalue(ev, i, 3));
}

static void print_job(const q_t *q, int as_json) {
  const PGresult *j = q->job;
  if (as_json) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "job_id", PQgetvalue(j, 0, 0),
                          "tenant", PQgetvalue(j, 0, 1), "type", PQgetvalue(j, 0, 2), "state",
                          PQgetvalue(j, 0, 3), "attempt", atoi(PQgetvalue(j, 0, 4)),
                          "created_at", PQgetvalue(j, 0, 9), "error", PQgetvalue(j, 0, 6));
    json_t *tr = json_array();
    char *text;
    json_object_set_new(o, "result", *PQgetvalue(j, 0, 5) ? json_loads(PQgetvalue(j, 0, 5), 0, NULL)
                                                            : json_null());
    json_object_set_new(o, "error_class", *PQgetvalue(j, 0, 7) ? json_string(PQgetvalue(j, 0, 7))
                                                                 : json_null());
    json_object_set_new(o, "cancel_requested_at",
                        *PQgetvalue(j, 0, 8) ? json_string(PQgetvalue(j, 0, 8)) : json_null());
    for (int i = 0; i < PQntuples(q->events); i++)
      json_array_append_new(tr, json_pack("{s:s, s:i, s:s?, s:s}", "at", PQgetvalue(q->events, i, 0),
                                          "attempt", atoi(PQgetvalue(q->events, i, 1)), "from",
                                          *PQgetvalue(q->events, i, 2) ? PQgetvalue(q->events, i, 2)
                                                                       : NULL,
                                          "to", PQgetvalue(q->events, i, 3)));
    json_object_set_new(o, "transitions", tr);
    text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(o);
    return;
  }
  printf("job_id   %s\ntenant   %s\ntype     %s\nstate    %s\nattempt  %s\ncreated  %s\n",
         PQgetvalue(j, 0, 0), PQgetvalue(j, 0, 1), PQgetvalue(j, 0, 2), PQgetvalue(j, 0, 3),
         PQgetvalue(j, 0, 4), PQgetvalue(j, 0, 9));
  if (*PQgetvalue(j, 0, 5))
    printf("result   %s\n", PQgetvalue(j, 0, 5));
  if (*PQgetvalue(j, 0, 6))
    printf("error    %s (%s)\n", PQgetvalue(j, 0, 6), PQgetvalue(j, 0, 7));
  if (*PQgetvalue(j, 0, 8))
    printf("cancel   requested at %s\n", PQgetvalue(j, 0, 8));
  printf("transitions:\n");
  for (int i = 0; i < PQntuples(q->events); i++)
    print_transition(q->events, i);
}

/* Parse `ID --tenant T [--json]`. */
static int args(int argc, char **argv, const char *usage, const char **id, const char **tenant,
                int *as_json) {
  *id = *tenant = NULL;
  if (as_json)
    *as_json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
      *tenant = argv[++i];
    else if (as_json && !strcmp(argv[i], "--json"))
      *as_json = 1;
    else if (argv[i][0] != '-' && !*id)
      *id = argv[i];
    else
      return st_cli_usage("%s", usage);
  }
  if (!*id || !*tenant)
    return st_cli_usage("%s", usage);
  return 0;
}

int st_cli_tenant_tx(const char *tenant, int flags, st_db_tx_fn fn, void *arg,
                     st_error_t *err) {
  st_db_pool_t *db = NULL;
  int rc;

  if ((rc = st_cli_pool(NULL, &db)))
    return rc;
  rc = ST_EXIT_OK;
  if (st_db_tenant_txf(db, tenant, flags, fn, arg, err))
    rc = err->code == ST_EINVAL ? ST_EXIT_USAGE : ST_EXIT_FAIL;
  st_db_pool_free(db);
  return rc;
}

static int with_db(const char *tenant, int flags, st_db_tx_fn fn, q_t *q) {
  st_error_t err = ST_ERROR_INIT;
  int rc = st_cli_tenant_tx(tenant, flags, fn, q, &err);
  if (rc && err.code)
    fprintf(stderr, "stella: %s\n", st_error_text(&err));
  return rc;
}

int st_cli_job_get(int argc, char **argv) {
  const char *tenant;
  q_t q = {0};
  int as_json, rc;

  if ((rc = args(argc, argv, "job get ID --tenant T [--json]", &q.job_id, &tenant, &as_json)))
    return rc;
  if ((rc = with_db(tenant, ST_DB_TX_READ_ONLY, tx_read, &q)) == ST_EXIT_OK) {
    if (PQntuples(q.job) == 0) {
      fprintf(stderr, "stella: job %s of tenant %s: not found\n", q.job_id, tenant);
      rc = ST_EXIT_FAIL;
    } else {
      print_job(&q, as_json);
    }
  }
  q_release(&q);
  return rc;
}

int st_cli_job_watch(int argc, char **argv) {
  const char *tenant;
  q_t q = {0};
  int rc, shown = 0, waiting = 0;
  st_error_t err = ST_ERROR_INIT;
  st_db_pool_t *db = NULL;

  if ((rc = args(argc, argv, "job watch ID --tenant T", &q.job_id, &tenant, NULL)) ||
      (rc = st_cli_pool(NULL, &db)))
    goto done;
  for (;;) {
    struct timespec ts = {0, 300 * 1000000L};
    if (st_db_tenant_txf(db, tenant, ST_DB_TX_READ_ONLY, tx_read, &q, &err)) {
      fprintf(stderr, "stella: %s\n", st_error_text(&err));
      rc = err.code == ST_EINVAL ? ST_EXIT_USAGE : ST_EXIT_FAIL;
      goto done;
    }
    if (PQntuples(q.job) == 0 && !waiting++)
      fprintf(stderr, "stella: job %s of tenant %s not recorded yet; waiting\n", q.job_id, tenant);
    for (; shown < PQntuples(q.events); shown++)
      print_transition(q.events, shown);
    fflush(stdout);
    if (PQntuples(q.job) == 1 && PQgetvalue(q.job, 0, 10)[0] == 't') {
      printf("final: %s\n", PQgetvalue(q.job, 0, 3));
      rc = strcmp(PQgetvalue(q.job, 0, 3), "succeeded") ? ST_EXIT_FAIL : ST_EXIT_OK;
      goto done;
    }
    nanosleep(&ts, NULL);
  }
done:
  q_release(&q);
  st_db_pool_free(db);
  return rc;
}

static int tx_cancel(PGconn *c, void *arg, st_error_t *err) {
  q_t *q = arg;
  const char *p[1] = {q->job_id};
  long long n = 0;
  int rc = st_db_exec_count(c,
                            "UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now())"
                            " WHERE job_id = $1 AND state NOT IN ('succeeded', 'failed', 'cancelled', 'dead')",
                            1, p, &n, err);
  if (rc || n)
    return rc;
  return tx_read(c, arg, err);
}

int st_cli_job_cancel(int argc, char **argv) {
  const char *tenant;
  q_t q = {0};
  int rc;

  if ((rc = args(argc, argv, "job cancel ID --tenant T", &q.job_id, &tenant, NULL)))
    return rc;
  if ((rc = with_db(tenant, 0, tx_cancel, &q)) == ST_EXIT_OK) {
    if (!q.job) {
      printf("cancel requested for job %s\n", q.job_id);
    } else if (PQntuples(q.job) == 0) {
      fprintf(stderr, "stella: job %s of tenant %s: not found\n", q.job_id, tenant);
      rc = ST_EXIT_FAIL;
    } else {
      fprintf(stderr, "stella: job %s is already %s\n", q.job_id, PQgetvalue(q.job, 0, 3));
      rc = ST_EXIT_FAIL;
    }
  }
  q_release(&q);
  return rc;
}

static int tx_queued(PGconn *c, void *arg, st_error_t *err) {
  q_t *q = arg;
  const char *tenant = NULL;
  PGresult *res = NULL;
  long long n = 0;
  int rc;

  if ((rc = st_db_exec(c, "SELECT current_setting('stella.tenant')", 0, NULL, &res, err)))
    return rc;
  tenant = PQgetvalue(res, 0, 0);
  {
    const char *p[5] = {tenant, q->job_id, q->type, q->idem, q->payload};
    rc = st_db_exec_count(c,
                          "INSERT INTO jobs (tenant_id, job_id, type, idempotency_key, payload)"
                          " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
                          5, p, &n, err);
  }
  PQclear(res);
  res = NULL;
  if (rc || n || !q->idem)
    return rc;
  {
    const char *p[2] = {q->type, q->idem};
    if ((rc = st_db_exec(c, "SELECT job_id FROM jobs WHERE type = $1 AND idempotency_key = $2", 2,
                         p, &res, err)))
      return rc;
  }
  if (PQntuples(res) == 1 && !(q->existing = st_strdup(PQgetvalue(res, 0, 0))))
    rc = st_fail(err, ST_ENOMEM, "out of memory");
  PQclear(res);
  return rc;
}

int st_cli_job_record_queued(const char *tenant, const char *job_id, const char *type,
                             const char *idem, const char *payload_json, char **existing) {
  st_error_t err = ST_ERROR_INIT;
  st_db_pool_t *db = NULL;
  q_t q = {job_id, type, idem, payload_json, NULL, NULL, NULL};
  int rc;

  *existing = NULL;
  if ((rc = st_cli_pool(NULL, &db)))
    goto done;
  if (st_db_tenant_tx(db, tenant, tx_queued, &q, &err)) {
    fprintf(stderr, "stella: recording the job: %s\n", st_error_text(&err));
    rc = err.code == ST_EINVAL ? ST_EXIT_USAGE : ST_EXIT_FAIL;
    goto done;
  }
  *existing = q.existing;
  q.existing = NULL;
  rc = ST_EXIT_OK;
done:
  q_release(&q);
  st_db_pool_free(db);
  return rc;
}
