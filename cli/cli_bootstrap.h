/* cli_bootstrap.h: what the bootstrap pack commands share (cli_bootstrap.c):
 * cmd_bootstrap.c builds packs, cmd_bootstrap_load.c verifies and loads them. */
#ifndef STELLA_CLI_BOOTSTRAP_H
#define STELLA_CLI_BOOTSTRAP_H

#include "stella/buf.h"
#include "stella/err.h"

#define ST_CLI_HELM_CONFIG "application/vnd.cncf.helm.config.v1+json"
#define ST_CLI_HELM_CONTENT "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
#define ST_CLI_CHART_YAML_MAX (1u << 20)

/* A Helm chart's identity from its Chart.yaml. */
typedef struct st_cli_chart_s {
  st_buf_t name;    /* [a-z0-9][a-z0-9-]{0,62} (Helm's chart name rule) */
  st_buf_t version; /* [A-Za-z0-9.+_-]{1,128} */
  st_buf_t tag;     /* version with '+' as '_' (Helm's OCI tag convention) */
  st_buf_t config;  /* {"apiVersion","name","version"} canonical JSON: the config blob */
} st_cli_chart_t;

/* Read <dir>/Chart.yaml (the first top-level directory's) from a chart .tgz with the safe
 * reader and take its top-level scalar name, version and apiVersion. Only plain
 * `key: value` lines at column 0 are read (quotes allowed); anything else is ignored.
 * ST_EINVAL names the missing or bad field. ch is initialised here. */
int st_cli_chart_read(const char *tgz, st_cli_chart_t *ch, st_error_t *err);
void st_cli_chart_release(st_cli_chart_t *ch);

/* 1 if name is "REPO:TAG" with a valid repository and tag; then repo/tag (may be NULL)
 * get the parts (reset first). */
int st_cli_ref_split(const char *name, st_buf_t *repo, st_buf_t *tag);

/* Unpack payload/oci/ of a bootstrap pack into dir (must exist, empty): only oci-layout,
 * index.json and blobs/sha256/<64 hex> are written (O_EXCL|O_NOFOLLOW); any other
 * payload entry is ST_EUNSAFE. */
int st_cli_pack_extract(const char *pack, const char *dir, st_error_t *err);

#endif
