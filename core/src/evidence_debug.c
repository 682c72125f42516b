/* evidence_debug.c: the debug artifacts incident mode adds to snapshots
 * (run/debug/config.json and run/debug/environment.json; the job log comes from Postgres
 * in evidence_snapshot.c). Both are about the process that seals: the worker's resolved
 * configuration and its environment.
 *
 * Redaction: a key or variable whose name mentions secret, password, passphrase, token,
 * pin or credential reads "[redacted]", and so does any value carrying a libpq
 * `password=` or the password of a URL's userinfo (scheme://user:pass@host: the user is
 * kept). Only STELLA_* variables are captured: the rest of an environment is nobody's
 * business and may hold anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "evidence_internal.h"
#include "stella/mem.h"
#include "stella/version.h"

extern char **environ;

#define REDACTED "[redacted]"

static int secret_name(const char *name) {
  static const char *const words[] = {"secret", "password", "passphrase", "token", "pin",
                                      "credential"};
  size_t n = strlen(name);
  for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
    size_t wl = strlen(words[w]);
    for (size_t i = 0; i + wl <= n; i++)
      if (!strncasecmp(name + i, words[w], wl))
        return 1;
  }
  return 0;
}

/* The value with a URL userinfo password cut out; NULL when it must be redacted whole. */
static json_t *redact_value(const char *v) {
  const char *scheme = strstr(v, "://"), *at, *colon;
  st_buf_t b = ST_BUF_INIT;
  json_t *out;

  if (strstr(v, "password="))
    return json_string(REDACTED);
  if (!scheme || !(at = strchr(scheme + 3, '@')) ||
      !(colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3))))
    return json_string(v);
  if (st_buf_add(&b, v, (size_t)(colon - v) + 1) || st_buf_adds(&b, REDACTED) ||
      st_buf_adds(&b, at)) {
    st_buf_release(&b);
    return NULL;
  }
  out = json_string(b.data);
  st_buf_release(&b);
  return out;
}

json_t *st__evidence_config_json(const st_config_t *cfg) {
  json_t *o = json_object();
  if (!o || !cfg)
    return o;
  for (const st_config_key_t *k = st_config_keys(); k->name; k++) {
    const char *v = st_config_str(cfg, k->name);
    json_t *j;
    if (!v)
      continue;
    if (secret_name(k->name))
      j = json_string(REDACTED);
    else if (k->type == ST_CONFIG_INT)
      j = json_integer(st_config_int(cfg, k->name));
    else if (k->type == ST_CONFIG_BOOL)
      j = json_boolean(st_config_bool(cfg, k->name));
    else
      j = redact_value(v);
    if (!j || json_object_set_new(o, k->name, j)) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

json_t *st__evidence_environment_json(void) {
  struct utsname u;
  char host[256];
  json_t *vars = json_object(), *o = NULL;

  if (!vars)
    return NULL;
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    char name[128];
    size_t n;
    json_t *j;
    if (!eq || strncmp(*e, "STELLA_", 7) || (n = (size_t)(eq - *e)) >= sizeof(name))
      continue;
    memcpy(name, *e, n);
    name[n] = '\0';
    j = secret_name(name) ? json_string(REDACTED) : redact_value(eq + 1);
    if (!j || json_object_set_new(vars, name, j))
      goto fail;
  }
  if (gethostname(host, sizeof(host)))
    snprintf(host, sizeof(host), "unknown");
  host[sizeof(host) - 1] = '\0';
  if (uname(&u))
    memset(&u, 0, sizeof(u));
  o = json_pack("{s:s, s:s, s:I, s:{s:s, s:s, s:s}, s:O}", "hostname", host, "stella_version",
                st_version(), "pid", (json_int_t)getpid(), "uname", "sysname", u.sysname,
                "release", u.release, "machine", u.machine, "variables", vars);
fail:
  json_decref(vars);
  return o;
}
