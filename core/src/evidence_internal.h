/* evidence_internal.h: the locker's state shared by core/src/evidence_*.c. */
#ifndef STELLA_EVIDENCE_INTERNAL_H
#define STELLA_EVIDENCE_INTERNAL_H

#include "stella/evidence.h"

struct st_evidence_s {
  st_db_pool_t *db;
  st_objstore_t *store;
  st_signer_t *signer;
  char *tsa_url;
  char *tsa_ca_pem; /* file contents, NULL when none */
  size_t tsa_ca_len;
  char *tmp_dir;
  int retention_days;
  int kind_days[3];  /* evaluation, job, export from evidence_retention_kinds; -1 = unset */
  int incident_extension_days;
  json_t *debug_config; /* redacted resolved configuration (evidence_debug.c) */
  /* owned when opened from configuration */
  st_db_pool_t *own_db;
  st_objstore_t *own_store;
  st_signer_t *own_signer;
};

/* Object key of a bundle: tenants/<tenant>/evidence/<id>.tgz. */
int st__evidence_object_key(st_buf_t *out, const char *tenant, const char *bundle_id);
/* A fresh temporary path under the locker's tmp dir (mkstemp; the file exists, empty). */
int st__evidence_tmpfile(const st_evidence_t *ev, st_buf_t *path, st_error_t *err);
/* UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void st__evidence_utc(int64_t t, char out[21]);
/* Sign msg with the locker's signer: base64 signature and keyid appended. */
int st__evidence_sign(st_evidence_t *ev, const void *msg, size_t len, st_buf_t *sig_b64,
                      st_buf_t *keyid, st_error_t *err);
/* The configured default window of a snapshot kind (per-kind key, else the default). */
int st__evidence_kind_days(const st_evidence_t *ev, const char *kind);
/* Parse "kind=days[,kind=days]" into ev->kind_days. */
int st__evidence_parse_kinds(st_evidence_t *ev, const char *spec, st_error_t *err);
/* Sign and store a custody checkpoint of (tenant, seq, hash) in c. */
int st__evidence_checkpoint(st_evidence_t *ev, PGconn *c, const char *tenant, long long seq,
                            const char *hash, st_error_t *err);

/* evidence_debug.c: incident-mode debug artifacts. The configuration with secrets
 * redacted (new reference, NULL cfg: {}); the process environment (hostname, version,
 * uname, STELLA_* variables redacted). */
json_t *st__evidence_config_json(const st_config_t *cfg);
json_t *st__evidence_environment_json(void);

/* Insert the evidence_artifacts rows of a sealed bundle (its manifest entries) in c, the
 * caller's transaction of tenant; rows present already are kept (evidence_facts.c). */
int st__evidence_artifact_rows(PGconn *c, const char *tenant, const st_evidence_facts_t *f,
                               st_error_t *err);
/* Whether s is an id [A-Za-z0-9._:-]{1,max}. */
int st__evidence_id_ok(const char *s, size_t max);

#endif
