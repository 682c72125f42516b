/* openapi.c: the OpenAPI document served at /.well-known/openapi, read once at start.
 * Path: config api_openapi_spec, else $STELLA_SOURCE_DIR/schemas/openapi/stella.yaml,
 * else the install share dir. Its strong ETag is the SHA-256 of the bytes; its
 * info.version is read from the YAML's top-level `info:` block (a line scan: the
 * document is ours, and a full YAML parser would be a new dependency for one field). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "api_internal.h"
#include "stella/mem.h"

#define SPEC_MAX (4 * 1024 * 1024)
#define SPEC_REL "schemas/openapi/stella.yaml"

#ifndef STELLA_SHARE_DIR
#define STELLA_SHARE_DIR "/usr/local/share/stella"
#endif

static char *info_version(const char *doc) {
  const char *p = strstr(doc, "\ninfo:\n");
  if (!p)
    return NULL;
  p += 7;
  while (*p == ' ') { /* lines of the info block are indented */
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (len > 11 && strncmp(p, "  version: ", 11) == 0) {
      const char *v = p + 11;
      size_t n = len - 11;
      if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0])
        v++, n -= 2;
      return st_strndup(v, n);
    }
    if (!eol)
      break;
    p = eol + 1;
  }
  return NULL;
}

int st__openapi_load(st_api_t *api, const st_config_t *cfg, st_error_t *err) {
  const char *path = st_config_str(cfg, "api_openapi_spec");
  const char *src = getenv("STELLA_SOURCE_DIR");
  st_buf_t b = ST_BUF_INIT;
  char pathbuf[4096], chunk[8192];
  unsigned char md[32];
  FILE *f = NULL;
  size_t n;
  int rc = 0;

  if (!path) {
    snprintf(pathbuf, sizeof(pathbuf), "%s/%s", src && *src ? src : STELLA_SHARE_DIR,
             src && *src ? SPEC_REL : "schemas/openapi/stella.yaml");
    path = pathbuf;
  }
  st_buf_init(&b, SPEC_MAX);
  if (!(f = fopen(path, "rb"))) {
    rc = st_fail(err, ST_ECONFIG, "api_openapi_spec: cannot open %s: %s", path,
                 strerror(errno));
    goto done;
  }
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    if ((rc = st_buf_add(&b, chunk, n))) {
      rc = st_fail(err, ST_ECONFIG, "api_openapi_spec: %s is larger than %d bytes", path,
                   SPEC_MAX);
      goto done;
    }
  if (ferror(f)) {
    rc = st_fail(err, ST_ECONFIG, "api_openapi_spec: cannot read %s", path);
    goto done;
  }
  if (!(api->spec_version = info_version(b.data))) {
    rc = st_fail(err, ST_ECONFIG, "api_openapi_spec: %s has no info.version", path);
    goto done;
  }
  if (EVP_Digest(b.data, b.len, md, NULL, EVP_sha256(), NULL) != 1) {
    rc = st_fail(err, ST_ECRYPTO, "api_openapi_spec: sha256 failed");
    goto done;
  }
  api->spec_etag[0] = '"';
  for (int i = 0; i < 32; i++)
    snprintf(api->spec_etag + 1 + 2 * i, 3, "%02x", md[i]);
  memcpy(api->spec_etag + 65, "\"", 2);
  api->spec = st_buf_detach(&b, &api->spec_len);
done:
  if (f)
    fclose(f);
  st_buf_release(&b);
  return rc;
}

/* RFC 9110 §13.1.2: weak comparison; "*" matches any current representation. */
int st__etag_match(const char *inm, const char *etag) {
  size_t el = strlen(etag);
  const char *p = inm;
  while (*p) {
    size_t n;
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (*p == '*')
      return 1;
    if (strncmp(p, "W/", 2) == 0)
      p += 2;
    n = strcspn(p, ",");
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
      n--;
    if (n == el && memcmp(p, etag, el) == 0)
      return 1;
    p += strcspn(p, ",");
  }
  return 0;
}
