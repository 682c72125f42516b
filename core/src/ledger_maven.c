/* ledger_maven.c: the Maven artifact index of the ledger (ledger.h, "Maven artifact
 * index"; table ledger_maven_artifacts of 0060_ledger_maven.sql): the row rules, the
 * index file format (header line, one comma-separated row per line) and the batched
 * upsert. The file is read line by line with a bounded line buffer, so a file of any size
 * costs one batch of memory. Rows queue like advisories: one jsonb array expanded by
 * jsonb_to_recordset per batch, in one tenant transaction (COPY cannot target RLS
 * tables). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_internal.h"
#include "stella/jcs.h"
#include "stella/mem.h"

static const char upsert_sql[] =
    "WITH rows AS (\n"
    "  SELECT DISTINCT ON (r.group_id, r.artifact_id, r.version, r.sha1) r.*\n"
    "  FROM jsonb_to_recordset($1::jsonb) AS r(group_id text, artifact_id text,\n"
    "    version text, sha1 text, packaging ledger_maven_packaging, modified timestamptz,\n"
    "    row_sha256 text)\n"
    "  ORDER BY r.group_id, r.artifact_id, r.version, r.sha1, r.modified DESC NULLS LAST,\n"
    "    r.row_sha256),\n"
    "up AS (\n"
    "  INSERT INTO ledger_maven_artifacts AS m (tenant_id, group_id, artifact_id, version,\n"
    "    sha1, packaging, modified, row_sha256)\n"
    "  SELECT $2, group_id, artifact_id, version, sha1, packaging, modified, row_sha256\n"
    "  FROM rows\n"
    "  ON CONFLICT (tenant_id, group_id, artifact_id, version, sha1) DO UPDATE SET\n"
    "    packaging = EXCLUDED.packaging, modified = EXCLUDED.modified,\n"
    "    row_sha256 = EXCLUDED.row_sha256, imported_at = now()\n"
    "  WHERE EXCLUDED.row_sha256 <> m.row_sha256 AND (m.modified IS NULL OR\n"
    "    EXCLUDED.modified >= m.modified)\n"
    "  RETURNING (xmax = 0) AS inserted)\n"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

static int coord_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 256)
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
      return 0;
  return 1;
}

static int version_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 128)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == ',')
      return 0;
  return 1;
}

int st_ledger_maven_check(const st_ledger_maven_row_t *r, st_error_t *err) {
  if (!coord_ok(r->group_id))
    return st_fail(err, ST_EINVAL, "group_id: expected 1..256 bytes of [A-Za-z0-9._-]");
  if (!coord_ok(r->artifact_id))
    return st_fail(err, ST_EINVAL, "artifact_id: expected 1..256 bytes of [A-Za-z0-9._-]");
  if (!version_ok(r->version))
    return st_fail(err, ST_EINVAL, "version: expected 1..128 printable bytes without spaces "
                   "or commas");
  if (!r->sha1 || strlen(r->sha1) != 40 || strspn(r->sha1, "0123456789abcdefABCDEF") != 40)
    return st_fail(err, ST_EINVAL, "sha1: expected 40 hex digits");
  if (!r->packaging || (strcmp(r->packaging, "jar") && strcmp(r->packaging, "aar")))
    return st_fail(err, ST_EINVAL, "archive_type: expected \"jar\" or \"aar\"");
  if (r->modified && *r->modified && !st_ledger_rfc3339_valid(r->modified))
    return st_fail(err, ST_EINVAL, "modified: expected an RFC 3339 date-time or nothing");
  return 0;
}

/* 1: the header without modified, 2: with it, 0: not a header. */
static int header_kind(const char *s, size_t len) {
  static const char h[] = ST_LEDGER_MAVEN_HEADER;
  size_t n = sizeof(h) - 1;
  if (len < n || memcmp(s, h, n))
    return 0;
  s += n;
  len -= n;
  if (len >= 9 && !memcmp(s, ",modified", 9)) {
    s += 9;
    len -= 9;
    n = 2;
  } else {
    n = 1;
  }
  if (len && *s == '\r')
    s++, len--;
  return len == 0 || *s == '\n' ? (int)n : 0;
}

int st_ledger_maven_detect(const char *text, size_t len) { return header_kind(text, len) != 0; }

static char *field(char **p) {
  char *s = *p, *c = s ? strchr(s, ',') : NULL;
  if (c) {
    *c = '\0';
    *p = c + 1;
  } else {
    *p = NULL;
  }
  return s;
}

int st_ledger_maven_parse_line(char *line, int with_modified, st_ledger_maven_row_t *out,
                               st_error_t *err) {
  char *p = line;
  memset(out, 0, sizeof(*out));
  out->group_id = field(&p);
  out->artifact_id = field(&p);
  out->version = field(&p);
  out->sha1 = field(&p);
  out->packaging = field(&p);
  if (with_modified)
    out->modified = field(&p);
  if (!out->packaging || (with_modified && !out->modified) || p)
    return st_fail(err, ST_EINVAL, "expected %d comma-separated fields", with_modified ? 6 : 5);
  return st_ledger_maven_check(out, err);
}

/* The queued row: the canonical row object plus its digest. */
int st_ledger_loader_add_maven(st_ledger_loader_t *l, const st_ledger_maven_row_t *r,
                               st_error_t *err) {
  char sha1[41];
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  st_buf_t canon = ST_BUF_INIT;
  json_t *o = NULL;
  int rc;

  if ((rc = st_ledger_maven_check(r, err)))
    return rc;
  for (int i = 0; i < 40; i++)
    sha1[i] = (char)tolower((unsigned char)r->sha1[i]);
  sha1[40] = '\0';
  o = json_pack("{ssssssssss}", "group_id", r->group_id, "artifact_id", r->artifact_id,
                "version", r->version, "sha1", sha1, "packaging", r->packaging);
  if (o && r->modified && *r->modified)
    json_object_set_new(o, "modified", json_string(r->modified));
  if (!o || (rc = st_jcs_encode(o, &canon, err)) || st_sha256(canon.data, canon.len, d)) {
    rc = rc ? rc : st_fail(err, ST_ENOMEM, "ledger: out of memory");
    goto done;
  }
  st_sha256_hex(d, hex);
  json_object_set_new(o, "row_sha256", json_string(hex));
  st_buf_reset(&canon);
  if ((rc = st_jcs_encode(o, &canon, err)))
    goto done;
  if (st_buf_addc(&l->maven, l->mqueued ? ',' : '[') ||
      st_buf_add(&l->maven, canon.data, canon.len)) {
    rc = st_fail(err, ST_ETOOBIG, "ledger: batch too large");
    goto done;
  }
  l->mqueued++;
  if (l->mqueued >= l->batch * 10 || l->maven.len >= ST__LEDGER_BATCH_BYTES / 2)
    rc = st__ledger_maven_flush(l, err);
done:
  json_decref(o);
  st_buf_release(&canon);
  return rc;
}

typedef struct mtx_s {
  st_ledger_loader_t *l;
  long long added, replaced;
} mtx_t;

static int maven_tx(PGconn *c, void *arg, st_error_t *err) {
  mtx_t *t = arg;
  const char *p[2] = {t->l->maven.data, t->l->tenant};
  PGresult *res = NULL;
  int rc = st_db_exec(c, upsert_sql, 2, p, &res, err);
  if (!rc && (PQntuples(res) != 1 || PQnfields(res) != 2))
    rc = st_fail(err, ST_EDB, "ledger: unexpected result shape");
  if (!rc) {
    t->added = atoll(PQgetvalue(res, 0, 0));
    t->replaced = atoll(PQgetvalue(res, 0, 1));
  }
  PQclear(res);
  return rc;
}

int st__ledger_maven_flush(st_ledger_loader_t *l, st_error_t *err) {
  mtx_t t = {l, 0, 0};
  int rc;

  if (!l->mqueued)
    return 0;
  if (st_buf_addc(&l->maven, ']'))
    return st_fail(err, ST_ETOOBIG, "ledger: batch too large");
  rc = st_db_tenant_tx(l->pool, l->tenant, maven_tx, &t, err);
  if (!rc) {
    l->stats.added[ST_LEDGER_MAVEN] += t.added;
    l->stats.replaced[ST_LEDGER_MAVEN] += t.replaced;
    l->stats.unchanged[ST_LEDGER_MAVEN] += (long long)l->mqueued - t.added - t.replaced;
  }
  st_buf_reset(&l->maven);
  l->mqueued = 0;
  return rc;
}

/* One line of at most ST_LEDGER_MAVEN_LINE_MAX bytes into b (without the newline); a
 * longer line is consumed and reported by *over. 1 = a line, 0 = end of file. */
static int read_line(FILE *f, st_buf_t *b, int *over) {
  int c, any = 0;
  st_buf_reset(b);
  *over = 0;
  while ((c = getc(f)) != EOF) {
    any = 1;
    if (c == '\n')
      break;
    if (b->len >= ST_LEDGER_MAVEN_LINE_MAX)
      *over = 1;
    else if (st_buf_addc(b, (char)c))
      *over = 1;
  }
  if (b->len && b->data[b->len - 1] == '\r')
    b->data[--b->len] = '\0';
  return any;
}

int st_ledger_maven_load_file(st_ledger_loader_t *l, const char *path,
                              void (*on_reject)(void *ud, size_t line, const st_error_t *e),
                              void *ud, long long *rejected, st_error_t *err) {
  FILE *f = fopen(path, "rb");
  st_buf_t line = ST_BUF_INIT;
  size_t no = 0;
  int rc = 0, over, mod = 0;

  if (rejected)
    *rejected = 0;
  if (!f)
    return st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
  st_buf_init(&line, ST_LEDGER_MAVEN_LINE_MAX + 16);
  while (!rc && read_line(f, &line, &over)) {
    st_ledger_maven_row_t r;
    st_error_t e = ST_ERROR_INIT;
    no++;
    if (no == 1) {
      if (!(mod = header_kind(line.data, line.len)) || over)
        rc = st_fail(err, ST_EPARSE, "%s: line 1: expected the header \"%s[,modified]\"", path,
                     ST_LEDGER_MAVEN_HEADER);
      continue;
    }
    if (!line.len && !over)
      continue;
    if (over)
      st_fail(&e, ST_ETOOBIG, "line over %d bytes", ST_LEDGER_MAVEN_LINE_MAX);
    else if (strlen(line.data) != line.len)
      st_fail(&e, ST_EINVAL, "a NUL byte in the line");
    else if (st_ledger_maven_parse_line(line.data, mod == 2, &r, &e) == 0 &&
             (rc = st_ledger_loader_add_maven(l, &r, err)))
      break;
    if (e.code) {
      if (rejected)
        ++*rejected;
      if (on_reject)
        on_reject(ud, no, &e);
    }
  }
  if (!rc && ferror(f))
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
  else if (!rc && no == 0)
    rc = st_fail(err, ST_EPARSE, "%s: empty: expected the header \"%s[,modified]\"", path,
                 ST_LEDGER_MAVEN_HEADER);
  st_buf_release(&line);
  fclose(f);
  return rc;
}
