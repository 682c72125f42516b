/* evidence_custody.c: the per-tenant hash-chained custody log and its signed checkpoints.
 *
 * Record seq n of a tenant is the canonical JSON (RFC 8785) of
 *   {"v":1, "tenant", "seq", "event", "bundle_id", "bundle_sha256", "actor",
 *    "request_id", "at", "detail", "prev_hash"}
 * (absent values null) and its hash is SHA-256 of those bytes; prev_hash is record n-1's
 * hash (64 zeros for n = 1). Appends serialise on the tenant's evidence_custody_head row
 * (SELECT ... FOR UPDATE), so seq has no gaps. A deleted, edited or reordered record
 * breaks the chain at that seq; a truncated tail disagrees with the head row and with
 * the last checkpoint. Every ST_EVIDENCE_CHECKPOINT_EVERY records the signer signs
 * "stella.custody-checkpoint/v1\n<tenant>\n<seq>\n<hash>\n". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evidence_internal.h"
#include "stella/base64.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/sha256.h"

static int checkpoint_msg(st_buf_t *m, const char *tenant, long long seq, const char *hash) {
  return st_buf_addf(m, "stella.custody-checkpoint/v1\n%s\n%lld\n%s\n", tenant, seq, hash);
}

/* The outbox row: a stella.event/v1 envelope (schemas/json/event-v1.schema.json) whose
 * event_id is the custody record's hash and whose payload is the record. */
static int outbox_event(PGconn *c, const st_evidence_who_t *who, const char *event,
                        const json_t *rec, const char *hash, st_error_t *err) {
  const char *bundle = json_string_value(json_object_get(rec, "bundle_id"));
  const char *sha = json_string_value(json_object_get(rec, "bundle_sha256"));
  st_buf_t text = ST_BUF_INIT, subject = ST_BUF_INIT, digest = ST_BUF_INIT;
  json_t *ev = NULL;
  int rc;

  if ((bundle && st_buf_addf(&subject, "evidence/%s", bundle)) ||
      (sha && st_buf_addf(&digest, "sha256:%s", sha)) ||
      !(ev = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s?, s:O, s:s?, s:O}", "schema",
                       "stella.event/v1", "event_id", hash, "tenant", who->tenant, "type", event,
                       "occurred_at", json_object_get(rec, "at"), "subject",
                       bundle ? subject.data : NULL, "actor", json_object_get(rec, "actor"),
                       "correlation_id", who->request_id, "payload", rec)) ||
      (sha && json_object_set_new(ev, "evidence",
                                  json_pack("[{s:s, s:s?}]", "digest", digest.data, "bundle_id",
                                            bundle)))) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if ((rc = st_jcs_encode(ev, &text, err)))
    goto done;
  {
    const char *p[4] = {hash, who->tenant, event, text.data};
    rc = st_db_exec(c,
                    "INSERT INTO outbox (event_id, tenant_id, type, payload)"
                    " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
                    4, p, NULL, err);
  }
done:
  st_buf_release(&text);
  st_buf_release(&subject);
  st_buf_release(&digest);
  json_decref(ev);
  return rc;
}

int st__evidence_checkpoint(st_evidence_t *ev, PGconn *c, const char *tenant, long long seq,
                            const char *hash, st_error_t *err) {
  st_buf_t msg = ST_BUF_INIT, sig = ST_BUF_INIT, keyid = ST_BUF_INIT;
  char seqs[24];
  int rc;

  snprintf(seqs, sizeof(seqs), "%lld", seq);
  if (checkpoint_msg(&msg, tenant, seq, hash)) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if ((rc = st__evidence_sign(ev, msg.data, msg.len, &sig, &keyid, err)))
    goto done;
  {
    const char *p[5] = {tenant, seqs, hash, keyid.data, sig.data};
    rc = st_db_exec(c,
                    "INSERT INTO evidence_custody_checkpoints (tenant_id, seq, hash, keyid,"
                    " signature) VALUES ($1, $2::bigint, $3, $4, $5) ON CONFLICT DO NOTHING",
                    5, p, NULL, err);
  }
done:
  st_buf_release(&msg);
  st_buf_release(&sig);
  st_buf_release(&keyid);
  return rc;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

int st_evidence_custody_append(st_evidence_t *ev, PGconn *c, const st_evidence_who_t *who,
                               const char *event, const char *bundle_id,
                               const char *bundle_sha256, const json_t *detail,
                               st_error_t *err) {
  PGresult *res = NULL;
  json_t *rec = NULL;
  st_buf_t text = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hash[ST_SHA256_HEX_LEN + 1], prev[ST_SHA256_HEX_LEN + 1], at[21], seqs[24];
  const char *actor = who->actor ? who->actor : "unknown";
  long long seq;
  int rc;

  {
    const char *p[1] = {who->tenant};
    if ((rc = st_db_exec(c,
                         "INSERT INTO evidence_custody_head (tenant_id) VALUES ($1)"
                         " ON CONFLICT DO NOTHING",
                         1, p, NULL, err)) ||
        (rc = st_db_exec(c,
                         "SELECT seq, hash FROM evidence_custody_head WHERE tenant_id = $1"
                         " FOR UPDATE",
                         1, p, &res, err)))
      goto done;
  }
  if (PQntuples(res) != 1) {
    rc = st_fail(err, ST_EDB, "evidence: custody head of %s missing", who->tenant);
    goto done;
  }
  seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10) + 1;
  snprintf(prev, sizeof(prev), "%s", PQgetvalue(res, 0, 1));
  snprintf(seqs, sizeof(seqs), "%lld", seq);
  st__evidence_utc((int64_t)time(NULL), at);
  rec = json_pack("{s:i, s:s, s:I, s:s, s:o, s:o, s:s, s:o, s:s, s:o, s:s}", "v", 1, "tenant",
                  who->tenant, "seq", (json_int_t)seq, "event", event, "bundle_id",
                  str_or_null(bundle_id), "bundle_sha256", str_or_null(bundle_sha256), "actor",
                  actor, "request_id", str_or_null(who->request_id), "at", at, "detail",
                  detail ? json_deep_copy(detail) : json_object(), "prev_hash", prev);
  if (!rec) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if ((rc = st_jcs_encode(rec, &text, err)) || (rc = st_sha256(text.data, text.len, d)))
    goto done;
  st_sha256_hex(d, hash);
  {
    const char *p[11] = {who->tenant, seqs,      event, bundle_id, bundle_sha256, actor,
                         who->request_id, at, text.data, prev, hash};
    if ((rc = st_db_exec(c,
                         "INSERT INTO evidence_custody (tenant_id, seq, event, bundle_id,"
                         " bundle_sha256, actor, request_id, at, record, record_text,"
                         " prev_hash, hash) VALUES ($1, $2::bigint, $3, $4, $5, $6, $7,"
                         " $8::timestamptz, $9::text::jsonb, $9::text, $10, $11)",
                         11, p, NULL, err)))
      goto done;
  }
  {
    const char *p[3] = {who->tenant, seqs, hash};
    if ((rc = st_db_exec(c,
                         "UPDATE evidence_custody_head SET seq = $2::bigint, hash = $3"
                         " WHERE tenant_id = $1",
                         3, p, NULL, err)))
      goto done;
  }
  if ((rc = outbox_event(c, who, event, rec, hash, err)))
    goto done;
  if (seq % ST_EVIDENCE_CHECKPOINT_EVERY == 0 && ev->signer)
    rc = st__evidence_checkpoint(ev, c, who->tenant, seq, hash, err);
done:
  if (res)
    PQclear(res);
  st_buf_release(&text);
  json_decref(rec);
  return rc;
}

/* ---- verification ---- */

typedef struct verify_s {
  st_evidence_t *ev;
  const char *tenant;
  const st_pubkey_t *key;
  long long records;
} verify_t;

static int verify_records(PGconn *c, verify_t *v, char last[ST_SHA256_HEX_LEN + 1],
                          st_error_t *err) {
  PGresult *res = NULL;
  json_t *rec = NULL;
  st_buf_t canon = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hash[ST_SHA256_HEX_LEN + 1];
  int rc = 0, n;

  snprintf(last, ST_SHA256_HEX_LEN + 1, "%s", ST_EVIDENCE_ZERO_HASH);
  if ((rc = st_db_exec(c,
                       "SELECT seq, record_text, prev_hash, hash FROM evidence_custody"
                       " ORDER BY seq",
                       0, NULL, &res, err)))
    goto done;
  n = PQntuples(res);
  for (int i = 0; i < n; i++) {
    long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    const char *text = PQgetvalue(res, i, 1);
    size_t len = (size_t)PQgetlength(res, i, 1);
    json_t *s;

    json_decref(rec);
    rec = NULL;
    st_buf_reset(&canon);
    if (seq != i + 1) {
      rc = st_fail(err, ST_EVERIFY, "custody %s: record %d missing (found seq %lld)",
                   v->tenant, i + 1, seq);
      goto done;
    }
    if (strcmp(PQgetvalue(res, i, 2), last)) {
      rc = st_fail(err, ST_EVERIFY, "custody %s: seq %lld: prev_hash is not record %lld's hash",
                   v->tenant, seq, seq - 1);
      goto done;
    }
    if (st_json_parse(text, len, NULL, &rec, err) || st_jcs_encode(rec, &canon, err) ||
        canon.len != len || memcmp(canon.data, text, len) ||
        json_integer_value(json_object_get(rec, "seq")) != seq ||
        !(s = json_object_get(rec, "prev_hash")) || !json_string_value(s) || strcmp(json_string_value(s), last) ||
        !json_string_value(json_object_get(rec, "tenant")) ||
        strcmp(json_string_value(json_object_get(rec, "tenant")), v->tenant)) {
      rc = st_fail(err, ST_EVERIFY, "custody %s: seq %lld: record altered", v->tenant, seq);
      goto done;
    }
    if ((rc = st_sha256(text, len, d)))
      goto done;
    st_sha256_hex(d, hash);
    if (strcmp(hash, PQgetvalue(res, i, 3))) {
      rc = st_fail(err, ST_EVERIFY, "custody %s: seq %lld: hash does not match the record",
                   v->tenant, seq);
      goto done;
    }
    memcpy(last, hash, sizeof(hash));
  }
  v->records = n;
done:
  if (res)
    PQclear(res);
  json_decref(rec);
  st_buf_release(&canon);
  return rc;
}

static int verify_tx(PGconn *c, void *arg, st_error_t *err) {
  verify_t *v = arg;
  PGresult *res = NULL;
  st_buf_t msg = ST_BUF_INIT, sig = ST_BUF_INIT;
  char last[ST_SHA256_HEX_LEN + 1];
  int rc;

  if ((rc = verify_records(c, v, last, err)) ||
      (rc = st_db_exec(c, "SELECT seq, hash FROM evidence_custody_head", 0, NULL, &res, err)))
    goto done;
  if (PQntuples(res) > 1 ||
      (PQntuples(res) == 1 && (strtoll(PQgetvalue(res, 0, 0), NULL, 10) != v->records ||
                               strcmp(PQgetvalue(res, 0, 1), last))) ||
      (PQntuples(res) == 0 && v->records)) {
    rc = st_fail(err, ST_EVERIFY, "custody %s: the head does not match the last record (%lld)",
                 v->tenant, v->records);
    goto done;
  }
  PQclear(res);
  res = NULL;
  if ((rc = st_db_exec(c,
                       "SELECT k.seq, k.hash, k.signature, c.hash FROM"
                       " evidence_custody_checkpoints k LEFT JOIN evidence_custody c"
                       " USING (tenant_id, seq) ORDER BY k.seq",
                       0, NULL, &res, err)))
    goto done;
  for (int i = 0; i < PQntuples(res); i++) {
    long long seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    const char *h = PQgetvalue(res, i, 1), *s64 = PQgetvalue(res, i, 2);
    if (PQgetisnull(res, i, 3) || strcmp(h, PQgetvalue(res, i, 3))) {
      rc = st_fail(err, ST_EVERIFY, "custody %s: checkpoint %lld names a record not in the log",
                   v->tenant, seq);
      goto done;
    }
    st_buf_reset(&msg);
    st_buf_reset(&sig);
    if (checkpoint_msg(&msg, v->tenant, seq, h)) {
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
      goto done;
    }
    if (st_base64_decode(&sig, s64, strlen(s64), err) ||
        st_pubkey_verify(v->key, msg.data, msg.len, sig.data, sig.len, err)) {
      rc = st_fail(err, ST_EVERIFY, "custody %s: checkpoint %lld: bad signature", v->tenant,
                   seq);
      goto done;
    }
  }
done:
  if (res)
    PQclear(res);
  st_buf_release(&msg);
  st_buf_release(&sig);
  return rc;
}

int st_evidence_custody_verify(st_evidence_t *ev, const char *tenant, const st_pubkey_t *key,
                               long long *records, st_error_t *err) {
  verify_t v = {ev, tenant, key, 0};
  int rc;
  if (!v.key && ev->signer)
    v.key = st_signer_pubkey(ev->signer);
  if (!v.key)
    return st_fail(err, ST_EINVAL, "custody verify: no key to check checkpoints with");
  rc = st_db_tenant_txf(ev->db, tenant, ST_DB_TX_READ_ONLY | ST_DB_TX_SERIALIZABLE, verify_tx,
                        &v, err);
  if (records)
    *records = v.records;
  return rc;
}

int st_evidence_custody_of(PGconn *c, const char *bundle_id, json_t **out, st_error_t *err) {
  PGresult *res = NULL;
  json_t *arr = json_array();
  const char *p[1] = {bundle_id};
  int rc;

  *out = NULL;
  if (!arr)
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  if ((rc = st_db_exec(c,
                       "SELECT seq, record_text, prev_hash, hash FROM evidence_custody"
                       " WHERE bundle_id = $1 ORDER BY seq",
                       1, p, &res, err)))
    goto done;
  for (int i = 0; i < PQntuples(res); i++) {
    json_t *rec = NULL, *o;
    if ((rc = st_json_parse(PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1), NULL, &rec,
                            err)))
      goto done;
    o = json_pack("{s:I, s:o, s:s, s:s}", "seq",
                  (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10), "record", rec,
                  "prev_hash", PQgetvalue(res, i, 2), "hash", PQgetvalue(res, i, 3));
    if (!o || json_array_append_new(arr, o)) {
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
      goto done;
    }
  }
  *out = arr;
  arr = NULL;
done:
  if (res)
    PQclear(res);
  json_decref(arr);
  return rc;
}
