/* ledger_osv.c: OSV advisory validation (the essentials of the OSV schema 1.x) and the
 * columns the ledger indexes it by.
 *
 * Checked: id; modified (and published, withdrawn when present) as RFC 3339; aliases and
 * related as string arrays; severity[] entries {type, score} with CVSS v3 vectors well
 * formed; affected[] non-empty, each with package.{ecosystem, name}, ranges[] of type
 * SEMVER, ECOSYSTEM or GIT (GIT with a repo) whose events are objects with exactly one of
 * introduced / fixed / last_affected / limit, at least one introduced, and never both fixed
 * and last_affected in one range (OSV forbids mixing them); versions[] strings.
 * Other fields are kept as they are and not judged.
 *
 * Severity column: database_specific.severity (GitHub's LOW/MODERATE/HIGH/CRITICAL), else
 * the highest grade among CVSS v3 vectors, else unknown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ledger_internal.h"
#include "stella/mem.h"

#define ARR_MAX 100000

static int str_array(const json_t *obj, const char *path, const char *key, json_t *into,
                     st_error_t *err) {
  const json_t *a = json_object_get(obj, key), *v;
  const char *dot = *path ? "." : "";
  size_t i;

  if (!a)
    return 0;
  if (!json_is_array(a))
    return st_fail(err, ST_EINVAL, "%s%s%s: expected an array of strings", path, dot, key);
  json_array_foreach(a, i, v) {
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > ST_LEDGER_ID_MAX)
      return st_fail(err, ST_EINVAL, "%s%s%s[%zu]: expected a string of 1..%d bytes", path,
                     dot, key, i, ST_LEDGER_ID_MAX);
    if (into && json_array_append(into, (json_t *)v))
      return st_fail(err, ST_ENOMEM, "%s", key);
  }
  return 0;
}

static int grade(const char *sev) {
  static const char *const order[] = {"none", "low", "medium", "high", "critical"};
  for (int i = 0; i < 5; i++)
    if (sev && !strcmp(sev, order[i]))
      return i;
  return -1;
}

static const char *db_severity(const json_t *doc) {
  const json_t *v = json_object_get(json_object_get(doc, "database_specific"), "severity");
  const char *s = json_string_value(v);
  if (!s)
    return NULL;
  if (!strcasecmp(s, "moderate") || !strcasecmp(s, "medium"))
    return "medium";
  for (const char *const *g = (const char *const[]){"none", "low", "high", "critical", NULL};
       *g; g++)
    if (!strcasecmp(s, *g))
      return *g;
  return NULL;
}

static int severities(const json_t *doc, const char **out, st_error_t *err) {
  const json_t *a = json_object_get(doc, "severity"), *e;
  const char *best = NULL;
  size_t i;
  int rc;

  *out = db_severity(doc);
  if (!a)
    return 0;
  if (!json_is_array(a))
    return st_fail(err, ST_EINVAL, "severity: expected an array");
  json_array_foreach(a, i, e) {
    const char *type, *score, *sev;
    char path[48];
    snprintf(path, sizeof(path), "severity[%zu]", i);
    if (!json_is_object(e))
      return st_fail(err, ST_EINVAL, "%s: expected an object", path);
    if ((rc = st__ledger_str(e, path, "type", 32, 0, &type, err)) ||
        (rc = st__ledger_str(e, path, "score", 1024, 0, &score, err)))
      return rc;
    if (strcmp(type, "CVSS_V2") && strcmp(type, "CVSS_V3") && strcmp(type, "CVSS_V4") &&
        strcmp(type, "Ubuntu"))
      return st_fail(err, ST_EINVAL,
                     "%s.type: \"%s\" is not one of CVSS_V2, CVSS_V3, CVSS_V4, Ubuntu", path,
                     type);
    if (strcmp(type, "CVSS_V3"))
      continue;
    if (!(sev = st_ledger_cvss3_severity(score)))
      return st_fail(err, ST_EINVAL, "%s.score: not a CVSS v3 base vector", path);
    if (grade(sev) > grade(best))
      best = sev;
  }
  if (!*out)
    *out = best;
  return 0;
}

static int range(const json_t *r, const char *path, st_error_t *err) {
  static const char *const kinds[] = {"introduced", "fixed", "last_affected", "limit"};
  const json_t *events, *ev;
  const char *type, *repo;
  int seen[4] = {0}, rc;
  size_t i;

  if (!json_is_object(r))
    return st_fail(err, ST_EINVAL, "%s: expected an object", path);
  if ((rc = st__ledger_str(r, path, "type", 16, 0, &type, err)))
    return rc;
  if (strcmp(type, "SEMVER") && strcmp(type, "ECOSYSTEM") && strcmp(type, "GIT"))
    return st_fail(err, ST_EINVAL, "%s.type: \"%s\" is not one of SEMVER, ECOSYSTEM, GIT",
                   path, type);
  if (!strcmp(type, "GIT") && (rc = st__ledger_str(r, path, "repo", 2048, 0, &repo, err)))
    return rc;
  events = json_object_get(r, "events");
  if (!json_is_array(events) || json_array_size(events) == 0)
    return st_fail(err, ST_EINVAL, "%s.events: expected a non-empty array", path);
  json_array_foreach(events, i, ev) {
    const char *key;
    const json_t *val;
    int k = 4;
    if (!json_is_object(ev) || json_object_size(ev) != 1)
      return st_fail(err, ST_EINVAL, "%s.events[%zu]: expected an object with exactly one of "
                     "introduced, fixed, last_affected, limit", path, i);
    json_object_foreach((json_t *)ev, key, val) {
      for (k = 0; k < 4 && strcmp(key, kinds[k]); k++)
        ;
      if (k == 4)
        return st_fail(err, ST_EINVAL, "%s.events[%zu]: unknown event \"%s\"", path, i, key);
      if (!json_is_string(val) || json_string_length(val) == 0 ||
          json_string_length(val) > 1024)
        return st_fail(err, ST_EINVAL, "%s.events[%zu].%s: expected a version string", path,
                       i, key);
      seen[k] = 1;
    }
  }
  if (!seen[0])
    return st_fail(err, ST_EINVAL, "%s.events: no \"introduced\" event", path);
  if (seen[1] && seen[2])
    return st_fail(err, ST_EINVAL, "%s.events: both \"fixed\" and \"last_affected\"", path);
  return 0;
}

/* Add ecosystem and, for "Debian:12"-style names, its base name to eco (a set). */
static int add_ecosystem(json_t *eco, const char *name) {
  const char *colon = strchr(name, ':');
  if (json_object_set_new(eco, name, json_true()))
    return ST_ENOMEM;
  if (colon && colon > name) {
    char *base = st_strndup(name, (size_t)(colon - name));
    int rc = !base || json_object_set_new(eco, base, json_true());
    st_free(base);
    if (rc)
      return ST_ENOMEM;
  }
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of set, in byte order, appended to arr. */
static int sorted_keys(const json_t *set, json_t *arr, st_error_t *err) {
  size_t n = json_object_size(set), i = 0;
  const char **keys = st_calloc(n ? n : 1, sizeof(*keys));
  const char *key;
  json_t *v;
  int rc = 0;

  if (!keys)
    return st_fail(err, ST_ENOMEM, "osv");
  json_object_foreach((json_t *)set, key, v) keys[i++] = key;
  qsort(keys, n, sizeof(*keys), cmp_str);
  for (i = 0; i < n && !rc; i++)
    if (json_array_append_new(arr, json_string(keys[i])))
      rc = st_fail(err, ST_ENOMEM, "osv");
  st_free(keys);
  return rc;
}

static int affected(const json_t *doc, json_t *eco, st_error_t *err) {
  const json_t *a = json_object_get(doc, "affected"), *e, *r;
  size_t i, j;
  int rc;

  if (!json_is_array(a) || json_array_size(a) == 0)
    return st_fail(err, ST_EINVAL, "affected: expected a non-empty array");
  if (json_array_size(a) > ARR_MAX)
    return st_fail(err, ST_ETOOBIG, "affected: more than %d entries", ARR_MAX);
  json_array_foreach(a, i, e) {
    char path[64], sub[96];
    const json_t *pkg, *ranges;
    const char *ecosystem, *name, *purl;
    snprintf(path, sizeof(path), "affected[%zu]", i);
    if (!json_is_object(e))
      return st_fail(err, ST_EINVAL, "%s: expected an object", path);
    pkg = json_object_get(e, "package");
    if (!json_is_object(pkg))
      return st_fail(err, ST_EINVAL, "%s.package: %s", path, pkg ? "expected an object"
                                                                 : "missing");
    snprintf(sub, sizeof(sub), "%s.package", path);
    if ((rc = st__ledger_str(pkg, sub, "ecosystem", 128, 0, &ecosystem, err)) ||
        (rc = st__ledger_str(pkg, sub, "name", 1024, 0, &name, err)))
      return rc;
    if ((rc = st__ledger_str(pkg, sub, "purl", 2048, 1, &purl, err)) && rc != ST_ENOENT)
      return rc;
    if (add_ecosystem(eco, ecosystem))
      return st_fail(err, ST_ENOMEM, "%s", sub);
    ranges = json_object_get(e, "ranges");
    if (ranges && !json_is_array(ranges))
      return st_fail(err, ST_EINVAL, "%s.ranges: expected an array", path);
    json_array_foreach(ranges, j, r) {
      snprintf(sub, sizeof(sub), "%s.ranges[%zu]", path, j);
      if ((rc = range(r, sub, err)))
        return rc;
    }
    if ((rc = str_array(e, path, "versions", NULL, err)))
      return rc;
  }
  return 0;
}

int st__ledger_osv(const json_t *doc, st_ledger_doc_t *d, json_t **row, st_error_t *err) {
  const char *id, *modified, *published, *withdrawn, *sev;
  json_t *r = NULL, *eco = NULL, *ecos = NULL, *aliases = NULL;
  int rc;

  *row = NULL;
  if ((rc = st__ledger_str(doc, "", "id", ST_LEDGER_ID_MAX, 0, &id, err)) ||
      (rc = st__ledger_time(doc, "", "modified", 0, &modified, err)))
    goto done;
  if ((rc = st__ledger_time(doc, "", "published", 1, &published, err)) == ST_ENOENT)
    published = NULL;
  else if (rc)
    goto done;
  if ((rc = st__ledger_time(doc, "", "withdrawn", 1, &withdrawn, err)) == ST_ENOENT)
    withdrawn = NULL;
  else if (rc)
    goto done;
  if (!(aliases = json_array()) || !(eco = json_object()) || !(ecos = json_array()) ||
      !(r = json_object())) {
    rc = st_fail(err, ST_ENOMEM, "osv");
    goto done;
  }
  if ((rc = str_array(doc, "", "aliases", aliases, err)) ||
      (rc = str_array(doc, "", "related", NULL, err)) || (rc = severities(doc, &sev, err)) ||
      (rc = affected(doc, eco, err)))
    goto done;
  if (json_object_get(doc, "schema_version") &&
      !json_is_string(json_object_get(doc, "schema_version"))) {
    rc = st_fail(err, ST_EINVAL, "schema_version: expected a string");
    goto done;
  }
  if ((rc = sorted_keys(eco, ecos, err)))
    goto done;
  if (!(d->key = st_strdup(id)) || json_object_set_new(r, "id", json_string(id)) ||
      json_object_set_new(r, "modified", json_string(modified)) ||
      json_object_set_new(r, "published", published ? json_string(published) : json_null()) ||
      json_object_set_new(r, "withdrawn", withdrawn ? json_string(withdrawn) : json_null()) ||
      json_object_set(r, "ecosystems", ecos) || json_object_set(r, "aliases", aliases) ||
      json_object_set_new(r, "severity", sev ? json_string(sev) : json_null()) ||
      json_object_set_new(r, "doc_sha256", json_string(d->sha256))) {
    rc = st_fail(err, ST_ENOMEM, "osv");
    goto done;
  }
  *row = r;
  r = NULL;
done:
  json_decref(r);
  json_decref(eco);
  json_decref(ecos);
  json_decref(aliases);
  return rc;
}
