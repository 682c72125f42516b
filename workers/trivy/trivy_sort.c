/* trivy_sort.c: bounded external sort for the Trivy DB build.
 *
 * Records go into one arena of at most `mem` bytes (a single record larger than that
 * still fits: the arena grows for it alone). A full arena is sorted by (key, tie) and
 * written as a run to an unlinked temporary file; reading merges the runs with a binary
 * heap holding one current record per run. With no run spilled, reading walks the sorted
 * arena directly. Memory: the arena plus, while merging, one record buffer per run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stella/mem.h"
#include "trivy_internal.h"

#define MAX_RUNS 512
#define HDR 12

typedef struct run_s {
  FILE *f;
  uint8_t *buf;
  size_t cap;
  st__trec_t cur;
} run_t;

struct st__tsort_s {
  char *dir;
  size_t mem;
  uint8_t *arena;
  size_t used, cap;
  size_t *offs;
  size_t n, ocap;
  run_t *runs;
  size_t nruns;
  size_t *heap; /* run indexes */
  size_t nheap;
  size_t pos;   /* in-memory reading position */
  int reading;
};

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static void view(const uint8_t *p, st__trec_t *r) {
  r->klen = rd32(p);
  r->tlen = rd32(p + 4);
  r->vlen = rd32(p + 8);
  r->key = p + HDR;
  r->tie = r->key + r->klen;
  r->val = r->tie + r->tlen;
}

static int cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  return c ? c : (al > bl) - (al < bl);
}

static int cmp_rec(const st__trec_t *a, const st__trec_t *b) {
  int c = cmp_bytes(a->key, a->klen, b->key, b->klen);
  return c ? c : cmp_bytes(a->tie, a->tlen, b->tie, b->tlen);
}

/* qsort has no context argument: the arena being sorted is set here. */
static _Thread_local const uint8_t *sort_arena;

static int cmp_off(const void *a, const void *b) {
  st__trec_t ra, rb;
  view(sort_arena + *(const size_t *)a, &ra);
  view(sort_arena + *(const size_t *)b, &rb);
  return cmp_rec(&ra, &rb);
}

static void sort_arena_now(st__tsort_t *s) {
  sort_arena = s->arena;
  if (s->n)
    qsort(s->offs, s->n, sizeof(*s->offs), cmp_off);
  sort_arena = NULL;
}

int st__tsort_new(const char *dir, size_t mem, st__tsort_t **out, st_error_t *err) {
  st__tsort_t *s = st_calloc(1, sizeof(*s));
  *out = NULL;
  if (!s || !(s->dir = st_strdup(dir))) {
    st_free(s);
    return st_fail(err, ST_ENOMEM, "trivy sort");
  }
  s->mem = mem;
  *out = s;
  return 0;
}

static int spill(st__tsort_t *s, st_error_t *err) {
  char *tmpl = NULL;
  FILE *f = NULL;
  int fd = -1, rc = 0;

  if (s->nruns == MAX_RUNS)
    return st_fail(err, ST_ETOOBIG, "trivy sort: more than %d runs; raise the sort memory",
                   MAX_RUNS);
  sort_arena_now(s);
  if (!(tmpl = st__trivy_path(s->dir, ".trivy-sort-XXXXXX"))) {
    rc = st_fail(err, ST_ENOMEM, "trivy sort");
    goto done;
  }
  if ((fd = mkstemp(tmpl)) < 0 || unlink(tmpl) || !(f = fdopen(fd, "w+b"))) {
    rc = st_fail(err, ST_EIO, "trivy sort: scratch file in %s: %s", s->dir, strerror(errno));
    goto done;
  }
  fd = -1;
  for (size_t i = 0; i < s->n; i++) {
    st__trec_t r;
    view(s->arena + s->offs[i], &r);
    if (fwrite(s->arena + s->offs[i], HDR + r.klen + r.tlen + r.vlen, 1, f) != 1) {
      rc = st_fail(err, ST_EIO, "trivy sort: writing a run: %s", strerror(errno));
      goto done;
    }
  }
  if (fflush(f) || fseeko(f, 0, SEEK_SET)) {
    rc = st_fail(err, ST_EIO, "trivy sort: writing a run: %s", strerror(errno));
    goto done;
  }
  {
    run_t *nr = st_realloc(s->runs, (s->nruns + 1) * sizeof(*nr));
    if (!nr) {
      rc = st_fail(err, ST_ENOMEM, "trivy sort");
      goto done;
    }
    s->runs = nr;
    memset(&s->runs[s->nruns], 0, sizeof(run_t));
    s->runs[s->nruns++].f = f;
    f = NULL;
  }
  s->used = s->n = 0;
done:
  if (f)
    fclose(f);
  if (fd >= 0)
    close(fd);
  st_free(tmpl);
  return rc;
}

int st__tsort_add(st__tsort_t *s, const st__trec_t *r, st_error_t *err) {
  size_t need = HDR + r->klen + r->tlen + r->vlen;
  uint32_t hdr[3] = {(uint32_t)r->klen, (uint32_t)r->tlen, (uint32_t)r->vlen};
  uint8_t *p;
  int rc;

  if (s->reading || r->klen > UINT32_MAX || r->tlen > UINT32_MAX || r->vlen > UINT32_MAX)
    return st_fail(err, ST_EINVAL, "trivy sort: record refused");
  if (s->n && s->used + need > s->mem && (rc = spill(s, err)))
    return rc;
  if (s->used + need > s->cap) {
    size_t cap = s->mem > s->used + need ? s->mem : s->used + need;
    uint8_t *na = st_realloc(s->arena, cap);
    if (!na)
      return st_fail(err, ST_ENOMEM, "trivy sort: %zu bytes", cap);
    s->arena = na;
    s->cap = cap;
  }
  if (s->n == s->ocap) {
    size_t oc = s->ocap ? s->ocap * 2 : 1024;
    size_t *no = st_realloc(s->offs, oc * sizeof(*no));
    if (!no)
      return st_fail(err, ST_ENOMEM, "trivy sort");
    s->offs = no;
    s->ocap = oc;
  }
  p = s->arena + s->used;
  memcpy(p, hdr, HDR);
  memcpy(p + HDR, r->key, r->klen);
  if (r->tlen)
    memcpy(p + HDR + r->klen, r->tie, r->tlen);
  if (r->vlen)
    memcpy(p + HDR + r->klen + r->tlen, r->val, r->vlen);
  s->offs[s->n++] = s->used;
  s->used += need;
  return 0;
}

/* Read run i's next record: 1, 0 at its end, or a negative code. */
static int run_read(run_t *run, st_error_t *err) {
  uint8_t hdr[HDR];
  size_t body, got = fread(hdr, 1, HDR, run->f);

  if (got == 0 && feof(run->f))
    return 0;
  if (got != HDR)
    return st_fail(err, ST_EIO, "trivy sort: reading a run: truncated");
  body = (size_t)rd32(hdr) + rd32(hdr + 4) + rd32(hdr + 8);
  if (HDR + body > run->cap) {
    uint8_t *nb = st_realloc(run->buf, HDR + body);
    if (!nb)
      return st_fail(err, ST_ENOMEM, "trivy sort");
    run->buf = nb;
    run->cap = HDR + body;
  }
  memcpy(run->buf, hdr, HDR);
  if (body && fread(run->buf + HDR, body, 1, run->f) != 1)
    return st_fail(err, ST_EIO, "trivy sort: reading a run: truncated");
  view(run->buf, &run->cur);
  return 1;
}

static int heap_less(const st__tsort_t *s, size_t a, size_t b) {
  int c = cmp_rec(&s->runs[s->heap[a]].cur, &s->runs[s->heap[b]].cur);
  return c < 0 || (c == 0 && s->heap[a] < s->heap[b]);
}

static void heap_down(st__tsort_t *s, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < s->nheap && heap_less(s, l, m))
      m = l;
    if (l + 1 < s->nheap && heap_less(s, l + 1, m))
      m = l + 1;
    if (m == i)
      return;
    size_t t = s->heap[i];
    s->heap[i] = s->heap[m];
    s->heap[m] = t;
    i = m;
  }
}

int st__tsort_start(st__tsort_t *s, st_error_t *err) {
  int rc;
  if (s->reading)
    return st_fail(err, ST_EINVAL, "trivy sort: already reading");
  s->reading = 1;
  if (!s->nruns) {
    sort_arena_now(s);
    return 0;
  }
  if (s->n && (rc = spill(s, err)))
    return rc;
  st_free(s->arena);
  s->arena = NULL;
  s->cap = 0;
  if (!(s->heap = st_calloc(s->nruns, sizeof(*s->heap))))
    return st_fail(err, ST_ENOMEM, "trivy sort");
  for (size_t i = 0; i < s->nruns; i++) {
    if ((rc = run_read(&s->runs[i], err)) < 0)
      return rc;
    if (rc)
      s->heap[s->nheap++] = i;
  }
  for (size_t i = s->nheap / 2; i-- > 0;)
    heap_down(s, i);
  return 0;
}

int st__tsort_next(st__tsort_t *s, st__trec_t *r, st_error_t *err) {
  int rc;
  if (!s->reading)
    return st_fail(err, ST_EINVAL, "trivy sort: not started");
  if (!s->nruns) {
    if (s->pos == s->n)
      return 0;
    view(s->arena + s->offs[s->pos++], r);
    return 1;
  }
  /* The record returned last time lives in its run's buffer until that run moves on:
   * advance it now, before handing out the next smallest. */
  if (s->pos) {
    run_t *top = &s->runs[s->heap[0]];
    if ((rc = run_read(top, err)) < 0)
      return rc;
    if (!rc)
      s->heap[0] = s->heap[--s->nheap];
    if (s->nheap)
      heap_down(s, 0);
  }
  if (!s->nheap)
    return 0;
  s->pos = 1;
  *r = s->runs[s->heap[0]].cur;
  return 1;
}

uint64_t st__tsort_runs(const st__tsort_t *s) { return s->nruns; }

void st__tsort_free(st__tsort_t *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->nruns; i++) {
    fclose(s->runs[i].f);
    st_free(s->runs[i].buf);
  }
  st_free(s->runs);
  st_free(s->heap);
  st_free(s->arena);
  st_free(s->offs);
  st_free(s->dir);
  st_free(s);
}

int st__trec_append(st_buf_t *b, const st_buf_t *key, const char *tie, const char *val,
                    size_t vlen, st_error_t *err) {
  size_t tlen = strlen(tie);
  uint32_t hdr[3] = {(uint32_t)key->len, (uint32_t)tlen, (uint32_t)vlen};
  if (key->len > UINT32_MAX || vlen > UINT32_MAX)
    return st_fail(err, ST_ETOOBIG, "trivy: record over 4 GiB");
  if (st_buf_add(b, hdr, HDR) || st_buf_add(b, key->data, key->len) ||
      st_buf_add(b, tie, tlen) || st_buf_add(b, val, vlen))
    return st_fail(err, ST_ENOMEM, "trivy: record buffer");
  return 0;
}
