/* ledger_policy.c: validation of Stella's two policy formats.
 *
 * stella.policy-pack/v1:    {"schema", "name", "version", "description"?, "rules": [{"id",
 *                           "verdict": pass|warn|fail|waived, ...}]}; name and version in
 *                           [A-Za-z0-9._+-]. The rule bodies belong to the policy engine and
 *                           are stored, not judged.
 * stella.policy-results/v1: {"schema", "pack": {"name", "version"}, "evaluated_at",
 *                           "results": [{"vulnerability", "component" (a purl),
 *                           "verdict", "rationale"?}]}; one result per finding
 *                           (vulnerability x component) in a file.
 * Each result row carries row_sha256 = SHA-256 of the canonical
 * {"pack": {...}, "evaluated_at": ..., "result": <the result object>}. */
#include <stdio.h>
#include <string.h>

#include "ledger_internal.h"
#include "stella/buf.h"
#include "stella/jcs.h"
#include "stella/mem.h"

#define RESULTS_MAX 100000

static const char *const verdicts[] = {"pass", "warn", "fail", "waived", NULL};

static int verdict(const json_t *obj, const char *path, const char **out, st_error_t *err) {
  int rc = st__ledger_str(obj, path, "verdict", 16, 0, out, err);
  if (rc)
    return rc;
  for (const char *const *v = verdicts; *v; v++)
    if (!strcmp(*v, *out))
      return 0;
  return st_fail(err, ST_EINVAL, "%s%sverdict: \"%s\" is not one of pass, warn, fail, waived",
                 path, *path ? "." : "", *out);
}

static int name_version(const json_t *obj, const char *path, const char **name,
                        const char **version, st_error_t *err) {
  static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-";
  int rc;
  if ((rc = st__ledger_str(obj, path, "name", 128, 0, name, err)) ||
      (rc = st__ledger_str(obj, path, "version", 64, 0, version, err)))
    return rc;
  if ((*name)[strspn(*name, ok)] || (*version)[strspn(*version, ok)])
    return st_fail(err, ST_EINVAL, "%s%sname/version: only [A-Za-z0-9._+-] allowed", path,
                   *path ? "." : "");
  return 0;
}

static char *pack_key(const char *name, const char *version) {
  st_buf_t b = ST_BUF_INIT;
  if (st_buf_addf(&b, "%s@%s", name, version)) {
    st_buf_release(&b);
    return NULL;
  }
  return st_buf_detach(&b, NULL);
}

int st__ledger_policy_pack(const json_t *doc, st_ledger_doc_t *d, json_t **row,
                           st_error_t *err) {
  const json_t *rules = json_object_get(doc, "rules"), *rule;
  const char *name, *version, *s;
  json_t *r;
  size_t i;
  int rc;

  *row = NULL;
  if ((rc = name_version(doc, "", &name, &version, err)))
    return rc;
  if (!json_is_array(rules) || json_array_size(rules) == 0)
    return st_fail(err, ST_EINVAL, "rules: expected a non-empty array");
  json_array_foreach(rules, i, rule) {
    char path[32];
    snprintf(path, sizeof(path), "rules[%zu]", i);
    if (!json_is_object(rule))
      return st_fail(err, ST_EINVAL, "%s: expected an object", path);
    if ((rc = st__ledger_str(rule, path, "id", 128, 0, &s, err)) ||
        (rc = verdict(rule, path, &s, err)))
      return rc;
  }
  if (!(r = json_object()) || !(d->key = pack_key(name, version)) ||
      json_object_set_new(r, "name", json_string(name)) ||
      json_object_set_new(r, "version", json_string(version)) ||
      json_object_set_new(r, "doc_sha256", json_string(d->sha256))) {
    json_decref(r);
    return st_fail(err, ST_ENOMEM, "policy pack");
  }
  *row = r;
  return 0;
}

/* SHA-256 hex of the canonical {"pack", "evaluated_at", "result"}. */
static int result_digest(const json_t *pack, const char *at, const json_t *res,
                         char hex[ST_SHA256_HEX_LEN + 1], st_error_t *err) {
  json_t *o = json_pack("{sOsssO}", "pack", pack, "evaluated_at", at, "result", res);
  st_buf_t b = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  int rc;

  if (!o)
    return st_fail(err, ST_ENOMEM, "policy result");
  rc = st_jcs_encode(o, &b, err);
  if (!rc && st_sha256(b.data, b.len, d))
    rc = st_fail(err, ST_ECRYPTO, "sha256 of a policy result failed");
  if (!rc)
    st_sha256_hex(d, hex);
  json_decref(o);
  st_buf_release(&b);
  return rc;
}

int st__ledger_policy_results(const json_t *doc, st_ledger_doc_t *d, json_t **row,
                              st_error_t *err) {
  const json_t *pack = json_object_get(doc, "pack"), *results = json_object_get(doc, "results"),
               *res;
  const char *name, *version, *at;
  json_t *r = NULL, *rows = NULL, *seen = NULL;
  st_buf_t key = ST_BUF_INIT;
  size_t i;
  int rc;

  *row = NULL;
  if (!json_is_object(pack))
    return st_fail(err, ST_EINVAL, "pack: %s", pack ? "expected an object" : "missing");
  if ((rc = name_version(pack, "pack", &name, &version, err)) ||
      (rc = st__ledger_time(doc, "", "evaluated_at", 0, &at, err)))
    return rc;
  if (!json_is_array(results) || json_array_size(results) == 0)
    return st_fail(err, ST_EINVAL, "results: expected a non-empty array");
  if (json_array_size(results) > RESULTS_MAX)
    return st_fail(err, ST_ETOOBIG, "results: more than %d", RESULTS_MAX);
  if (!(rows = json_array()) || !(seen = json_object()) || !(r = json_object())) {
    rc = st_fail(err, ST_ENOMEM, "policy results");
    goto done;
  }
  json_array_foreach(results, i, res) {
    const char *vuln, *purl, *v, *why = "";
    char path[32], hex[ST_SHA256_HEX_LEN + 1];
    snprintf(path, sizeof(path), "results[%zu]", i);
    if (!json_is_object(res)) {
      rc = st_fail(err, ST_EINVAL, "%s: expected an object", path);
      goto done;
    }
    if ((rc = st__ledger_str(res, path, "vulnerability", ST_LEDGER_ID_MAX, 0, &vuln, err)) ||
        (rc = st__ledger_str(res, path, "component", 2048, 0, &purl, err)) ||
        (rc = verdict(res, path, &v, err)))
      goto done;
    if (strncmp(purl, "pkg:", 4) || !strchr(purl + 4, '/')) {
      rc = st_fail(err, ST_EINVAL, "%s.component: \"%s\" is not a purl (pkg:type/name)", path,
                   purl);
      goto done;
    }
    if ((rc = st__ledger_str(res, path, "rationale", 65536, 1, &why, err)) == ST_ENOENT)
      why = "";
    else if (rc)
      goto done;
    st_buf_reset(&key);
    if (st_buf_addf(&key, "%s\n%s", vuln, purl) || json_object_get(seen, key.data)) {
      rc = st_fail(err, ST_EINVAL, "%s: a second result for %s on %s", path, vuln, purl);
      goto done;
    }
    if ((rc = result_digest(pack, at, res, hex, err)))
      goto done;
    if (json_object_set_new(seen, key.data, json_true()) ||
        json_array_append_new(rows, json_pack("{ssssssssss}", "vuln_id", vuln, "purl", purl,
                                              "verdict", v, "rationale", why, "row_sha256",
                                              hex))) {
      rc = st_fail(err, ST_ENOMEM, "%s", path);
      goto done;
    }
  }
  if (!(d->key = pack_key(name, version)) ||
      json_object_set_new(r, "pack_name", json_string(name)) ||
      json_object_set_new(r, "pack_version", json_string(version)) ||
      json_object_set_new(r, "evaluated_at", json_string(at)) ||
      json_object_set(r, "results", rows)) {
    rc = st_fail(err, ST_ENOMEM, "policy results");
    goto done;
  }
  *row = r;
  r = NULL;
done:
  json_decref(r);
  json_decref(rows);
  json_decref(seen);
  st_buf_release(&key);
  return rc;
}
