/* run.c: the lifecycle of export runs after creation: state and progress updates, the
 * built artifact, reads for the API (get, list, the event log) and cancel. The event log
 * and the outbox rows are written by the triggers of 0033_export_runs.sql, so every
 * function here is one UPDATE or SELECT in a tenant transaction. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "stella/json.h"
#include "stella/mem.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

int st_export_run_id_valid(const char *s) {
  static const int dash[] = {8, 13, 18, 23};
  size_t d = 0;
  if (!s || strlen(s) != ST_EXPORT_RUN_ID_LEN)
    return 0;
  for (size_t i = 0; i < ST_EXPORT_RUN_ID_LEN; i++) {
    if (d < 4 && (int)i == dash[d]) {
      if (s[i] != '-')
        return 0;
      d++;
    } else if (!strchr("0123456789abcdefABCDEF", s[i])) {
      return 0;
    }
  }
  return 1;
}

typedef struct upd_s {
  const char *run_id;
  const char *const *params; /* after the run id */
  int n;
  const char *sql;
  const char *what;
  json_t *out;
  long long after;
  int max;
  const st_export_hook_t *hook;
} upd_t;

/* The run's state, for a refusal's message. */
static int state_of(PGconn *c, const char *run_id, char *out, size_t cap, st_error_t *err) {
  const char *p[1] = {run_id};
  PGresult *res = NULL;
  int rc = st_db_exec(c, "SELECT state::text FROM export_runs WHERE run_id = $1::uuid", 1, p,
                      &res, err);
  if (!rc && PQntuples(res) == 0)
    rc = st_fail(err, ST_ENOENT, "export run %s not found", run_id);
  if (!rc)
    snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  return rc;
}

/* Run a.sql with $1 = run id and the other params; when it changes no row, say why:
 * ST_ENOENT (no such run) or ST_ECONFLICT naming the run's state. */
static int update_tx(PGconn *c, void *arg, st_error_t *err) {
  upd_t *a = arg;
  const char *p[8] = {a->run_id};
  char state[32];
  long long n = 0;
  int rc;

  for (int i = 0; i < a->n && i < 7; i++)
    p[i + 1] = a->params[i];
  if ((rc = st_db_exec_count(c, a->sql, a->n + 1, p, &n, err)))
    return rc;
  if (n)
    return a->hook && a->hook->fn ? a->hook->fn(c, a->hook->arg, err) : 0;
  if ((rc = state_of(c, a->run_id, state, sizeof(state), err)))
    return rc;
  return st_fail(err, ST_ECONFLICT, "export run %s is %s: cannot %s", a->run_id, state, a->what);
}

static int run_update(st_db_pool_t *pool, const char *tenant, upd_t *a, st_error_t *err) {
  if (!st_export_run_id_valid(a->run_id))
    return st_fail(err, ST_ENOENT, "export run not found");
  return st_db_tenant_tx(pool, tenant, update_tx, a, err);
}

int st_export_run_set_state(st_db_pool_t *pool, const char *tenant, const char *run_id,
                            const char *state, const char *error, st_error_t *err) {
  const char *p[2] = {state, error};
  char what[48];
  upd_t a = {run_id, p, 2,
             "UPDATE export_runs SET state = $2::export_run_state, error = coalesce($3, error),"
             " started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE "
             "started_at END, progress_note = NULL WHERE run_id = $1::uuid AND (state = "
             "$2::export_run_state OR (state, $2::export_run_state) IN (('requested', "
             "'planning'), ('requested', 'failed'), ('requested', 'cancelled'), ('planning', "
             "'running'), ('planning', 'failed'), ('planning', 'cancelled'), ('running', "
             "'built'), ('running', 'failed'), ('running', 'cancelled'), ('built', "
             "'distributed'), ('built', 'failed')))",
             what, NULL, 0, 0, NULL};
  snprintf(what, sizeof(what), "move to %s", state);
  return run_update(pool, tenant, &a, err);
}

int st_export_run_progress(st_db_pool_t *pool, const char *tenant, const char *run_id,
                           double fraction, const char *note, st_error_t *err) {
  char v[32];
  const char *p[2] = {v, note};
  upd_t a = {run_id, p, 2,
             "UPDATE export_runs SET progress = $2::real, progress_note = $3 WHERE run_id = "
             "$1::uuid AND state = 'running'",
             "report progress", NULL, 0, 0, NULL};
  if (!(fraction >= 0))
    fraction = 0;
  snprintf(v, sizeof(v), "%.3f", fraction > 1 ? 1.0 : floor(fraction * 1000) / 1000);
  return run_update(pool, tenant, &a, err);
}

int st_export_run_built(st_db_pool_t *pool, const char *tenant, const char *run_id,
                        const st_export_artifact_t *art, st_error_t *err) {
  char size[32];
  char *counts = NULL;
  const char *p[7] = {art->bundle_id, art->manifest_digest, art->artifact_key,
                      art->manifest_key, art->sha256, size, NULL};
  upd_t a = {run_id, p, 7,
             "UPDATE export_runs SET state = 'built', progress = 1, progress_note = NULL, "
             "bundle_id = $2, manifest_digest = $3, artifact_key = $4, manifest_key = $5, "
             "artifact_sha256 = $6, artifact_size = $7::bigint, counts = $8::jsonb "
             "WHERE run_id = $1::uuid AND state = 'running'",
             "record the built artifact", NULL, 0, 0, NULL};
  int rc;

  snprintf(size, sizeof(size), "%lld", art->size);
  if (!(counts = json_dumps(art->counts, JSON_COMPACT | JSON_SORT_KEYS)))
    return st_fail(err, ST_ENOMEM, "export run: out of memory");
  p[6] = counts;
  rc = run_update(pool, tenant, &a, err);
  free(counts);
  return rc;
}

int st_export_run_cancel(st_db_pool_t *pool, const char *tenant, const char *run_id,
                         const st_export_hook_t *hook, st_error_t *err) {
  upd_t a = {run_id, NULL, 0,
             "UPDATE export_runs SET state = 'cancelled', progress_note = NULL WHERE run_id = "
             "$1::uuid AND state IN ('requested', 'planning', 'running')",
             "cancel it", NULL, 0, 0, hook};
  return run_update(pool, tenant, &a, err);
}

int st_export_run_evidence(st_db_pool_t *pool, const char *tenant, const char *run_id,
                           const char *merkle_root, const char *evidence_id,
                           const char *evidence_sha256, const char *evidence_merkle_root,
                           const char *evidence_key, st_error_t *err) {
  const char *p[5] = {merkle_root, evidence_id, evidence_sha256, evidence_merkle_root,
                      evidence_key};
  upd_t a = {run_id, p, 5,
             "UPDATE export_runs SET merkle_root = $2, evidence_bundle_id = $3, "
             "evidence_sha256 = $4, evidence_merkle_root = $5, evidence_key = $6 "
             "WHERE run_id = $1::uuid AND state = 'built'",
             "record its evidence", NULL, 0, 0, NULL};
  return run_update(pool, tenant, &a, err);
}

static int state_tx(PGconn *c, void *arg, st_error_t *err) {
  upd_t *a = arg;
  return state_of(c, a->run_id, (char *)a->what, (size_t)a->max, err);
}

int st_export_run_state(st_db_pool_t *pool, const char *tenant, const char *run_id,
                        char *state, size_t cap, st_error_t *err) {
  upd_t a = {run_id, NULL, 0, NULL, state, NULL, 0, (int)cap, NULL};
  if (!st_export_run_id_valid(run_id))
    return st_fail(err, ST_ENOENT, "export run not found");
  return st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, state_tx, &a, err);
}

#define RUN_JSON                                                                            \
  "jsonb_strip_nulls(jsonb_build_object('run_id', run_id, 'profile', profile_name, "         \
  "'project', project, 'kind', kind, 'state', state, 'progress', progress, 'note', "        \
  "progress_note, 'error', error, 'plan_digest', plan_digest, 'input_count', input_count, " \
  "'counts', counts, 'bundle_id', bundle_id, 'manifest_digest', manifest_digest, "          \
  "'artifact', CASE WHEN artifact_key IS NOT NULL THEN jsonb_build_object('key', "          \
  "artifact_key, 'sha256', artifact_sha256, 'size', artifact_size) END, 'manifest_key', "    \
  "manifest_key, 'merkle_root', merkle_root, 'evidence', CASE WHEN evidence_bundle_id IS NOT " \
  "NULL THEN jsonb_build_object('bundle_id', evidence_bundle_id, 'sha256', evidence_sha256, " \
  "'merkle_root', evidence_merkle_root, 'key', evidence_key) END, 'provenance', provenance, 'single_flight', single_flight, 'settings', "      \
  "profile, 'created_at', "   \
  TS("created_at") ", 'updated_at', " TS("updated_at") ", 'started_at', " TS("started_at")  \
  ", 'finished_at', " TS("finished_at") ", 'last_event_id', event_seq::text))"

/* One JSON text column of one row into a->out (no row: ST_ENOENT). */
static int json_tx(PGconn *c, void *arg, st_error_t *err) {
  upd_t *a = arg;
  const char *p[4] = {a->run_id};
  PGresult *res = NULL;
  int rc;

  for (int i = 1; i < a->n && i < 4; i++)
    p[i] = a->params[i - 1];
  rc = st_db_exec(c, a->sql, a->n, p, &res, err);
  if (!rc && (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)))
    rc = st_fail(err, ST_ENOENT, "export run %s not found", a->run_id ? a->run_id : "");
  if (!rc) {
    json_decref(a->out);
    a->out = NULL;
    rc = st_json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), NULL, &a->out, err);
  }
  if (!rc && PQnfields(res) > 1)
    a->after = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
  PQclear(res);
  return rc;
}

static int read_json(st_db_pool_t *pool, const char *tenant, upd_t *a, json_t **out,
                     st_error_t *err) {
  int rc = st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, json_tx, a, err);
  *out = rc ? NULL : a->out;
  if (rc)
    json_decref(a->out);
  return rc;
}

int st_export_run_get(st_db_pool_t *pool, const char *tenant, const char *run_id, json_t **out,
                      st_error_t *err) {
  upd_t a = {run_id, NULL, 1,
             "SELECT " RUN_JSON "::text FROM export_runs WHERE run_id = $1::uuid", "get", NULL,
             0, 0, 0};
  *out = NULL;
  if (!st_export_run_id_valid(run_id))
    return st_fail(err, ST_ENOENT, "export run not found");
  return read_json(pool, tenant, &a, out, err);
}

int st_export_run_list(st_db_pool_t *pool, const char *tenant, const char *profile, int limit,
                       json_t **out, st_error_t *err) {
  char lim[16];
  const char *p[2] = {profile, lim};
  upd_t a = {NULL, p, 3,
             "SELECT coalesce(jsonb_agg(j ORDER BY c DESC, id DESC), '[]')::text FROM (SELECT "
             RUN_JSON " AS j, created_at AS c, run_id AS id FROM export_runs WHERE $1::text IS "
             "NULL AND ($2::text IS NULL OR profile_name = $2) ORDER BY created_at DESC, run_id DESC LIMIT $3::int) s",
             "list", NULL, 0, 0, NULL};
  snprintf(lim, sizeof(lim), "%d", limit < 1 ? 1 : limit > 500 ? 500 : limit);
  return read_json(pool, tenant, &a, out, err);
}

int st_export_run_events(st_db_pool_t *pool, const char *tenant, const char *run_id,
                         long long after, int max, json_t **out, int *terminal,
                         st_error_t *err) {
  char aft[32], lim[16];
  const char *p[2] = {aft, lim};
  upd_t a = {run_id, p, 3,
             "SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object('seq', e.seq, 'type', "
             "e.type, 'state', e.state, 'data', e.data) ORDER BY e.seq), '[]') FROM (SELECT * "
             "FROM export_run_events WHERE run_id = $1::uuid AND seq > $2::bigint ORDER BY seq "
             "LIMIT $3::int) e)::text, CASE WHEN r.state IN ('distributed', 'failed', "
             "'cancelled') THEN r.event_seq ELSE -1 END FROM export_runs r WHERE r.run_id = "
             "$1::uuid",
             "events", NULL, 0, 0, NULL};
  int rc;

  *out = NULL;
  if (!st_export_run_id_valid(run_id))
    return st_fail(err, ST_ENOENT, "export run not found");
  snprintf(aft, sizeof(aft), "%lld", after < 0 ? 0 : after);
  snprintf(lim, sizeof(lim), "%d", max < 1 ? 1 : max > 1000 ? 1000 : max);
  rc = read_json(pool, tenant, &a, out, err);
  if (!rc && terminal) {
    /* final, and the last event is in hand (a.after holds the final seq, or -1) */
    size_t n = json_array_size(*out);
    long long last = n ? json_integer_value(json_object_get(json_array_get(*out, n - 1), "seq"))
                       : after;
    *terminal = a.after >= 0 && last >= a.after;
  }
  return rc;
}

int st_export_run_distributed(st_db_pool_t *pool, const char *tenant, const char *run_id,
                              const char *target, const char *digest, st_error_t *err) {
  const char *p[2] = {target, digest};
  upd_t a = {run_id, p, 2,
             "WITH d AS (INSERT INTO export_distributions (tenant_id, run_id, target, digest, "
             "state, attempts) SELECT tenant_id, run_id, $2, $3, 'pushed', 1 FROM export_runs "
             "WHERE run_id = $1::uuid AND state IN ('built', 'distributed') ON CONFLICT DO "
             "NOTHING) UPDATE export_runs SET state = 'distributed' WHERE run_id = $1::uuid AND "
             "state IN ('built', 'distributed')",
             "record its distribution", NULL, 0, 0, NULL};
  return run_update(pool, tenant, &a, err);
}
