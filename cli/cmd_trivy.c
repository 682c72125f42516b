/* cmd_trivy.c: `stella trivy build`: the Trivy DB (and Java DB) from OSV / Maven index
 * files, with no service running (for pipelines).
 *
 *   stella trivy build --input DIR -o OUT [--schema-version 2] [--java-index FILE.csv]
 *       [--updated-at RFC3339] [--source-name NAME] [--source-url URL] [--sort-mem MiB]
 *       [--oci]
 *
 * Every *.json under DIR is validated with the ledger's parser (st_ledger_doc_parse);
 * non-OSV documents are skipped, rejects are printed as `reject: FILE: reason` and the
 * rest still build (exit 1 if anything was rejected). When several files carry one id,
 * the later `modified` wins (then the greater content digest), as the ledger keeps it.
 * OUT gets trivy.db, metadata.json, db.tar.gz (and trivy-java.db, javadb.tar.gz in
 * OUT/java-db/), plus with --oci the OCI layouts OUT/oci/db (tag 2) and OUT/oci/java-db
 * (tag 1). */
#define _GNU_SOURCE /* nftw FTW_ACTIONRETVAL */
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "stella/ledger.h"
#include "stella/mem.h"
#include "trivy/trivy.h"

typedef struct doc_ref_s {
  char *id, *path;
  char modified[32];
  char sha256[ST_SHA256_HEX_LEN + 1];
} doc_ref_t;

typedef struct scan_s {
  char **paths;
  size_t n, cap;
  int oom;
} scan_t;

static _Thread_local scan_t *scan_into;

static int scan_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw) {
  size_t n = strlen(p);
  (void)sb;
  if (type == FTW_D && ftw->level > 0 && p[ftw->base] == '.')
    return FTW_SKIP_SUBTREE;
  if (type != FTW_F || n < 5 || strcmp(p + n - 5, ".json") || p[ftw->base] == '.')
    return FTW_CONTINUE;
  if (scan_into->n == scan_into->cap) {
    size_t cap = scan_into->cap ? scan_into->cap * 2 : 256;
    char **np = st_realloc(scan_into->paths, cap * sizeof(*np));
    if (!np)
      return scan_into->oom = 1, FTW_STOP;
    scan_into->paths = np;
    scan_into->cap = cap;
  }
  if (!(scan_into->paths[scan_into->n] = st_strdup(p)))
    return scan_into->oom = 1, FTW_STOP;
  scan_into->n++;
  return FTW_CONTINUE;
}

/* "a/b" through st_malloc: 0, or -1 with *out NULL. */
static int path_fmt(char **out, const char *a, const char *b) {
  st_buf_t buf = ST_BUF_INIT;
  *out = NULL;
  if (st_buf_addf(&buf, "%s/%s", a, b)) {
    st_buf_release(&buf);
    return -1;
  }
  *out = st_buf_detach(&buf, NULL);
  return *out ? 0 : -1;
}

static int cmp_path(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_ref(const void *a, const void *b) {
  const doc_ref_t *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  if (!c)
    c = strcmp(x->modified, y->modified);
  return c ? c : strcmp(x->sha256, y->sha256);
}

typedef struct build_s {
  const char *input, *out, *java_index, *updated_at, *source_name, *source_url;
  long schema, sort_mib;
  int oci;
} build_t;

/* Pass 1: validate every file, keep one reference per advisory id. */
static int select_docs(const build_t *bo, doc_ref_t **out, size_t *nout, int *rejects) {
  scan_t sc = {0};
  doc_ref_t *refs = NULL;
  size_t n = 0, keep = 0;
  int rc = ST_EXIT_OK;

  scan_into = &sc;
  if (nftw(bo->input, scan_cb, 32, FTW_PHYS | FTW_ACTIONRETVAL) != 0 || sc.oom) {
    rc = st_cli_usage("%s: cannot walk the directory", bo->input);
    goto done;
  }
  if (sc.n)
    qsort(sc.paths, sc.n, sizeof(*sc.paths), cmp_path);
  if (sc.n && !(refs = st_calloc(sc.n, sizeof(*refs)))) {
    rc = st_cli_usage("out of memory");
    goto done;
  }
  for (size_t i = 0; i < sc.n; i++) {
    st_buf_t data = ST_BUF_INIT;
    st_ledger_doc_t d = {0};
    st_error_t err = ST_ERROR_INIT;
    if (st_cli_read_file(sc.paths[i], ST_LEDGER_DOC_MAX_BYTES, &data)) {
      (*rejects)++;
    } else if (st_ledger_doc_parse(data.data, data.len, &d, &err)) {
      fprintf(stderr, "reject: %s: %s\n", sc.paths[i], st_error_text(&err));
      (*rejects)++;
    } else if (d.kind != ST_LEDGER_ADVISORY) {
      fprintf(stderr, "skip: %s: a %s document\n", sc.paths[i], st_ledger_kind_name(d.kind));
    } else {
      json_t *row = json_loadb(d.row.data, d.row.len, 0, NULL);
      const char *mod = json_string_value(json_object_get(row, "modified"));
      refs[n].id = d.key;
      d.key = NULL;
      refs[n].path = sc.paths[i];
      sc.paths[i] = NULL;
      snprintf(refs[n].modified, sizeof(refs[n].modified), "%s", mod ? mod : "");
      memcpy(refs[n].sha256, d.sha256, sizeof(d.sha256));
      n++;
      json_decref(row);
    }
    st_ledger_doc_release(&d);
    st_buf_release(&data);
  }
  if (n)
    qsort(refs, n, sizeof(*refs), cmp_ref);
  for (size_t i = 0; i < n; i++) {
    if (i + 1 < n && !strcmp(refs[i].id, refs[i + 1].id)) {
      fprintf(stderr, "superseded: %s: %s has a later version in %s\n", refs[i].path,
              refs[i].id, refs[i + 1].path);
      st_free(refs[i].id);
      st_free(refs[i].path);
      continue;
    }
    refs[keep++] = refs[i];
  }
  *out = refs;
  *nout = keep;
  refs = NULL;
done:
  for (size_t i = 0; i < sc.n; i++)
    st_free(sc.paths[i]);
  st_free(sc.paths);
  st_free(refs);
  return rc;
}

static void java_reject(void *ud, size_t line, const st_error_t *e) {
  fprintf(stderr, "reject: %s:%zu: %s\n", (const char *)ud, line, st_error_text(e));
}

static int build_java(const build_t *bo, const st_trivy_opts_t *base, const char *updated,
                      int *rejects) {
  st_trivy_opts_t o = *base;
  st_trivy_java_db_t *j = NULL;
  st_trivy_result_t res = {0};
  st_error_t err = ST_ERROR_INIT;
  uint64_t added = 0, bad = 0;
  char *dir = NULL;
  int rc = ST_EXIT_USAGE;

  o.schema_version = 0;
  o.updated_at = bo->updated_at ? bo->updated_at : updated;
  if (path_fmt(&dir, bo->out, "java-db") < 0) {
    dir = NULL;
    goto done;
  }
  if (st_trivy_java_db_new(dir, &o, &j, &err) ||
      st_trivy_java_db_add_csv(j, bo->java_index, java_reject, (void *)bo->java_index, &added,
                               &bad, &err) ||
      st_trivy_java_db_finish(j, &res, &err)) {
    fprintf(stderr, "stella: trivy build: java db: %s\n", st_error_text(&err));
    goto done;
  }
  *rejects += (int)bad;
  printf("java-db: %llu rows, %llu indexed, %llu duplicate sha1, %llu rejected -> %s\n",
         (unsigned long long)added, (unsigned long long)res.records,
         (unsigned long long)res.duplicates, (unsigned long long)bad, dir);
  rc = ST_EXIT_OK;
done:
  st_trivy_java_db_free(j);
  st_free(dir);
  return rc;
}

static int oci_out(const build_t *bo) {
  static const struct {
    const char *tgz, *mt, *tag, *dir;
  } outs[2] = {{"db.tar.gz", ST_TRIVY_DB_MEDIA_TYPE, "2", "oci/db"},
               {"java-db/javadb.tar.gz", ST_TRIVY_JAVA_DB_MEDIA_TYPE, "1", "oci/java-db"}};
  char *parent = NULL;
  if (path_fmt(&parent, bo->out, "oci") < 0)
    return st_cli_usage("out of memory");
  mkdir(parent, 0755); /* an existing one is fine; a real failure shows in the next step */
  st_free(parent);
  for (int i = 0; i < (bo->java_index ? 2 : 1); i++) {
    st_error_t err = ST_ERROR_INIT;
    char *tgz = NULL, *dir = NULL, digest[72];
    int bad = path_fmt(&tgz, bo->out, outs[i].tgz) < 0 ||
              path_fmt(&dir, bo->out, outs[i].dir) < 0;
    if (bad || st_trivy_oci_layout(tgz, outs[i].mt, outs[i].tag, dir, digest, &err)) {
      fprintf(stderr, "stella: trivy build: oci: %s\n", bad ? "out of memory"
                                                             : st_error_text(&err));
      st_free(tgz);
      st_free(dir);
      return ST_EXIT_USAGE;
    }
    printf("oci: %s tag %s manifest %s\n", dir, outs[i].tag, digest);
    st_free(tgz);
    st_free(dir);
  }
  return ST_EXIT_OK;
}

static int build(const build_t *bo) {
  st_trivy_opts_t o = {.schema_version = (int)bo->schema, .updated_at = bo->updated_at,
                       .source_name = bo->source_name, .source_url = bo->source_url,
                       .sort_mem = (size_t)bo->sort_mib << 20};
  st_trivy_db_t *b = NULL;
  st_trivy_result_t res = {0};
  st_error_t err = ST_ERROR_INIT;
  doc_ref_t *refs = NULL;
  size_t n = 0;
  int rejects = 0, rc;

  /* Refuse a bad schema version or option before reading any input. */
  if (st_trivy_db_new(bo->out, &o, &b, &err)) {
    fprintf(stderr, "stella: trivy build: %s\n", st_error_text(&err));
    return ST_EXIT_USAGE;
  }
  if ((rc = select_docs(bo, &refs, &n, &rejects)))
    goto done;
  for (size_t i = 0; i < n; i++) {
    st_buf_t data = ST_BUF_INIT;
    st_error_t e = ST_ERROR_INIT;
    int r = st_cli_read_file(refs[i].path, ST_LEDGER_DOC_MAX_BYTES, &data);
    if (!r && (r = st_trivy_db_add(b, data.data, data.len, &e))) {
      if (e.code == ST_EIO || e.code == ST_ENOMEM) {
        fprintf(stderr, "stella: trivy build: %s\n", st_error_text(&e));
        st_buf_release(&data);
        rc = ST_EXIT_USAGE;
        goto done;
      }
      fprintf(stderr, "reject: %s: %s\n", refs[i].path, st_error_text(&e));
    }
    rejects += r != 0;
    st_buf_release(&data);
  }
  if (st_trivy_db_finish(b, &res, &err)) {
    fprintf(stderr, "stella: trivy build: %s\n", st_error_text(&err));
    rc = ST_EXIT_USAGE;
    goto done;
  }
  printf("trivy-db: %llu advisories, %llu withdrawn, %llu keys (%llu superseded), %llu sort "
         "runs, updated %s -> %s\n",
         (unsigned long long)res.documents, (unsigned long long)res.withdrawn,
         (unsigned long long)res.records, (unsigned long long)res.duplicates,
         (unsigned long long)res.runs, res.updated_at, bo->out);
  if (bo->java_index && (rc = build_java(bo, &o, res.updated_at, &rejects)))
    goto done;
  if (bo->oci && (rc = oci_out(bo)))
    goto done;
  rc = rejects ? ST_EXIT_FAIL : ST_EXIT_OK;
  if (rejects)
    fprintf(stderr, "stella: trivy build: %d input(s) rejected\n", rejects);
done:
  for (size_t i = 0; i < n; i++) {
    st_free(refs[i].id);
    st_free(refs[i].path);
  }
  st_free(refs);
  st_trivy_db_free(b);
  return rc;
}

static int cmd_build(int argc, char **argv) {
  build_t bo = {.schema = ST_TRIVY_DB_SCHEMA};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (!strcmp(a, "--oci")) {
      bo.oci = 1;
      continue;
    }
    if (!v)
      return st_cli_usage("trivy build: %s needs a value", a);
    i++;
    if (!strcmp(a, "--input"))
      bo.input = v;
    else if (!strcmp(a, "-o"))
      bo.out = v;
    else if (!strcmp(a, "--java-index"))
      bo.java_index = v;
    else if (!strcmp(a, "--updated-at"))
      bo.updated_at = v;
    else if (!strcmp(a, "--source-name"))
      bo.source_name = v;
    else if (!strcmp(a, "--source-url"))
      bo.source_url = v;
    else if (!strcmp(a, "--schema-version") || !strcmp(a, "--sort-mem")) {
      long x = strtol(v, &end, 10);
      if (!*v || *end || x < 0 || x > 1 << 20)
        return st_cli_usage("trivy build: %s: \"%s\" is not a number", a, v);
      *(a[2] == 's' && a[3] == 'c' ? &bo.schema : &bo.sort_mib) = x;
    } else {
      return st_cli_usage("trivy build: unknown option %s", a);
    }
  }
  if (!bo.input || !bo.out)
    return st_cli_usage("usage: stella trivy build --input DIR -o OUT [--schema-version 2] "
                        "[--java-index FILE.csv] [--updated-at RFC3339] [--source-name NAME] "
                        "[--source-url URL] [--sort-mem MiB] [--oci]");
  if (bo.schema != ST_TRIVY_DB_SCHEMA)
    return st_cli_usage("trivy build: --schema-version %ld: unsupported (this build writes "
                        "Trivy DB schema %d)", bo.schema, ST_TRIVY_DB_SCHEMA);
  return build(&bo);
}

int st_cmd_trivy(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "build"))
    return cmd_build(argc - 1, argv + 1);
  return st_cli_usage("usage: stella trivy build --input DIR -o OUT ...");
}
