/* cmd_schedule.c: `stella schedule` over Postgres (pg_url, tenant-scoped):
 *   add --tenant T --name N --cron EXPR --type TYPE [--payload JSON] [--disabled]
 *   add --tenant T --name N --on EVENT_TYPE --type TYPE [--payload JSON] [--disabled]
 *   list --tenant T [--json]
 *   rm --tenant T --name N
 * A cron schedule is fired by the scheduler role of stellad; an event trigger (--on)
 * starts TYPE for every event of EVENT_TYPE on stella:events. The cron expression, the
 * job type and the payload (the worker's own validator) are checked before anything is
 * stored (a 6-field cron with seconds only under the test-only scheduler_test_seconds).
 * Names are unique per tenant within each kind; rm removes either kind by name. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cron.h"
#include "registry.h"
#include "stella/config.h"
#include "stella/db.h"
#include "stella/mem.h"

typedef struct sched_s {
  const char *tenant, *name, *cron, *on, *type, *payload;
  int disabled, as_json;
  PGresult *crons, *triggers;
  long long n;
} sched_t;

static int tx_add(PGconn *c, void *arg, st_error_t *err) {
  sched_t *s = arg;
  const char *p[6] = {s->tenant, s->name, s->cron ? s->cron : s->on, s->type, s->payload,
                      s->disabled ? "false" : "true"};
  return st_db_exec_count(
      c,
      s->cron ? "INSERT INTO schedules (tenant_id, name, cron, job_type, payload, enabled)"
                " VALUES ($1, $2, $3, $4, $5::jsonb, $6::boolean)"
              : "INSERT INTO event_triggers (tenant_id, name, event_type, job_type, payload,"
                " enabled) VALUES ($1, $2, $3, $4, $5::jsonb, $6::boolean)",
      6, p, &s->n, err);
}

static int tx_list(PGconn *c, void *arg, st_error_t *err) {
  sched_t *s = arg;
  int rc = st_db_exec(c,
                      "SELECT id, name, cron, job_type, payload::text, enabled,"
                      " coalesce(to_char(last_fired_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF'), '')"
                      " FROM schedules ORDER BY name",
                      0, NULL, &s->crons, err);
  if (rc)
    return rc;
  return st_db_exec(c,
                    "SELECT id, name, event_type, job_type, payload::text, enabled"
                    " FROM event_triggers ORDER BY name",
                    0, NULL, &s->triggers, err);
}

static int tx_rm(PGconn *c, void *arg, st_error_t *err) {
  sched_t *s = arg;
  const char *p[1] = {s->name};
  long long a = 0, b = 0;
  int rc;
  if ((rc = st_db_exec_count(c, "DELETE FROM schedules WHERE name = $1", 1, p, &a, err)) ||
      (rc = st_db_exec_count(c, "DELETE FROM event_triggers WHERE name = $1", 1, p, &b, err)))
    return rc;
  s->n = a + b;
  return 0;
}

static int run_tx(sched_t *s, int flags, st_db_tx_fn fn) {
  st_error_t err = ST_ERROR_INIT;
  int rc = st_cli_tenant_tx(s->tenant, flags, fn, s, &err);
  if (rc && err.code == ST_ECONFLICT)
    fprintf(stderr, "stella: schedule: a schedule or trigger named \"%s\" exists\n", s->name);
  else if (rc && err.code)
    fprintf(stderr, "stella: schedule: %s\n", st_error_text(&err));
  return rc;
}

static int parse(int argc, char **argv, sched_t *s) {
  for (int i = 1; i < argc; i++) {
    const char **slot = !strcmp(argv[i], "--tenant")    ? &s->tenant
                        : !strcmp(argv[i], "--name")    ? &s->name
                        : !strcmp(argv[i], "--cron")    ? &s->cron
                        : !strcmp(argv[i], "--on")      ? &s->on
                        : !strcmp(argv[i], "--type")    ? &s->type
                        : !strcmp(argv[i], "--payload") ? &s->payload
                                                        : NULL;
    if (!strcmp(argv[i], "--disabled")) {
      s->disabled = 1;
      continue;
    }
    if (!strcmp(argv[i], "--json")) {
      s->as_json = 1;
      continue;
    }
    if (!slot || i + 1 >= argc)
      return st_cli_usage("schedule: unexpected argument \"%s\"", argv[i]);
    *slot = argv[++i];
  }
  if (!s->tenant)
    return st_cli_usage("schedule: --tenant is required");
  return 0;
}

static int add(sched_t *s) {
  st_cron_t cron;
  st_error_t err = ST_ERROR_INIT;
  const st_worker_t *w;
  json_t *payload = NULL;
  json_error_t jerr;
  int rc = ST_EXIT_USAGE;

  if (!s->name || !s->type || !!s->cron == !!s->on) {
    rc = st_cli_usage("schedule add --tenant T --name N (--cron EXPR | --on EVENT_TYPE) "
                      "--type TYPE [--payload JSON] [--disabled]");
    goto done;
  }
  if (s->cron) {
    st_config_t *cfg = NULL;
    int flags = 0;
    if (st_config_load(&cfg, NULL, &err) == 0 && st_config_bool(cfg, "scheduler_test_seconds"))
      flags = ST_CRON_SECONDS;
    st_config_free(cfg);
    if (st_cron_parse(s->cron, flags, &cron, &err)) {
      rc = st_cli_usage("schedule add: --cron: %s", st_error_text(&err));
      goto done;
    }
  }
  if (!(w = st_worker_find(s->type))) {
    rc = st_cli_usage("schedule add: unknown job type \"%s\"", s->type);
    goto done;
  }
  if (!s->payload)
    s->payload = "{}";
  payload = json_loads(s->payload, JSON_REJECT_DUPLICATES, &jerr);
  if (!json_is_object(payload)) {
    rc = st_cli_usage("schedule add: --payload: %s", payload ? "expected an object" : jerr.text);
    goto done;
  }
  if (w->validate && w->validate(payload, &err)) {
    rc = st_cli_usage("schedule add: payload: %s", st_error_text(&err));
    goto done;
  }
  if ((rc = run_tx(s, 0, tx_add)) == ST_EXIT_OK)
    printf("%s %s added\n", s->cron ? "schedule" : "trigger", s->name);
done:
  json_decref(payload);
  return rc;
}

static int list(sched_t *s) {
  int rc = run_tx(s, ST_DB_TX_READ_ONLY, tx_list);
  if (rc == ST_EXIT_OK && s->as_json) {
    json_t *a = json_array();
    char *text;
    for (int i = 0; i < PQntuples(s->crons); i++)
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:s?}", "kind", "cron", "name",
                       PQgetvalue(s->crons, i, 1), "cron", PQgetvalue(s->crons, i, 2), "type",
                       PQgetvalue(s->crons, i, 3), "payload",
                       json_loads(PQgetvalue(s->crons, i, 4), 0, NULL), "enabled",
                       PQgetvalue(s->crons, i, 5)[0] == 't', "last_fired_at",
                       *PQgetvalue(s->crons, i, 6) ? PQgetvalue(s->crons, i, 6) : NULL));
    for (int i = 0; i < PQntuples(s->triggers); i++)
      json_array_append_new(
          a, json_pack("{s:s, s:s, s:s, s:s, s:o, s:b}", "kind", "trigger", "name",
                       PQgetvalue(s->triggers, i, 1), "on", PQgetvalue(s->triggers, i, 2),
                       "type", PQgetvalue(s->triggers, i, 3), "payload",
                       json_loads(PQgetvalue(s->triggers, i, 4), 0, NULL), "enabled",
                       PQgetvalue(s->triggers, i, 5)[0] == 't'));
    text = json_dumps(a, JSON_INDENT(2));
    printf("%s\n", text ? text : "[]");
    free(text);
    json_decref(a);
  } else if (rc == ST_EXIT_OK) {
    for (int i = 0; i < PQntuples(s->crons); i++)
      printf("cron     %-20s %-20s %-10s %s%s last fired %s\n", PQgetvalue(s->crons, i, 1),
             PQgetvalue(s->crons, i, 2), PQgetvalue(s->crons, i, 3), PQgetvalue(s->crons, i, 4),
             PQgetvalue(s->crons, i, 5)[0] == 't' ? "" : " (disabled)",
             *PQgetvalue(s->crons, i, 6) ? PQgetvalue(s->crons, i, 6) : "never");
    for (int i = 0; i < PQntuples(s->triggers); i++)
      printf("trigger  %-20s on %-17s %-10s %s%s\n", PQgetvalue(s->triggers, i, 1),
             PQgetvalue(s->triggers, i, 2), PQgetvalue(s->triggers, i, 3),
             PQgetvalue(s->triggers, i, 4), PQgetvalue(s->triggers, i, 5)[0] == 't' ? "" : " (disabled)");
  }
  PQclear(s->crons);
  PQclear(s->triggers);
  return rc;
}

int st_cmd_schedule(int argc, char **argv) {
  sched_t s = {0};
  int rc;

  if (argc < 2)
    return st_cli_usage("schedule add|list|rm --tenant T ...");
  if ((rc = parse(argc - 1, argv + 1, &s)))
    return rc;
  if (!strcmp(argv[1], "add"))
    return add(&s);
  if (!strcmp(argv[1], "list"))
    return list(&s);
  if (!strcmp(argv[1], "rm")) {
    if (!s.name)
      return st_cli_usage("schedule rm --tenant T --name N");
    if ((rc = run_tx(&s, 0, tx_rm)) != ST_EXIT_OK)
      return rc;
    if (!s.n) {
      fprintf(stderr, "stella: schedule: no schedule or trigger named \"%s\"\n", s.name);
      return ST_EXIT_FAIL;
    }
    printf("removed %s\n", s.name);
    return ST_EXIT_OK;
  }
  return st_cli_usage("schedule add|list|rm --tenant T ...");
}
