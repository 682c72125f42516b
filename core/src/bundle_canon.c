/* bundle_canon.c: the archive's compressed bytes must be exactly what the writer produces
 * for the tar stream they hold. zlib ignores some header fields, and deflate has spare
 * encodings (a Huffman code length of an unused symbol, for one), so a flipped bit there
 * decodes to the same tar stream and the same CRC: nothing downstream could notice. So the
 * verifier inflates the file and deflates the result again with the writer's parameters
 * (gzip wrapper, OS 255, level ST_TGZ_LEVEL_FAST, windowBits 15, memLevel 8, default
 * strategy), comparing chunk by chunk with a second sequential read of the same bytes.
 * Memory: a few 64 KiB buffers plus zlib's state. The verifier runs it on a second thread
 * beside the safe reader's pass (it is the slower half); it stops at the reader's
 * decompressed-size limit on its own and when the reader fails (stop flag). Requires a zlib whose deflate
 * output matches the writer's (docs/bundle-format.md, "Canonical archive"). */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "bundle_internal.h"
#include "stella/mem.h"

#define CHUNK ((size_t)65536)

typedef struct cursor_s {
  const unsigned char *mem;
  size_t len, off;
  FILE *f;
} cursor_t;

static size_t cursor_read(cursor_t *c, unsigned char *buf, size_t cap) {
  size_t n;
  if (c->f)
    return fread(buf, 1, cap, c->f);
  n = c->len - c->off < cap ? c->len - c->off : cap;
  memcpy(buf, c->mem + c->off, n);
  c->off += n;
  return n;
}

typedef struct canon_s {
  z_stream in, out;
  int in_ok, out_ok;
  unsigned char *a, *b, *c, *d; /* input, inflated, deflated, compare */
  cursor_t src, cmp;
  uint64_t pos; /* compressed bytes matched so far */
  uint64_t inflated, max_out;
  const atomic_int *stop;
} canon_t;

/* Deflate `len` bytes of tar stream (flush: Z_NO_FLUSH or Z_FINISH) and compare. */
static int redeflate(canon_t *k, const unsigned char *data, size_t len, int flush,
                     st_error_t *err) {
  int zr;
  k->out.next_in = (unsigned char *)data;
  k->out.avail_in = (uInt)len;
  do {
    size_t n, got;
    k->out.next_out = k->c;
    k->out.avail_out = (uInt)CHUNK;
    zr = deflate(&k->out, flush);
    if (zr == Z_STREAM_ERROR)
      return st_fail(err, ST_EINTERNAL, "gzip: deflate failed");
    n = CHUNK - k->out.avail_out;
    got = cursor_read(&k->cmp, k->d, n);
    if (got != n || memcmp(k->c, k->d, n)) {
      size_t at = 0;
      while (at < got && at < n && k->c[at] == k->d[at])
        at++;
      return st_fail(err, ST_EPARSE, "gzip: byte %llu is not what the bundle writer produces "
                     "for this content (non-canonical compression)",
                     (unsigned long long)(k->pos + at));
    }
    k->pos += n;
  } while (k->out.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
  return 0;
}

static int run(canon_t *k, st_error_t *err) {
  static gz_header hdr = {.os = 255};
  int zr = Z_OK, rc;

  if (inflateInit2(&k->in, 16 + 15) != Z_OK)
    return st_fail(err, ST_ENOMEM, "gzip: inflateInit2");
  k->in_ok = 1;
  if (deflateInit2(&k->out, ST_TGZ_LEVEL_FAST, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return st_fail(err, ST_ENOMEM, "gzip: deflateInit2");
  k->out_ok = 1;
  if (deflateSetHeader(&k->out, &hdr) != Z_OK)
    return st_fail(err, ST_EINTERNAL, "gzip: deflateSetHeader");
  while (zr != Z_STREAM_END) {
    size_t n = cursor_read(&k->src, k->a, CHUNK);
    if (n == 0)
      return st_fail(err, ST_EPARSE, "gzip: truncated");
    k->in.next_in = k->a;
    k->in.avail_in = (uInt)n;
    while (k->in.avail_in && zr != Z_STREAM_END) {
      k->in.next_out = k->b;
      k->in.avail_out = (uInt)CHUNK;
      zr = inflate(&k->in, Z_NO_FLUSH);
      if (zr != Z_OK && zr != Z_STREAM_END)
        return st_fail(err, ST_EPARSE, "gzip: %s", k->in.msg ? k->in.msg : "corrupt");
      k->inflated += CHUNK - k->in.avail_out;
      if (k->inflated > k->max_out)
        return st_fail(err, ST_ETOOBIG, "gzip: more than %llu bytes decompressed",
                       (unsigned long long)k->max_out);
      if (k->stop && atomic_load(k->stop))
        return st_fail(err, ST_ECANCELED, "gzip: canonical check stopped");
      if ((rc = redeflate(k, k->b, CHUNK - k->in.avail_out, Z_NO_FLUSH, err)))
        return rc;
    }
    if (zr == Z_STREAM_END && (k->in.avail_in || cursor_read(&k->src, k->a, 1)))
      return st_fail(err, ST_EPARSE, "gzip: data after the first member");
  }
  if ((rc = redeflate(k, NULL, 0, Z_FINISH, err)))
    return rc;
  if (cursor_read(&k->cmp, k->d, 1))
    return st_fail(err, ST_EPARSE, "gzip: data after the canonical end");
  return 0;
}

static int canonical(cursor_t src, cursor_t cmp, uint64_t max_out, const atomic_int *stop,
                     st_error_t *err) {
  canon_t k;
  int rc;
  memset(&k, 0, sizeof(k));
  k.src = src;
  k.cmp = cmp;
  k.max_out = max_out;
  k.stop = stop;
  if (!(k.a = st_malloc(CHUNK)) || !(k.b = st_malloc(CHUNK)) || !(k.c = st_malloc(CHUNK)) ||
      !(k.d = st_malloc(CHUNK)))
    rc = st_fail(err, ST_ENOMEM, "gzip: buffers");
  else
    rc = run(&k, err);
  if (k.in_ok)
    inflateEnd(&k.in);
  if (k.out_ok)
    deflateEnd(&k.out);
  st_free(k.a);
  st_free(k.b);
  st_free(k.c);
  st_free(k.d);
  return rc;
}

int st__bundle_gzip_canonical(const char *path, const void *data, size_t len,
                              uint64_t max_out, const atomic_int *stop, st_error_t *err) {
  cursor_t a = {data, len, 0, NULL}, b = {data, len, 0, NULL};
  int rc;
  if (!path)
    return canonical(a, b, max_out, stop, err);
  a.f = fopen(path, "rb");
  b.f = fopen(path, "rb");
  rc = a.f && b.f ? canonical(a, b, max_out, stop, err)
                  : st_fail(err, ST_EIO, "%s: cannot open", path);
  if (a.f)
    fclose(a.f);
  if (b.f)
    fclose(b.f);
  return rc;
}
