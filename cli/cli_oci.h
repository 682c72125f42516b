/* cli_oci.h: shared helpers of the OCI commands (cli_oci.c). */
#ifndef STELLA_CLI_OCI_H
#define STELLA_CLI_OCI_H

#include "stella/oci.h"
#include "stella/oci_registry.h"

/* Registry flags: --creds USER:PASS, --authfile config.json, --ca PEM, --chunk-size N,
 * --retries N, --backoff-ms N. Without --creds/--authfile, $STELLA_REGISTRY_USER and
 * $STELLA_REGISTRY_PASS are used when both are set. */
typedef struct st_cli_oci_s {
  st_oci_client_opts_t opts;
  char *user; /* "user\0pass" from --creds, owned */
  const char *pass;
} st_cli_oci_t;

/* 1 if argv[*i] was a registry flag (consumed with its value), 0 if not, -1 if its value
 * is malformed. */
int st_cli_oci_flag(st_cli_oci_t *o, int argc, char **argv, int *i);
int st_cli_oci_client(st_cli_oci_t *o, const char *registry, st_oci_client_t **out,
                      st_error_t *err);
void st_cli_oci_release(st_cli_oci_t *o);
void st_cli_oci_print_stats(const st_oci_client_t *c);

/* A layout directory, or an oci-archive unpacked into a temporary directory. */
typedef struct st_cli_layout_s {
  st_oci_dir_t *dir;
  char *path; /* the layout directory */
  char *tmp;  /* scratch directory to remove, or NULL */
} st_cli_layout_t;

int st_cli_oci_open(const char *src, st_cli_layout_t *l, st_error_t *err);
void st_cli_oci_close(st_cli_layout_t *l);

#endif
