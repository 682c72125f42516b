/* cli.h: shared pieces of the stella CLI: the command table entry type and the exit
 * codes every command uses (0 ok, 1 a check or operation failed, 2 usage or I/O). */
#ifndef STELLA_CLI_H
#define STELLA_CLI_H

#include <stddef.h>

#include "stella/buf.h"
#include "stella/db.h"

#define ST_EXIT_OK 0
#define ST_EXIT_FAIL 1
#define ST_EXIT_USAGE 2

typedef struct st_cli_cmd_s {
  const char *name;    /* first word after `stella` */
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
  const char *summary; /* one line for `stella help` */
} st_cli_cmd_t;

/* Print "stella: <msg>" to stderr and return ST_EXIT_USAGE. */
int st_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read a whole file ("-" = stdin) into out, initialised with cap max; write data to path
 * (NULL = stdout). Both print the reason and return ST_EXIT_USAGE on failure. */
int st_cli_read_file(const char *path, size_t max, st_buf_t *out);
int st_cli_write_file(const char *path, const void *data, size_t len);

/* Command entry points (one cmd_*.c file each). */
int st_cmd_version(int argc, char **argv);
int st_cmd_tsa(int argc, char **argv);
int st_cmd_migrate(int argc, char **argv);
int st_cmd_key(int argc, char **argv);
int st_cmd_dsse(int argc, char **argv);
int st_cmd_job(int argc, char **argv);
int st_cmd_queue(int argc, char **argv);
int st_cmd_ledger(int argc, char **argv);
int st_cmd_export(int argc, char **argv);
int st_cmd_oci(int argc, char **argv);
int st_cmd_schedule(int argc, char **argv);
int st_cmd_timeline(int argc, char **argv);

/* A synchronous Redis connection to the configured redis_url (cmd_job.c); NULL after
 * printing why. */
struct redisContext;
struct st_config_s;
struct redisContext *st_cli_redis(const struct st_config_s *cfg);
int st_cmd_token(int argc, char **argv);
int st_cmd_bundle(int argc, char **argv);
int st_cmd_verify(int argc, char **argv);
/* st_cmd_verify that also fails (exit 1) unless the bundle's kind is want_kind (NULL: any). */
int st_cli_verify_kind(int argc, char **argv, const char *want_kind);
/* `stella export run|download|verify` (cmd_export_run.c); argv[0] is the verb. */
int st_cli_export_api(int argc, char **argv);
int st_cmd_trivy(int argc, char **argv);
/* `stella export bootstrap` (cmd_bootstrap.c); argv[0] is the verb. */
int st_cli_export_bootstrap(int argc, char **argv);
int st_cmd_bootstrap(int argc, char **argv);
int st_cmd_mirror(int argc, char **argv);
/* cmd_evidence.c (custody verify, reindex, prune, checkpoint, retention), cmd_incident.c. */
int st_cmd_evidence(int argc, char **argv);
int st_cmd_incident(int argc, char **argv);
/* `stella evidence export|import` (cmd_evidence_port.c); argv[0] is the verb. */
int st_cli_evidence_port(int argc, char **argv);

/* A Postgres pool on the configured pg_url (cmd_ledger.c); prints why and returns
 * ST_EXIT_USAGE on failure. */
struct st_db_pool_s;
int st_cli_pool(const char *config_path, struct st_db_pool_s **out);

/* cmd_job_state.c. st_cli_tenant_tx: one tenant transaction on a fresh pool to pg_url;
 * ST_EXIT_OK, or ST_EXIT_USAGE / ST_EXIT_FAIL with the reason in err for the caller to
 * print (err.code stays 0 when the pool failed: that is printed already). Then the `job
 * get|watch|cancel` subcommands, and the queued jobs row `job submit` writes first
 * (*existing: the job id already holding the idempotency key, st_free'd by the caller, or
 * NULL; returns an ST_EXIT_* code). */
int st_cli_tenant_tx(const char *tenant, int flags, st_db_tx_fn fn, void *arg,
                     st_error_t *err);
int st_cli_job_get(int argc, char **argv);
int st_cli_job_watch(int argc, char **argv);
int st_cli_job_cancel(int argc, char **argv);
int st_cli_job_record_queued(const char *tenant, const char *job_id, const char *type,
                             const char *idem, const char *payload_json, char **existing);

#endif
