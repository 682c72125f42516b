/* bbolt_page.c: bbolt's on-disk format, written in one forward pass.
 *
 * Page header (16 B): id u64 (= page number), flags u16 (branch 0x01, leaf 0x02, meta 0x04,
 * freelist 0x10), count u16, overflow u32. Elements follow at 16 + 16*i; leaf element
 * {flags u32 (0x01 = sub-bucket), pos u32, ksize u32, vsize u32}, branch element {pos u32,
 * ksize u32, pgid u64}; pos is relative to the element itself and key/value bytes are
 * packed after the element array. A node bigger than a page takes N contiguous pages with
 * overflow N-1 and one header. Integers are little-endian (bbolt uses native order and only
 * little-endian hosts matter here).
 *
 * Tree building: each level of a bucket keeps one pending page. A leaf element is added
 * while the page stays within ST_BBOLT_PAGE_SIZE, else the page is written and its first
 * key goes up to the next level with its page id; an element larger than a page alone is
 * written straight from the caller's buffers onto overflow pages, never copied. A branch
 * page takes at least two children before it may be written, so every level at least
 * halves and oversized keys (up to 32 KiB) still converge to one root. Pages are filled
 * completely (bbolt's own inserts split at 50%; both are valid trees).
 *
 * Meta page: magic 0xED0CDAED, version 2, pageSize, flags 0, root bucket {root pgid,
 * sequence 0}, freelist pgid 2, pgid (high-water mark), txid, checksum = FNV-1a 64 over the
 * 56 bytes before it. Meta 0 has txid 0 and meta 1 txid 1, as bbolt's own new DB; the free
 * list is a real empty page so a read-write open finds a synced free list and rewrites
 * nothing.
 */
#include <string.h>
#include <unistd.h>

#include "bbolt_internal.h"
#include "stella/mem.h"

#define PS ((size_t)ST_BBOLT_PAGE_SIZE)
#define FLAG_BRANCH 0x01
#define FLAG_LEAF 0x02
#define FLAG_META 0x04
#define FLAG_FREELIST 0x10
#define BBOLT_MAGIC 0xED0CDAEDu
#define BBOLT_VERSION 2u
#define FREELIST_PGID 2

static const unsigned char zero_page[ST_BBOLT_PAGE_SIZE];

static void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put_header(unsigned char *p, uint64_t id, uint16_t flags, uint16_t count,
                       uint32_t overflow) {
  put64(p, id);
  put16(p + 8, flags);
  put16(p + 10, count);
  put32(p + 12, overflow);
}

static size_t pages_for(size_t bytes) {
  return (bytes + PS - 1) / PS;
}

static int write_bytes(st_bbolt_writer_t *w, const void *p, size_t n, st_error_t *err) {
  if (n && fwrite(p, 1, n, w->fp) != n)
    return st_fail(err, ST_EIO, "bbolt %s: write failed", w->tmp_path);
  return 0;
}

static int write_zeros(st_bbolt_writer_t *w, size_t n, st_error_t *err) {
  int rc = 0;
  while (n && !rc) {
    size_t k = n < PS ? n : PS;
    rc = write_bytes(w, zero_page, k, err);
    n -= k;
  }
  return rc;
}

/* Count a written node in the stats (the root bucket's pages are not counted). */
static void count_node(st_bbolt_writer_t *w, const st__bbolt_frame_t *f, int branch,
                       size_t npages) {
  if (f == &w->frames[0])
    return;
  if (branch) {
    w->stats.branch_pages++;
    w->stats.branch_overflow += npages - 1;
  } else {
    w->stats.leaf_pages++;
    w->stats.leaf_overflow += npages - 1;
  }
}

/* Lay out a level's pending elements as a page image at dst (header id and overflow are
 * the caller's); dst must hold lv->size bytes. */
static void assemble(unsigned char *dst, const st__bbolt_level_t *lv, int branch) {
  size_t data_start = ST__BBOLT_HDR + ST__BBOLT_ELEM * lv->count;
  for (size_t i = 0; i < lv->count; i++) {
    const st__bbolt_elem_t *e = &lv->elems[i];
    unsigned char *ep = dst + ST__BBOLT_HDR + ST__BBOLT_ELEM * i;
    uint32_t pos = (uint32_t)(data_start + e->off - (ST__BBOLT_HDR + ST__BBOLT_ELEM * i));
    if (branch) {
      put32(ep, pos);
      put32(ep + 4, e->klen);
      put64(ep + 8, e->pgid);
    } else {
      put32(ep, e->flags);
      put32(ep + 4, pos);
      put32(ep + 8, e->klen);
      put32(ep + 12, e->vlen);
    }
  }
  if (lv->dlen)
    memcpy(dst + data_start, lv->data, lv->dlen);
}

static void level_clear(st__bbolt_level_t *lv) {
  lv->count = 0;
  lv->dlen = 0;
  lv->size = ST__BBOLT_HDR;
}

/* Write level li's pending page; unless it is the tree's root, pass its first key and page
 * id up to level li+1. */
static int level_flush(st_bbolt_writer_t *w, st__bbolt_frame_t *f, size_t li, int as_root,
                       uint64_t *pgid_out, st_error_t *err) {
  st__bbolt_level_t *lv = &f->levels[li];
  int branch = li > 0;
  size_t npages = pages_for(lv->size);
  size_t bytes = npages * PS;
  uint64_t pgid = w->next_pgid;
  int rc = 0;

  if (npages - 1 > UINT32_MAX || lv->count > 0xFFFE)
    return st_fail(err, ST_EINTERNAL, "bbolt: node of %zu bytes, %zu elements", lv->size,
                   lv->count);
  if (bytes > w->scratch_cap) {
    unsigned char *n = st_realloc(w->scratch, bytes);
    if (!n)
      return st_fail(err, ST_ENOMEM, "bbolt: page buffer of %zu bytes", bytes);
    w->scratch = n;
    w->scratch_cap = bytes;
  }
  memset(w->scratch, 0, bytes);
  put_header(w->scratch, pgid, branch ? FLAG_BRANCH : FLAG_LEAF, (uint16_t)lv->count,
             (uint32_t)(npages - 1));
  assemble(w->scratch, lv, branch);
  if ((rc = write_bytes(w, w->scratch, bytes, err)))
    return rc;
  w->next_pgid += npages;
  lv->flushed++;
  count_node(w, f, branch, npages);
  if (pgid_out)
    *pgid_out = pgid;
  if (!as_root) {
    if (li + 1 >= ST__BBOLT_MAX_LEVELS)
      return st_fail(err, ST_EINTERNAL, "bbolt: tree taller than %d levels",
                     ST__BBOLT_MAX_LEVELS);
    /* The separator is copied by the add before level li is cleared. */
    rc = st__bbolt_level_add(w, f, li + 1, 0, lv->data + lv->elems[0].off,
                             lv->elems[0].klen, NULL, 0, pgid, err);
  }
  level_clear(lv);
  return rc;
}

/* A leaf element bigger than a page: a node of its own, streamed from the caller. */
static int write_big_leaf(st_bbolt_writer_t *w, st__bbolt_frame_t *f, uint32_t flags,
                          const void *key, size_t klen, const void *val, size_t vlen,
                          st_error_t *err) {
  unsigned char head[ST__BBOLT_HDR + ST__BBOLT_ELEM];
  size_t used = sizeof(head) + klen + vlen;
  size_t npages = pages_for(used);
  uint64_t pgid = w->next_pgid;
  int rc;

  put_header(head, pgid, FLAG_LEAF, 1, (uint32_t)(npages - 1));
  put32(head + 16, flags);
  put32(head + 20, ST__BBOLT_ELEM); /* data right after the only element */
  put32(head + 24, (uint32_t)klen);
  put32(head + 28, (uint32_t)vlen);
  if ((rc = write_bytes(w, head, sizeof(head), err)) ||
      (rc = write_bytes(w, key, klen, err)) || (rc = write_bytes(w, val, vlen, err)) ||
      (rc = write_zeros(w, npages * PS - used, err)))
    return rc;
  w->next_pgid += npages;
  f->levels[0].flushed++;
  count_node(w, f, 0, npages);
  return st__bbolt_level_add(w, f, 1, 0, key, klen, NULL, 0, pgid, err);
}

static int grow(void **p, size_t *cap, size_t need, size_t unit, st_error_t *err) {
  size_t n = *cap ? *cap : 16;
  void *q;
  if (need <= *cap)
    return 0;
  while (n < need)
    n *= 2;
  if (!(q = st_realloc(*p, n * unit)))
    return st_fail(err, ST_ENOMEM, "bbolt: level buffer of %zu bytes", n * unit);
  *p = q;
  *cap = n;
  return 0;
}

int st__bbolt_level_add(st_bbolt_writer_t *w, st__bbolt_frame_t *f, size_t li,
                        uint32_t flags, const void *key, size_t klen, const void *val,
                        size_t vlen, uint64_t pgid, st_error_t *err) {
  st__bbolt_level_t *lv = &f->levels[li];
  size_t esz = ST__BBOLT_ELEM + klen + vlen;
  st__bbolt_elem_t *e;
  int rc;

  if (li >= f->nlevels) {
    f->nlevels = li + 1;
    level_clear(lv);
  }
  if (li == 0 && f != &w->frames[0])
    w->stats.keys++;
  if (li == 0) {
    if (lv->count > 0 && lv->size + esz > PS && (rc = level_flush(w, f, 0, 0, NULL, err)))
      return rc;
    if (ST__BBOLT_HDR + esz > PS)
      return write_big_leaf(w, f, flags, key, klen, val, vlen, err);
  } else if (lv->count >= 2 && lv->size + esz > PS &&
             (rc = level_flush(w, f, li, 0, NULL, err))) {
    return rc;
  }
  if ((rc = grow((void **)&lv->elems, &lv->elems_cap, lv->count + 1, sizeof(*lv->elems),
                 err)) ||
      (rc = grow((void **)&lv->data, &lv->dcap, lv->dlen + klen + vlen, 1, err)))
    return rc;
  e = &lv->elems[lv->count++];
  e->flags = flags;
  e->klen = (uint32_t)klen;
  e->vlen = (uint32_t)vlen;
  e->pgid = pgid;
  e->off = lv->dlen;
  memcpy(lv->data + lv->dlen, key, klen);
  if (vlen)
    memcpy(lv->data + lv->dlen + klen, val, vlen);
  lv->dlen += klen + vlen;
  lv->size += esz;
  return 0;
}

int st__bbolt_close_tree(st_bbolt_writer_t *w, st__bbolt_frame_t *f, uint64_t *root,
                         st_error_t *err) {
  int rc;
  if (f->nlevels == 0) {
    f->nlevels = 1;
    level_clear(&f->levels[0]);
  }
  for (size_t li = 0; li < f->nlevels; li++) {
    st__bbolt_level_t *lv = &f->levels[li];
    /* One child and nothing written above it: that child is the root. */
    if (li > 0 && lv->flushed == 0 && lv->count == 1) {
      *root = lv->elems[0].pgid;
      return 0;
    }
    if (lv->flushed == 0)
      return level_flush(w, f, li, 1, root, err);
    if (lv->count > 0 && (rc = level_flush(w, f, li, 0, NULL, err)))
      return rc;
  }
  return st_fail(err, ST_EINTERNAL, "bbolt: tree has no root");
}

int st__bbolt_inline_value(st_bbolt_writer_t *w, st__bbolt_frame_t *f, size_t *vlen) {
  const st__bbolt_level_t *lv = &f->levels[0];
  if (f->has_sub || f->nlevels > 1 || (f->nlevels == 1 && lv->flushed > 0))
    return 0;
  if (f->nlevels == 0) { /* empty bucket: a header-only leaf */
    memset(w->inline_val, 0, ST__BBOLT_HDR * 2);
    put_header(w->inline_val + ST__BBOLT_HDR, 0, FLAG_LEAF, 0, 0);
    *vlen = ST__BBOLT_HDR * 2;
    return 1;
  }
  if (lv->size > ST__BBOLT_INLINE_MAX)
    return 0;
  /* Bucket header {root 0, sequence 0}, then the leaf image with page id 0. */
  memset(w->inline_val, 0, ST__BBOLT_HDR + lv->size);
  put_header(w->inline_val + ST__BBOLT_HDR, 0, FLAG_LEAF, (uint16_t)lv->count, 0);
  assemble(w->inline_val + ST__BBOLT_HDR, lv, 0);
  *vlen = ST__BBOLT_HDR + lv->size;
  return 1;
}

int st__bbolt_write_freelist(st_bbolt_writer_t *w, st_error_t *err) {
  unsigned char page[ST_BBOLT_PAGE_SIZE];
  int rc;
  memset(page, 0, sizeof(page));
  put_header(page, FREELIST_PGID, FLAG_FREELIST, 0, 0);
  /* Pages 0 and 1 are zero until finish writes the metas over them. */
  if ((rc = write_zeros(w, 2 * PS, err)) || (rc = write_bytes(w, page, PS, err)))
    return rc;
  w->next_pgid = FREELIST_PGID + 1;
  return 0;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

int st__bbolt_write_metas(st_bbolt_writer_t *w, uint64_t root, st_error_t *err) {
  unsigned char page[ST_BBOLT_PAGE_SIZE];
  int fd = fileno(w->fp);
  for (uint64_t txid = 0; txid < 2; txid++) {
    unsigned char *m = page + ST__BBOLT_HDR;
    memset(page, 0, sizeof(page));
    put_header(page, txid, FLAG_META, 0, 0);
    put32(m, BBOLT_MAGIC);
    put32(m + 4, BBOLT_VERSION);
    put32(m + 8, ST_BBOLT_PAGE_SIZE);
    put32(m + 12, 0);              /* flags */
    put64(m + 16, root);           /* root bucket: root page */
    put64(m + 24, 0);              /* root bucket: sequence */
    put64(m + 32, FREELIST_PGID);
    put64(m + 40, w->next_pgid);   /* high-water mark */
    put64(m + 48, txid);
    put64(m + 56, fnv1a64(m, 56)); /* checksum of the fields above */
    if (pwrite(fd, page, PS, (off_t)(txid * PS)) != (ssize_t)PS)
      return st_fail(err, ST_EIO, "bbolt %s: cannot write meta page %d", w->tmp_path,
                     (int)txid);
  }
  return 0;
}

void st__bbolt_frame_reset(st__bbolt_frame_t *f) {
  st_free(f->name);
  f->name = NULL;
  f->name_len = 0;
  f->has_last = 0;
  f->last_len = 0;
  f->has_sub = 0;
  for (size_t i = 0; i < f->nlevels; i++) {
    level_clear(&f->levels[i]);
    f->levels[i].flushed = 0;
  }
  f->nlevels = 0;
}

void st__bbolt_frame_release(st__bbolt_frame_t *f) {
  st__bbolt_frame_reset(f);
  st_free(f->last);
  f->last = NULL;
  f->last_cap = 0;
  for (size_t i = 0; i < ST__BBOLT_MAX_LEVELS; i++) {
    st_free(f->levels[i].elems);
    st_free(f->levels[i].data);
    memset(&f->levels[i], 0, sizeof(f->levels[i]));
  }
}
