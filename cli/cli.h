/* cli.h: shared pieces of the stella CLI: the command table entry type and the exit
 * codes every command uses (0 ok, 1 a check or operation failed, 2 usage or I/O). */
#ifndef STELLA_CLI_H
#define STELLA_CLI_H

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

/* Command entry points (one cmd_*.c file each). */
int st_cmd_version(int argc, char **argv);
int st_cmd_tsa(int argc, char **argv);
int st_cmd_key(int argc, char **argv);
int st_cmd_dsse(int argc, char **argv);

#endif
