/* cmd_evidence.c: `stella evidence`, the Evidence Locker's operator commands, run
 * against Postgres and the object store the configuration names (st_evidence_open):
 *   custody verify --tenant T [--key PUB]   the tenant's hash chain and signed checkpoints
 *                                           (exit 1 naming the first bad record)
 *   reindex --tenant T [--key PUB]          rebuild the tenant's rows from the sealed
 *                                           bundles in the object store
 *   prune                                   one retention pruner run as stella_maint
 *                                           (pg_maint_url), as the scheduler role does
 *   checkpoint                              sign every custody head not yet checkpointed
 *   retention get --tenant T                windows: defaults, the tenant's rows, effective
 *   retention set --tenant T [--kind K] --days N   (K: evaluation|job|export|*; default *)
 *   retention rm --tenant T [--kind K]
 * --key: the public key bundles and checkpoints were signed with (default: signing_key's
 * public half). The actor recorded is "cli:$USER". export and import are
 * st_cli_evidence_port (cmd_evidence_port.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stella/config.h"
#include "stella/evidence.h"
#include "stella/keys.h"
#include "stella/mem.h"

typedef struct opts_s {
  const char *config, *tenant, *key, *kind, *days;
  char actor[96];
} opts_t;

static int parse(int argc, char **argv, int first, opts_t *o) {
  const char *user = getenv("USER");
  memset(o, 0, sizeof(*o));
  snprintf(o->actor, sizeof(o->actor), "cli:%.80s", user && *user ? user : "unknown");
  for (int i = first; i < argc; i++) {
    const char **slot = !strcmp(argv[i], "--config") ? &o->config
                        : !strcmp(argv[i], "--tenant") ? &o->tenant
                        : !strcmp(argv[i], "--key")    ? &o->key
                        : !strcmp(argv[i], "--kind")   ? &o->kind
                        : !strcmp(argv[i], "--days")   ? &o->days
                                                       : NULL;
    if (!slot || i + 1 >= argc)
      return st_cli_usage("evidence: unknown or incomplete option %s", argv[i]);
    *slot = argv[++i];
  }
  return 0;
}

/* Open the locker (and the --key public key) or print why. */
static int open_all(const opts_t *o, int need_tenant, st_evidence_t **ev, st_pubkey_t **key) {
  st_config_t *cfg = NULL;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_USAGE;

  *ev = NULL;
  *key = NULL;
  if (need_tenant && !o->tenant)
    return st_cli_usage("evidence: --tenant is required");
  if (st_config_load(&cfg, o->config, &err) || st_evidence_open(ev, cfg, &err) ||
      (o->key && st_pubkey_load(key, o->key, &err))) {
    fprintf(stderr, "stella: evidence: %s\n", st_error_text(&err));
    st_evidence_free(*ev);
    *ev = NULL;
    goto done;
  }
  rc = ST_EXIT_OK;
done:
  st_config_free(cfg);
  return rc;
}

static int report(const char *what, int rc, const st_error_t *err) {
  fprintf(stderr, "stella: evidence %s: %s\n", what, st_error_text(err));
  return rc == ST_EVERIFY || rc == ST_ENOENT || rc == ST_EINVAL ? ST_EXIT_FAIL : ST_EXIT_USAGE;
}

static int custody(int argc, char **argv) {
  opts_t o;
  st_evidence_t *ev = NULL;
  st_pubkey_t *key = NULL;
  st_error_t err = ST_ERROR_INIT;
  long long n = 0;
  int rc;

  if (argc < 2 || strcmp(argv[1], "verify"))
    return st_cli_usage("usage: stella evidence custody verify --tenant T [--key PUB]");
  if ((rc = parse(argc, argv, 2, &o)) || (rc = open_all(&o, 1, &ev, &key)))
    return rc;
  if ((rc = st_evidence_custody_verify(ev, o.tenant, key, &n, &err)))
    rc = report("custody verify", rc, &err);
  else
    printf("custody %s: %lld records, chain and checkpoints verified\n", o.tenant, n);
  st_pubkey_free(key);
  st_evidence_free(ev);
  return rc;
}

static int reindex(int argc, char **argv) {
  opts_t o;
  st_evidence_t *ev = NULL;
  st_pubkey_t *key = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_evidence_reindex_stats_t st;
  int rc;

  if ((rc = parse(argc, argv, 1, &o)) || (rc = open_all(&o, 1, &ev, &key)))
    return rc;
  {
    st_evidence_who_t who = {o.tenant, o.actor, NULL, NULL, NULL};
    if ((rc = st_evidence_reindex(ev, &who, key, &st, &err))) {
      rc = report("reindex", rc, &err);
    } else {
      printf("reindex %s: %lld objects, %lld restored, %lld present, %lld refused,"
             " %lld under a store legal hold\n",
             o.tenant, st.objects, st.restored, st.present, st.refused, st.held);
      rc = st.refused ? ST_EXIT_FAIL : ST_EXIT_OK;
    }
  }
  st_pubkey_free(key);
  st_evidence_free(ev);
  return rc;
}

static int prune(int argc, char **argv) {
  opts_t o;
  st_evidence_t *ev = NULL;
  st_pubkey_t *key = NULL;
  st_config_t *cfg = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_evidence_prune_stats_t st;
  int rc;

  if ((rc = parse(argc, argv, 1, &o)) || (rc = open_all(&o, 0, &ev, &key)))
    return rc;
  if (st_config_load(&cfg, o.config, &err)) {
    rc = report("prune", ST_EIO, &err);
  } else if ((rc = st_evidence_prune(ev, st_config_str(cfg, "pg_maint_url"), &st, &err))) {
    rc = report("prune", rc, &err);
  } else if (st.busy) {
    printf("prune: another pruner is running\n");
    rc = ST_EXIT_FAIL;
  } else {
    printf("prune: %lld pruned, %lld skipped (held or retained in the store)\n", st.pruned,
           st.skipped);
  }
  st_config_free(cfg);
  st_pubkey_free(key);
  st_evidence_free(ev);
  return rc;
}

static int checkpoint(int argc, char **argv) {
  opts_t o;
  st_evidence_t *ev = NULL;
  st_pubkey_t *key = NULL;
  st_error_t err = ST_ERROR_INIT;
  long long made = 0;
  int rc;

  if ((rc = parse(argc, argv, 1, &o)) || (rc = open_all(&o, 0, &ev, &key)))
    return rc;
  if ((rc = st_evidence_checkpoint_all(ev, &made, &err)))
    rc = report("checkpoint", rc, &err);
  else
    printf("checkpoint: %lld signed\n", made);
  st_pubkey_free(key);
  st_evidence_free(ev);
  return rc;
}

static int retention(int argc, char **argv) {
  opts_t o;
  st_evidence_t *ev = NULL;
  st_pubkey_t *key = NULL;
  st_error_t err = ST_ERROR_INIT;
  json_t *out = NULL;
  int rc, get = argc >= 2 && !strcmp(argv[1], "get"), set = argc >= 2 && !strcmp(argv[1], "set");

  if (argc < 2 || (!get && !set && strcmp(argv[1], "rm")))
    return st_cli_usage("usage: stella evidence retention get|set|rm --tenant T [--kind K]"
                        " [--days N]");
  if ((rc = parse(argc, argv, 2, &o)))
    return rc;
  if (!get && set != !!o.days)
    return st_cli_usage("evidence retention: --days goes with set only");
  if (o.days && (strspn(o.days, "0123456789") != strlen(o.days) || strlen(o.days) > 5))
    return st_cli_usage("evidence retention: --days wants 0..36500");
  if ((rc = open_all(&o, 1, &ev, &key)))
    return rc;
  {
    st_evidence_who_t who = {o.tenant, o.actor, NULL, NULL, NULL};
    if (get)
      rc = st_evidence_retention_get(ev, o.tenant, &out, &err);
    else
      rc = st_evidence_retention_set(ev, &who, o.kind, set ? atoi(o.days) : -1, &err);
  }
  if (rc) {
    rc = report("retention", rc, &err);
  } else if (out) {
    char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", s ? s : "{}");
    free(s);
  }
  json_decref(out);
  st_pubkey_free(key);
  st_evidence_free(ev);
  return rc;
}

int st_cmd_evidence(int argc, char **argv) {
  static const struct {
    const char *verb;
    int (*run)(int argc, char **argv);
  } verbs[] = {
      {"custody", custody}, {"reindex", reindex},     {"prune", prune},
      {"checkpoint", checkpoint}, {"retention", retention},
      {"export", st_cli_evidence_port}, {"import", st_cli_evidence_port},
  };
  if (argc >= 2)
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
      if (!strcmp(argv[1], verbs[i].verb))
        return verbs[i].run(argc - 1, argv + 1);
  return st_cli_usage("usage: stella evidence custody verify|reindex|prune|checkpoint|"
                      "retention|export|import ... (see docs/evidence.md, docs/airgap/evidence.md)");
}
