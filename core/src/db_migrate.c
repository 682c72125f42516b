/* db_migrate.c: the schema migration runner.
 *
 * Reads every NNNN_name.sql in a directory (each bounded, hashed with SHA-256), checks the
 * numbering is 1, 2, 3, ... without gaps or duplicates, then, holding a session advisory
 * lock so concurrent runners (several stellad starting at once) serialise, compares what
 * `schema_migrations` records with the files and applies the pending ones, each in its own
 * transaction together with its bookkeeping row. Applied files must precede every pending
 * one (see check_history). A file that changes after being applied
 * is refused rather than silently skipped: the database would no longer match the source.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "db_internal.h"
#include "stella/buf.h"
#include "stella/log.h"
#include "stella/mem.h"

/* Arbitrary but fixed: "STELLAMG" as a bigint key for pg_advisory_lock. */
#define MIGRATE_LOCK_KEY "6004220051185110855"
#define MAX_FILES 9999

typedef struct mfile_s {
  int version;
  char *file;
  char *sql;
  char hex[65];
  char *applied_at;      /* from schema_migrations, NULL if pending */
  char *applied_sum;
} mfile_t;

typedef struct mset_s {
  mfile_t *v;
  size_t n, cap;
} mset_t;

static void mset_release(mset_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    st_free(s->v[i].file);
    st_free(s->v[i].sql);
    st_free(s->v[i].applied_at);
    st_free(s->v[i].applied_sum);
  }
  st_free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

/* "0012_add_x.sql" -> 12; -1 if the name does not have that shape. */
static int parse_name(const char *name) {
  size_t len = strlen(name);
  int v = 0;

  if (len < 10 || name[4] != '_' || strcmp(name + len - 4, ".sql") != 0)
    return -1;
  for (int i = 0; i < 4; i++) {
    if (name[i] < '0' || name[i] > '9')
      return -1;
    v = v * 10 + (name[i] - '0');
  }
  for (size_t i = 5; i < len - 4; i++) {
    char ch = name[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '-'))
      return -1;
  }
  return v > 0 ? v : -1;
}

static int read_file(const char *dir, mfile_t *m, st_error_t *err) {
  st_buf_t pathbuf = ST_BUF_INIT;
  const char *path;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  struct stat sb;
  size_t got = 0;
  int fd = -1, rc = 0;

  if (st_buf_addf(&pathbuf, "%s/%s", dir, m->file))
    return st_fail(err, ST_ENOMEM, "%s: out of memory", m->file);
  path = pathbuf.data;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 || fstat(fd, &sb) != 0) {
    rc = st_fail(err, ST_EIO, "%s: cannot read: %s", path, strerror(errno));
    goto done;
  }
  if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > ST_DB_MIGRATION_MAX_BYTES) {
    rc = st_fail(err, ST_ETOOBIG, "%s: not a regular file of at most %zu bytes", path,
                 ST_DB_MIGRATION_MAX_BYTES);
    goto done;
  }
  if (!(m->sql = st_malloc((size_t)sb.st_size + 1))) {
    rc = st_fail(err, ST_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  while (got < (size_t)sb.st_size) {
    ssize_t r = read(fd, m->sql + got, (size_t)sb.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = st_fail(err, ST_EIO, "%s: short read", path);
      goto done;
    }
    got += (size_t)r;
  }
  m->sql[got] = '\0';
  if (strlen(m->sql) != got) {
    rc = st_fail(err, ST_EPARSE, "%s: contains a NUL byte", path);
    goto done;
  }
  if (EVP_Digest(m->sql, got, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
    rc = st_fail(err, ST_ECRYPTO, "%s: SHA-256 failed", path);
    goto done;
  }
  for (unsigned i = 0; i < mdlen; i++)
    snprintf(m->hex + 2 * i, 3, "%02x", md[i]);
done:
  if (fd >= 0)
    close(fd);
  st_buf_release(&pathbuf);
  return rc;
}

static int cmp_version(const void *a, const void *b) {
  const mfile_t *x = a, *y = b;
  return (x->version > y->version) - (x->version < y->version);
}

static int scan_dir(const char *dir, mset_t *s, st_error_t *err) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int rc = 0;

  if (!d)
    return st_fail(err, ST_EIO, "migrations dir %s: %s", dir, strerror(errno));
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    int v;

    if (e->d_name[0] == '.' || len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
      continue;
    if ((v = parse_name(e->d_name)) < 0) {
      rc = st_fail(err, ST_EINVAL, "%s/%s: migration files must be named NNNN_name.sql "
                   "(name of [A-Za-z0-9_-])", dir, e->d_name);
      goto done;
    }
    if (s->n == s->cap) {
      size_t ncap = s->cap ? s->cap * 2 : 16;
      mfile_t *nv = ncap > MAX_FILES ? NULL : st_realloc(s->v, ncap * sizeof(*nv));
      if (!nv) {
        rc = st_fail(err, ST_ENOMEM, "migrations dir %s: too many files", dir);
        goto done;
      }
      s->v = nv;
      s->cap = ncap;
    }
    memset(&s->v[s->n], 0, sizeof(s->v[0]));
    s->v[s->n].version = v;
    if (!(s->v[s->n].file = st_strdup(e->d_name))) {
      rc = st_fail(err, ST_ENOMEM, "migrations dir %s: out of memory", dir);
      goto done;
    }
    s->n++;
    if ((rc = read_file(dir, &s->v[s->n - 1], err)))
      goto done;
  }
  if (s->n)
    qsort(s->v, s->n, sizeof(*s->v), cmp_version);
  for (size_t i = 1; i < s->n; i++) {
    if (s->v[i].version == s->v[i - 1].version) {
      rc = st_fail(err, ST_EINVAL, "%s/%s: duplicate migration number (also %s)", dir,
                   s->v[i].file, s->v[i - 1].file);
      goto done;
    }
  }
done:
  closedir(d);
  return rc;
}

/* Attach what schema_migrations says to the files; refuse rows with no file. */
static int load_applied(PGconn *c, const char *dir, mset_t *s, st_error_t *err) {
  PGresult *res = NULL;
  int rc;

  if ((rc = st_db_exec(c, "SELECT version, name, checksum, applied_at::text "
                          "FROM public.schema_migrations ORDER BY version",
                       0, NULL, &res, err))) {
    st_error_wrap(err, "reading schema_migrations");
    return rc;
  }
  for (int r = 0; r < PQntuples(res); r++) {
    long v = strtol(PQgetvalue(res, r, 0), NULL, 10);
    const char *name = PQgetvalue(res, r, 1);
    mfile_t *m = NULL;

    for (size_t i = 0; i < s->n && !m; i++)
      if (s->v[i].version == v)
        m = &s->v[i];

    if (!m || strcmp(m->file, name) != 0) {
      rc = st_fail(err, ST_ECONFLICT,
                   "schema_migrations has %04ld (%s) but %s does not: the database is "
                   "ahead of or differs from this source",
                   v, name, m ? m->file : dir);
      goto done;
    }
    if (!(m->applied_at = st_strdup(PQgetvalue(res, r, 3))) ||
        !(m->applied_sum = st_strdup(PQgetvalue(res, r, 2)))) {
      rc = st_fail(err, ST_ENOMEM, "schema_migrations: out of memory");
      goto done;
    }
  }
done:
  PQclear(res);
  return rc;
}

/* The applied files must be a prefix of the sorted list: a pending file numbered below an
 * applied one would run out of order here but in order on a fresh database. Numbers may
 * skip (ranges are reserved per module: 0001-0009 platform, 0010+ later issues). With
 * `strict`, an applied file whose checksum changed is refused too. */
static int check_history(const char *dir, const mset_t *s, int strict, st_error_t *err) {
  const mfile_t *pending = NULL;

  for (size_t i = 0; i < s->n; i++) {
    const mfile_t *m = &s->v[i];
    if (!m->applied_at) {
      if (!pending)
        pending = m;
      continue;
    }
    if (pending)
      return st_fail(err, ST_ECONFLICT, "%s/%s: gap: pending but %s is already applied; "
                     "renumber it after the applied ones", dir, pending->file, m->file);
    if (strict && strcmp(m->applied_sum, m->hex) != 0)
      return st_fail(err, ST_ECONFLICT,
                     "%s/%s: changed after it was applied (checksum %.12s..., applied "
                     "%.12s...); add a new migration instead of editing this one",
                     dir, m->file, m->hex, m->applied_sum);
  }
  return 0;
}

static void report(const mfile_t *m, st_db_migration_cb cb, void *arg) {
  st_db_migration_t info = {m->version, m->file, m->hex, m->applied_at,
                            m->applied_sum && strcmp(m->applied_sum, m->hex) != 0};
  if (cb)
    cb(&info, arg);
}

/* 1-based line of a 1-based character position (bytes; exact for ASCII files). */
static long line_of(const char *sql, const char *pos) {
  long p = pos ? strtol(pos, NULL, 10) : 0, line = 1;
  for (long i = 0; i < p - 1 && sql[i]; i++)
    line += sql[i] == '\n';
  return line;
}

static int apply_one(PGconn *c, mfile_t *m, st_error_t *err) {
  PGresult *res = NULL;
  char ver[16];
  const char *params[3] = {ver, m->file, m->hex};
  int rc;

  snprintf(ver, sizeof(ver), "%d", m->version);
  if ((rc = st_db_exec(c, "BEGIN", 0, NULL, NULL, err)))
    goto done;
  res = PQexec(c, m->sql);
  if ((rc = st_db_check(c, res, "failed", err))) {
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    if (pos)
      st_error_wrap(err, "%s:%ld", m->file, line_of(m->sql, pos));
    else
      st_error_wrap(err, "%s", m->file);
    goto done;
  }
  if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
    rc = st_fail(err, ST_EINVAL, "%s: ended the transaction itself (remove BEGIN/COMMIT)",
                 m->file);
    goto done;
  }
  PQclear(res);
  res = NULL;
  if ((rc = st_db_exec(c, "INSERT INTO public.schema_migrations (version, name, checksum) "
                          "VALUES ($1::int, $2, $3) RETURNING applied_at::text",
                       3, params, &res, err)))
    goto done;
  if (!(m->applied_at = st_strdup(PQgetvalue(res, 0, 0)))) {
    rc = st_fail(err, ST_ENOMEM, "%s: out of memory", m->file);
    goto done;
  }
  rc = st_db_exec(c, "COMMIT", 0, NULL, NULL, err);
done:
  PQclear(res);
  if (rc && PQtransactionStatus(c) != PQTRANS_IDLE)
    PQclear(PQexec(c, "ROLLBACK"));
  return rc;
}

static int check_admin(PGconn *c, st_error_t *err) {
  long long ok = 0;
  int rc = st_db_query_int(c, "SELECT (rolsuper OR (rolbypassrls AND rolcreaterole))::int "
                              "FROM pg_roles WHERE rolname = current_user",
                           0, NULL, &ok, err);
  if (rc)
    return rc;
  if (!ok)
    return st_fail(err, ST_EPERM, "migrations need a superuser or a role with BYPASSRLS and "
                   "CREATEROLE (pg_admin_url): it creates roles and owns the relay functions");
  return 0;
}

int st_db_migrate(const char *conninfo, const char *dir, st_db_migration_cb cb, void *arg,
                  st_error_t *err) {
  mset_t s = {0};
  PGconn *c = NULL;
  int rc, locked = 0;

  if ((rc = scan_dir(dir, &s, err)))
    goto done;
  if (!(c = st__db_connect(conninfo, err))) {
    rc = err ? err->code : ST_EDB;
    goto done;
  }
  if ((rc = check_admin(c, err)) ||
      (rc = st_db_exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, NULL,
                       err)))
    goto done;
  locked = 1;
  if ((rc = st_db_exec(c, "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
                          " version int PRIMARY KEY CHECK (version > 0),"
                          " name text NOT NULL,"
                          " checksum text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now())",
                       0, NULL, NULL, err)) ||
      (rc = load_applied(c, dir, &s, err)) || (rc = check_history(dir, &s, 1, err)))
    goto done;
  for (size_t i = 0; i < s.n; i++) {
    if (s.v[i].applied_at)
      continue;
    if ((rc = apply_one(c, &s.v[i], err)))
      goto done;
    st_info("db: applied migration %s", s.v[i].file);
    report(&s.v[i], cb, arg);
  }
done:
  if (locked && PQstatus(c) == CONNECTION_OK)
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
  PQfinish(c);
  mset_release(&s);
  return rc;
}

int st_db_migrate_status(const char *conninfo, const char *dir, st_db_migration_cb cb,
                         void *arg, st_error_t *err) {
  mset_t s = {0};
  PGconn *c = NULL;
  long long exists = 0;
  int rc;

  if ((rc = scan_dir(dir, &s, err)))
    goto done;
  if (!(c = st__db_connect(conninfo, err))) {
    rc = err ? err->code : ST_EDB;
    goto done;
  }
  if ((rc = st_db_query_int(c, "SELECT (to_regclass('public.schema_migrations') IS NOT NULL)"
                               "::int", 0, NULL, &exists, err)))
    goto done;
  if (exists && ((rc = load_applied(c, dir, &s, err)) || (rc = check_history(dir, &s, 0, err))))
    goto done;
  for (size_t i = 0; i < s.n; i++)
    report(&s.v[i], cb, arg);
done:
  PQfinish(c);
  mset_release(&s);
  return rc;
}
