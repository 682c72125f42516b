/* cmd_evidence_port.c: `stella evidence export|import` (evidence_port.h,
 * docs/airgap/evidence.md), straight against the locker the configuration names
 * (pg_url, objstore/data_dir or s3_*, signing_key, tsa_url, tsa_ca):
 *
 *   stella evidence export ID -o FILE --tenant T [--actor A] [--config F] [--json]
 *   stella evidence import BUNDLE --tenant T --key PUB.pem [--key ...] [--tsa-ca CA.pem]
 *                          [--actor A] [--config F] [--json]
 *
 * Export writes the portable bundle (atomically) and records evidence.exported. Import
 * verifies every check (signature against --key only; the timestamp against --tsa-ca, else
 * the configured tsa_ca, else it is reported untrusted) and loads the bundle into tenant
 * T; importing the same evidence again changes nothing. Exit 0 done (or already there),
 * 1 refused (a failed check, not a portable export, an id holding other evidence, no such
 * bundle), 2 usage, configuration, I/O or database errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stella/config.h"
#include "stella/evidence_port.h"
#include "stella/mem.h"

#define MAX_KEYS 16

typedef struct opts_s {
  const char *verb, *arg, *out, *tenant, *actor, *config, *tsa_ca;
  const char *keys[MAX_KEYS];
  size_t nkeys;
  int json;
} opts_t;

static int parse(int argc, char **argv, opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->verb = argv[0];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "-o") && more)
      o->out = argv[++i];
    else if (!strcmp(a, "--tenant") && more)
      o->tenant = argv[++i];
    else if (!strcmp(a, "--actor") && more)
      o->actor = argv[++i];
    else if (!strcmp(a, "--config") && more)
      o->config = argv[++i];
    else if (!strcmp(a, "--tsa-ca") && more)
      o->tsa_ca = argv[++i];
    else if (!strcmp(a, "--key") && more) {
      if (o->nkeys == MAX_KEYS)
        return st_cli_usage("evidence %s: at most %d --key", o->verb, MAX_KEYS);
      o->keys[o->nkeys++] = argv[++i];
    } else if (!strcmp(a, "--json"))
      o->json = 1;
    else if (a[0] == '-' && a[1])
      return st_cli_usage("evidence %s: unknown option %s", o->verb, a);
    else if (!o->arg)
      o->arg = a;
    else
      return st_cli_usage("evidence %s: unexpected argument '%s'", o->verb, a);
  }
  return 0;
}

/* ST_EXIT_FAIL for refusals the operator must act on, ST_EXIT_USAGE for the rest. */
static int exit_for(int rc) {
  return rc == ST_EVERIFY || rc == ST_EINVAL || rc == ST_ECONFLICT || rc == ST_ENOENT ||
                 rc == ST_EUNSAFE || rc == ST_ETOOBIG || rc == ST_EPARSE
             ? ST_EXIT_FAIL
             : ST_EXIT_USAGE;
}

static void print_json(const json_t *v) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  if (s)
    puts(s);
  free(s);
}

static int do_export(st_evidence_t *ev, const st_evidence_who_t *who, const opts_t *o) {
  st_error_t err = ST_ERROR_INIT;
  json_t *facts = NULL;
  int rc;

  if ((rc = st_evidence_export(ev, who, o->arg, o->out, &facts, &err))) {
    fprintf(stderr, "stella: evidence export: %s\n", st_error_text(&err));
    return exit_for(rc);
  }
  if (o->json)
    print_json(facts);
  else
    printf("exported %s to %s: sha256 %s, %lld custody records, redacted %s\n", o->arg, o->out,
           json_string_value(json_object_get(facts, "sha256")),
           (long long)json_integer_value(json_object_get(facts, "custody_records")),
           json_array_size(json_object_get(facts, "redacted")) ? "" : "nothing");
  if (!o->json) {
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(facts, "redacted"), i, r)
        printf("  redacted %s\n", json_string_value(r));
  }
  json_decref(facts);
  return ST_EXIT_OK;
}

static int do_import(st_evidence_t *ev, const st_evidence_who_t *who, const opts_t *o) {
  st_pubkey_t *keys[MAX_KEYS] = {0};
  const st_pubkey_t *ckeys[MAX_KEYS];
  st_bundle_trust_t trust = {ckeys, 0, NULL, 0, NULL};
  st_bundle_report_t rep;
  st_buf_t ca = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  int rc = ST_EXIT_USAGE, imported = 0, irc;

  st_bundle_report_init(&rep);
  for (size_t i = 0; i < o->nkeys; i++) {
    if (st_pubkey_load(&keys[i], o->keys[i], &err)) {
      st_cli_usage("evidence import: %s", st_error_text(&err));
      goto done;
    }
    ckeys[i] = keys[i];
    trust.nkeys++;
  }
  if (o->tsa_ca) {
    if (st_cli_read_file(o->tsa_ca, 1 << 20, &ca))
      goto done;
    trust.tsa_ca_pem = ca.data;
    trust.tsa_ca_len = ca.len;
  } else {
    trust.tsa_ca_pem = st_evidence_tsa_ca(ev, &trust.tsa_ca_len);
  }
  irc = st_evidence_import(ev, who, o->arg, &trust, &rep, &imported, &out, &err);
  for (size_t i = 0; !o->json && i < rep.nchecks; i++)
    printf("%-9s %-10s %s\n", st_bundle_status_text(rep.checks[i].status), rep.checks[i].name,
           rep.checks[i].reason.data);
  if (irc) {
    fprintf(stderr, "stella: evidence import: %s\n", st_error_text(&err));
    rc = exit_for(irc);
    goto done;
  }
  if (o->json)
    print_json(out);
  else
    printf("%s %s into tenant %s (merkle root %s)\n", imported ? "imported" : "already imported",
           json_string_value(json_object_get(out, "id")), who->tenant,
           json_string_value(json_object_get(out, "merkle_root")));
  rc = ST_EXIT_OK;
done:
  for (size_t i = 0; i < o->nkeys; i++)
    st_pubkey_free(keys[i]);
  st_bundle_report_release(&rep);
  st_buf_release(&ca);
  json_decref(out);
  return rc;
}

int st_cli_evidence_port(int argc, char **argv) {
  static const char usage[] =
      "usage: stella evidence export ID -o FILE --tenant T [--actor A] [--config F] [--json]\n"
      "       stella evidence import BUNDLE --tenant T --key PUB.pem [--key ...] "
      "[--tsa-ca CA.pem] [--actor A] [--config F] [--json]";
  st_config_t *cfg = NULL;
  st_evidence_t *ev = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t actor = ST_BUF_INIT;
  opts_t o;
  int rc, exp;

  if (argc < 1 || (strcmp(argv[0], "export") && strcmp(argv[0], "import")))
    return st_cli_usage("%s", usage);
  exp = !strcmp(argv[0], "export");
  if ((rc = parse(argc, argv, &o)))
    return rc;
  if (!o.arg || !o.tenant || (exp && !o.out) || (!exp && !o.nkeys))
    return st_cli_usage("%s", usage);
  if (st_buf_adds(&actor, o.actor ? o.actor : "cli:") ||
      (!o.actor && st_buf_adds(&actor, getenv("USER") ? getenv("USER") : "unknown")))
    return st_cli_usage("out of memory");
  if (st_config_load(&cfg, o.config, &err) || st_evidence_open(&ev, cfg, &err)) {
    rc = st_cli_usage("evidence %s: %s", o.verb, st_error_text(&err));
    goto done;
  }
  {
    st_evidence_who_t who = {o.tenant, actor.data, NULL, NULL, NULL};
    rc = exp ? do_export(ev, &who, &o) : do_import(ev, &who, &o);
  }
done:
  st_evidence_free(ev);
  st_config_free(cfg);
  st_buf_release(&actor);
  return rc;
}
