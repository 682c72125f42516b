/* trivy_java_db.c: the Trivy Java DB v1 builder (trivy.h): trivy-java.db, the SQLite
 * SHA-1 -> Maven coordinates index Trivy uses to name JAR/AAR files it finds.
 *
 * Schema: exactly trivy-java-db's (pkg/db/db.go Init): tables artifacts(id INTEGER
 * PRIMARY KEY, group_id TEXT, artifact_id TEXT) and indices(artifact_id INTEGER, version
 * TEXT, sha1 BLOB, archive_type TEXT, foreign key to artifacts), indexes artifacts_idx
 * (unique on artifact_id, group_id), indices_artifact_idx, indices_sha1_idx (unique).
 *
 * Determinism: rows are staged in a TEMP table (a separate file, never part of the DB),
 * then inserted in (group, artifact, version, sha1) order, so artifact ids and page
 * contents depend only on the set of rows. Page size 4096, rollback journal off while
 * building (the file is private until renamed; never WAL), VACUUM last. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stella/ledger.h"
#include "stella/mem.h"
#include "trivy_internal.h"

struct st_trivy_java_db_s {
  char *dir, *tmp_path;
  sqlite3 *db;
  sqlite3_stmt *ins;
  st_trivy_opts_t opts;
  int64_t latest;
  int fixed_time, failed, spent;
  uint64_t rows;
};

int st_trivy_maven_row_check(const st_trivy_maven_row_t *r, st_error_t *err) {
  st_ledger_maven_row_t lr = {r->group_id, r->artifact_id, r->version, r->sha1,
                              r->archive_type, NULL};
  return st_ledger_maven_check(&lr, err);
}

static int sql_fail(st_trivy_java_db_t *b, st_error_t *err, const char *what) {
  b->failed = 1;
  return st_fail(err, ST_EIO, "trivy-java.db: %s: %s", what,
                 b->db ? sqlite3_errmsg(b->db) : "cannot open");
}

static int exec(st_trivy_java_db_t *b, const char *sql, st_error_t *err) {
  return sqlite3_exec(b->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : sql_fail(b, err, sql);
}

int st_trivy_java_db_new(const char *out_dir, const st_trivy_opts_t *opts,
                         st_trivy_java_db_t **out, st_error_t *err) {
  static const char *const setup =
      "PRAGMA page_size=4096;"
      "PRAGMA journal_mode=OFF;"
      "PRAGMA synchronous=OFF;"
      "PRAGMA temp_store=FILE;"
      "PRAGMA foreign_keys=true;"
      "CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);"
      "CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT, "
      "foreign key (artifact_id) references artifacts(id));"
      "CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id);"
      "CREATE INDEX indices_artifact_idx ON indices(artifact_id);"
      "CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1);"
      "CREATE TEMP TABLE staged(g TEXT, a TEXT, v TEXT, sha1 BLOB, t TEXT);";
  st_trivy_opts_t o = opts ? *opts : (st_trivy_opts_t){0};
  st_trivy_java_db_t *b = NULL;
  int rc;

  *out = NULL;
  if (o.schema_version && o.schema_version != ST_TRIVY_JAVA_DB_SCHEMA)
    return st_fail(err, ST_EUNSUPPORTED, "schema version %d: this build writes Trivy Java DB "
                   "schema %d only", o.schema_version, ST_TRIVY_JAVA_DB_SCHEMA);
  if (o.next_update_s < 0)
    return st_fail(err, ST_EINVAL, "next_update_s: negative");
  if ((rc = st__trivy_mkdir(out_dir, err)))
    return rc;
  if (!(b = st_calloc(1, sizeof(*b))) || !(b->dir = st_strdup(out_dir)) ||
      !(b->tmp_path = st__trivy_path(out_dir, ".trivy-java.db.building"))) {
    rc = st_fail(err, ST_ENOMEM, "trivy java db");
    goto fail;
  }
  if ((rc = st__trivy_updated_at(&o, 0, &b->latest, err)))
    goto fail;
  b->fixed_time = o.updated_at != NULL;
  o.updated_at = NULL;
  b->opts = o;
  if (unlink(b->tmp_path) && errno != ENOENT) {
    rc = st_fail(err, ST_EIO, "%s: %s", b->tmp_path, strerror(errno));
    goto fail;
  }
  if (sqlite3_open_v2(b->tmp_path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
      SQLITE_OK) {
    rc = sql_fail(b, err, "open");
    goto fail;
  }
  if ((rc = exec(b, setup, err)))
    goto fail;
  if (sqlite3_prepare_v2(b->db, "INSERT INTO temp.staged VALUES (?, ?, ?, ?, ?)", -1,
                         &b->ins, NULL) != SQLITE_OK) {
    rc = sql_fail(b, err, "prepare");
    goto fail;
  }
  *out = b;
  return 0;
fail:
  st_trivy_java_db_free(b);
  return rc;
}

static int hexval(char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

int st_trivy_java_db_add(st_trivy_java_db_t *b, const st_trivy_maven_row_t *r,
                         const char *modified, st_error_t *err) {
  unsigned char sha[20];
  int64_t t;
  int rc;

  if (b->failed || b->spent)
    return st_fail(err, ST_EIO, "trivy java db: builder failed or finished");
  if ((rc = st_trivy_maven_row_check(r, err)))
    return rc;
  if (modified && st__trivy_time(modified, &t))
    return st_fail(err, ST_EINVAL, "modified: not an RFC 3339 time");
  for (int i = 0; i < 20; i++)
    sha[i] = (unsigned char)(hexval(r->sha1[2 * i]) << 4 | hexval(r->sha1[2 * i + 1]));
  sqlite3_reset(b->ins);
  if (sqlite3_bind_text(b->ins, 1, r->group_id, -1, SQLITE_TRANSIENT) ||
      sqlite3_bind_text(b->ins, 2, r->artifact_id, -1, SQLITE_TRANSIENT) ||
      sqlite3_bind_text(b->ins, 3, r->version, -1, SQLITE_TRANSIENT) ||
      sqlite3_bind_blob(b->ins, 4, sha, 20, SQLITE_TRANSIENT) ||
      sqlite3_bind_text(b->ins, 5, r->archive_type, -1, SQLITE_TRANSIENT) ||
      sqlite3_step(b->ins) != SQLITE_DONE)
    return sql_fail(b, err, "staging a row");
  if (modified && !b->fixed_time && t > b->latest)
    b->latest = t;
  b->rows++;
  return 0;
}

int st_trivy_java_db_finish(st_trivy_java_db_t *b, st_trivy_result_t *res, st_error_t *err) {
  static const char *const build =
      "BEGIN;"
      "INSERT INTO artifacts(group_id, artifact_id) "
      "SELECT DISTINCT g, a FROM temp.staged ORDER BY g, a;"
      "INSERT INTO indices(artifact_id, version, sha1, archive_type) "
      "SELECT (SELECT id FROM artifacts WHERE group_id = g AND artifact_id = a), v, sha1, t "
      "FROM temp.staged WHERE true ORDER BY g, a, v, sha1 ON CONFLICT(sha1) DO NOTHING;"
      "COMMIT;"
      "DROP TABLE temp.staged;"
      "VACUUM;";
  st_trivy_result_t r = {0};
  char *path = NULL;
  sqlite3_int64 written;
  int rc;

  if (b->failed || b->spent)
    return st_fail(err, ST_EIO, "trivy java db: builder failed or finished");
  b->spent = 1;
  sqlite3_finalize(b->ins);
  b->ins = NULL;
  if ((rc = exec(b, build, err)))
    goto done;
  {
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(b->db, "SELECT count(*) FROM indices", -1, &q, NULL) ||
        sqlite3_step(q) != SQLITE_ROW) {
      sqlite3_finalize(q);
      rc = sql_fail(b, err, "counting rows");
      goto done;
    }
    written = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
  }
  if (sqlite3_close(b->db) != SQLITE_OK) {
    rc = sql_fail(b, err, "close");
    goto done;
  }
  b->db = NULL;
  if (!(path = st__trivy_path(b->dir, "trivy-java.db"))) {
    rc = st_fail(err, ST_ENOMEM, "trivy java db");
    goto done;
  }
  if (rename(b->tmp_path, path)) {
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
    goto done;
  }
  r.documents = b->rows;
  r.records = (uint64_t)written;
  r.duplicates = b->rows - (uint64_t)written;
  if ((rc = st__trivy_publish(b->dir, "trivy-java.db", "javadb.tar.gz",
                              ST_TRIVY_JAVA_DB_SCHEMA, b->latest, &b->opts, &r, err)))
    goto done;
  if (res)
    *res = r;
done:
  st_free(path);
  return rc;
}

void st_trivy_java_db_free(st_trivy_java_db_t *b) {
  if (!b)
    return;
  sqlite3_finalize(b->ins);
  if (b->db)
    sqlite3_close(b->db);
  if (b->tmp_path)
    unlink(b->tmp_path);
  st_free(b->tmp_path);
  st_free(b->dir);
  st_free(b);
}

/* ---- the Maven index file (ledger.h) ---- */

int st_trivy_java_db_add_csv(st_trivy_java_db_t *b, const char *path,
                             void (*on_reject)(void *ud, size_t line, const st_error_t *e),
                             void *ud, uint64_t *added, uint64_t *rejected, st_error_t *err) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0, no = 0;
  ssize_t n;
  int rc = 0, mod = 0;

  *added = *rejected = 0;
  if (!f)
    return st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
  while ((n = getline(&line, &cap, f)) >= 0) {
    st_trivy_maven_row_t r;
    st_ledger_maven_row_t lr;
    st_error_t e = ST_ERROR_INIT;
    no++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (no == 1) {
      if (!st_ledger_maven_detect(line, (size_t)n)) {
        rc = st_fail(err, ST_EPARSE, "%s: line 1: expected the header \"%s[,modified]\"",
                     path, ST_LEDGER_MAVEN_HEADER);
        goto done;
      }
      mod = strchr(line + sizeof(ST_LEDGER_MAVEN_HEADER) - 1, ',') != NULL;
      continue;
    }
    if (n == 0)
      continue;
    if (n > ST_LEDGER_MAVEN_LINE_MAX) {
      st_fail(&e, ST_ETOOBIG, "line over %d bytes", ST_LEDGER_MAVEN_LINE_MAX);
    } else if (strlen(line) != (size_t)n) {
      st_fail(&e, ST_EINVAL, "a NUL byte in the line");
    } else if (!st_ledger_maven_parse_line(line, mod, &lr, &e)) {
      r = (st_trivy_maven_row_t){lr.group_id, lr.artifact_id, lr.version, lr.sha1,
                                 lr.packaging};
      if ((rc = st_trivy_java_db_add(b, &r, lr.modified && *lr.modified ? lr.modified : NULL,
                                     &e)) && b->failed) {
        *err = e;
        goto done;
      }
      rc = 0;
    }
    if (e.code) {
      ++*rejected;
      if (on_reject)
        on_reject(ud, no, &e);
    } else {
      ++*added;
    }
  }
  if (ferror(f))
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
  else if (no == 0)
    rc = st_fail(err, ST_EPARSE, "%s: empty: expected the header \"%s[,modified]\"", path,
                 ST_LEDGER_MAVEN_HEADER);
done:
  free(line);
  fclose(f);
  return rc;
}
