/* bundle_verify.c: st_bundle_verify. One streaming pass (bundle_read.c) collects hashes and
 * the metadata files; then each check runs on what was collected and records pass, fail,
 * skip or untrusted with its reason (bundle.h). A check whose input could not be trusted
 * because an earlier one failed still runs when it can say something useful (e.g. the
 * signature is still checked when the manifest is malformed), so a report names as much
 * as possible. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bundle_internal.h"
#include "stella/dsse.h"
#include "stella/mem.h"

typedef struct verify_s {
  st_bundle_report_t *r;
  const st_bundle_trust_t *trust;
  st__bread_t b;
  st__manifest_t m;
  int manifest_ok;
  st_buf_t sig;
} verify_t;

#define SET(v, name, st, ...) st__bundle_report_set((v)->r, name, st, __VA_ARGS__)

static void check_checksums(verify_t *v) {
  const char *p = v->b.sums.data, *end = p + v->b.sums.len;
  size_t fi = 0, line = 0;
  uint8_t d[ST_SHA256_LEN];

  if (!v->b.has_sums) {
    SET(v, "checksums", ST_BUNDLE_FAIL, "SHA256SUMS is missing");
    return;
  }
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *name;
    size_t nlen;
    line++;
    if (!nl || nl - p < ST_SHA256_HEX_LEN + 3 || p[ST_SHA256_HEX_LEN] != ' ' ||
        p[ST_SHA256_HEX_LEN + 1] != ' ' || strspn(p, "0123456789abcdef") < ST_SHA256_HEX_LEN ||
        st_sha256_from_hex(p, ST_SHA256_HEX_LEN, d)) {
      SET(v, "checksums", ST_BUNDLE_FAIL, "SHA256SUMS line %zu is not '<64 hex>  <path>'", line);
      return;
    }
    name = p + ST_SHA256_HEX_LEN + 2;
    nlen = (size_t)(nl - name);
    if (fi < v->b.n && strcmp(v->b.files[fi].path, "SHA256SUMS") == 0)
      fi++;
    if (fi == v->b.n || strlen(v->b.files[fi].path) != nlen ||
        memcmp(v->b.files[fi].path, name, nlen)) {
      int listed_only = fi == v->b.n || strncmp(v->b.files[fi].path, name, nlen) > 0 ||
                        (strncmp(v->b.files[fi].path, name, nlen) == 0 &&
                         strlen(v->b.files[fi].path) > nlen);
      if (listed_only)
        SET(v, "checksums", ST_BUNDLE_FAIL, "'%.*s' is listed in SHA256SUMS but not in the bundle",
            (int)(nlen > 200 ? 200 : nlen), name);
      else
        SET(v, "checksums", ST_BUNDLE_FAIL, "'%.200s' is in the bundle but not listed in "
            "SHA256SUMS (or the list is not sorted)", v->b.files[fi].path);
      return;
    }
    if (!st_sha256_equal(d, v->b.files[fi].sha256)) {
      SET(v, "checksums", ST_BUNDLE_FAIL, "'%.200s': SHA-256 differs from SHA256SUMS",
          v->b.files[fi].path);
      return;
    }
    fi++;
    p = nl + 1;
  }
  if (fi < v->b.n && strcmp(v->b.files[fi].path, "SHA256SUMS") == 0)
    fi++;
  if (fi < v->b.n) {
    SET(v, "checksums", ST_BUNDLE_FAIL, "'%.200s' is in the bundle but not listed in SHA256SUMS",
        v->b.files[fi].path);
    return;
  }
  SET(v, "checksums", ST_BUNDLE_PASS, "%zu files match SHA256SUMS", line);
}

static void check_manifest(verify_t *v) {
  st_error_t e = ST_ERROR_INIT;
  const char *which = "manifest";

  if (!v->b.has_manifest) {
    SET(v, "manifest", ST_BUNDLE_FAIL, "manifest.json is missing");
    return;
  }
  if (st__bundle_manifest_parse(v->b.manifest.data, v->b.manifest.len, &v->m, &which, &e)) {
    SET(v, which, ST_BUNDLE_FAIL, "%s", st_error_text(&e));
    if (strcmp(which, "merkle") == 0)
      SET(v, "manifest", ST_BUNDLE_PASS, "canonical, schema " ST_BUNDLE_SCHEMA);
    return;
  }
  v->manifest_ok = 1;
  st__bundle_note(&v->r->kind, v->m.kind);
  st__bundle_note(&v->r->id, v->m.id);
  st__bundle_note(&v->r->tenant, v->m.tenant);
  st__bundle_note(&v->r->created, v->m.created);
  SET(v, "manifest", ST_BUNDLE_PASS, "canonical, schema " ST_BUNDLE_SCHEMA ", %zu entries",
      v->m.n);
  SET(v, "merkle", ST_BUNDLE_PASS, "root over %zu entries matches", v->m.n);
}

/* Manifest entries vs the payload files in the archive (both sorted by path bytes). */
static void check_entries(verify_t *v) {
  size_t i = 0, k = 0;
  const size_t plen = strlen(ST__BUNDLE_PAYLOAD_DIR);

  if (!v->manifest_ok) {
    SET(v, "entries", ST_BUNDLE_FAIL, "manifest.json not usable");
    return;
  }
  while (k < v->b.n && strncmp(v->b.files[k].path, ST__BUNDLE_PAYLOAD_DIR, plen))
    k++;
  for (;;) {
    const st__bfile_t *f = k < v->b.n && !strncmp(v->b.files[k].path, ST__BUNDLE_PAYLOAD_DIR, plen)
                               ? &v->b.files[k]
                               : NULL;
    const st__bentry_t *e = i < v->m.n ? &v->m.entries[i] : NULL;
    int c;
    if (!f && !e)
      break;
    c = !f ? -1 : !e ? 1 : strcmp(e->path, f->path);
    if (c < 0) {
      SET(v, "entries", ST_BUNDLE_FAIL, "missing entry: '%.200s' is listed in manifest.json but "
          "not in the bundle", e->path);
      return;
    }
    if (c > 0) {
      SET(v, "entries", ST_BUNDLE_FAIL, "extra entry: '%.200s' is in the bundle but not listed "
          "in manifest.json", f->path);
      return;
    }
    if (!st_sha256_equal(e->sha256, f->sha256) || e->size != f->size) {
      SET(v, "entries", ST_BUNDLE_FAIL, "'%.200s': %s differs from manifest.json", e->path,
          e->size != f->size ? "size" : "SHA-256");
      return;
    }
    i++;
    k++;
  }
  SET(v, "entries", ST_BUNDLE_PASS, "%zu payload files match manifest.json", v->m.n);
}

static void check_signature(verify_t *v) {
  st_error_t e = ST_ERROR_INIT;
  st_buf_t payload = ST_BUF_INIT;
  st__statement_t s;
  uint8_t md[ST_SHA256_LEN];
  size_t by = 0;

  memset(&s, 0, sizeof(s));
  if (!v->b.has_envelope) {
    SET(v, "signature", ST_BUNDLE_FAIL, "manifest.dsse.json is missing");
    goto done;
  }
  if (st__bundle_envelope_sig(v->b.envelope.data, v->b.envelope.len, &v->sig, &e)) {
    SET(v, "signature", ST_BUNDLE_FAIL, "%s", st_error_text(&e));
    goto done;
  }
  if (!v->trust->nkeys) {
    SET(v, "signature", ST_BUNDLE_FAIL, "no trusted key given (keys/signer.pub.pem inside the "
        "bundle proves nothing about who signed: pass --key)");
    goto done;
  }
  if (st_dsse_verify(v->b.envelope.data, v->b.envelope.len, v->trust->keys, v->trust->nkeys,
                     ST_BUNDLE_PAYLOAD_TYPE, NULL, &payload, &by, &e)) {
    SET(v, "signature", ST_BUNDLE_FAIL, "%s", st_error_text(&e));
    goto done;
  }
  st__bundle_note(&v->r->keyid, st_pubkey_keyid(v->trust->keys[by]));
  if (st__bundle_statement_parse(payload.data, payload.len, &s, &e)) {
    SET(v, "signature", ST_BUNDLE_FAIL, "signed payload: %s", st_error_text(&e));
    goto done;
  }
  if (!v->manifest_ok || st_sha256(v->b.manifest.data, v->b.manifest.len, md)) {
    SET(v, "signature", ST_BUNDLE_FAIL, "valid signature by %s, but manifest.json is not usable",
        st_pubkey_keyid(v->trust->keys[by]));
    goto done;
  }
  if (st__bundle_statement_match(&s, &v->m, md, &e)) {
    SET(v, "signature", ST_BUNDLE_FAIL, "%s", st_error_text(&e));
    goto done;
  }
  SET(v, "signature", ST_BUNDLE_PASS, "signed by trusted key %s; statement binds manifest.json "
      "(%s subjects)", st_pubkey_keyid(v->trust->keys[by]),
      s.private_subjects ? "private" : "all entries as");
done:
  st__bundle_statement_release(&s);
  st_buf_release(&payload);
}

static void check_rest(verify_t *v) {
  st_error_t e = ST_ERROR_INIT;
  st_buf_t script = ST_BUF_INIT;

  if (v->b.has_tsr != v->b.has_chain)
    SET(v, "timestamp", ST_BUNDLE_FAIL, "manifest.tsr and keys/tsa-chain.pem must come together");
  else
    st__bundle_check_timestamp(v->r, v->trust, v->b.tsr.data, v->b.tsr.len, v->b.chain.data,
                               v->b.chain.len, v->sig.data, v->sig.len);

  if (!v->b.has_sigstore)
    SET(v, "sigstore", ST_BUNDLE_FAIL, "manifest.sigstore.json is missing");
  else if (st__bundle_sigstore_check(v->b.sigstore.data, v->b.sigstore.len, v->b.envelope.data,
                                     v->b.envelope.len, v->b.tsr.data, v->b.tsr.len, &e))
    SET(v, "sigstore", ST_BUNDLE_FAIL, "%s", st_error_text(&e));
  else
    SET(v, "sigstore", ST_BUNDLE_PASS, "same envelope, key hint and timestamp");

  if (st__bundle_verify_sh(&script))
    SET(v, "verify_sh", ST_BUNDLE_FAIL, "out of memory");
  else if (!v->b.has_script || script.len != v->b.script.len ||
           memcmp(script.data, v->b.script.data, script.len))
    SET(v, "verify_sh", ST_BUNDLE_FAIL, "verify.sh %s", v->b.has_script ? "differs from the "
        "script this version writes (do not run it)" : "is missing");
  else
    SET(v, "verify_sh", ST_BUNDLE_PASS, "the script this version writes");
  st_buf_release(&script);

  st_error_t ke = ST_ERROR_INIT;
  if (!v->manifest_ok)
    SET(v, "kind", ST_BUNDLE_FAIL, "manifest.json not usable");
  else if (st__bundle_kind_check(v->m.kind, v->m.metadata, &v->m, &ke))
    SET(v, "kind", ST_BUNDLE_FAIL, "kind %s: %s", v->m.kind, st_error_text(&ke));
  else
    SET(v, "kind", ST_BUNDLE_PASS, "kind %s: metadata rules hold", v->m.kind);
}

typedef struct canon_job_s {
  const char *path;
  const void *data;
  size_t len;
  uint64_t max;
  atomic_int stop;
  st_error_t err;
  int rc;
} canon_job_t;

static void *canon_main(void *arg) {
  canon_job_t *j = arg;
  j->rc = st__bundle_gzip_canonical(j->path, j->data, j->len, j->max, &j->stop, &j->err);
  return NULL;
}

/* rd NULL: opening failed with open_err (the archive check reports it). The canonical-
 * compression check runs on a second thread beside the read pass (path NULL: data). */
static int verify_reader(st_tgz_reader_t *rd, const st_error_t *open_err, const void *head,
                         size_t head_len, const char *path, uint64_t size,
                         const st_tgz_limits_t *lim,
                         const st_bundle_trust_t *trust, st_bundle_report_t *report,
                         st_error_t *err) {
  static const char *const names[] = ST_BUNDLE_CHECK_NAMES;
  static const st_bundle_trust_t none = {0};
  st_error_t e = ST_ERROR_INIT;
  canon_job_t job;
  pthread_t th;
  int started = 0, bad;
  verify_t v;
  int rc;

  memset(&v, 0, sizeof(v));
  memset(&job, 0, sizeof(job));
  v.r = report;
  v.trust = trust ? trust : &none;
  st__bundle_bread_init(&v.b);
  st_buf_init(&v.sig, ST__BUNDLE_SIG_MAX);
  if ((rc = st__bundle_report_start(report, names, ST_BUNDLE_NCHECKS, 0))) {
    st_fail(err, rc, "bundle verify: out of memory");
    goto done;
  }
  if (!rd)
    e = *open_err;
  bad = !rd || st__bundle_gzip_header_check(head, head_len, &e);
  if (!bad) {
    job.path = path;
    job.data = head;
    job.len = head_len;
    job.max = lim->max_total_bytes;
    atomic_init(&job.stop, 0);
    /* A thread pays off only past a few MiB (the tamper tests verify thousands of tiny
     * bundles). */
    started = size > ((uint64_t)4 << 20) && pthread_create(&th, NULL, canon_main, &job) == 0;
    bad = st__bundle_read(rd, &v.b, &e) != 0;
    if (bad)
      atomic_store(&job.stop, 1);
    if (started)
      pthread_join(th, NULL);
    else if (!bad)
      canon_main(&job);
    if (!bad && job.rc) {
      e = job.err;
      bad = 1;
    }
  }
  if (bad) {
    if (e.code == ST_ENOMEM) {
      rc = st_fail(err, ST_ENOMEM, "bundle verify: %s", e.msg);
      goto done;
    }
    SET(&v, "archive", ST_BUNDLE_FAIL, "%s", st_error_text(&e));
    for (size_t i = 1; i < report->nchecks; i++)
      SET(&v, names[i], ST_BUNDLE_SKIP, "not checked: the archive is not a valid bundle");
    rc = st__bundle_report_result(report, err);
    goto done;
  }
  SET(&v, "archive", ST_BUNDLE_PASS, "canonical gzip and tar order, %zu files, only bundle names",
      v.b.n);
  check_checksums(&v);
  check_manifest(&v);
  check_entries(&v);
  check_signature(&v);
  check_rest(&v);
  rc = st__bundle_report_result(report, err);
done:
  st__bundle_manifest_release(&v.m);
  st__bundle_bread_release(&v.b);
  st_buf_release(&v.sig);
  return rc;
}

int st_bundle_verify_mem(const void *data, size_t len, const st_bundle_trust_t *trust,
                         st_bundle_report_t *report, st_error_t *err) {
  st_tgz_reader_t *rd = NULL;
  st_tgz_limits_t lim;
  int rc;

  st_error_t oe = ST_ERROR_INIT;

  st_tgz_limits_default(&lim);
  rc = st_tgz_reader_open_mem(data, len, trust && trust->limits ? trust->limits : &lim, &rd, &oe);
  if (rc == ST_ENOMEM || rc == ST_EIO) {
    if (err)
      *err = oe;
    return rc;
  }
  rc = verify_reader(rd, &oe, data, len, NULL, len, trust && trust->limits ? trust->limits : &lim,
                     trust, report, err);
  st_tgz_reader_free(rd);
  return rc;
}

int st_bundle_verify(const char *path, const st_bundle_trust_t *trust,
                     st_bundle_report_t *report, st_error_t *err) {
  st_tgz_reader_t *rd = NULL;
  st_tgz_limits_t lim;
  st_error_t oe = ST_ERROR_INIT;
  unsigned char head[10];
  uint64_t fsize;
  size_t got;
  FILE *f;
  int rc;

  if (!(f = fopen(path, "rb")))
    return st_fail(err, ST_EIO, "%s: cannot open", path);
  got = fread(head, 1, sizeof(head), f);
  fsize = fseeko(f, 0, SEEK_END) == 0 && ftello(f) > 0 ? (uint64_t)ftello(f) : 0;
  fclose(f);
  st_tgz_limits_default(&lim);
  rc = st_tgz_reader_open(path, trust && trust->limits ? trust->limits : &lim, &rd, &oe);
  if (rc == ST_ENOMEM || rc == ST_EIO) {
    if (err)
      *err = oe;
    return rc;
  }
  rc = verify_reader(rd, &oe, head, got, path, fsize, trust && trust->limits ? trust->limits : &lim,
                     trust, report, err);
  st_tgz_reader_free(rd);
  return rc;
}
