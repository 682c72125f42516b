/* cmd_incident.c: `stella incident on|off|status` against Postgres (st_evidence_open;
 * the same effects as POST|DELETE|GET /incident: incident.* custody records and events,
 * which the outbox relay publishes to stella:events and stella:notify):
 *   on --tenant T --reason TEXT [--extension-days N]   exit 0 (also when already active)
 *   off --tenant T                                     exit 1 when none is active
 *   status --tenant T                                  the status as JSON
 * The actor recorded is "cli:$USER". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stella/config.h"
#include "stella/evidence.h"

int st_cmd_incident(int argc, char **argv) {
  const char *config = NULL, *tenant = NULL, *reason = NULL, *days = NULL, *verb;
  const char *user = getenv("USER");
  char actor[96];
  st_config_t *cfg = NULL;
  st_evidence_t *ev = NULL;
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  int rc, created = 0;

  if (argc < 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off") && strcmp(argv[1], "status")))
    return st_cli_usage("usage: stella incident on|off|status --tenant T [--reason TEXT]"
                        " [--extension-days N] [--config F]");
  verb = argv[1];
  for (int i = 2; i < argc; i++) {
    const char **slot = !strcmp(argv[i], "--config")           ? &config
                        : !strcmp(argv[i], "--tenant")         ? &tenant
                        : !strcmp(argv[i], "--reason")         ? &reason
                        : !strcmp(argv[i], "--extension-days") ? &days
                                                               : NULL;
    if (!slot || i + 1 >= argc)
      return st_cli_usage("incident: unknown or incomplete option %s", argv[i]);
    *slot = argv[++i];
  }
  if (!tenant)
    return st_cli_usage("incident: --tenant is required");
  if (!strcmp(verb, "on") && !reason)
    return st_cli_usage("incident on: --reason is required");
  if (days && (strcmp(verb, "on") || !*days || strspn(days, "0123456789") != strlen(days) ||
               strlen(days) > 5))
    return st_cli_usage("incident: --extension-days goes with on and wants 0..36500");
  snprintf(actor, sizeof(actor), "cli:%.80s", user && *user ? user : "unknown");
  if (st_config_load(&cfg, config, &err) || st_evidence_open(&ev, cfg, &err)) {
    fprintf(stderr, "stella: incident: %s\n", st_error_text(&err));
    rc = ST_EXIT_USAGE;
    goto done;
  }
  {
    st_evidence_who_t who = {tenant, actor, NULL, NULL, NULL};
    if (!strcmp(verb, "on"))
      rc = st_evidence_incident_on(ev, &who, reason, days ? atoi(days) : -1, &created, &out,
                                   &err);
    else if (!strcmp(verb, "off"))
      rc = st_evidence_incident_off(ev, &who, &out, &err);
    else
      rc = st_evidence_incident_status(ev, tenant, &out, &err);
  }
  if (rc) {
    fprintf(stderr, "stella: incident %s: %s\n", verb, st_error_text(&err));
    rc = rc == ST_ENOENT || rc == ST_EINVAL ? ST_EXIT_FAIL : ST_EXIT_USAGE;
  } else {
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    if (!strcmp(verb, "on"))
      fprintf(stderr, "incident %s\n", created ? "activated" : "already active");
    printf("%s\n", s ? s : "{}");
    free(s);
  }
done:
  json_decref(out);
  st_evidence_free(ev);
  st_config_free(cfg);
  return rc;
}
