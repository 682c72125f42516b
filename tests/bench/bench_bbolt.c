/* bench_bbolt.c: deterministic bbolt inputs for the writer's e2e test and benchmark.
 *
 *   bench_bbolt write SCENARIO DB [DUMP]  write DB with st_bbolt_*; DUMP gets the dump the
 *                                         Go harness must print (tests/bbolt/check.go),
 *                                         computed from the input stream, not the file,
 *                                         plus the writer's own stats line
 *   bench_bbolt ops SCENARIO OPS          the same input as an op stream for `bboltcheck load`
 *   bench_bbolt replay OPS DB             write DB with st_bbolt_* from an op stream (the
 *                                         benchmark's C side; bbolt's side replays the same)
 *
 * Scenarios: empty, one, flat (10,000 keys), deep (30,000 keys of ~250 bytes: three
 * levels), nested (thousands of keys over four levels of buckets), overflow (values and
 * keys larger than a page, 32 KiB keys, empty values), mixed (inline and page-backed
 * buckets around the inline limit), maxdepth (ST_BBOLT_MAX_DEPTH nested buckets) and
 * trivy[:N] (N Trivy-shaped advisories, default 200,000: "<eco>::<source>" buckets ->
 * package buckets -> CVE keys with JSON values, plus data-source and vulnerability).
 * Op stream: 'B' u32 len name | 'K' u32 klen key u32 vlen value | 'E', little-endian.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "stella/bbolt.h"
#include "stella/buf.h"
#include "stella/mem.h"

#define MAX_OP_VALUE ((size_t)1 << 26)

typedef struct gen_s {
  st_bbolt_writer_t *w; /* sinks: any of writer, dump, op stream */
  FILE *dump;
  FILE *ops;
  st_buf_t path[ST_BBOLT_MAX_DEPTH + 1]; /* hex path of each open depth */
  size_t depth;
  uint64_t rng;
  int failed;
  st_error_t err;
} gen_t;

static void hexadd(st_buf_t *b, const void *p, size_t n) {
  if (st_buf_add_hex(b, p, n))
    abort();
}

static void put_u32(FILE *f, size_t n) {
  unsigned char b[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                        (unsigned char)(n >> 24)};
  fwrite(b, 1, 4, f);
}

static void g_begin(gen_t *g, const void *name, size_t len) {
  if (g->failed)
    return;
  if (g->w && st_bbolt_bucket_begin(g->w, name, len, &g->err)) {
    g->failed = 1;
    return;
  }
  if (g->ops) {
    fputc('B', g->ops);
    put_u32(g->ops, len);
    fwrite(name, 1, len, g->ops);
  }
  if (g->dump) {
    st_buf_t *p = &g->path[g->depth + 1];
    st_buf_reset(p);
    if (g->depth > 0 && (st_buf_add(p, g->path[g->depth].data, g->path[g->depth].len) ||
                         st_buf_addc(p, '/')))
      abort();
    hexadd(p, name, len);
    fprintf(g->dump, "bucket %s\n", p->data);
  }
  g->depth++;
}

static void g_end(gen_t *g) {
  if (g->failed)
    return;
  if (g->w && st_bbolt_bucket_end(g->w, &g->err)) {
    g->failed = 1;
    return;
  }
  if (g->ops)
    fputc('E', g->ops);
  g->depth--;
}

static void g_put(gen_t *g, const void *k, size_t klen, const void *v, size_t vlen) {
  if (g->failed)
    return;
  if (g->w && st_bbolt_put(g->w, k, klen, v, vlen, &g->err)) {
    g->failed = 1;
    return;
  }
  if (g->ops) {
    fputc('K', g->ops);
    put_u32(g->ops, klen);
    fwrite(k, 1, klen, g->ops);
    put_u32(g->ops, vlen);
    fwrite(v, 1, vlen, g->ops);
  }
  if (g->dump) {
    unsigned char md[32];
    unsigned int mdlen = 0;
    st_buf_t line = ST_BUF_INIT;
    if (!EVP_Digest(v, vlen, md, &mdlen, EVP_sha256(), NULL))
      abort();
    hexadd(&line, k, klen);
    if (st_buf_addf(&line, " %zu ", vlen))
      abort();
    hexadd(&line, md, mdlen);
    fprintf(g->dump, "key %s %s\n", g->path[g->depth].data, line.data);
    st_buf_release(&line);
  }
}

static void g_puts(gen_t *g, const char *k, const char *v) {
  g_put(g, k, strlen(k), v, strlen(v));
}

static uint64_t rnd(gen_t *g) { /* xorshift64*: deterministic filler */
  g->rng ^= g->rng >> 12;
  g->rng ^= g->rng << 25;
  g->rng ^= g->rng >> 27;
  return g->rng * 2685821657736338717ull;
}

static unsigned char *filler(gen_t *g, size_t n) {
  unsigned char *p = st_malloc(n ? n : 1);
  if (!p)
    abort();
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)('a' + rnd(g) % 26);
  return p;
}

static void put_sized(gen_t *g, const char *key, size_t klen, size_t vlen) {
  unsigned char *v = filler(g, vlen);
  g_put(g, key, klen, v, vlen);
  st_free(v);
}

static void gen_flat(gen_t *g, const char *bucket, unsigned n, unsigned kpad) {
  char key[512];
  g_begin(g, bucket, strlen(bucket));
  for (unsigned i = 0; i < n; i++) {
    int len = snprintf(key, sizeof(key), "key-%08u-%0*u", i, (int)(kpad + i % 50), i);
    put_sized(g, key, (size_t)len, 20 + rnd(g) % 80);
  }
  g_end(g);
}

/* Entries e0000.. of a bucket; every `every`-th is a sub-bucket one level down. */
static void gen_nested(gen_t *g, unsigned level, unsigned n) {
  char key[64];
  for (unsigned i = 0; i < n; i++) {
    int len = snprintf(key, sizeof(key), "e%04u", i);
    if (level < 3 && i % 7 == 3) {
      g_begin(g, key, (size_t)len);
      gen_nested(g, level + 1, level == 0 ? 40 : level == 1 ? 8 : 3 + i % 5);
      g_end(g);
    } else {
      put_sized(g, key, (size_t)len, rnd(g) % 120);
    }
  }
}

static void gen_overflow(gen_t *g) {
  static const size_t sizes[] = {0, 1, 4000, 4048, 4049, 4096, 5000, 10000, 100000, 1000000};
  char key[64];
  unsigned char *big;
  g_begin(g, "big-keys", 8);
  for (unsigned i = 0; i < 6; i++) { /* 32 KiB keys: overflow leaves and branches */
    big = filler(g, ST_BBOLT_MAX_KEY);
    big[0] = (unsigned char)('a' + i);
    g_put(g, big, ST_BBOLT_MAX_KEY, "v", 1);
    st_free(big);
  }
  g_end(g);
  g_begin(g, "big-values", 10);
  for (unsigned i = 0; i < 200; i++) {
    int len = snprintf(key, sizeof(key), "k%04u", i);
    put_sized(g, key, (size_t)len, i % 4 ? 30 : sizes[(i / 4) % 10]);
  }
  g_end(g);
  big = filler(g, 9000); /* a bucket whose name alone fills more than a page */
  big[0] = 'z';
  g_begin(g, big, 9000);
  put_sized(g, "only", 4, 10);
  g_end(g);
  st_free(big);
}

static void gen_mixed(gen_t *g) {
  char name[32];
  g_begin(g, "mix", 3);
  g_begin(g, "a-empty", 7);
  g_end(g);
  /* One key, leaf = 16 + 16 + 8 + v: inline up to v = 984 (1024 bytes), paged from 985. */
  for (size_t v = 980; v <= 990; v++) {
    snprintf(name, sizeof(name), "b-edge-%04zu", v);
    g_begin(g, name, strlen(name));
    put_sized(g, "key-0001", 8, v);
    g_end(g);
  }
  g_begin(g, "c-holds-sub", 11); /* tiny, but a sub-bucket keeps it paged */
  g_begin(g, "inner", 5);
  put_sized(g, "k", 1, 5);
  g_end(g);
  g_end(g);
  for (unsigned i = 0; i < 300; i++) {
    snprintf(name, sizeof(name), "d-%04u", i);
    g_begin(g, name, strlen(name));
    for (unsigned k = 0; k < i % 40; k++) {
      char key[16];
      int len = snprintf(key, sizeof(key), "k%03u", k);
      put_sized(g, key, (size_t)len, 10 + i % 30);
    }
    g_end(g);
    snprintf(name, sizeof(name), "d-%04u-val", i); /* a plain key between buckets */
    put_sized(g, name, strlen(name), 12);
  }
  g_end(g);
}

static void gen_maxdepth(gen_t *g) {
  for (unsigned i = 0; i < ST_BBOLT_MAX_DEPTH; i++) {
    g_begin(g, "n", 1);
    put_sized(g, "k", 1, 3);
  }
  for (unsigned i = 0; i < ST_BBOLT_MAX_DEPTH; i++)
    g_end(g);
}

/* ---- Trivy-shaped data ---- */

static const char *const ecos[][2] = {
    {"cargo", "Rust"},     {"composer", "Composer"}, {"go", "Go"},   {"maven", "Maven"},
    {"npm", "npm"},        {"nuget", "NuGet"},       {"pip", "pip"}, {"rubygems", "RubyGems"},
};
#define NECO (sizeof(ecos) / sizeof(ecos[0]))
#define YEARS 25

static int cmp_str(const void *a, const void *b) { /* ASCII: strcmp orders as memcmp */
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void cve_id(char *out, size_t n, unsigned adv) {
  snprintf(out, n, "CVE-%04u-%06u", 2000 + adv % YEARS, adv);
}

static void gen_trivy_eco(gen_t *g, unsigned e, unsigned total) {
  char pkg[64], ids[16][32], json[256];
  char *sorted[16];
  unsigned j = 0, k = 0; /* j-th advisory of this ecosystem, k-th package */
  while (e + 8 * j < total) {
    unsigned size = 1 + (unsigned)((e * 7919u + k * 104729u) % 16), m = 0;
    snprintf(pkg, sizeof(pkg), "%s-lib-%06u", ecos[e][0], k++);
    for (; m < size && e + 8 * j < total; m++, j++) {
      cve_id(ids[m], sizeof(ids[m]), e + 8 * j);
      sorted[m] = ids[m];
    }
    qsort(sorted, m, sizeof(sorted[0]), cmp_str);
    g_begin(g, pkg, strlen(pkg));
    for (unsigned i = 0; i < m; i++) {
      unsigned a = (unsigned)strtoul(sorted[i] + 9, NULL, 10);
      snprintf(json, sizeof(json),
               "{\"PatchedVersions\":[\"%u.%u.%u\"],\"VulnerableVersions\":"
               "[\"\\u003e= %u.0.0, \\u003c %u.%u.%u\"]}",
               a % 9 + 1, a % 13, a % 7 + 1, a % 9 + 1, a % 9 + 1, a % 13, a % 7 + 1);
      g_puts(g, sorted[i], json);
    }
    g_end(g);
  }
}

static void gen_trivy_vulns(gen_t *g, unsigned total) {
  static const char *const sev[] = {"LOW", "MEDIUM", "HIGH", "CRITICAL"};
  st_buf_t v = ST_BUF_INIT;
  char id[32];
  g_begin(g, "vulnerability", 13);
  for (unsigned y = 0; y < YEARS; y++) {
    for (unsigned a = y; a < total; a += YEARS) {
      size_t dlen = a % 997 == 5 ? 6000 : 150 + a % 400;
      unsigned char *desc = filler(g, dlen);
      cve_id(id, sizeof(id), a);
      st_buf_reset(&v);
      if (st_buf_addf(&v, "{\"Title\":\"%s: flaw in component %u\",\"Description\":\"", id,
                      a % 1000) ||
          st_buf_add(&v, desc, dlen) ||
          st_buf_addf(&v,
                      "\",\"Severity\":\"%s\",\"CweIDs\":[\"CWE-%u\"],\"VendorSeverity\":"
                      "{\"ghsa\":%u,\"nvd\":%u},\"CVSS\":{\"nvd\":{\"V3Vector\":"
                      "\"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\",\"V3Score\":%u.%u}},"
                      "\"References\":[\"https://nvd.nist.gov/vuln/detail/%s\"],"
                      "\"PublishedDate\":\"20%02u-0%u-1%uT00:00:00Z\","
                      "\"LastModifiedDate\":\"2024-0%u-2%uT00:00:00Z\"}",
                      sev[a % 4], 20 + a % 900, a % 4 + 1, (a + 1) % 4 + 1, 4 + a % 6, a % 10,
                      id, a % YEARS, 1 + a % 9, a % 10, 1 + a % 9, a % 10))
        abort();
      st_free(desc);
      g_put(g, id, strlen(id), v.data, v.len);
    }
  }
  g_end(g);
  st_buf_release(&v);
}

typedef struct top_s {
  char name[96];
  int eco; /* index into ecos, or -1 for data-source, -2 for vulnerability */
} top_t;

static int cmp_top(const void *a, const void *b) {
  return strcmp(((const top_t *)a)->name, ((const top_t *)b)->name);
}

static void gen_trivy(gen_t *g, unsigned total) {
  top_t top[NECO + 2];
  char json[256];
  size_t n = 0;
  for (size_t e = 0; e < NECO; e++, n++) {
    snprintf(top[n].name, sizeof(top[n].name), "%s::GitHub Security Advisory %s",
             ecos[e][0], ecos[e][1]);
    top[n].eco = (int)e;
  }
  snprintf(top[n].name, sizeof(top[n].name), "data-source");
  top[n++].eco = -1;
  snprintf(top[n].name, sizeof(top[n].name), "vulnerability");
  top[n++].eco = -2;
  qsort(top, n, sizeof(top[0]), cmp_top);
  for (size_t i = 0; i < n; i++) {
    if (top[i].eco == -2) {
      gen_trivy_vulns(g, total);
      continue;
    }
    g_begin(g, top[i].name, strlen(top[i].name));
    if (top[i].eco >= 0) {
      gen_trivy_eco(g, (unsigned)top[i].eco, total);
    } else {
      for (size_t j = 0; j < n; j++) {
        if (top[j].eco < 0)
          continue;
        snprintf(json, sizeof(json),
                 "{\"ID\":\"ghsa\",\"Name\":\"GitHub Security Advisory %s\",\"URL\":"
                 "\"https://github.com/advisories?query=type%%3Areviewed+ecosystem%%3A%s\"}",
                 ecos[top[j].eco][1], ecos[top[j].eco][0]);
        g_puts(g, top[j].name, json);
      }
    }
    g_end(g);
  }
}

static int generate(gen_t *g, const char *scenario) {
  g->rng = 0x9e3779b97f4a7c15ull;
  if (strcmp(scenario, "empty") == 0)
    return 0;
  if (strcmp(scenario, "one") == 0) {
    g_begin(g, "bucket", 6);
    g_puts(g, "key", "value");
    g_end(g);
  } else if (strcmp(scenario, "flat") == 0) {
    gen_flat(g, "flat", 10000, 1);
  } else if (strcmp(scenario, "deep") == 0) {
    gen_flat(g, "deep", 30000, 200);
  } else if (strcmp(scenario, "nested") == 0) {
    for (unsigned i = 0; i < 2; i++) {
      char name[16];
      snprintf(name, sizeof(name), "top-%u", i);
      g_begin(g, name, strlen(name));
      gen_nested(g, 0, 2000);
      g_end(g);
    }
  } else if (strcmp(scenario, "overflow") == 0) {
    gen_overflow(g);
  } else if (strcmp(scenario, "mixed") == 0) {
    gen_mixed(g);
  } else if (strcmp(scenario, "maxdepth") == 0) {
    gen_maxdepth(g);
  } else if (strncmp(scenario, "trivy", 5) == 0) {
    char *end = NULL;
    unsigned long n = scenario[5] == ':' ? strtoul(scenario + 6, &end, 10) : 200000;
    if ((end && *end) || n == 0 || n > 10000000)
      return fprintf(stderr, "bench_bbolt: bad advisory count in %s\n", scenario), 2;
    gen_trivy(g, (unsigned)n);
  } else {
    return fprintf(stderr, "bench_bbolt: unknown scenario %s\n", scenario), 2;
  }
  return 0;
}

static int read_exact(FILE *f, void *p, size_t n) {
  return n == 0 || fread(p, 1, n, f) == n;
}

static int read_field(FILE *f, st_buf_t *b, size_t max) {
  unsigned char n[4];
  size_t len;
  if (!read_exact(f, n, 4))
    return 0;
  len = (size_t)n[0] | (size_t)n[1] << 8 | (size_t)n[2] << 16 | (size_t)n[3] << 24;
  st_buf_reset(b);
  return len <= max && !st_buf_grow(b, len) && read_exact(f, b->data, len) &&
         ((b->len = len), 1);
}

static int replay(gen_t *g, FILE *in) {
  st_buf_t k = ST_BUF_INIT, v = ST_BUF_INIT;
  int op, ok = 1;
  while (ok && !g->failed && (op = fgetc(in)) != EOF) {
    if (op == 'B')
      ok = read_field(in, &k, ST_BBOLT_MAX_KEY) && (g_begin(g, k.data, k.len), 1);
    else if (op == 'E')
      g_end(g);
    else if (op == 'K')
      ok = read_field(in, &k, ST_BBOLT_MAX_KEY) && read_field(in, &v, MAX_OP_VALUE) &&
           (g_put(g, k.data, k.len, v.data, v.len), 1);
    else
      ok = 0;
  }
  st_buf_release(&k);
  st_buf_release(&v);
  if (!ok)
    fprintf(stderr, "bench_bbolt: malformed op stream\n");
  return ok ? 0 : 2;
}

int main(int argc, char **argv) {
  gen_t g;
  FILE *in = NULL;
  st_bbolt_stats_t s;
  int rc = 2;

  memset(&g, 0, sizeof(g));
  for (size_t i = 0; i <= ST_BBOLT_MAX_DEPTH; i++)
    st_buf_init(&g.path[i], 0);
  if (argc < 4 || (strcmp(argv[1], "write") && strcmp(argv[1], "ops") &&
                   strcmp(argv[1], "replay"))) {
    fprintf(stderr, "usage: bench_bbolt write SCENARIO DB [DUMP] | ops SCENARIO OPS | "
                    "replay OPS DB\n");
    goto done;
  }
  if (strcmp(argv[1], "ops") == 0) {
    if (!(g.ops = fopen(argv[3], "wb")))
      goto io;
  } else {
    if (st_bbolt_writer_new(argv[3], &g.w, &g.err))
      goto fail;
    if (argc > 4 && !(g.dump = fopen(argv[4], "w")))
      goto io;
  }
  if (strcmp(argv[1], "replay") == 0) {
    if (!(in = fopen(argv[2], "rb")))
      goto io;
    rc = replay(&g, in);
  } else {
    rc = generate(&g, argv[2]);
  }
  if (rc)
    goto done;
  if (g.failed || (g.w && st_bbolt_writer_finish(g.w, &g.err)))
    goto fail;
  if (g.dump) {
    st_bbolt_writer_stats(g.w, &s);
    fprintf(g.dump,
            "stats buckets=%llu inline=%llu keys=%llu leaf=%llu leafovf=%llu branch=%llu "
            "branchovf=%llu pages=%llu\n",
            (unsigned long long)s.buckets, (unsigned long long)s.inline_buckets,
            (unsigned long long)s.keys, (unsigned long long)s.leaf_pages,
            (unsigned long long)s.leaf_overflow, (unsigned long long)s.branch_pages,
            (unsigned long long)s.branch_overflow, (unsigned long long)s.pages);
  }
  if ((g.dump && fflush(g.dump)) || (g.ops && fflush(g.ops)) || ferror(g.ops ? g.ops : stdout))
    goto io;
  rc = 0;
  goto done;
fail:
  fprintf(stderr, "bench_bbolt: %s\n", st_error_text(&g.err));
  rc = 1;
  goto done;
io:
  perror("bench_bbolt");
  rc = 2;
done:
  if (in)
    fclose(in);
  if (g.dump)
    fclose(g.dump);
  if (g.ops)
    fclose(g.ops);
  st_bbolt_writer_free(g.w);
  for (size_t i = 0; i <= ST_BBOLT_MAX_DEPTH; i++)
    st_buf_release(&g.path[i]);
  return rc;
}
