/* bundle_read.c: one pass over a bundle archive through the safe tgz reader, shared by the
 * verifier and the proof builder. It enforces the canonical container on top of the
 * reader's safety rules: the exact gzip header the writer produces (MTIME 0, no name,
 * level-1 XFL, OS 255: a flipped byte there would otherwise go unnoticed, as zlib ignores
 * those fields), entries in strictly increasing path-byte order, only the names a bundle
 * has (metadata files, keys/, payload/...), and directories only as parents of what
 * follows. Every file is hashed while it streams; metadata files are kept (bounded),
 * payload data is not, except the one file a proof asks for. */
#include <string.h>

#include "bundle_internal.h"
#include "stella/mem.h"

/* Gzip header of the writer at ST_TGZ_LEVEL_FAST: ID1 ID2 CM=8 FLG=0 MTIME=0 XFL=4 OS=255. */
static const unsigned char gzip_head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff};

int st__bundle_gzip_header_check(const void *head, size_t len, st_error_t *err) {
  const unsigned char *h = head;
  if (len < sizeof(gzip_head))
    return st_fail(err, ST_EPARSE, "gzip: shorter than its header");
  for (size_t i = 0; i < sizeof(gzip_head); i++)
    if (h[i] != gzip_head[i])
      return st_fail(err, ST_EPARSE, "gzip header byte %zu is 0x%02x, a sealed bundle has "
                     "0x%02x (no timestamp, no name, level 1, OS 255)", i, h[i], gzip_head[i]);
  return 0;
}

void st__bundle_bread_init(st__bread_t *b) {
  memset(b, 0, sizeof(*b));
  st_buf_init(&b->manifest, ST_BUNDLE_META_MAX);
  st_buf_init(&b->envelope, ST_BUNDLE_META_MAX);
  st_buf_init(&b->sigstore, ST_BUNDLE_META_MAX);
  st_buf_init(&b->tsr, ST_TSA_MAX_RESPONSE);
  st_buf_init(&b->sums, ST_BUNDLE_META_MAX);
  st_buf_init(&b->pubkey, ST_PUBKEY_PEM_MAX);
  st_buf_init(&b->chain, (size_t)1 << 20);
  st_buf_init(&b->script, (size_t)1 << 20);
  st_buf_init(&b->want_data, ST_BUNDLE_PROOF_CONTENT_MAX);
}

void st__bundle_bread_release(st__bread_t *b) {
  for (size_t i = 0; i < b->n; i++)
    st_free(b->files[i].path);
  st_free(b->files);
  st_buf_release(&b->manifest);
  st_buf_release(&b->envelope);
  st_buf_release(&b->sigstore);
  st_buf_release(&b->tsr);
  st_buf_release(&b->sums);
  st_buf_release(&b->pubkey);
  st_buf_release(&b->chain);
  st_buf_release(&b->script);
  st_buf_release(&b->want_data);
  b->files = NULL;
  b->n = b->cap = 0;
}

typedef struct sink_s {
  st_sha256_t h;
  st_buf_t *keep; /* NULL: hash only */
  const char *path;
} sink_t;

static int on_data(void *ud, const void *data, size_t len, st_error_t *err) {
  sink_t *s = ud;
  int rc;
  if ((rc = st_sha256_update(&s->h, data, len)))
    return st_fail(err, rc, "%s: hashing", s->path);
  if (s->keep && (rc = st_buf_add(s->keep, data, len)))
    return st_fail(err, rc, "%s: larger than %zu bytes", s->path, s->keep->max);
  return 0;
}

/* Where a metadata file goes; NULL for payload files; *bad for names a bundle never has. */
static st_buf_t *meta_slot(st__bread_t *b, const char *p, int **flag) {
  static const char *const names[] = {"manifest.json", "manifest.dsse.json",
                                      "manifest.sigstore.json", "manifest.tsr", "SHA256SUMS",
                                      "keys/signer.pub.pem", "keys/tsa-chain.pem", "verify.sh"};
  st_buf_t *bufs[] = {&b->manifest, &b->envelope, &b->sigstore, &b->tsr,
                      &b->sums,     &b->pubkey,   &b->chain,    &b->script};
  int *flags[] = {&b->has_manifest, &b->has_envelope, &b->has_sigstore, &b->has_tsr,
                  &b->has_sums,     &b->has_pubkey,   &b->has_chain,    &b->has_script};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(p, names[i]) == 0) {
      *flag = flags[i];
      return bufs[i];
    }
  return NULL;
}

static int add_file(st__bread_t *b, const char *path, const uint8_t d[ST_SHA256_LEN],
                    uint64_t size, st_error_t *err) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    st__bfile_t *f = st_realloc(b->files, cap * sizeof(*f));
    if (!f)
      return st_fail(err, ST_ENOMEM, "bundle: file list");
    b->files = f;
    b->cap = cap;
  }
  if (!(b->files[b->n].path = st_strdup(path)))
    return st_fail(err, ST_ENOMEM, "bundle: file list");
  memcpy(b->files[b->n].sha256, d, ST_SHA256_LEN);
  b->files[b->n].size = size;
  b->n++;
  return 0;
}

int st__bundle_read(st_tgz_reader_t *r, st__bread_t *b, st_error_t *err) {
  const st_tgz_entry_t *e;
  st_buf_t prev = ST_BUF_INIT;
  int prev_dir = 0, rc, more;
  sink_t s;

  memset(&s, 0, sizeof(s));
  if ((rc = st_sha256_init(&s.h)))
    return st_fail(err, rc, "bundle: sha256");
  while ((more = st_tgz_reader_next(r, &e, err)) == 1) {
    const char *p = e->path;
    size_t plen = strlen(p);
    int is_payload = strncmp(p, ST__BUNDLE_PAYLOAD_DIR, strlen(ST__BUNDLE_PAYLOAD_DIR)) == 0;
    int *flag = NULL;
    st_buf_t *slot = NULL;
    uint8_t d[ST_SHA256_LEN];

    if (prev.len && strcmp(prev.data, p) >= 0) {
      rc = st_fail(err, ST_EUNSAFE, "entry '%.200s' after '%.200s': not in sorted order", p,
                   prev.data);
      goto done;
    }
    if (prev_dir && (plen <= prev.len || strncmp(p, prev.data, prev.len) || p[prev.len] != '/')) {
      rc = st_fail(err, ST_EUNSAFE, "directory '%.200s' holds nothing", prev.data);
      goto done;
    }
    st_buf_reset(&prev);
    if ((rc = st_buf_add(&prev, p, plen))) {
      st_fail(err, rc, "bundle: path");
      goto done;
    }
    prev_dir = e->type == ST_TGZ_DIR;
    if (e->type == ST_TGZ_DIR) {
      if (strcmp(p, "keys") && strcmp(p, "payload") && !is_payload) {
        rc = st_fail(err, ST_EUNSAFE, "unexpected directory '%.200s'", p);
        goto done;
      }
      continue;
    }
    if (!is_payload && !(slot = meta_slot(b, p, &flag))) {
      rc = st_fail(err, ST_EUNSAFE, "unexpected file '%.200s' (not a bundle file, not under "
                   "payload/)", p);
      goto done;
    }
    s.path = p;
    s.keep = slot;
    if (is_payload && b->want && strcmp(p, b->want) == 0) {
      s.keep = &b->want_data;
      b->want_found = 1;
    }
    if ((rc = st_tgz_reader_data(r, on_data, &s, err)) || (rc = st_sha256_final(&s.h, d)))
      goto done;
    if (flag)
      *flag = 1;
    if ((rc = add_file(b, p, d, e->size, err)))
      goto done;
  }
  rc = more < 0 ? more : 0;
  if (!rc && prev_dir)
    rc = st_fail(err, ST_EUNSAFE, "directory '%.200s' holds nothing", prev.data);
done:
  st_sha256_release(&s.h);
  st_buf_release(&prev);
  return rc;
}
