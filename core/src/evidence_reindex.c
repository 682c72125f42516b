/* evidence_reindex.c: disaster recovery: a tenant's evidence rows rebuilt from the sealed
 * bundles in the object store (the store is the source of truth; `stella evidence
 * reindex`).
 *
 * Each object under tenants/<tenant>/evidence/ named <id>.tgz is fetched to a private
 * temporary file and verified (checksums, Merkle root, DSSE signature under the trusted
 * key, timestamp) before anything is believed; its manifest must name this tenant and
 * this id, with kind evidence. Then one tenant transaction inserts the sealed row (only
 * if absent: rows present are never rewritten, and a sealed row could not be), its
 * artifact rows from the manifest entries, and an evidence.reindexed custody record. What
 * a bundle cannot tell: the job id (NULL), the seal time (the timestamp's genTime, else
 * now) and holds (the store's legal hold flag is counted, the cases are not in the
 * bundle). The retention window is the object's own store retention when it has one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evidence_internal.h"
#include "stella/bundle.h"
#include "stella/log.h"
#include "stella/mem.h"

typedef struct ri_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const char *key;
  const st_evidence_facts_t *f;
  const char *snapshot_kind, *run_id, *actor;
  char retain[21]; /* "" = now + the window */
  int inserted;
} ri_t;

static int ri_tx(PGconn *c, void *arg, st_error_t *err) {
  ri_t *r = arg;
  const st_evidence_facts_t *f = r->f;
  char size[24], days[24];
  long long n = 0;
  json_t *detail = NULL;
  int rc;

  r->inserted = 0;
  snprintf(size, sizeof(size), "%llu", (unsigned long long)f->object_size);
  snprintf(days, sizeof(days), "%d", st__evidence_kind_days(r->ev, r->snapshot_kind));
  {
    const char *p[15] = {r->who->tenant,
                         f->id.data,
                         r->snapshot_kind,
                         r->run_id,
                         r->actor,
                         f->merkle_root.data,
                         f->manifest_sha256.data,
                         r->key,
                         f->object_sha256.data,
                         size,
                         f->keyid.data,
                         f->tsa_gen_time.len ? f->tsa_gen_time.data : NULL,
                         f->tsa_serial.len ? f->tsa_serial.data : NULL,
                         f->created.data,
                         r->retain[0] ? r->retain : NULL};
    const char *p2[16];
    memcpy(p2, p, sizeof(p));
    p2[15] = days;
    if ((rc = st_db_exec_count(
             c,
             "INSERT INTO evidence_bundles (tenant_id, bundle_id, kind, status, run_id, actor,"
             " merkle_root, manifest_sha256, object_key, object_sha256, object_size, keyid,"
             " tsa_gen_time, tsa_serial, created, sealed_at, retention_until)"
             " SELECT $1, $2, $3, 'sealed', $4, $5, $6, $7, $8, $9, $10::bigint, $11,"
             " $12::timestamptz, $13, $14::timestamptz, s.at, coalesce($15::timestamptz,"
             " s.at + make_interval(days => coalesce("
             " (SELECT days FROM evidence_retention WHERE kind = $3),"
             " (SELECT days FROM evidence_retention WHERE kind = '*'), $16::int)))"
             " FROM (SELECT coalesce($12::timestamptz, now()) AS at) s"
             " ON CONFLICT DO NOTHING",
             16, p2, &n, err)))
      return rc;
  }
  if (!n)
    return 0;
  r->inserted = 1;
  if ((rc = st__evidence_artifact_rows(c, r->who->tenant, f, err)))
    return rc;
  detail = json_pack("{s:s, s:s, s:s}", "source", "object store", "object_key", r->key,
                     "manifest_sha256", f->manifest_sha256.data);
  rc = detail ? st_evidence_custody_append(r->ev, c, r->who, "evidence.reindexed", f->id.data,
                                           f->object_sha256.data, detail, err)
              : st_fail(err, ST_ENOMEM, "evidence: out of memory");
  json_decref(detail);
  return rc;
}

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

/* One object: 1 restored, 0 present, 2 refused, or a negative code (stop). */
static int one(st_evidence_t *ev, const st_evidence_who_t *who, const st_bundle_trust_t *trust,
               const char *key, const char *tmp, int *held, st_error_t *err) {
  const char *name = strrchr(key, '/') + 1;
  size_t nl = strlen(name);
  st_evidence_facts_t f;
  st_bundle_report_t rep;
  st_objstore_stat_t st;
  st_error_t e2 = ST_ERROR_INIT;
  ri_t r = {ev, who, key, &f, NULL, NULL, NULL, "", 0};
  json_t *meta;
  FILE *out = NULL;
  int rc;

  st_evidence_facts_init(&f);
  st_bundle_report_init(&rep);
  if (nl < 5 || strcmp(name + nl - 4, ".tgz")) {
    rc = 2;
    goto done;
  }
  if ((rc = st_objstore_stat(ev->store, who->tenant, key, &st, err)))
    goto done;
  if (!(out = fopen(tmp, "wb"))) {
    rc = st_fail(err, ST_EIO, "evidence: cannot write %s", tmp);
    goto done;
  }
  rc = st_objstore_get(ev->store, who->tenant, key, 0, ST_OBJSTORE_TO_END, to_file, out, err);
  if (fclose(out) && !rc)
    rc = st_fail(err, ST_EIO, "evidence: cannot write %s", tmp);
  if (rc)
    goto done;
  if (st_bundle_verify(tmp, trust, &rep, &e2) ||
      st_evidence_facts_read(tmp, ev->tsa_ca_pem, ev->tsa_ca_len, &f, &e2) ||
      strcmp(f.tenant.data, who->tenant) || strcmp(f.kind.data, "evidence") ||
      strlen(f.id.data) != nl - 4 || strncmp(f.id.data, name, nl - 4)) {
    st_logkv(ST_LOG_WARN, "evidence reindex: object refused", "tenant", who->tenant, "key", key,
             "reason", e2.code ? st_error_text(&e2) : "names another bundle", NULL);
    rc = 2;
    goto done;
  }
  meta = json_object_get(f.manifest, "metadata");
  r.snapshot_kind = json_string_value(json_object_get(meta, "snapshot_kind"));
  r.run_id = json_string_value(json_object_get(json_object_get(meta, "run"), "run_id"));
  r.actor = json_string_value(json_object_get(json_object_get(meta, "run"), "actor"));
  if (st.retain_until > 0)
    st__evidence_utc(st.retain_until, r.retain);
  if ((rc = st_db_tenant_tx(ev->db, who->tenant, ri_tx, &r, err)))
    goto done;
  *held = st.legal_hold;
  rc = r.inserted;
done:
  st_bundle_report_release(&rep);
  st_evidence_facts_release(&f);
  return rc;
}

int st_evidence_reindex(st_evidence_t *ev, const st_evidence_who_t *who,
                        const st_pubkey_t *key, st_evidence_reindex_stats_t *stats,
                        st_error_t *err) {
  st_objstore_page_t page = ST_OBJSTORE_PAGE_INIT;
  st_buf_t prefix = ST_BUF_INIT, tmp = ST_BUF_INIT, after = ST_BUF_INIT;
  st_bundle_trust_t trust = {NULL, 0, ev->tsa_ca_pem, ev->tsa_ca_len, NULL};
  int rc = 0;

  memset(stats, 0, sizeof(*stats));
  if (!key && ev->signer)
    key = st_signer_pubkey(ev->signer);
  if (!key)
    return st_fail(err, ST_EINVAL, "evidence reindex: no key to verify bundles with");
  trust.keys = &key;
  trust.nkeys = 1;
  if ((rc = st_db_tenant_check(who->tenant, err)))
    return rc;
  if (st_buf_addf(&prefix, "tenants/%s/evidence/", who->tenant)) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if ((rc = st__evidence_tmpfile(ev, &tmp, err)))
    goto done;
  do {
    st_objstore_page_release(&page);
    if ((rc = st_objstore_list(ev->store, who->tenant, prefix.data, after.len ? after.data : NULL,
                               ST_OBJSTORE_PAGE_MAX, &page, err)))
      goto done;
    for (size_t i = 0; i < page.count; i++) {
      int held = 0;
      stats->objects++;
      rc = one(ev, who, &trust, page.keys[i], tmp.data, &held, err);
      if (rc < 0)
        goto done;
      if (rc == 1) {
        stats->restored++;
        stats->held += held;
      } else if (rc == 0) {
        stats->present++;
      } else {
        stats->refused++;
      }
    }
    st_buf_reset(&after);
    if (page.count && st_buf_adds(&after, page.keys[page.count - 1])) {
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
      goto done;
    }
  } while (page.truncated);
  rc = 0;
done:
  if (tmp.len)
    unlink(tmp.data);
  st_objstore_page_release(&page);
  st_buf_release(&prefix);
  st_buf_release(&tmp);
  st_buf_release(&after);
  return rc;
}
