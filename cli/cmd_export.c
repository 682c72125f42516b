/* cmd_export.c: `stella export profile create|list|show|delete` and `stella export plan`.
 *
 *   export profile create --tenant T --name N --kind K [--project P] [--filters JSON|@F]
 *          [--redaction JSON] [--compression none|gzip|zstd] [--no-single-flight]
 *          [--schedule S] [--source-tenant X]...
 *   export profile list|show NAME|delete NAME --tenant T
 *   export plan PROFILE --tenant T [--json] [--inputs] [--run [--idempotency-key K]]
 * `plan` prints the plan (counts, digest); --inputs lists every input (with --json);
 * --run also creates a run and records the plan as its inputs, printing the run id and
 * the job payload. Validation errors name the field; exit 1 for a refused or empty plan. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "export/export.h"
#include "stella/jcs.h"

static int fail(const st_error_t *err) {
  fprintf(stderr, "stella: %s\n", st_error_text(err));
  return err->code == ST_EINVAL || err->code == ST_ENOENT || err->code == ST_EEXIST ||
                 err->code == ST_ECONFLICT || err->code == ST_EPERM
             ? ST_EXIT_FAIL
             : ST_EXIT_USAGE;
}

static int print_json(const json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!s)
    return st_cli_usage("out of memory");
  puts(s);
  free(s);
  return ST_EXIT_OK;
}

static json_t *json_arg(const char *v, json_error_t *jerr) {
  return v[0] == '@' ? json_load_file(v + 1, JSON_REJECT_DUPLICATES, jerr)
                     : json_loads(v, JSON_REJECT_DUPLICATES, jerr);
}

static int profile_create(st_db_pool_t *pool, const char *tenant, json_t *j) {
  st_export_profile_t p;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_OK;

  st_export_profile_init(&p);
  if (st_export_profile_from_json(j, &p, &err) ||
      st_export_profile_create(pool, tenant, &p, NULL, &err))
    rc = fail(&err);
  else
    printf("created profile %s (%s)\n", p.name, p.kind);
  st_export_profile_release(&p);
  return rc;
}

static int profile(int argc, char **argv, st_db_pool_t *pool, const char *tenant) {
  const char *verb = argc > 1 ? argv[1] : "";
  st_error_t err = ST_ERROR_INIT;
  json_t *j = NULL, *sources = NULL;
  json_error_t jerr;
  int rc = ST_EXIT_OK;

  if (!strcmp(verb, "create")) {
    j = json_object();
    sources = json_array();
    for (int i = 2; i < argc && !rc; i++) {
      const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
      if (!strcmp(a, "--no-single-flight")) {
        json_object_set_new(j, "single_flight", json_false());
        continue;
      }
      if (!v) {
        rc = st_cli_usage("export profile create: %s needs a value", a);
        break;
      }
      i++;
      if (!strcmp(a, "--name") || !strcmp(a, "--kind") || !strcmp(a, "--project") ||
          !strcmp(a, "--compression") || !strcmp(a, "--schedule"))
        json_object_set_new(j, a + 2, json_string(v));
      else if (!strcmp(a, "--source-tenant"))
        json_array_append_new(sources, json_string(v));
      else if (!strcmp(a, "--filters") || !strcmp(a, "--redaction")) {
        json_t *x = json_arg(v, &jerr);
        if (!x)
          rc = st_cli_usage("export profile create: %s: %s", a, jerr.text);
        else
          json_object_set_new(j, a + 2, x);
      } else
        rc = st_cli_usage("export profile create: unknown option %s", a);
    }
    if (json_array_size(sources))
      json_object_set(j, "source_tenants", sources);
    if (!rc)
      rc = profile_create(pool, tenant, j);
  } else if (!strcmp(verb, "list")) {
    if (st_export_profile_list(pool, tenant, &j, &err))
      rc = fail(&err);
    else
      rc = print_json(j);
  } else if ((!strcmp(verb, "show") || !strcmp(verb, "delete")) && argc > 2) {
    st_export_profile_t p;
    st_export_profile_init(&p);
    if (verb[0] == 's') {
      if (st_export_profile_get(pool, tenant, argv[2], &p, &err) ||
          st_export_profile_to_json(&p, &j, &err))
        rc = fail(&err);
      else
        rc = print_json(j);
    } else if (st_export_profile_delete(pool, tenant, argv[2], NULL, &err)) {
      rc = fail(&err);
    } else {
      printf("deleted profile %s\n", argv[2]);
    }
    st_export_profile_release(&p);
  } else {
    rc = st_cli_usage("export profile create|list|show NAME|delete NAME --tenant T ...");
  }
  json_decref(j);
  json_decref(sources);
  return rc;
}

static int plan(int argc, char **argv, st_db_pool_t *pool, const char *tenant) {
  const char *name = NULL, *idem = NULL;
  int as_json = 0, inputs = 0, run = 0, rc = ST_EXIT_OK;
  st_export_profile_t p;
  st_export_plan_t pl = {0};
  st_error_t err = ST_ERROR_INIT;
  char run_id[ST_EXPORT_RUN_ID_LEN + 1] = "";
  json_t *j = NULL, *payload = NULL;

  st_export_profile_init(&p);
  for (int i = 1; i < argc && !rc; i++) {
    if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else if (!strcmp(argv[i], "--inputs"))
      inputs = 1;
    else if (!strcmp(argv[i], "--run"))
      run = 1;
    else if (!strcmp(argv[i], "--idempotency-key") && i + 1 < argc)
      idem = argv[++i];
    else if (argv[i][0] != '-' && !name)
      name = argv[i];
    else
      rc = st_cli_usage("export plan PROFILE --tenant T [--json] [--inputs] [--run]");
  }
  if (!rc && !name)
    rc = st_cli_usage("export plan: PROFILE is required");
  if (rc)
    goto done;
  if (st_export_profile_get(pool, tenant, name, &p, &err) ||
      st_export_plan_build(pool, tenant, &p, &pl, &err) ||
      (run && (st_export_run_create(pool, tenant, &p, idem, run_id, &err) ||
               st_export_plan_record(pool, tenant, run_id, &pl, &err) ||
               st_export_plan_payload(&pl, run_id, &payload, &err))) ||
      st_export_plan_to_json(&pl, inputs, &j, &err)) {
    rc = fail(&err);
    goto done;
  }
  if (payload)
    json_object_set(j, "payload", payload);
  if (as_json) {
    rc = print_json(j);
  } else {
    printf("profile      %s (%s)\nplan digest  sha256:%s\n", p.name, p.kind, pl.digest);
    for (int k = 0; k < ST_LEDGER_NKINDS; k++)
      printf("%-14s%lld\n", st_ledger_kind_name((st_ledger_kind)k), pl.counts[k]);
    printf("total         %zu\n", pl.n);
    for (size_t t = 1; t < pl.ntenants; t++)
      printf("source       %s (cross-tenant grant)\n", pl.tenants[t]);
    if (inputs)
      for (size_t i = 0; i < pl.n; i++)
        printf("  %-13s %s %s\n", st_ledger_kind_name(pl.inputs[i].kind), pl.inputs[i].digest,
               pl.inputs[i].id);
    if (*run_id)
      printf("run          %s (planning)\n", run_id);
  }
done:
  json_decref(j);
  json_decref(payload);
  st_export_plan_release(&pl);
  st_export_profile_release(&p);
  return rc;
}

int st_cmd_export(int argc, char **argv) {
  const char *tenant = NULL, *config = NULL;
  char *rest[64];
  int n = 0, rc;
  st_db_pool_t *pool = NULL;

  /* run, download, verify go through the API (cmd_export_run.c) */
  if (argc >= 2 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "download") ||
                    !strcmp(argv[1], "verify")))
    return st_cli_export_api(argc - 1, argv + 1);
  /* --tenant and --config may sit anywhere; the rest goes to the subcommand. */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
      tenant = argv[++i];
    else if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (n < 63)
      rest[n++] = argv[i];
    else
      return st_cli_usage("export: too many arguments");
  }
  rest[n] = NULL;
  if (n < 1 || (strcmp(rest[0], "profile") && strcmp(rest[0], "plan")))
    return st_cli_usage("export profile create|list|show|delete ... | export plan PROFILE "
                        "--tenant T | export run PROFILE --tenant T [--wait] | export "
                        "download RUN --tenant T -o FILE | export verify FILE [--key PUB]");
  if (!tenant)
    return st_cli_usage("export: --tenant is required");
  if ((rc = st_cli_pool(config, &pool)))
    return rc;
  rc = !strcmp(rest[0], "profile") ? profile(n, rest, pool, tenant) : plan(n, rest, pool, tenant);
  st_db_pool_free(pool);
  return rc;
}
