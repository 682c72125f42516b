/* cli_bootstrap.c: Helm Chart.yaml fields, REPO:TAG names and unpacking a bootstrap pack's
 * OCI layout (cli_bootstrap.h). */
#include "cli_bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "stella/jcs.h"
#include "stella/oci.h"
#include "stella/tgz.h"

static int collect(void *ud, const void *data, size_t len, st_error_t *err) {
  return st_buf_add(ud, data, len) ? st_fail(err, ST_ETOOBIG, "Chart.yaml: over %u bytes",
                                              ST_CLI_CHART_YAML_MAX)
                                    : 0;
}

/* The value of a top-level `key: value` line, unquoted, into out. 1 found, 0 not. */
static int yaml_scalar(const char *text, size_t len, const char *key, st_buf_t *out) {
  size_t klen = strlen(key);
  for (size_t at = 0; at < len;) {
    const char *line = text + at, *nl = memchr(line, '\n', len - at);
    size_t ll = nl ? (size_t)(nl - line) : len - at;
    at += ll + 1;
    if (ll > klen && !memcmp(line, key, klen) && line[klen] == ':') {
      const char *v = line + klen + 1, *end = line + ll;
      while (v < end && (*v == ' ' || *v == '\t'))
        v++;
      while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
      if (end - v >= 2 && (*v == '"' || *v == '\'') && end[-1] == *v)
        v++, end--;
      st_buf_reset(out);
      return st_buf_add(out, v, (size_t)(end - v)) == 0;
    }
  }
  return 0;
}

static int chars_ok(const st_buf_t *b, const char *set, size_t max) {
  return b->len >= 1 && b->len <= max && strspn(b->data, set) == b->len;
}

void st_cli_chart_release(st_cli_chart_t *ch) {
  st_buf_release(&ch->name);
  st_buf_release(&ch->version);
  st_buf_release(&ch->tag);
  st_buf_release(&ch->config);
}

int st_cli_chart_read(const char *tgz, st_cli_chart_t *ch, st_error_t *err) {
  st_tgz_reader_t *r = NULL;
  const st_tgz_entry_t *e;
  st_buf_t yaml, api = ST_BUF_INIT;
  json_t *cfg = NULL;
  int rc, found = 0;

  st_buf_init(&ch->name, 0);
  st_buf_init(&ch->version, 0);
  st_buf_init(&ch->tag, 0);
  st_buf_init(&ch->config, 0);
  st_buf_init(&yaml, ST_CLI_CHART_YAML_MAX);
  if ((rc = st_tgz_reader_open(tgz, NULL, &r, err)))
    goto done;
  while (!found && (rc = st_tgz_reader_next(r, &e, err)) == 1) {
    const char *slash = strchr(e->path, '/');
    if (e->type == ST_TGZ_FILE && slash && slash != e->path && !strcmp(slash, "/Chart.yaml")) {
      if ((rc = st_tgz_reader_data(r, collect, &yaml, err)))
        goto done;
      found = 1;
    }
  }
  if (rc < 0)
    goto done;
  rc = ST_EINVAL;
  if (!found) {
    st_fail(err, rc, "no <chart>/Chart.yaml in the archive");
    goto done;
  }
  if (!yaml_scalar(yaml.data, yaml.len, "name", &ch->name) ||
      !chars_ok(&ch->name, "abcdefghijklmnopqrstuvwxyz0123456789-", 63) ||
      ch->name.data[0] == '-') {
    st_fail(err, rc, "Chart.yaml name: missing or not [a-z0-9-]{1,63}");
    goto done;
  }
  if (!yaml_scalar(yaml.data, yaml.len, "version", &ch->version) ||
      !chars_ok(&ch->version,
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+_-", 128)) {
    st_fail(err, rc, "Chart.yaml version: missing or not [A-Za-z0-9.+_-]{1,128}");
    goto done;
  }
  if (!yaml_scalar(yaml.data, yaml.len, "apiVersion", &api) || strcmp(api.data, "v2")) {
    st_fail(err, rc, "Chart.yaml apiVersion: want v2 (Helm 3 charts)");
    goto done;
  }
  for (size_t i = 0; i < ch->version.len; i++)
    if (st_buf_addc(&ch->tag, ch->version.data[i] == '+' ? '_' : ch->version.data[i]))
      goto nomem;
  if (!st_oci_tag_valid(ch->tag.data)) {
    st_fail(err, rc, "Chart.yaml version '%s' is not a valid OCI tag", ch->version.data);
    goto done;
  }
  if (!(cfg = json_pack("{s:s, s:s, s:s}", "apiVersion", "v2", "name", ch->name.data, "version",
                        ch->version.data)) ||
      st_jcs_encode(cfg, &ch->config, err))
    goto nomem;
  rc = 0;
  goto done;
nomem:
  rc = st_fail(err, ST_ENOMEM, "out of memory");
done:
  if (rc)
    st_error_wrap(err, "chart %s", tgz);
  json_decref(cfg);
  st_buf_release(&yaml);
  st_buf_release(&api);
  st_tgz_reader_free(r);
  return rc;
}

int st_cli_ref_split(const char *name, st_buf_t *repo, st_buf_t *tag) {
  const char *colon = strrchr(name, ':');
  st_buf_t r = ST_BUF_INIT;
  int ok = colon && colon != name && st_oci_tag_valid(colon + 1) &&
           st_buf_add(&r, name, (size_t)(colon - name)) == 0 && st_oci_repo_valid(r.data);
  if (ok && repo) {
    st_buf_reset(repo);
    ok = st_buf_adds(repo, r.data) == 0;
  }
  if (ok && tag) {
    st_buf_reset(tag);
    ok = st_buf_adds(tag, colon + 1) == 0;
  }
  st_buf_release(&r);
  return ok;
}

static int write_fd(void *ud, const void *data, size_t len, st_error_t *err) {
  const char *p = data;
  while (len) {
    ssize_t w = write(*(int *)ud, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return st_fail(err, ST_EIO, "write: %s", strerror(errno));
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int st_cli_pack_extract(const char *pack, const char *dir, st_error_t *err) {
  static const char pre[] = "payload/oci/";
  st_tgz_reader_t *r = NULL;
  const st_tgz_entry_t *e;
  int dfd = -1, fd = -1, rc;

  if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)) < 0)
    return st_fail(err, ST_EIO, "%s: %s", dir, strerror(errno));
  if (mkdirat(dfd, "blobs", 0755) || mkdirat(dfd, "blobs/sha256", 0755)) {
    rc = st_fail(err, ST_EIO, "%s/blobs/sha256: %s", dir, strerror(errno));
    goto done;
  }
  if ((rc = st_tgz_reader_open(pack, NULL, &r, err)))
    goto done;
  while ((rc = st_tgz_reader_next(r, &e, err)) == 1) {
    const char *rel = e->path + sizeof(pre) - 1;
    if (e->type != ST_TGZ_FILE || strncmp(e->path, pre, sizeof(pre) - 1))
      continue;
    if (strcmp(rel, "oci-layout") && strcmp(rel, "index.json") &&
        (strncmp(rel, "blobs/sha256/", 13) || strlen(rel + 13) != 64 ||
         strspn(rel + 13, "0123456789abcdef") != 64)) {
      rc = st_fail(err, ST_EUNSAFE, "%.200s: not part of an OCI layout", e->path);
      goto done;
    }
    if ((fd = openat(dfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
      rc = st_fail(err, ST_EIO, "%s/%s: %s", dir, rel, strerror(errno));
      goto done;
    }
    if ((rc = st_tgz_reader_data(r, write_fd, &fd, err)))
      goto done;
    if (close(fd)) {
      fd = -1;
      rc = st_fail(err, ST_EIO, "%s/%s: close failed", dir, rel);
      goto done;
    }
    fd = -1;
  }
done:
  if (fd >= 0)
    close(fd);
  close(dfd);
  st_tgz_reader_free(r);
  return rc < 0 ? rc : 0;
}
