/* cmd_ledger.c: `stella ledger import --tenant T [--batch N] [--config F] FILE|DIR...`.
 *
 * Loads OSV advisories, OpenVEX documents, policy files and Maven index files (the kind is
 * detected by content: a Maven index starts with its header line) into the tenant's
 * source ledger. Directories are walked recursively for *.json and *.csv in byte order of
 * their paths; a Maven index's bad rows are printed as "reject: <file>:<line>: <reason>". Policy results files are loaded last, so a pack and the
 * results judged by it may sit in any order. Each reject is printed as
 * "reject: <file>: <reason>"; the good documents still load; exit 1 if any was rejected,
 * 2 on usage, I/O or database failure. Also st_cli_pool for the other Postgres commands. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "stella/config.h"
#include "stella/ledger.h"
#include "stella/mem.h"

int st_cli_pool(const char *config_path, st_db_pool_t **out) {
  st_config_t *cfg = NULL;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_OK;

  *out = NULL;
  if (st_config_load(&cfg, config_path, &err) ||
      st_db_pool_new(st_config_str(cfg, "pg_url"), (int)st_config_int(cfg, "pg_pool_size"),
                     out, &err))
    rc = st_cli_usage("%s", st_error_text(&err));
  st_config_free(cfg);
  return rc;
}

typedef struct files_s {
  char **v;
  size_t n, cap;
} files_t;

static int push(files_t *f, const char *path) {
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 64;
    char **v = st_realloc(f->v, cap * sizeof(*v));
    if (!v)
      return -1;
    f->v = v;
    f->cap = cap;
  }
  return (f->v[f->n] = st_strdup(path)) ? (int)(f->n++, 0) : -1;
}

static int cmp_path(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add path (a file) or the *.json files under it (a directory). */
static int collect(const char *path, files_t *f, int top) {
  struct stat sb;
  DIR *d;
  struct dirent *e;
  int rc = 0;

  if (stat(path, &sb) != 0)
    return st_cli_usage("%s: no such file or directory", path);
  if (!S_ISDIR(sb.st_mode)) {
    size_t n = strlen(path);
    if (!top && (n < 5 || (strcmp(path + n - 5, ".json") && strcmp(path + n - 4, ".csv")) ||
                 !S_ISREG(sb.st_mode)))
      return 0;
    return push(f, path) ? st_cli_usage("out of memory") : 0;
  }
  if (!(d = opendir(path)))
    return st_cli_usage("%s: cannot open directory", path);
  while (!rc && (e = readdir(d))) {
    st_buf_t sub = ST_BUF_INIT;
    if (e->d_name[0] == '.')
      continue;
    rc = st_buf_addf(&sub, "%s/%s", path, e->d_name) ? st_cli_usage("out of memory")
                                                     : collect(sub.data, f, 0);
    st_buf_release(&sub);
  }
  closedir(d);
  return rc;
}

typedef struct reject_ud_s {
  const char *path;
  int *rejects;
} reject_ud_t;

static void maven_reject(void *ud, size_t line, const st_error_t *e) {
  reject_ud_t *r = ud;
  fprintf(stderr, "reject: %s:%zu: %s\n", r->path, line, st_error_text(e));
  (*r->rejects)++;
}

/* 1 if path starts with the Maven index header, 0 if not (or unreadable: the JSON path
 * reports that). */
static int is_maven(const char *path) {
  char head[sizeof(ST_LEDGER_MAVEN_HEADER) + 16];
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(head, 1, sizeof(head), f) : 0;
  if (f)
    fclose(f);
  return st_ledger_maven_detect(head, n);
}

static int load_maven(st_ledger_loader_t *l, const char *path, int *rejects) {
  st_error_t err = ST_ERROR_INIT;
  reject_ud_t ud = {path, rejects};
  int rc = st_ledger_maven_load_file(l, path, maven_reject, &ud, NULL, &err);
  if (rc == ST_EPARSE) {
    fprintf(stderr, "reject: %s\n", st_error_text(&err));
    (*rejects)++;
    return 0;
  }
  if (rc) {
    fprintf(stderr, "stella: ledger import: %s: %s\n", path, st_error_text(&err));
    return ST_EXIT_USAGE;
  }
  return 0;
}

/* Load one file; in the first pass a policy results file is deferred to `later`. */
static int load_file(st_ledger_loader_t *l, const char *path, files_t *later, int *rejects) {
  st_buf_t data = ST_BUF_INIT;
  st_ledger_doc_t doc;
  st_error_t err = ST_ERROR_INIT;
  int rc;

  if (is_maven(path))
    return load_maven(l, path, rejects);
  if ((rc = st_cli_read_file(path, ST_LEDGER_DOC_MAX_BYTES, &data))) {
    st_buf_release(&data);
    (*rejects)++;
    return 0; /* the reason is printed; other files still load */
  }
  if (st_ledger_doc_parse(data.data, data.len, &doc, &err)) {
    fprintf(stderr, "reject: %s: %s\n", path, st_error_text(&err));
    (*rejects)++;
  } else if (later && doc.kind == ST_LEDGER_POLICY_RESULT) {
    if (push(later, path))
      rc = st_cli_usage("out of memory");
  } else if ((rc = st_ledger_loader_add(l, &doc, &err))) {
    if (rc != ST_ENOENT && rc != ST_ECONFLICT) {
      fprintf(stderr, "stella: ledger import: %s: %s\n", path, st_error_text(&err));
      st_ledger_doc_release(&doc);
      st_buf_release(&data);
      return ST_EXIT_USAGE;
    }
    fprintf(stderr, "reject: %s: %s\n", path, st_error_text(&err));
    (*rejects)++;
    rc = 0;
  }
  st_ledger_doc_release(&doc);
  st_buf_release(&data);
  return rc;
}

static int import(int argc, char **argv) {
  const char *tenant = NULL, *config = NULL;
  long batch = 0;
  files_t files = {0}, later = {0};
  st_db_pool_t *pool = NULL;
  st_ledger_loader_t *l = NULL;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_OK, rejects = 0;

  for (int i = 1; i < argc && !rc; i++) {
    if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
      tenant = argv[++i];
    else if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      batch = strtol(argv[++i], NULL, 10);
    else if (argv[i][0] == '-' && argv[i][1])
      rc = st_cli_usage("ledger import --tenant T [--batch N] [--config F] FILE|DIR...");
    else
      rc = collect(argv[i], &files, 1);
  }
  if (!rc && (!tenant || files.n == 0))
    rc = st_cli_usage("ledger import: --tenant and at least one FILE or DIR are required");
  if (rc || (rc = st_cli_pool(config, &pool)))
    goto done;
  if (batch < 0 || st_ledger_loader_new(pool, tenant, (size_t)batch, &l, &err)) {
    rc = st_cli_usage("ledger import: %s", batch < 0 ? "--batch: negative" : st_error_text(&err));
    goto done;
  }
  qsort(files.v, files.n, sizeof(char *), cmp_path);
  for (size_t i = 0; i < files.n && !rc; i++)
    rc = load_file(l, files.v[i], &later, &rejects);
  if (!rc && st_ledger_loader_flush(l, &err))
    rc = st_cli_usage("ledger import: %s", st_error_text(&err));
  for (size_t i = 0; i < later.n && !rc; i++)
    rc = load_file(l, later.v[i], NULL, &rejects);
  if (!rc) {
    const st_ledger_stats_t *s = st_ledger_loader_stats(l);
    for (int k = 0; k < ST_LEDGER_NKINDS; k++)
      printf("%-14s %lld added, %lld replaced, %lld unchanged\n",
             st_ledger_kind_name((st_ledger_kind)k), s->added[k], s->replaced[k],
             s->unchanged[k]);
    printf("rejected       %d file%s\n", rejects, rejects == 1 ? "" : "s");
    rc = rejects ? ST_EXIT_FAIL : ST_EXIT_OK;
  }
done:
  st_ledger_loader_free(l);
  st_db_pool_free(pool);
  for (size_t i = 0; i < files.n; i++)
    st_free(files.v[i]);
  for (size_t i = 0; i < later.n; i++)
    st_free(later.v[i]);
  st_free(files.v);
  st_free(later.v);
  return rc;
}

int st_cmd_ledger(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "import"))
    return import(argc - 1, argv + 1);
  return st_cli_usage("ledger import --tenant T FILE|DIR...");
}
