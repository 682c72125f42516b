/* evidence.c: the locker's lifecycle (borrowed or configured pool, store and signer) and
 * the small helpers the other evidence_*.c files share. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evidence_internal.h"
#include "stella/base64.h"
#include "stella/mem.h"

#define TSA_CA_MAX ((size_t)1 << 20)

static int read_small_file(const char *path, char **out, size_t *len, st_error_t *err) {
  st_buf_t b = ST_BUF_INIT;
  char chunk[4096];
  FILE *f = fopen(path, "rb");
  size_t n;
  int rc = 0;

  if (!f)
    return st_fail(err, ST_EIO, "evidence: cannot open %s: %s", path, strerror(errno));
  st_buf_init(&b, TSA_CA_MAX);
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    if (st_buf_add(&b, chunk, n)) {
      rc = st_fail(err, ST_ETOOBIG, "evidence: %s is larger than %zu bytes", path, TSA_CA_MAX);
      goto done;
    }
  if (ferror(f)) {
    rc = st_fail(err, ST_EIO, "evidence: cannot read %s", path);
    goto done;
  }
  *out = st_buf_detach(&b, len);
  if (!*out)
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
done:
  fclose(f);
  st_buf_release(&b);
  return rc;
}

int st_evidence_new(st_evidence_t **out, const st_evidence_opts_t *o, st_error_t *err) {
  st_evidence_t *ev = NULL;
  const char *tmp = o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
  int rc = 0;

  *out = NULL;
  if (!o->db || !o->store)
    return st_fail(err, ST_EINVAL, "evidence: a database pool and an object store are needed");
  if (!(ev = st_calloc(1, sizeof(*ev))))
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  ev->db = o->db;
  ev->store = o->store;
  ev->signer = o->signer;
  ev->retention_days = o->retention_days > 0 ? o->retention_days : 365;
  for (size_t k = 0; k < 3; k++)
    ev->kind_days[k] = -1;
  ev->incident_extension_days = o->incident_extension_days > 0 ? o->incident_extension_days : 90;
  if (o->retention_kinds && (rc = st__evidence_parse_kinds(ev, o->retention_kinds, err)))
    goto done;
  if (!(ev->debug_config = st__evidence_config_json(o->debug_config))) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if (!(ev->tmp_dir = st_strdup(tmp && *tmp ? tmp : "/tmp")) ||
      (o->tsa_url && !(ev->tsa_url = st_strdup(o->tsa_url)))) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if (o->tsa_ca_file && (rc = read_small_file(o->tsa_ca_file, &ev->tsa_ca_pem, &ev->tsa_ca_len,
                                              err)))
    goto done;
  *out = ev;
  ev = NULL;
done:
  st_evidence_free(ev);
  return rc;
}

int st_evidence_open(st_evidence_t **out, const st_config_t *cfg, st_error_t *err) {
  st_evidence_opts_t o = {0};
  st_db_pool_t *db = NULL;
  st_objstore_t *store = NULL;
  st_signer_t *signer = NULL;
  const char *pg = st_config_str(cfg, "pg_url"), *key = st_config_str(cfg, "signing_key");
  int rc;

  *out = NULL;
  if (!pg)
    return st_fail(err, ST_ECONFIG, "pg_url: the evidence locker needs Postgres");
  if ((rc = st_db_pool_new(pg, (int)st_config_int(cfg, "pg_pool_size"), &db, err)) ||
      (rc = st_objstore_open(&store, cfg, err)) ||
      (key && (rc = st_signer_open(&signer, key, err))))
    goto fail;
  o.db = db;
  o.store = store;
  o.signer = signer;
  o.tsa_url = st_config_str(cfg, "tsa_url");
  o.tsa_ca_file = st_config_str(cfg, "tsa_ca");
  o.tmp_dir = st_config_str(cfg, "api_tmp_dir");
  o.retention_days = (int)st_config_int(cfg, "evidence_retention_days");
  o.retention_kinds = st_config_str(cfg, "evidence_retention_kinds");
  o.incident_extension_days = (int)st_config_int(cfg, "evidence_incident_extension_days");
  o.debug_config = cfg;
  if ((rc = st_evidence_new(out, &o, err)))
    goto fail;
  (*out)->own_db = db;
  (*out)->own_store = store;
  (*out)->own_signer = signer;
  return 0;
fail:
  st_signer_free(signer);
  st_objstore_free(store);
  st_db_pool_free(db);
  return rc;
}

void st_evidence_free(st_evidence_t *ev) {
  if (!ev)
    return;
  st_signer_free(ev->own_signer);
  st_objstore_free(ev->own_store);
  st_db_pool_free(ev->own_db);
  st_free(ev->tsa_url);
  st_free(ev->tsa_ca_pem);
  st_free(ev->tmp_dir);
  json_decref(ev->debug_config);
  st_free(ev);
}

st_objstore_t *st_evidence_store(const st_evidence_t *ev) { return ev->store; }
st_db_pool_t *st_evidence_db(const st_evidence_t *ev) { return ev->db; }
st_signer_t *st_evidence_signer(const st_evidence_t *ev) { return ev->signer; }

const char *st_evidence_tsa_ca(const st_evidence_t *ev, size_t *len) {
  *len = ev->tsa_ca_len;
  return ev->tsa_ca_pem;
}

int st__evidence_object_key(st_buf_t *out, const char *tenant, const char *bundle_id) {
  return st_buf_addf(out, "tenants/%s/evidence/%s.tgz", tenant, bundle_id);
}

int st__evidence_tmpfile(const st_evidence_t *ev, st_buf_t *path, st_error_t *err) {
  int fd;
  if (st_buf_addf(path, "%s/stella-evidence-XXXXXX", ev->tmp_dir))
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  if ((fd = mkstemp(path->data)) < 0)
    return st_fail(err, ST_EIO, "evidence: cannot create a file in %s: %s", ev->tmp_dir,
                   strerror(errno));
  close(fd);
  return 0;
}

void st__evidence_utc(int64_t t, char out[21]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int st__evidence_sign(st_evidence_t *ev, const void *msg, size_t len, st_buf_t *sig_b64,
                      st_buf_t *keyid, st_error_t *err) {
  st_buf_t sig = ST_BUF_INIT;
  int rc;
  if (!ev->signer)
    return st_fail(err, ST_ECONFIG, "signing_key: the evidence locker has no signer");
  if ((rc = st_signer_sign(ev->signer, msg, len, &sig, err)))
    goto done;
  if (st_base64_encode(sig_b64, sig.data, sig.len) ||
      st_buf_adds(keyid, st_pubkey_keyid(st_signer_pubkey(ev->signer))))
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
done:
  st_buf_release(&sig);
  return rc;
}

static const char *const kinds[3] = {"evaluation", "job", "export"};

int st__evidence_parse_kinds(st_evidence_t *ev, const char *spec, st_error_t *err) {
  const char *p = spec;
  while (*p) {
    size_t n = strcspn(p, "=,"), k;
    char *end;
    long days;
    for (k = 0; k < 3 && (strlen(kinds[k]) != n || strncmp(p, kinds[k], n)); k++)
      ;
    if (k == 3 || p[n] != '=')
      return st_fail(err, ST_ECONFIG,
                     "evidence_retention_kinds: want kind=days[,kind=days] with kind one of"
                     " evaluation, job, export (at \"%.32s\")", p);
    days = strtol(p + n + 1, &end, 10);
    if (end == p + n + 1 || days < 0 || days > 36500 || (*end && *end != ','))
      return st_fail(err, ST_ECONFIG, "evidence_retention_kinds: %s: days must be 0..36500",
                     kinds[k]);
    ev->kind_days[k] = (int)days;
    p = *end ? end + 1 : end;
  }
  return 0;
}

int st__evidence_kind_days(const st_evidence_t *ev, const char *kind) {
  for (size_t k = 0; kind && k < 3; k++)
    if (!strcmp(kind, kinds[k]) && ev->kind_days[k] >= 0)
      return ev->kind_days[k];
  return ev->retention_days;
}

int st__evidence_id_ok(const char *s, size_t max) {
  size_t n = s ? strlen(s) : 0;
  return n >= 1 && n <= max &&
         strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}
