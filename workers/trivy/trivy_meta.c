/* trivy_meta.c: what both Trivy adapters write besides the database: times (RFC 3339,
 * UTC, whole seconds), metadata.json in the field order of Go's encoding of trivy-db's
 * and trivy-java-db's Metadata struct, and the deterministic tarball (stella/tgz.h:
 * sorted entries, fixed owners and modes, gzip header without time or name). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stella/ledger.h"
#include "stella/mem.h"
#include "stella/tgz.h"
#include "trivy_internal.h"

int st__trivy_time(const char *s, int64_t *out) {
  struct tm tm;
  int y, mo, d, h, mi, sec, n = 0;
  int64_t off = 0;
  const char *p;

  if (!s || !st_ledger_rfc3339_valid(s) ||
      sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
    return ST_EINVAL;
  p = s + n;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++)
      ;
  if (*p == '+' || *p == '-') {
    int oh = 0, om = 0;
    if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
      return ST_EINVAL;
    off = (*p == '+' ? 1 : -1) * ((int64_t)oh * 3600 + om * 60);
  }
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec == 60 ? 59 : sec;
  *out = (int64_t)timegm(&tm) - off;
  return 0;
}

void st__trivy_time_fmt(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int st__trivy_updated_at(const st_trivy_opts_t *o, int64_t latest, int64_t *out,
                         st_error_t *err) {
  if (!o || !o->updated_at) {
    *out = latest;
    return 0;
  }
  if (st__trivy_time(o->updated_at, out) || *out < 0)
    return st_fail(err, ST_EINVAL, "updated_at: \"%s\" is not an RFC 3339 time after 1970",
                   o->updated_at);
  return 0;
}

int st__trivy_fmt(char **out, const char *fmt, ...) {
  st_buf_t b = ST_BUF_INIT;
  va_list ap;
  int rc;
  va_start(ap, fmt);
  rc = st_buf_vaddf(&b, fmt, ap);
  va_end(ap);
  if (rc) {
    st_buf_release(&b);
    *out = NULL;
    return -1;
  }
  *out = st_buf_detach(&b, NULL);
  return *out ? 0 : -1;
}

char *st__trivy_path(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = st_malloc(a + b + 2);
  if (p) {
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
  }
  return p;
}

int st__trivy_mkdir(const char *dir, st_error_t *err) {
  struct stat st;
  if (!dir || !*dir)
    return st_fail(err, ST_EINVAL, "output directory: empty");
  if (mkdir(dir, 0755) && errno != EEXIST)
    return st_fail(err, ST_EIO, "%s: %s", dir, strerror(errno));
  if (stat(dir, &st) || !S_ISDIR(st.st_mode))
    return st_fail(err, ST_EIO, "%s: not a directory", dir);
  return 0;
}

static int write_atomic(const char *path, const char *data, size_t len, st_error_t *err) {
  char *tmp = NULL;
  int fd = -1, rc = 0;
  size_t off = 0;

  if (!(tmp = st_malloc(strlen(path) + 8))) {
    rc = st_fail(err, ST_ENOMEM, "%s", path);
    goto done;
  }
  sprintf(tmp, "%s.XXXXXX", path);
  if ((fd = mkstemp(tmp)) < 0) {
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
    goto done;
  }
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
      goto done;
    }
    off += (size_t)w;
  }
  if (fchmod(fd, 0644) || fsync(fd) || close(fd)) {
    fd = -1;
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
    goto done;
  }
  fd = -1;
  if (rename(tmp, path))
    rc = st_fail(err, ST_EIO, "%s: %s", path, strerror(errno));
done:
  if (fd >= 0)
    close(fd);
  if (rc && tmp)
    unlink(tmp);
  st_free(tmp);
  return rc;
}

int st__trivy_publish(const char *dir, const char *db_name, const char *tarball,
                      int version, int64_t updated, const st_trivy_opts_t *o,
                      st_trivy_result_t *res, st_error_t *err) {
  char up[32], next[32], meta[192];
  char *meta_path = NULL, *db_path = NULL, *tgz_path = NULL;
  st_tgz_writer_t *w = NULL;
  st_tgz_options_t to = {.mtime = updated, .level = o ? o->tgz_level : 0};
  int64_t interval = o && o->next_update_s ? o->next_update_s : 86400;
  int n, rc;

  st__trivy_time_fmt(updated, up);
  st__trivy_time_fmt(updated + interval, next);
  n = snprintf(meta, sizeof(meta),
               "{\"Version\":%d,\"NextUpdate\":\"%s\",\"UpdatedAt\":\"%s\","
               "\"DownloadedAt\":\"%s\"}\n", version, next, up, up);
  if (res)
    memcpy(res->updated_at, up, sizeof(up));
  if (!(meta_path = st__trivy_path(dir, "metadata.json")) ||
      !(db_path = st__trivy_path(dir, db_name)) || !(tgz_path = st__trivy_path(dir, tarball))) {
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  if ((rc = write_atomic(meta_path, meta, (size_t)n, err)) ||
      (rc = st_tgz_writer_new(tgz_path, &to, &w, err)) ||
      (rc = st_tgz_add_file(w, db_name, db_path, err)) ||
      (rc = st_tgz_add_mem(w, "metadata.json", meta, (size_t)n, err)))
    goto done;
  rc = st_tgz_writer_finish(w, err);
done:
  st_tgz_writer_free(w);
  st_free(meta_path);
  st_free(db_path);
  st_free(tgz_path);
  return rc;
}
