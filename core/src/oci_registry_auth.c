/* oci_registry_auth.c: answering registry challenges (oci_registry.h).
 * `WWW-Authenticate: Basic realm=...` switches the client to Basic with its credentials;
 * `Bearer realm="..",service="..",scope=".."` makes it GET realm?service=&scope= (with
 * Basic credentials when it has some, as docker does) and cache the returned token per
 * scope. Credentials may come from a docker config.json (`auths.<host:port>.auth`). */
#include "oci_registry_internal.h"

#include <string.h>
#include <strings.h>

#include "oci_internal.h"
#include "stella/base64.h"
#include "stella/json.h"
#include "stella/mem.h"

#define TOKEN_MAX 8192
#define TOKEN_BODY_MAX ((size_t)256 * 1024)
#define DOCKER_CONFIG_MAX ((size_t)1 << 20)

const char *st__oci_token_for(const st_oci_client_t *c, const char *scope) {
  for (int i = 0; i < ST__OCI_TOKENS; i++)
    if (c->tokens[i].scope && !strcmp(c->tokens[i].scope, scope))
      return c->tokens[i].token;
  return NULL;
}

/* Find param `name` in an auth-param list: name=token or name="quoted\"string". The value
 * is appended to out (reset first); 1 found, 0 not, negative on malformed input. */
static int challenge_param(const char *s, const char *name, st_buf_t *out) {
  size_t nl = strlen(name);
  const char *p = s;
  st_buf_reset(out);
  while (*p) {
    const char *k;
    size_t kl;
    int match;
    while (*p == ' ' || *p == ',')
      p++;
    k = p;
    while (*p && *p != '=' && *p != ',' && *p != ' ')
      p++;
    kl = (size_t)(p - k);
    if (*p != '=')
      continue; /* a bare token (the scheme, handled by the caller) */
    p++;
    match = kl == nl && !strncasecmp(k, name, nl);
    if (*p == '"') {
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
          p++;
        if (match && st_buf_addc(out, *p))
          return ST_ETOOBIG;
      }
      if (*p != '"')
        return ST_EPARSE;
      p++;
    } else {
      for (; *p && *p != ',' && *p != ' '; p++)
        if (match && st_buf_addc(out, *p))
          return ST_ETOOBIG;
    }
    if (match)
      return 1;
  }
  return 0;
}

static int set_str(char **dst, const char *s) {
  char *n = st_strdup(s);
  if (!n)
    return ST_ENOMEM;
  st_free(*dst);
  *dst = n;
  return 0;
}

static int token_ok(const char *t, size_t len) {
  if (len == 0 || len > TOKEN_MAX)
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
      return 0;
  return 1;
}

static int fetch_token(st_oci_client_t *c, const char *scope, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT;
  st__oci_resp_t resp;
  st__oci_req_t req = {.method = "GET", .fd = -1, .no_auth = 1, .basic_only = 1};
  json_t *doc = NULL;
  const char *tok = NULL;
  char *esc;
  int rc = 0, slot;

  st__oci_resp_init(&resp, TOKEN_BODY_MAX);
  if (st_buf_adds(&url, c->realm) || st_buf_addc(&url, strchr(c->realm, '?') ? '&' : '?'))
    goto oom;
  if (c->service) {
    if (!(esc = curl_easy_escape(c->h, c->service, 0)))
      goto oom;
    rc = st_buf_addf(&url, "service=%s", esc);
    curl_free(esc);
    if (rc)
      goto oom;
  }
  for (const char *p = scope; p && *p;) {
    const char *e = strchr(p, ' ');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n) {
      if (!(esc = curl_easy_escape(c->h, p, (int)n)))
        goto oom;
      rc = st_buf_addf(&url, "%sscope=%s", url.data[url.len - 1] == '?' ? "" : "&", esc);
      curl_free(esc);
      if (rc)
        goto oom;
    }
    p += n + (e ? 1 : 0);
  }
  req.url = url.data;
  if ((rc = st__oci_call(c, &req, &resp, err)))
    goto done;
  if (resp.status != 200) {
    rc = st__oci_status_fail(&resp, err, "token request");
    if (rc == ST_EINVAL)
      rc = st_fail(err, ST_EPERM, "registry: token server answered HTTP %ld", resp.status);
    goto done;
  }
  if (st_json_parse(resp.body.data, resp.body.len, NULL, &doc, NULL) || !json_is_object(doc) ||
      (!(tok = json_string_value(json_object_get(doc, "token"))) &&
       !(tok = json_string_value(json_object_get(doc, "access_token")))) ||
      !token_ok(tok, strlen(tok))) {
    rc = st_fail(err, ST_EPERM, "registry: token server answer has no usable token");
    goto done;
  }
  slot = (int)(c->next_token++ % ST__OCI_TOKENS);
  if (c->tokens[slot].token)
    st_memzero(c->tokens[slot].token, strlen(c->tokens[slot].token));
  if (set_str(&c->tokens[slot].scope, scope ? scope : "") ||
      set_str(&c->tokens[slot].token, tok))
    goto oom;
  goto done;
oom:
  rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
done:
  if (doc) {
    json_t *t = json_object_get(doc, "token");
    if (json_is_string(t))
      st_memzero((char *)json_string_value(t), json_string_length(t));
  }
  json_decref(doc);
  st_memzero(resp.body.data, resp.body.len);
  st__oci_resp_release(&resp);
  st_buf_release(&url);
  return rc;
}

int st__oci_auth_challenge(st_oci_client_t *c, const char *www_auth, const char *scope,
                           st_error_t *err) {
  st_buf_t realm = ST_BUF_INIT, service = ST_BUF_INIT, cscope = ST_BUF_INIT;
  int rc = 0;

  st_buf_init(&realm, 2048);
  if (!strncasecmp(www_auth, "Basic", 5) && (!www_auth[5] || www_auth[5] == ' ')) {
    if (!c->basic) {
      rc = st_fail(err, ST_EPERM, "registry %s asks for credentials and none were given",
                   c->origin);
      goto done;
    }
    if (c->auth == ST__AUTH_BASIC) {
      rc = st_fail(err, ST_EPERM, "registry %s refused the credentials", c->origin);
      goto done;
    }
    c->auth = ST__AUTH_BASIC;
    goto done;
  }
  if (strncasecmp(www_auth, "Bearer ", 7)) {
    rc = st_fail(err, ST_EPERM, "registry %s: unsupported challenge '%.40s'", c->origin,
                 www_auth);
    goto done;
  }
  if (challenge_param(www_auth + 7, "realm", &realm) != 1 ||
      (strncmp(realm.data, "https://", 8) && strncmp(realm.data, "http://", 7))) {
    rc = st_fail(err, ST_EPERM, "registry %s: Bearer challenge without an http(s) realm",
                 c->origin);
    goto done;
  }
  if (challenge_param(www_auth + 7, "service", &service) < 0 ||
      challenge_param(www_auth + 7, "scope", &cscope) < 0) {
    rc = st_fail(err, ST_EPERM, "registry %s: malformed Bearer challenge", c->origin);
    goto done;
  }
  if (set_str(&c->realm, realm.data) ||
      (service.len ? set_str(&c->service, service.data) : 0)) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  /* a cached token refused (expired): forget it and ask again, once per request */
  for (int i = 0; i < ST__OCI_TOKENS; i++)
    if (c->tokens[i].scope && !strcmp(c->tokens[i].scope, scope ? scope : cscope.data)) {
      st_free(c->tokens[i].scope);
      c->tokens[i].scope = NULL;
    }
  c->auth = ST__AUTH_BEARER;
  rc = fetch_token(c, scope ? scope : cscope.data, err);
done:
  st_buf_release(&realm);
  st_buf_release(&service);
  st_buf_release(&cscope);
  return rc;
}

int st__oci_auth_prepare(st_oci_client_t *c, const char *scope, st_error_t *err) {
  if (c->auth != ST__AUTH_BEARER || !scope || st__oci_token_for(c, scope))
    return 0;
  return fetch_token(c, scope, err);
}

/* "https://host:port/v1/" -> "host:port" */
static int config_key_matches(const char *key, const char *hostport) {
  size_t n;
  if (!strncmp(key, "https://", 8))
    key += 8;
  else if (!strncmp(key, "http://", 7))
    key += 7;
  n = strcspn(key, "/");
  return n == strlen(hostport) && !strncasecmp(key, hostport, n);
}

int st__oci_docker_config(st_oci_client_t *c, const char *path, st_error_t *err) {
  st_buf_t dec = ST_BUF_INIT, b64 = ST_BUF_INIT;
  json_t *doc = NULL, *auths, *v;
  const char *key, *a;
  char *text = NULL;
  size_t len = 0;
  int rc;

  if ((rc = st__oci_read_file(path, DOCKER_CONFIG_MAX, &text, &len, err)))
    goto done;
  if ((rc = st_json_parse(text, len, NULL, &doc, err)) || !json_is_object(doc)) {
    rc = st_fail(err, ST_EPARSE, "docker config %s: not a JSON object", path);
    goto done;
  }
  if (!(auths = json_object_get(doc, "auths")) || !json_is_object(auths))
    goto done;
  json_object_foreach(auths, key, v) {
    if (!config_key_matches(key, c->hostport))
      continue;
    if (!(a = json_string_value(json_object_get(v, "auth"))))
      continue;
    if (st_base64_decode(&dec, a, strlen(a), NULL) || !memchr(dec.data, ':', dec.len)) {
      rc = st_fail(err, ST_EPARSE, "docker config %s: auths.%.100s.auth is not "
                   "base64(user:password)", path, key);
      goto done;
    }
    if ((rc = st_base64_encode(&b64, dec.data, dec.len))) {
      rc = st_fail(err, rc, "docker config: credentials too long");
      goto done;
    }
    c->basic = st_buf_detach(&b64, NULL);
    break;
  }
done:
  st_memzero(dec.data, dec.len);
  st_buf_release(&dec);
  st_buf_release(&b64);
  if (text) {
    st_memzero(text, len);
    st_free(text);
  }
  json_decref(doc);
  return rc;
}
