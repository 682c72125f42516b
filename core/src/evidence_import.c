/* evidence_import.c: loading a portable export into this locker (evidence_port.h).
 *
 * Order, so that nothing partial is ever visible: (1) the file is copied into a private
 * temporary file and everything below reads that copy; (2) the copy is verified with
 * the caller's trust and must be a portable export; (3) a read-only tenant transaction
 * looks for the bundle id (same evidence: done, nothing changes; other evidence:
 * ST_ECONFLICT) and reads the retention window; (4) the copy is published
 * content-addressed in the object store (an earlier crashed import of the same bytes is
 * adopted); (5) one tenant transaction inserts the sealed row, its artifact rows and the
 * evidence.imported custody record, re-checking the id under the insert. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evidence_internal.h"
#include "stella/evidence_port.h"
#include "stella/mem.h"
#include "stella/sha256.h"

static int copy_file(const char *from, const char *to, st_error_t *err) {
  char buf[65536];
  int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
  ssize_t n;

  if (in < 0)
    return st_fail(err, errno == ENOENT ? ST_ENOENT : ST_EIO, "evidence import: %s: %s", from,
                   strerror(errno));
  if ((out = open(to, O_WRONLY | O_TRUNC | O_CLOEXEC)) < 0) {
    rc = st_fail(err, ST_EIO, "evidence import: cannot write %s", to);
    goto done;
  }
  while ((n = read(in, buf, sizeof(buf))) > 0)
    if (write(out, buf, (size_t)n) != n) {
      rc = st_fail(err, ST_EIO, "evidence import: cannot write %s", to);
      goto done;
    }
  if (n < 0)
    rc = st_fail(err, ST_EIO, "evidence import: cannot read %s: %s", from, strerror(errno));
done:
  close(in);
  if (out >= 0 && close(out) && !rc)
    rc = st_fail(err, ST_EIO, "evidence import: cannot write %s", to);
  return rc;
}

typedef struct imp_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const st_evidence_facts_t *f;
  const char *snapshot_kind, *run_id, *key;
  const json_t *export;
  long long days;
  int exists; /* the tenant holds this id: 1 same evidence, 2 other evidence */
  int imported;
} imp_t;

/* exists for the id (1 same Merkle root, 2 another) and the retention window. */
static int probe(PGconn *c, imp_t *s, st_error_t *err) {
  PGresult *res = NULL;
  char def[24];
  const char *p[3] = {s->f->id.data, s->snapshot_kind, def};
  int rc;

  snprintf(def, sizeof(def), "%d", st__evidence_kind_days(s->ev, s->snapshot_kind));
  if ((rc = st_db_exec(c,
                       "SELECT (SELECT merkle_root FROM evidence_bundles WHERE bundle_id = $1),"
                       " EXISTS (SELECT 1 FROM evidence_bundles WHERE bundle_id = $1),"
                       " coalesce((SELECT days FROM evidence_retention WHERE kind = $2),"
                       " (SELECT days FROM evidence_retention WHERE kind = '*'), $3::int)",
                       3, p, &res, err)))
    return rc;
  s->exists = strcmp(PQgetvalue(res, 0, 1), "t")                       ? 0
              : !strcmp(PQgetvalue(res, 0, 0), s->f->merkle_root.data) ? 1
                                                                       : 2;
  s->days = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
  PQclear(res);
  return 0;
}

static int probe_tx(PGconn *c, void *arg, st_error_t *err) { return probe(c, arg, err); }

static int insert_rows(PGconn *c, imp_t *s, st_error_t *err) {
  const st_evidence_facts_t *f = s->f;
  char size[24], days[24];
  long long n = 0;
  int rc;

  snprintf(size, sizeof(size), "%llu", (unsigned long long)f->object_size);
  snprintf(days, sizeof(days), "%lld", s->days);
  {
    const char *p[13] = {s->who->tenant,
                         f->id.data,
                         s->snapshot_kind,
                         s->run_id,
                         f->merkle_root.data,
                         f->manifest_sha256.data,
                         s->key,
                         f->object_sha256.data,
                         size,
                         f->keyid.data,
                         f->tsa_gen_time.len ? f->tsa_gen_time.data : NULL,
                         f->tsa_serial.len ? f->tsa_serial.data : NULL,
                         f->created.data};
    const char *p2[14];
    memcpy(p2, p, sizeof(p));
    p2[13] = days;
    if ((rc = st_db_exec_count(
             c,
             "INSERT INTO evidence_bundles (tenant_id, bundle_id, kind, status, run_id,"
             " merkle_root, manifest_sha256, object_key, object_sha256, object_size, keyid,"
             " tsa_gen_time, tsa_serial, created, sealed_at, retention_until) VALUES"
             " ($1, $2, $3, 'sealed', $4, $5, $6, $7, $8, $9::bigint, $10, $11::timestamptz,"
             " $12, $13::timestamptz, now(), now() + make_interval(days => $14::int))"
             " ON CONFLICT DO NOTHING",
             14, p2, &n, err)))
      return rc;
  }
  if (!n) /* imported meanwhile: judge it as the probe would */
    return probe(c, s, err);
  if ((rc = st__evidence_artifact_rows(c, s->who->tenant, f, err)))
    return rc;
  s->imported = 1;
  return 0;
}

static int import_tx(PGconn *c, void *arg, st_error_t *err) {
  imp_t *s = arg;
  const json_t *src = json_object_get(s->export, "source");
  const json_t *cus = json_object_get(s->export, "custody");
  json_t *detail = NULL;
  int rc;

  s->imported = 0;
  s->exists = 0;
  if ((rc = insert_rows(c, s, err)) || !s->imported)
    return rc;
  detail = json_pack("{s:s, s:s, s:s, s:O, s:O, s:O}", "merkle_root", s->f->merkle_root.data,
                     "manifest_sha256", s->f->manifest_sha256.data, "object_key", s->key,
                     "source_tenant", json_object_get(src, "tenant"), "source_bundle_id",
                     json_object_get(src, "bundle_id"), "source_custody_head",
                     json_object_get(json_array_get(cus, json_array_size(cus) - 1), "hash"));
  if (!detail)
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  rc = st_evidence_custody_append(s->ev, c, s->who, "evidence.imported", s->f->id.data,
                                  s->f->object_sha256.data, detail, err);
  json_decref(detail);
  if (!rc && s->who->in_tx)
    rc = s->who->in_tx(c, s->who->in_tx_arg, err);
  return rc;
}

/* Verified, and a portable export: the report's first failure refuses. */
static int check_bundle(const char *path, const st_bundle_trust_t *trust, st_bundle_report_t *rep,
                        st_error_t *err) {
  const st_bundle_check_t *bad;
  int rc = st_bundle_verify(path, trust, rep, err);
  if (rc && rc != ST_EVERIFY)
    return rc;
  if ((bad = st_bundle_report_failed(rep)))
    return st_fail(err, ST_EVERIFY, "evidence import: refused: %s check failed: %s", bad->name,
                   bad->reason.data);
  return rc;
}

static int store(st_evidence_t *ev, const imp_t *s, const char *path, st_error_t *err) {
  st_objstore_lock_t lock = {0, 0};
  st_objstore_stat_t st;
  int rc;

  lock.retain_until = s->days > 0 ? (int64_t)time(NULL) + s->days * 86400 : 0;
  rc = st_objstore_put_file(ev->store, s->who->tenant, s->key, s->f->object_sha256.data, path,
                            &lock, err);
  if (rc != ST_EEXIST)
    return rc;
  /* content-addressed: an earlier (crashed) import of the same bytes */
  if ((rc = st_objstore_stat(ev->store, s->who->tenant, s->key, &st, err)))
    return rc;
  if (strcmp(st.sha256, s->f->object_sha256.data))
    return st_fail(err, ST_EVERIFY, "evidence import: %s holds sha256:%s", s->key, st.sha256);
  return 0;
}

int st_evidence_import(st_evidence_t *ev, const st_evidence_who_t *who, const char *path,
                       const st_bundle_trust_t *trust, st_bundle_report_t *report, int *imported,
                       json_t **out, st_error_t *err) {
  st_bundle_report_t own;
  st_bundle_report_t *rep = report ? report : &own;
  st_evidence_facts_t f;
  st_buf_t tmp = ST_BUF_INIT, key = ST_BUF_INIT;
  imp_t s = {ev, who, &f, NULL, NULL, NULL, NULL, 0, 0, 0};
  const json_t *meta;
  const char *k;
  int rc;

  st_evidence_facts_init(&f);
  if (!report)
    st_bundle_report_init(&own);
  *imported = 0;
  if (out)
    *out = NULL;
  if ((rc = st__evidence_tmpfile(ev, &tmp, err)) || (rc = copy_file(path, tmp.data, err)) ||
      (rc = check_bundle(tmp.data, trust, rep, err)) ||
      (rc = st_evidence_facts_read(tmp.data, trust->tsa_ca_pem, trust->tsa_ca_len, &f, err)))
    goto done;
  meta = json_object_get(f.manifest, "metadata");
  s.export = json_object_get(meta, "export");
  k = s.snapshot_kind = json_string_value(json_object_get(meta, "snapshot_kind"));
  s.run_id = json_string_value(json_object_get(json_object_get(meta, "run"), "run_id"));
  if (strcmp(f.kind.data, "evidence") || !s.export) {
    rc = st_fail(err, ST_EINVAL,
                 "evidence import: %s is a %s bundle, not a portable evidence "
                 "export (stella evidence export makes one)",
                 path, f.kind.data);
    goto done;
  }
  if (!k || (strcmp(k, "evaluation") && strcmp(k, "job") && strcmp(k, "export")) ||
      !st__evidence_id_ok(f.id.data, ST_EVIDENCE_ID_MAX)) {
    rc = st_fail(err, ST_EINVAL, "evidence import: metadata snapshot_kind or id unusable");
    goto done;
  }
  if (st_buf_addf(&key, "tenants/%s/evidence/imported/%s.tgz", who->tenant, f.object_sha256.data)) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  s.key = key.data;
  if ((rc = st_db_tenant_txf(ev->db, who->tenant, ST_DB_TX_READ_ONLY, probe_tx, &s, err)))
    goto done;
  if (!s.exists && ((rc = store(ev, &s, tmp.data, err)) ||
                    (rc = st_db_tenant_tx(ev->db, who->tenant, import_tx, &s, err))))
    goto done;
  if (s.exists == 2) {
    rc = st_fail(err, ST_ECONFLICT,
                 "evidence import: tenant %s already holds a bundle %s "
                 "with other evidence (another Merkle root)",
                 who->tenant, f.id.data);
    goto done;
  }
  *imported = s.imported;
  if (out)
    rc = st_evidence_get(ev, NULL, who->tenant, f.id.data, out, err);
done:
  if (tmp.len)
    unlink(tmp.data);
  st_buf_release(&tmp);
  st_buf_release(&key);
  st_evidence_facts_release(&f);
  if (!report)
    st_bundle_report_release(&own);
  return rc;
}
