/* export_json_int.h: state shared by the JSON adapter's sources (build.c: the document
 * pass; publish.c: seal, sign, store; worker.c: the job descriptor). */
#ifndef STELLA_WORKERS_EXPORT_JSON_INT_H
#define STELLA_WORKERS_EXPORT_JSON_INT_H

#include <stdio.h>
#include <zlib.h>

#include "export/export.h"
#include "export_json.h"

/* One NDJSON output file. */
typedef struct st__xout_s {
  const char *name; /* "advisories", "findings", ... (static) */
  char *path;
  FILE *f;
  z_stream z;
  int gz, zinit;
  long long count;
} st__xout_t;

void st__xout_release(st__xout_t *o);

typedef struct st__xbuild_s {
  const st_export_json_env_t *env;
  const char *tenant, *run_id;
  st_export_profile_t prof;
  st_export_plan_t plan;
  int policy;               /* json:policy */
  const json_t *redaction;  /* prof.redaction */
  char *dir;                /* private temporary directory */
  st__xout_t outs[ST_LEDGER_NKINDS];
  size_t nouts;
  size_t next;              /* plan input expected next */
  unsigned since_poll;
  char created[32];         /* latest modified, "YYYY-MM-DDTHH:MM:SSZ" */
  json_t *adv, *vex;        /* json:policy join tables */
} st__xbuild_t;

/* build.c: read, check, redact and write every planned document; close the outputs. */
int st__xbuild_documents(st__xbuild_t *b, st_error_t *err);

#endif
