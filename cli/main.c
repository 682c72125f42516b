/* main.c: `stella` entry point: global flags and dispatch to command groups. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stella/version.h"

static int cmd_help(int argc, char **argv);

static const st_cli_cmd_t commands[] = {
    {"version", st_cmd_version, "print version and git commit"},
    {"tsa", st_cmd_tsa, "RFC 3161 timestamps: stamp, verify, certs"},
    {"migrate", st_cmd_migrate, "apply Postgres migrations (--status lists them)"},
    {"key", st_cmd_key, "generate a signing key, print a public key's keyid"},
    {"dsse", st_cmd_dsse, "sign a file into a DSSE envelope, verify an envelope"},
    {"job", st_cmd_job, "submit a job; get, watch or cancel it (Postgres state)"},
    {"queue", st_cmd_queue, "queue statistics and dead letters (stats, dlq list|retry|drop)"},
    {"token", st_cmd_token, "mint an API token (token mint --tenant T --scope ...)"},
    {"ledger", st_cmd_ledger, "import OSV, OpenVEX and policy documents into the source ledger"},
    {"export", st_cmd_export, "export profiles, plans, runs (run --wait, download, verify), bootstrap packs"},
    {"bundle", st_cmd_bundle, "seal files into a signed bundle, prove one entry"},
    {"verify", st_cmd_verify, "verify a sealed bundle or a PROOF.json"},
    {"bootstrap", st_cmd_bootstrap, "air-gap bootstrap packs: verify, load --to REGISTRY"},
    {"oci", st_cmd_oci, "OCI artifacts and layouts: artifact, push, referrers, verify"},
    {"schedule", st_cmd_schedule, "cron schedules and event triggers (add, list, rm)"},
    {"timeline", st_cmd_timeline, "timeline events: query, get, evidence, ingest --once"},
    {"mirror", st_cmd_mirror, "mirror bundles: build, import --into DIR, verify DIR (TUF)"},
    {"evidence", st_cmd_evidence, "evidence locker: custody verify, reindex, prune, checkpoint, retention, export, import"},
    {"incident", st_cmd_incident, "incident mode per tenant: on, off, status"},
    {"trivy", st_cmd_trivy, "build the Trivy DB and Java DB from OSV / Maven index files"},
    {"help", cmd_help, "list commands"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

int st_cli_usage(const char *fmt, ...) {
  va_list ap;
  fputs("stella: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return ST_EXIT_USAGE;
}

int st_cmd_version(int argc, char **argv) {
  printf("stella %s (commit %s)\n", st_version(), st_git_commit());
  return ST_EXIT_OK;
}

static int cmd_help(int argc, char **argv) {
  printf("usage: stella <command> [args]\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    printf("  %-12s %s\n", commands[i].name, commands[i].summary);
  return ST_EXIT_OK;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return cmd_help(argc, argv), ST_EXIT_USAGE;
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
    return st_cmd_version(argc - 1, argv + 1);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
    return cmd_help(argc - 1, argv + 1);
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  return st_cli_usage("unknown command '%s' (try 'stella help')", argv[1]);
}
