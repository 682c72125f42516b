/* evidence_port.c: the portable sealed export of a stored evidence bundle (evidence_port.h
 * says what it carries and why). Three steps: a read-only tenant transaction takes the
 * bundle's row and custody records; outside any transaction the stored object is fetched,
 * checked against the row, its payload extracted with the safe reader and sealed again
 * with the redacted metadata; a tenant transaction appends evidence.exported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evidence_internal.h"
#include "stella/evidence_port.h"
#include "stella/mem.h"
#include "stella/oci.h"
#include "stella/sha256.h"
#include "stella/tgz.h"

#define PAYLOAD "payload/"

typedef struct src_s {
  st_evidence_t *ev;
  const char *tenant, *bundle_id;
  json_t *desc, *custody;
} src_t;

static int src_tx(PGconn *c, void *arg, st_error_t *err) {
  src_t *s = arg;
  int rc;
  json_decref(s->desc);
  json_decref(s->custody);
  s->desc = s->custody = NULL;
  if ((rc = st_evidence_get(s->ev, c, s->tenant, s->bundle_id, &s->desc, err)))
    return rc;
  return st_evidence_custody_of(c, s->bundle_id, &s->custody, err);
}

static int to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

/* Fetch the stored object into path and check it is the row's. */
static int fetch_object(st_evidence_t *ev, const char *tenant, const json_t *obj, const char *path,
                        st_error_t *err) {
  const char *key = json_string_value(json_object_get(obj, "key"));
  const char *want = json_string_value(json_object_get(obj, "sha256"));
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  FILE *f = fopen(path, "wb");
  int rc;

  if (!f)
    return st_fail(err, ST_EIO, "evidence export: cannot write %s", path);
  rc = st_objstore_get(ev->store, tenant, key, 0, ST_OBJSTORE_TO_END, to_file, f, err);
  if (fclose(f) && !rc)
    rc = st_fail(err, ST_EIO, "evidence export: cannot write %s", path);
  if (rc || (rc = st_sha256_file(path, d, NULL, err)))
    return rc;
  st_sha256_hex(d, hex);
  if (!want || strcmp(hex, want))
    return st_fail(err, ST_EVERIFY,
                   "evidence export: stored object %s reads back as "
                   "sha256:%s, the row says %s",
                   key, hex, want ? want : "nothing");
  return 0;
}

/* The allowlist (evidence_port.h). Dropped member names go to redacted, sorted. */
static int redact(const json_t *meta, json_t *out, json_t *redacted) {
  static const char *const top[] = {"snapshot_kind", "environment"};
  static const char *const run_keys[] = {"run_id", "started", "finished"};
  const char *k;
  json_t *v, *run = NULL;
  int rc = 0;

  json_object_foreach((json_t *)meta, k, v) {
    int keep = 0;
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
      keep |= !strcmp(k, top[i]);
    if (keep) {
      rc |= json_object_set(out, k, v);
    } else if (!strcmp(k, "run") && json_is_object(v)) {
      const char *rk;
      json_t *rv;
      if (!run && (!(run = json_object()) || json_object_set_new(out, "run", run)))
        return -1;
      json_object_foreach(v, rk, rv) {
        int rkeep = 0;
        for (size_t i = 0; i < sizeof(run_keys) / sizeof(run_keys[0]); i++)
          rkeep |= !strcmp(rk, run_keys[i]);
        if (rkeep) {
          rc |= json_object_set(run, rk, rv);
        } else {
          char name[80];
          snprintf(name, sizeof(name), "run.%.64s", rk);
          rc |= json_array_append_new(redacted, json_string(name));
        }
      }
    } else if (strcmp(k, "export")) { /* a re-export replaces the old export member */
      rc |= json_array_append_new(redacted, json_string(k));
    }
  }
  return rc;
}

static int by_text(const void *a, const void *b) {
  return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static int sort_strings(json_t *arr) {
  size_t n = json_array_size(arr);
  json_t **v;
  if (n < 2)
    return 0;
  if (!(v = st_calloc(n, sizeof(*v))))
    return -1;
  for (size_t i = 0; i < n; i++)
    v[i] = json_incref(json_array_get(arr, i));
  qsort(v, n, sizeof(*v), by_text);
  json_array_clear(arr);
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, v[i]);
  st_free(v);
  return 0;
}

/* {seq, record, hash} for each custody row (custody_of gives prev_hash beside it too;
 * the record carries it already). */
static json_t *custody_items(const json_t *rows) {
  json_t *arr = json_array(), *r;
  size_t i;
  if (!arr)
    return NULL;
  json_array_foreach(rows, i, r) {
    if (json_array_append_new(arr, json_pack("{s:O, s:O, s:O}", "seq", json_object_get(r, "seq"),
                                             "record", json_object_get(r, "record"), "hash",
                                             json_object_get(r, "hash")))) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static json_t *export_metadata(const src_t *s, const st_evidence_facts_t *f) {
  const json_t *obj = json_object_get(s->desc, "object");
  const char *gen =
      json_string_value(json_object_get(json_object_get(s->desc, "timestamp"), "gen_time"));
  json_t *meta = json_object(), *redacted = json_array(), *source, *ex;

  if (!meta || !redacted || redact(json_object_get(f->manifest, "metadata"), meta, redacted) ||
      sort_strings(redacted))
    goto fail;
  source = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:s}", "tenant", s->tenant, "bundle_id",
                     s->bundle_id, "merkle_root", f->merkle_root.data, "manifest_sha256",
                     f->manifest_sha256.data, "object_sha256", json_object_get(obj, "sha256"),
                     "keyid", f->keyid.data, "created", f->created.data);
  if (!source || (gen && json_object_set_new(source, "tsa_gen_time", json_string(gen)))) {
    json_decref(source);
    goto fail;
  }
  ex = json_pack("{s:s, s:o, s:O, s:o*}", "schema", ST_EVIDENCE_EXPORT_SCHEMA, "source", source,
                 "redacted", redacted, "custody", custody_items(s->custody));
  if (!ex || !json_object_get(ex, "custody") || json_object_set_new(meta, "export", ex))
    goto fail;
  json_decref(redacted);
  return meta;
fail:
  json_decref(meta);
  json_decref(redacted);
  return NULL;
}

/* Seal the payload extracted under dir with meta into out_path. */
static int seal_export(st_evidence_t *ev, const src_t *s, const st_evidence_facts_t *f,
                       const char *dir, const json_t *meta, const char *out_path, st_error_t *err) {
  const json_t *entries = json_object_get(f->manifest, "entries"), *e;
  size_t n = json_array_size(entries), i;
  st_bundle_input_t *in = n ? st_calloc(n, sizeof(*in)) : NULL;
  char **paths = n ? st_calloc(n, sizeof(char *)) : NULL;
  st_bundle_spec_t spec = {0};
  st_bundle_sealed_t res;
  st_tsa_opts_t tsa = {0};
  int rc = 0;

  if (n && (!in || !paths)) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  json_array_foreach(entries, i, e) {
    const char *p = json_string_value(json_object_get(e, "path"));
    st_buf_t fs = ST_BUF_INIT;
    if (!p || strncmp(p, PAYLOAD, sizeof(PAYLOAD) - 1)) {
      rc = st_fail(err, ST_EVERIFY, "evidence export: manifest entry %zu is not a payload file", i);
      goto done;
    }
    if (st_buf_addf(&fs, "%s/%s", dir, p)) {
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
      goto done;
    }
    paths[i] = st_buf_detach(&fs, NULL);
    in[i].path = p + sizeof(PAYLOAD) - 1;
    in[i].src = ST_BUNDLE_SRC_FILE;
    in[i].fs_path = paths[i];
    in[i].media_type = json_string_value(json_object_get(e, "mediaType"));
  }
  spec.kind = "evidence";
  spec.id = s->bundle_id;
  spec.tenant = s->tenant;
  spec.created = f->created.data;
  spec.metadata = meta;
  spec.inputs = in;
  spec.ninputs = n;
  spec.result = &res;
  tsa.url = ev->tsa_url;
  if ((rc = st_bundle_seal(&spec, ev->signer, ev->tsa_url ? &tsa : NULL, out_path, err)))
    goto done;
  /* the bytes extracted are the ones the source sealed: same entries, same root */
  if (strcmp(res.merkle_root, f->merkle_root.data)) {
    unlink(out_path);
    rc = st_fail(err, ST_EVERIFY,
                 "evidence export: payload of %s does not rebuild its "
                 "Merkle root",
                 s->bundle_id);
  }
done:
  for (i = 0; paths && i < n; i++)
    st_free(paths[i]);
  st_free(paths);
  st_free(in);
  return rc;
}

typedef struct done_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const char *bundle_id, *source_sha;
  const json_t *detail;
} done_t;

static int exported_tx(PGconn *c, void *arg, st_error_t *err) {
  done_t *d = arg;
  int rc = st_evidence_custody_append(d->ev, c, d->who, "evidence.exported", d->bundle_id,
                                      d->source_sha, d->detail, err);
  if (!rc && d->who->in_tx)
    rc = d->who->in_tx(c, d->who->in_tx_arg, err);
  return rc;
}

static int extract(const char *tgz, const char *dir, st_error_t *err) {
  st_tgz_reader_t *r = NULL;
  int rc = st_tgz_reader_open(tgz, NULL, &r, err);
  if (!rc)
    rc = st_tgz_reader_extract(r, dir, err);
  st_tgz_reader_free(r);
  return rc;
}

int st_evidence_export(st_evidence_t *ev, const st_evidence_who_t *who, const char *bundle_id,
                       const char *out_path, json_t **facts, st_error_t *err) {
  src_t s = {ev, who->tenant, bundle_id, NULL, NULL};
  st_evidence_facts_t f, xf;
  st_buf_t tmp = ST_BUF_INIT, dir = ST_BUF_INIT;
  json_t *meta = NULL, *detail = NULL;
  const char *status;
  long long last_seq;
  int rc, sealed = 0;

  st_evidence_facts_init(&f);
  st_evidence_facts_init(&xf);
  if (facts)
    *facts = NULL;
  if (!st__evidence_id_ok(bundle_id, ST_EVIDENCE_ID_MAX)) {
    rc = st_fail(err, ST_ENOENT, "evidence export: no bundle %.128s", bundle_id);
    goto done;
  }
  if ((rc = st_db_tenant_txf(ev->db, who->tenant, ST_DB_TX_READ_ONLY, src_tx, &s, err)))
    goto done;
  if (!ev->signer) { /* after the lookup: an unknown id stays a 404 */
    rc = st_fail(err, ST_ECONFIG, "signing_key: needed to seal an export");
    goto done;
  }
  status = json_string_value(json_object_get(s.desc, "status"));
  if (!status || strcmp(status, "sealed")) {
    rc = st_fail(err, ST_ECONFLICT, "evidence export: bundle %s is %s, not sealed", bundle_id,
                 status ? status : "unknown");
    goto done;
  }
  if ((rc = st__evidence_tmpfile(ev, &tmp, err)) ||
      (rc = fetch_object(ev, who->tenant, json_object_get(s.desc, "object"), tmp.data, err)) ||
      (rc = st_evidence_facts_read(tmp.data, NULL, 0, &f, err)))
    goto done;
  if (st_buf_addf(&dir, "%s/stella-export-XXXXXX", ev->tmp_dir)) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if (!mkdtemp(dir.data)) {
    st_buf_reset(&dir);
    rc = st_fail(err, ST_EIO, "evidence export: cannot create a directory in %s", ev->tmp_dir);
    goto done;
  }
  if ((rc = extract(tmp.data, dir.data, err)))
    goto done;
  if (!(meta = export_metadata(&s, &f))) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if ((rc = seal_export(ev, &s, &f, dir.data, meta, out_path, err)))
    goto done;
  sealed = 1;
  if ((rc = st_evidence_facts_read(out_path, NULL, 0, &xf, err)))
    goto done;
  last_seq = (long long)json_integer_value(
      json_object_get(json_array_get(s.custody, json_array_size(s.custody) - 1), "seq"));
  detail =
      json_pack("{s:s, s:s, s:I}", "export_sha256", xf.object_sha256.data, "export_manifest_sha256",
                xf.manifest_sha256.data, "custody_through", (json_int_t)last_seq);
  if (!detail) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  {
    done_t d = {ev, who, bundle_id,
                json_string_value(json_object_get(json_object_get(s.desc, "object"), "sha256")),
                detail};
    if ((rc = st_db_tenant_tx(ev->db, who->tenant, exported_tx, &d, err)))
      goto done;
  }
  if (facts && !(*facts = json_pack(
                     "{s:s, s:s, s:I, s:s, s:s, s:I, s:O}", "bundle_id", bundle_id, "sha256",
                     xf.object_sha256.data, "size", (json_int_t)xf.object_size, "manifest_sha256",
                     xf.manifest_sha256.data, "merkle_root", xf.merkle_root.data, "custody_records",
                     (json_int_t)json_array_size(s.custody), "redacted",
                     json_object_get(json_object_get(meta, "export"), "redacted"))))
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
done:
  if (rc && sealed) /* no export leaves without its custody record */
    unlink(out_path);
  if (tmp.len)
    unlink(tmp.data);
  if (dir.len)
    st_oci_rmtree(dir.data);
  st_buf_release(&tmp);
  st_buf_release(&dir);
  json_decref(meta);
  json_decref(detail);
  json_decref(s.desc);
  json_decref(s.custody);
  st_evidence_facts_release(&f);
  st_evidence_facts_release(&xf);
  return rc;
}
