/* bundle_seal.c: st_bundle_seal. Order of work, chosen so nothing is ever held whole in
 * memory and a file changing under us cannot go unnoticed:
 *   1. validate the spec, sort inputs by bundle path, refuse duplicates;
 *   2. open the tgz writer and add every input (the writer stats files now and checks at
 *      finish that size, mtime and ctime are unchanged), then hash every file once,
 *      streaming; so a file written to after being hashed fails the seal (ST_ECONFLICT);
 *   3. manifest.json (canonical, Merkle root), the statement, the DSSE envelope, the
 *      timestamp over the raw signature, the Sigstore bundle, verify.sh, keys/, SHA256SUMS;
 *   4. finish: the writer sorts, streams the files a second time, gzips, publishes.
 * Memory: O(number of entries) for paths and digests; file data only in 64 KiB chunks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle_internal.h"
#include "stella/db.h"
#include "stella/dsse.h"
#include "stella/mem.h"
#include "stella/tgz.h"

typedef struct seal_s {
  st__bentry_t *e; /* sorted by path */
  const st_bundle_input_t **in; /* e[i]'s input */
  size_t n;
  st_tgz_writer_t *w;
  st_buf_t manifest, statement, envelope, sig, tsr, chain, sigstore, script, sums;
  char created[21], id[ST_BUNDLE_ID_MAX + 1];
  int64_t epoch;
  uint8_t root[ST_SHA256_LEN], mdigest[ST_SHA256_LEN];
} seal_t;

typedef struct meta_file_s {
  const char *path;
  const st_buf_t *data;
} meta_file_t;

static int cmp_input(const void *a, const void *b) {
  return strcmp((*(const st_bundle_input_t *const *)a)->path,
                (*(const st_bundle_input_t *const *)b)->path);
}

static int check_spec(const st_bundle_spec_t *spec, st_error_t *err) {
  const char *tenant = spec->tenant ? spec->tenant : "default";
  int rc;
  if (!spec->kind || !st__bundle_kind_valid(spec->kind, strlen(spec->kind)) ||
      !st_bundle_kind_known(spec->kind))
    return st_fail(err, ST_EINVAL, "bundle kind '%.32s': unknown (evidence, export, mirror, "
                   "attestation, risk, devportal, bootstrap, generic)", spec->kind ? spec->kind : "");
  if (spec->id && !st__bundle_id_valid(spec->id, strlen(spec->id)))
    return st_fail(err, ST_EINVAL, "bundle id '%.64s': want 1..%d of [A-Za-z0-9._:-]", spec->id,
                   ST_BUNDLE_ID_MAX);
  if ((rc = st_db_tenant_check(tenant, err)))
    return st_error_wrap(err, "bundle tenant");
  if (spec->metadata && st__bundle_kind_check(spec->kind, spec->metadata, NULL, err)) {
    st_error_wrap(err, "bundle metadata (kind %s)", spec->kind);
    return err ? (err->code = ST_EINVAL) : ST_EINVAL;
  }
  if (spec->ninputs > ST_BUNDLE_MAX_ENTRIES || (spec->ninputs && !spec->inputs))
    return st_fail(err, ST_EINVAL, "bundle: %zu inputs (at most %d)", spec->ninputs,
                   ST_BUNDLE_MAX_ENTRIES);
  return 0;
}

/* Directories the archive gains for p after prev (sorted order): the '/'s of p past the
 * longest common prefix that ends in '/'. */
static size_t new_dirs(const char *prev, const char *p) {
  size_t common = 0, n = 0;
  for (size_t i = 0; prev && prev[i] && prev[i] == p[i]; i++)
    if (p[i] == '/')
      common = i + 1;
  for (size_t i = common; p[i]; i++)
    n += p[i] == '/';
  return n;
}

/* Sorted entries with paths and media types; no hashing yet. */
static int collect(seal_t *s, const st_bundle_spec_t *spec, st_error_t *err) {
  const st_bundle_input_t **order = NULL;
  int rc = 0;

  s->n = spec->ninputs;
  if (!s->n)
    return 0;
  if (!(order = st_calloc(s->n, sizeof(*order))) || !(s->e = st_calloc(s->n, sizeof(*s->e)))) {
    rc = st_fail(err, ST_ENOMEM, "bundle: %zu inputs", s->n);
    goto done;
  }
  for (size_t i = 0; i < s->n; i++) {
    if (!spec->inputs[i].path) {
      rc = st_fail(err, ST_EINVAL, "bundle input %zu: no path", i);
      goto done;
    }
    order[i] = &spec->inputs[i];
  }
  qsort(order, s->n, sizeof(*order), cmp_input);
  for (size_t i = 0; i < s->n; i++) {
    const st_bundle_input_t *in = order[i];
    const char *mt = in->media_type ? in->media_type : st_bundle_media_type(in->path);
    st_buf_t p = ST_BUF_INIT;
    if (i && strcmp(order[i - 1]->path, in->path) == 0) {
      rc = st_fail(err, ST_EEXIST, "bundle input '%.200s' given twice", in->path);
      goto done;
    }
    if ((rc = st_buf_adds(&p, ST__BUNDLE_PAYLOAD_DIR)) || (rc = st_buf_adds(&p, in->path))) {
      st_buf_release(&p);
      st_fail(err, rc, "bundle input path");
      goto done;
    }
    s->e[i].path = st_buf_detach(&p, NULL);
    if ((rc = st__bundle_path_check(s->e[i].path, strlen(s->e[i].path), err)))
      goto done;
    if (!st__bundle_media_type_valid(mt, strlen(mt))) {
      rc = st_fail(err, ST_EINVAL, "bundle input '%.200s': invalid media type '%.64s'", in->path,
                   mt);
      goto done;
    }
    if (!(s->e[i].media_type = st_strdup(mt))) {
      rc = st_fail(err, ST_ENOMEM, "bundle input media type");
      goto done;
    }
    if (in->src != ST_BUNDLE_SRC_FILE && in->src != ST_BUNDLE_SRC_MEM) {
      rc = st_fail(err, ST_EINVAL, "bundle input '%.200s': unknown source", in->path);
      goto done;
    }
    if ((in->src == ST_BUNDLE_SRC_FILE && !in->fs_path) ||
        (in->src == ST_BUNDLE_SRC_MEM && !in->data && in->len)) {
      rc = st_fail(err, ST_EINVAL, "bundle input '%.200s': no file or data", in->path);
      goto done;
    }
  }
  {
    /* Files + directories + the 8 metadata files and keys/ must stay within what the
     * reader accepts by default, or the bundle would not verify. */
    st_tgz_limits_t lim;
    uint64_t total = 9 + s->n;
    st_tgz_limits_default(&lim);
    for (size_t i = 0; i < s->n; i++)
      total += new_dirs(i ? s->e[i - 1].path : NULL, s->e[i].path);
    if (total > lim.max_entries) {
      rc = st_fail(err, ST_ETOOBIG, "bundle: %llu archive entries (files and directories), "
                   "verifiers accept at most %llu", (unsigned long long)total,
                   (unsigned long long)lim.max_entries);
      goto done;
    }
  }
  s->in = order;
  order = NULL;
done:
  st_free(order);
  return rc;
}

/* Add every input to the writer, then hash them (see the top comment). */
static int add_and_hash(seal_t *s, st_error_t *err) {
  int rc;
  for (size_t i = 0; i < s->n; i++) {
    const st_bundle_input_t *in = s->in[i];
    rc = in->src == ST_BUNDLE_SRC_FILE
             ? st_tgz_add_file(s->w, s->e[i].path, in->fs_path, err)
             : st_tgz_add_mem(s->w, s->e[i].path, in->data, in->len, err);
    if (rc)
      return st_error_wrap(err, "bundle input '%.200s'", in->path);
  }
  for (size_t i = 0; i < s->n; i++) {
    const st_bundle_input_t *in = s->in[i];
    if (in->src == ST_BUNDLE_SRC_FILE)
      rc = st_sha256_file(in->fs_path, s->e[i].sha256, &s->e[i].size, err);
    else if ((rc = st_sha256(in->data, in->len, s->e[i].sha256)) == 0)
      s->e[i].size = in->len;
    if (rc)
      return st_error_wrap(err, "bundle input '%.200s'", in->path);
    if (s->e[i].size > 9007199254740992ULL)
      return st_fail(err, ST_ETOOBIG, "bundle input '%.200s': over 2^53 bytes", in->path);
  }
  return 0;
}

static int derive_id(seal_t *s, st__manifest_in_t *min, st_error_t *err) {
  st_buf_t b = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc;

  min->id = NULL;
  if ((rc = st__bundle_manifest_write(min, &b, err)) || (rc = st_sha256(b.data, b.len, d))) {
    st_buf_release(&b);
    return rc;
  }
  st_buf_release(&b);
  st_sha256_hex(d, hex);
  memcpy(s->id, "b-", 2);
  memcpy(s->id + 2, hex, 32);
  s->id[34] = '\0';
  min->id = s->id;
  return 0;
}

static int stamp(seal_t *s, const st_tsa_opts_t *tsa, st_error_t *err) {
  size_t ncerts = 0;
  int rc;
  if ((rc = st__bundle_envelope_sig(s->envelope.data, s->envelope.len, &s->sig, err)))
    return rc;
  if ((rc = st_tsa_stamp(tsa, s->sig.data, s->sig.len, &s->tsr, NULL, err)))
    return st_error_wrap(err, "bundle timestamp");
  if ((rc = st_tsa_certs_pem(s->tsr.data, s->tsr.len, &s->chain, &ncerts, err)))
    return st_error_wrap(err, "bundle timestamp certificates");
  if (ncerts == 0)
    return st_fail(err, ST_EVERIFY, "bundle timestamp: the TSA sent no certificates although "
                   "certReq was set");
  return 0;
}

static int add_sum(st_buf_t *sums, const char *path, const uint8_t d[ST_SHA256_LEN]) {
  char hex[ST_SHA256_HEX_LEN + 1];
  st_sha256_hex(d, hex);
  return st_buf_addf(sums, "%s  %s\n", hex, path);
}

/* SHA256SUMS over the metadata files (sorted list given) and the payload (sorted),
 * merged in path order: metadata names all sort before "payload/" except verify.sh. */
static int write_sums(seal_t *s, const meta_file_t *meta, size_t nmeta, st_error_t *err) {
  uint8_t d[ST_SHA256_LEN];
  size_t i = 0;
  int rc = 0;

  for (; i < nmeta && strcmp(meta[i].path, ST__BUNDLE_PAYLOAD_DIR) < 0; i++)
    if ((rc = st_sha256(meta[i].data->data, meta[i].data->len, d)) ||
        (rc = add_sum(&s->sums, meta[i].path, d)))
      goto done;
  for (size_t k = 0; k < s->n; k++)
    if ((rc = add_sum(&s->sums, s->e[k].path, s->e[k].sha256)))
      goto done;
  for (; i < nmeta; i++)
    if ((rc = st_sha256(meta[i].data->data, meta[i].data->len, d)) ||
        (rc = add_sum(&s->sums, meta[i].path, d)))
      goto done;
done:
  if (rc)
    st_fail(err, rc, "SHA256SUMS: %s", st_strerror(rc));
  return rc;
}

int st_bundle_seal(const st_bundle_spec_t *spec, st_signer_t *signer, const st_tsa_opts_t *tsa,
                   const char *out_path, st_error_t *err) {
  seal_t s;
  st__manifest_in_t min;
  st_buf_t pubpem = ST_BUF_INIT;
  const st_pubkey_t *pub;
  uint8_t *leaves = NULL;
  meta_file_t meta[8];
  size_t nmeta = 0;
  st_tgz_options_t opt;
  int rc;

  memset(&s, 0, sizeof(s));
  st_buf_init(&s.manifest, ST_BUNDLE_META_MAX);
  st_buf_init(&s.statement, ST_BUNDLE_META_MAX);
  st_buf_init(&s.envelope, ST_BUNDLE_META_MAX);
  st_buf_init(&s.sig, ST__BUNDLE_SIG_MAX);
  st_buf_init(&s.tsr, ST_TSA_MAX_RESPONSE);
  st_buf_init(&s.chain, 0);
  st_buf_init(&s.sigstore, ST_BUNDLE_META_MAX);
  st_buf_init(&s.script, 0);
  st_buf_init(&s.sums, ST_BUNDLE_META_MAX);
  if (!spec || !signer || !out_path) {
    rc = st_fail(err, ST_EINVAL, "bundle seal: spec, signer and output path are required");
    goto done;
  }
  if ((rc = check_spec(spec, err)) ||
      (rc = st__bundle_created(spec->created, s.created, &s.epoch, err)) ||
      (rc = collect(&s, spec, err)))
    goto done;
  opt.mtime = s.epoch;
  opt.level = ST_TGZ_LEVEL_FAST;
  if ((rc = st_tgz_writer_new(out_path, &opt, &s.w, err)) || (rc = add_and_hash(&s, err)) ||
      (rc = st__bundle_merkle(s.e, s.n, &leaves, s.root, err)))
    goto done;

  memset(&min, 0, sizeof(min));
  min.kind = spec->kind;
  min.tenant = spec->tenant ? spec->tenant : "default";
  min.created = s.created;
  min.metadata = spec->metadata;
  min.entries = s.e;
  min.n = s.n;
  min.root = s.root;
  if (spec->id) {
    strcpy(s.id, spec->id);
    min.id = s.id;
  } else if ((rc = derive_id(&s, &min, err))) {
    goto done;
  }
  pub = st_signer_pubkey(signer);
  if ((rc = st__bundle_manifest_write(&min, &s.manifest, err)) ||
      (rc = st_sha256(s.manifest.data, s.manifest.len, s.mdigest)) ||
      (rc = st__bundle_statement_write(&min, s.mdigest, spec->private_subjects, &s.statement,
                                       err)) ||
      (rc = st_dsse_sign(signer, ST_BUNDLE_PAYLOAD_TYPE, s.statement.data, s.statement.len,
                         &s.envelope, err)))
    goto done;
  if (tsa && (rc = stamp(&s, tsa, err)))
    goto done;
  if ((rc = st__bundle_sigstore_write(s.envelope.data, s.envelope.len, st_pubkey_keyid(pub),
                                      s.tsr.data, s.tsr.len, &s.sigstore, err)) ||
      (rc = st__bundle_verify_sh(&s.script)) || (rc = st_buf_adds(&pubpem, st_pubkey_pem(pub))))
    goto done;

  /* Sorted by path: the SHA256SUMS merge above relies on it. */
  meta[nmeta++] = (meta_file_t){"keys/signer.pub.pem", &pubpem};
  if (s.chain.len)
    meta[nmeta++] = (meta_file_t){"keys/tsa-chain.pem", &s.chain};
  meta[nmeta++] = (meta_file_t){"manifest.dsse.json", &s.envelope};
  meta[nmeta++] = (meta_file_t){"manifest.json", &s.manifest};
  meta[nmeta++] = (meta_file_t){"manifest.sigstore.json", &s.sigstore};
  if (s.tsr.len)
    meta[nmeta++] = (meta_file_t){"manifest.tsr", &s.tsr};
  meta[nmeta++] = (meta_file_t){"verify.sh", &s.script};
  if ((rc = write_sums(&s, meta, nmeta, err)) ||
      (rc = st_tgz_add_mem(s.w, "SHA256SUMS", s.sums.data, s.sums.len, err)))
    goto done;
  for (size_t i = 0; i < nmeta; i++)
    if ((rc = st_tgz_add_mem(s.w, meta[i].path, meta[i].data->data, meta[i].data->len, err)))
      goto done;
  rc = st_tgz_writer_finish(s.w, err);
  if (!rc && spec->result) {
    st_bundle_sealed_t *r = spec->result;
    memset(r, 0, sizeof(*r));
    strcpy(r->id, s.id);
    strcpy(r->created, s.created);
    st_sha256_hex(s.root, r->merkle_root);
    st_sha256_hex(s.mdigest, r->manifest_sha256);
    r->entries = s.n;
    r->timestamped = s.tsr.len > 0;
  }
done:
  if (rc && err && !err->code)
    st_fail(err, rc, "bundle seal: %s", st_strerror(rc));
  st_tgz_writer_free(s.w);
  st_free(leaves);
  for (size_t i = 0; s.e && i < s.n; i++) {
    st_free(s.e[i].path);
    st_free(s.e[i].media_type);
  }
  st_free(s.e);
  st_free((void *)s.in);
  st_buf_release(&pubpem);
  st_buf_release(&s.manifest);
  st_buf_release(&s.statement);
  st_buf_release(&s.envelope);
  st_buf_release(&s.sig);
  st_buf_release(&s.tsr);
  st_buf_release(&s.chain);
  st_buf_release(&s.sigstore);
  st_buf_release(&s.script);
  st_buf_release(&s.sums);
  return rc;
}
