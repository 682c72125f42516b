/* trivy_osv.c: one OSV advisory -> Trivy DB v2 records, following what trivy-db's own OSV
 * sources (pkg/vulnsrc/osv, ghsa) store, with the rules docs/trivy.md lists.
 *
 * The whole document is mapped into a local buffer first; only a complete mapping is
 * appended to the caller's, so a reject never leaves part of a document behind.
 * Stricter than trivy-db on purpose (it skips or logs these; an export must not silently
 * lose data): an ecosystem with no Trivy bucket, a `fixed`/`last_affected` event before
 * any `introduced`, an affected package nothing could match (GIT ranges only), an OS
 * package whose ranges cannot be one FixedVersion, and malformed references or ids are
 * rejects of the document. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stella/ledger.h"
#include "stella/mem.h"
#include "trivy_internal.h"

#define ID_MAX 256

/* OSV ecosystem (lower case, before any ':') -> Trivy ecosystem slug and the OSV
 * spelling used in data-source names. */
static const struct {
  const char *osv, *slug, *name;
} LANG[] = {
    {"go", "go", "Go"},           {"npm", "npm", "npm"},
    {"pypi", "pip", "PyPI"},      {"rubygems", "rubygems", "RubyGems"},
    {"crates.io", "cargo", "crates.io"}, {"julia", "julia", "Julia"},
    {"packagist", "composer", "Packagist"}, {"maven", "maven", "Maven"},
    {"nuget", "nuget", "NuGet"},  {"hex", "erlang", "Hex"},
    {"pub", "pub", "Pub"},        {"swifturl", "swift", "SwiftURL"},
    {"bitnami", "bitnami", "Bitnami"}, {"kubernetes", "k8s", "Kubernetes"},
};

typedef struct eco_s {
  char bucket[600];
  char ds_name[512];
  const char *slug; /* language slug, NULL for an OS bucket */
} eco_t;

static int id_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > ID_MAX)
    return 0;
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 0;
  return 1;
}

static int version_ok(const char *s) {
  for (; *s; s++)
    if (!isdigit((unsigned char)*s) && *s != '.')
      return 0;
  return 1;
}

static int resolve(const char *raw, const st__tmap_opts_t *o, eco_t *e, const char *path,
                   st_error_t *err) {
  char low[129];
  const char *suffix;
  size_t n = strlen(raw), cut;

  if (n >= sizeof(low))
    return st_fail(err, ST_EINVAL, "%s: ecosystem too long", path);
  for (size_t i = 0; i <= n; i++)
    low[i] = (char)tolower((unsigned char)raw[i]);
  cut = strcspn(low, ":");
  suffix = low[cut] ? raw + cut + 1 : "";
  low[cut] = '\0';
  memset(e, 0, sizeof(*e));
  for (size_t i = 0; i < sizeof(LANG) / sizeof(LANG[0]); i++)
    if (!strcmp(low, LANG[i].osv)) {
      e->slug = LANG[i].slug;
      snprintf(e->ds_name, sizeof(e->ds_name), "%s %s", o->source_name, LANG[i].name);
      snprintf(e->bucket, sizeof(e->bucket), "%s::%s", e->slug, e->ds_name);
      return 0;
    }
  if (!strcmp(low, "debian") || !strcmp(low, "alpine") || !strcmp(low, "ubuntu")) {
    char ver[64];
    size_t vl = strcspn(suffix, ":");
    const char *v = suffix;
    if (low[0] == 'a' && (*v == 'v' || *v == 'V'))
      v++, vl--;
    if (low[0] == 'u' && suffix[vl] && strcmp(suffix + vl, ":LTS"))
      return st_fail(err, ST_EUNSUPPORTED, "%s: \"%s\": Trivy has no bucket for it", path,
                     raw);
    if (vl == 0 || vl >= sizeof(ver))
      return st_fail(err, ST_EINVAL, "%s: \"%s\": an OS ecosystem needs its release "
                     "(e.g. Debian:12, Alpine:v3.19, Ubuntu:22.04:LTS)", path, raw);
    memcpy(ver, v, vl);
    ver[vl] = '\0';
    if (!version_ok(ver) || (low[0] == 'd' && suffix[strcspn(suffix, ":")]))
      return st_fail(err, ST_EINVAL, "%s: \"%s\": release \"%s\" is not a version number",
                     path, raw, ver);
    snprintf(e->bucket, sizeof(e->bucket), "%s %s", low, ver);
    snprintf(e->ds_name, sizeof(e->ds_name), "%s %s", o->source_name, raw);
    return 0;
  }
  return st_fail(err, ST_EUNSUPPORTED, "%s: unknown ecosystem \"%s\" (no Trivy bucket)", path,
                 raw);
}

/* trivy-db's NormalizePkgName. */
static char *normalize(const char *slug, const char *name) {
  char *s;
  if (slug && !strcmp(slug, "swift")) {
    size_t n = strlen(name);
    if (!strncmp(name, "https://", 8))
      name += 8, n -= 8;
    if (n >= 4 && !strcmp(name + n - 4, ".git"))
      n -= 4;
    return st_strndup(name, n);
  }
  if (!(s = st_strdup(name)))
    return NULL;
  if (!slug || !strcmp(slug, "go") || !strcmp(slug, "julia"))
    return s;
  for (char *p = s; *p; p++) {
    *p = (char)tolower((unsigned char)*p);
    if (*p == '_' && !strcmp(slug, "pip"))
      *p = '-';
  }
  return s;
}

/* Dotted numeric versions compare numerically; anything else is "unknown" (-2). */
static int num_cmp(const char *a, const char *b) {
  if (!*a || !*b || !version_ok(a) || !version_ok(b))
    return -2;
  while (*a || *b) {
    unsigned long long x = strtoull(a, (char **)&a, 10), y = strtoull(b, (char **)&b, 10);
    if (x != y)
      return x < y ? -1 : 1;
    if (*a == '.')
      a++;
    if (*b == '.')
      b++;
  }
  return 0;
}

/* Whether v lies in [from, to) or [from, to] by numeric comparison; unknown = 0 (then
 * the explicit "=v" entry is kept, which can only widen the match to what OSV lists). */
static int in_range(const char *v, const char *from, const char *to, int incl) {
  int lo = strcmp(from, "0") ? num_cmp(from, v) : -1, hi = to ? num_cmp(v, to) : -1;
  if (lo == -2 || hi == -2)
    return 0;
  return lo <= 0 && (hi < 0 || (incl && hi == 0));
}

static int add_str(json_t *arr, const char *s) {
  return json_array_append_new(arr, json_string(s));
}

/* One package's accumulated advisory (several affected[] entries may name it). */
typedef struct pkgadv_s {
  json_t *vuln, *patched, *ranges; /* ranges: [[from, to|null, incl]] for versions[] */
  char *fixed;                     /* OS */
  int open;                        /* OS: a range without a fix */
} pkgadv_t;

/* An open range ">=from" (OS: unfixed). */
static int emit_open(const char *from, const eco_t *e, pkgadv_t *pa, st_error_t *err) {
  char *s = NULL;
  if (!e->slug) {
    pa->open = 1;
    return 0;
  }
  if (st__trivy_fmt(&s, ">=%s", from) < 0 || add_str(pa->vuln, s) ||
      json_array_append_new(pa->ranges, json_pack("[s,n,b]", from, 0))) {
    st_free(s);
    return st_fail(err, ST_ENOMEM, "trivy");
  }
  st_free(s);
  return 0;
}

/* from .. v, v excluded (fixed) or included (last_affected), as trivy-db's
 * versionRange.String() writes it. */
static int emit_closed(const char *from, const char *v, int incl, pkgadv_t *pa,
                       st_error_t *err) {
  char *s = NULL;
  int rc;
  if (incl && !strcmp(from, v))
    rc = st__trivy_fmt(&s, "=%s", v);
  else if (!strcmp(from, "0"))
    rc = st__trivy_fmt(&s, "<%s%s", incl ? "=" : "", v);
  else
    rc = st__trivy_fmt(&s, ">=%s, <%s%s", from, incl ? "=" : "", v);
  if (rc < 0 || add_str(pa->vuln, s) || (!incl && add_str(pa->patched, v)) ||
      json_array_append_new(pa->ranges, json_pack("[s,s,b]", from, v, incl))) {
    st_free(s);
    return st_fail(err, ST_ENOMEM, "trivy");
  }
  st_free(s);
  return 0;
}

static int range_events(const json_t *r, const char *path, const eco_t *e, pkgadv_t *pa,
                        st_error_t *err) {
  const json_t *events = json_object_get(r, "events"), *ev;
  const char *from = NULL;
  size_t i;
  int rc;

  json_array_foreach(events, i, ev) {
    void *it = json_object_iter((json_t *)ev);
    const char *k = json_object_iter_key(it);
    const char *v = json_string_value(json_object_iter_value(it));
    if (!strcmp(k, "limit"))
      continue;
    if (!strcmp(k, "introduced")) {
      if (from && (rc = emit_open(from, e, pa, err)))
        return rc;
      from = v;
      continue;
    }
    if (!from)
      return st_fail(err, ST_EINVAL, "%s.events[%zu]: \"%s\" without an open \"introduced\"",
                     path, i, k);
    if (e->slug) {
      if ((rc = emit_closed(from, v, !strcmp(k, "last_affected"), pa, err)))
        return rc;
    } else if (!strcmp(k, "last_affected")) {
      return st_fail(err, ST_EINVAL, "%s.events[%zu]: last_affected cannot be a Trivy OS "
                     "advisory (it holds one FixedVersion)", path, i);
    } else if (pa->fixed && strcmp(pa->fixed, v)) {
      return st_fail(err, ST_EINVAL, "%s.events[%zu]: fixed \"%s\" differs from \"%s\": a "
                     "Trivy OS advisory holds one FixedVersion", path, i, v, pa->fixed);
    } else if (!pa->fixed && !(pa->fixed = st_strdup(v))) {
      return st_fail(err, ST_ENOMEM, "trivy");
    }
    from = NULL;
  }
  return from ? emit_open(from, e, pa, err) : 0;
}

/* versions[]: "=v" for each one the entry's own ranges do not already cover (trivy-db
 * parseAffectedVersions; containment decided numerically when both sides are dotted
 * numbers, else the explicit entry is kept). */
static int explicit_versions(const json_t *aff, pkgadv_t *pa, st_error_t *err) {
  const json_t *vs = json_object_get(aff, "versions"), *v;
  size_t i, j;
  json_array_foreach(vs, i, v) {
    const char *s = json_string_value(v);
    const json_t *r;
    int covered = 0;
    char *eq = NULL;
    json_array_foreach(pa->ranges, j, r) {
      const char *to = json_string_value(json_array_get(r, 1));
      if (in_range(s, json_string_value(json_array_get(r, 0)), to,
                   json_is_true(json_array_get(r, 2))))
        covered = 1;
    }
    if (covered)
      continue;
    if (st__trivy_fmt(&eq, "=%s", s) < 0 || add_str(pa->vuln, eq)) {
      st_free(eq);
      return st_fail(err, ST_ENOMEM, "trivy");
    }
    st_free(eq);
  }
  return 0;
}

typedef struct entry_s {
  eco_t eco;
  char *pkg;
  pkgadv_t pa;
} entry_t;

typedef struct map_s {
  entry_t *e;
  size_t n, cap;
  json_t *index; /* "bucket\npkg" -> entry number */
} map_t;

static void pa_release(pkgadv_t *pa) {
  json_decref(pa->vuln);
  json_decref(pa->patched);
  json_decref(pa->ranges);
  st_free(pa->fixed);
  memset(pa, 0, sizeof(*pa));
}

static int pa_init(pkgadv_t *pa) {
  memset(pa, 0, sizeof(*pa));
  pa->vuln = json_array();
  pa->patched = json_array();
  pa->ranges = json_array();
  return pa->vuln && pa->patched && pa->ranges ? 0 : ST_ENOMEM;
}

/* Merge one affected entry's advisory into the package's. */
static int pa_merge(pkgadv_t *into, pkgadv_t *from, int os, const char *path,
                    st_error_t *err) {
  if (json_array_extend(into->vuln, from->vuln) ||
      json_array_extend(into->patched, from->patched))
    return st_fail(err, ST_ENOMEM, "trivy");
  if (!os)
    return 0;
  if (from->fixed && into->fixed && strcmp(from->fixed, into->fixed))
    return st_fail(err, ST_EINVAL, "%s: fixed \"%s\" differs from \"%s\" for the same package: "
                   "a Trivy OS advisory holds one FixedVersion", path, from->fixed, into->fixed);
  if (from->fixed && !into->fixed) {
    into->fixed = from->fixed;
    from->fixed = NULL;
  }
  into->open |= from->open;
  return 0;
}

static int affected_entry(map_t *m, const json_t *aff, size_t i, const st__tmap_opts_t *o,
                          st_error_t *err) {
  const json_t *pkg = json_object_get(aff, "package"), *ranges = json_object_get(aff, "ranges");
  const json_t *r;
  char path[64], sub[96], *key = NULL;
  pkgadv_t tmp;
  eco_t eco;
  size_t j, usable = 0;
  char *name = NULL;
  int rc;

  snprintf(path, sizeof(path), "affected[%zu]", i);
  if (pa_init(&tmp)) {
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  snprintf(sub, sizeof(sub), "%s.package.ecosystem", path);
  if ((rc = resolve(json_string_value(json_object_get(pkg, "ecosystem")), o, &eco, sub, err)))
    goto done;
  if (!(name = normalize(eco.slug, json_string_value(json_object_get(pkg, "name"))))) {
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  if (!*name) {
    rc = st_fail(err, ST_EINVAL, "%s.package.name: empty once normalised", path);
    goto done;
  }
  json_array_foreach(ranges, j, r) {
    if (!strcmp(json_string_value(json_object_get(r, "type")), "GIT"))
      continue;
    snprintf(sub, sizeof(sub), "%s.ranges[%zu]", path, j);
    if ((rc = range_events(r, sub, &eco, &tmp, err)))
      goto done;
    usable++;
  }
  if (eco.slug) {
    if ((rc = explicit_versions(aff, &tmp, err)))
      goto done;
    if (!json_array_size(tmp.vuln)) {
      rc = st_fail(err, ST_EINVAL, "%s: no SEMVER/ECOSYSTEM range and no versions: nothing "
                   "Trivy could match", path);
      goto done;
    }
  } else if (!usable) {
    rc = st_fail(err, ST_EINVAL, "%s: missing fixed version: an OS package needs an "
                 "ECOSYSTEM range (with a fixed event, or open when unfixed)", path);
    goto done;
  }
  if (st__trivy_fmt(&key, "%s\n%s", eco.bucket, name) < 0) {
    key = NULL;
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  {
    json_t *ix = json_object_get(m->index, key);
    if (ix) {
      rc = pa_merge(&m->e[json_integer_value(ix)].pa, &tmp, !eco.slug, path, err);
      goto done;
    }
  }
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 4;
    entry_t *ne = st_realloc(m->e, cap * sizeof(*ne));
    if (!ne) {
      rc = st_fail(err, ST_ENOMEM, "trivy");
      goto done;
    }
    m->e = ne;
    m->cap = cap;
  }
  if (json_object_set_new(m->index, key, json_integer((json_int_t)m->n))) {
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  m->e[m->n].eco = eco;
  m->e[m->n].pkg = name;
  m->e[m->n++].pa = tmp;
  name = NULL;
  memset(&tmp, 0, sizeof(tmp));
done:
  st_free(key);
  st_free(name);
  pa_release(&tmp);
  return rc;
}

/* ---- ids and the vulnerability value ---- */

static int uniq_append(json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), s)) return 0;
  return add_str(arr, s);
}

/* trivy-db groupVulnIDs: the CVE ids among aliases, upstream and id become the keys and
 * the rest VendorIDs; without a CVE the OSV id is the key and the aliases VendorIDs. */
static int vuln_ids(const json_t *doc, const char *id, json_t *keys, json_t *vendor,
                    st_error_t *err) {
  static const char *const fields[] = {"aliases", "upstream"};
  json_t *all = json_array(), *v;
  size_t i;
  int rc = 0, cves = 0;

  if (!all)
    return st_fail(err, ST_ENOMEM, "trivy");
  for (int f = 0; f < 2 && !rc; f++) {
    const json_t *a = json_object_get(doc, fields[f]);
    if (a && !json_is_array(a)) {
      rc = st_fail(err, ST_EINVAL, "%s: expected an array of strings", fields[f]);
      break;
    }
    json_array_foreach(a, i, v) {
      if (!json_is_string(v) || !id_ok(json_string_value(v))) {
        rc = st_fail(err, ST_EINVAL, "%s[%zu]: expected an id of 1..%d bytes without control "
                     "characters", fields[f], i, ID_MAX);
        break;
      }
      if (uniq_append(all, json_string_value(v))) {
        rc = st_fail(err, ST_ENOMEM, "trivy");
        break;
      }
    }
  }
  if (rc)
    goto done;
  if (!id_ok(id)) {
    rc = st_fail(err, ST_EINVAL, "id: control characters");
    goto done;
  }
  json_array_foreach(all, i, v) cves += !strncmp(json_string_value(v), "CVE-", 4);
  cves += !strncmp(id, "CVE-", 4);
  if (!cves) {
    if (add_str(keys, id) || json_array_extend(vendor, all))
      rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  if (uniq_append(all, id)) {
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  json_array_foreach(all, i, v) {
    const char *s = json_string_value(v);
    if (uniq_append(strncmp(s, "CVE-", 4) ? vendor : keys, s)) {
      rc = st_fail(err, ST_ENOMEM, "trivy");
      goto done;
    }
  }
done:
  json_decref(all);
  return rc;
}

static int db_severity(const json_t *doc) {
  const char *s = json_string_value(
      json_object_get(json_object_get(doc, "database_specific"), "severity"));
  static const char *const names[] = {"low", "moderate", "medium", "high", "critical"};
  static const int grade[] = {1, 2, 2, 3, 4};
  for (int i = 0; s && i < 5; i++)
    if (!strcasecmp(s, names[i]))
      return grade[i];
  return 0;
}

static int score_severity(double s) {
  return s >= 9.0 ? 4 : s >= 7.0 ? 3 : s >= 4.0 ? 2 : s >= 0.1 ? 1 : 0;
}

static int cmp_jstr(const void *a, const void *b) {
  return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static int references(const json_t *doc, json_t *out, st_error_t *err) {
  const json_t *refs = json_object_get(doc, "references"), *r;
  json_t **tmp = NULL;
  size_t i, n = 0;
  int rc = 0;

  if (!refs)
    return 0;
  if (!json_is_array(refs))
    return st_fail(err, ST_EINVAL, "references: expected an array");
  if (!(tmp = st_calloc(json_array_size(refs) + 1, sizeof(*tmp))))
    return st_fail(err, ST_ENOMEM, "trivy");
  json_array_foreach(refs, i, r) {
    const char *url = json_string_value(json_object_get(r, "url"));
    if (!url || !*url || !st_utf8_valid(url, strlen(url))) {
      rc = st_fail(err, ST_EINVAL, "references[%zu].url: expected a non-empty string", i);
      goto done;
    }
    tmp[n++] = json_object_get(r, "url");
  }
  qsort(tmp, n, sizeof(*tmp), cmp_jstr);
  for (i = 0; i < n; i++)
    if ((i == 0 || strcmp(json_string_value(tmp[i]), json_string_value(tmp[i - 1]))) &&
        json_array_append(out, tmp[i])) {
      rc = st_fail(err, ST_ENOMEM, "trivy");
      goto done;
    }
done:
  st_free(tmp);
  return rc;
}

static int set_time(json_t *v, const char *field, const char *rfc3339) {
  int64_t t;
  char s[32];
  if (!rfc3339 || st__trivy_time(rfc3339, &t))
    return 0;
  st__trivy_time_fmt(t, s);
  return json_object_set_new(v, field, json_string(s));
}

static int vulnerability(const json_t *doc, const st__tmap_opts_t *o, json_t **out,
                         st_error_t *err) {
  static const char *const sev_names[] = {"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"};
  const json_t *sevs = json_object_get(doc, "severity"), *s;
  const json_t *cwe = json_object_get(json_object_get(doc, "database_specific"), "cwe_ids");
  const char *vector = NULL;
  json_t *v = json_object(), *refs = json_array();
  double score = 0;
  size_t i;
  int sev = db_severity(doc), rc = 0;

  if (!v || !refs) {
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  json_array_foreach(sevs, i, s) if (!strcmp(json_string_value(json_object_get(s, "type")),
                                             "CVSS_V3")) vector =
      json_string_value(json_object_get(s, "score"));
  if (vector && st_ledger_cvss3_score(vector, &score)) {
    rc = st_fail(err, ST_EINVAL, "severity: \"%s\" is not a CVSS v3 base vector", vector);
    goto done;
  }
  if (!sev && vector)
    sev = score_severity(score);
  if ((rc = references(doc, refs, err)))
    goto done;
  if (cwe && !json_is_array(cwe)) {
    rc = st_fail(err, ST_EINVAL, "database_specific.cwe_ids: expected an array of strings");
    goto done;
  }
  json_array_foreach(cwe, i, s) if (!json_is_string(s)) {
    rc = st_fail(err, ST_EINVAL, "database_specific.cwe_ids[%zu]: expected a string", i);
    goto done;
  }
  {
    const char *title = json_string_value(json_object_get(doc, "summary"));
    const char *desc = json_string_value(json_object_get(doc, "details"));
    if ((title && *title && json_object_set_new(v, "Title", json_string(title))) ||
        (desc && *desc && json_object_set_new(v, "Description", json_string(desc))) ||
        json_object_set_new(v, "Severity", json_string(sev_names[sev])) ||
        (json_array_size(cwe) && json_object_set(v, "CweIDs", (json_t *)cwe)) ||
        (sev && json_object_set_new(v, "VendorSeverity", json_pack("{s:i}", o->source_id, sev))) ||
        (vector && score > 0 &&
         json_object_set_new(v, "CVSS", json_pack("{s:{s:s,s:f}}", o->source_id, "V3Vector",
                                                  vector, "V3Score", score))) ||
        (json_array_size(refs) && json_object_set(v, "References", refs)) ||
        set_time(v, "PublishedDate", json_string_value(json_object_get(doc, "published"))) ||
        set_time(v, "LastModifiedDate", json_string_value(json_object_get(doc, "modified"))))
      rc = st_fail(err, ST_ENOMEM, "trivy");
  }
done:
  json_decref(refs);
  if (rc)
    json_decref(v);
  else
    *out = v;
  return rc;
}

/* ---- records ---- */

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(3))

static int key_of(st_buf_t *k, const char *a, const char *b, const char *c) {
  st_buf_reset(k);
  return st_buf_adds(k, a) || st_buf_addc(k, '\0') || st_buf_adds(k, b) ||
         (c && (st_buf_addc(k, '\0') || st_buf_adds(k, c)));
}

static int put_json(st_buf_t *out, st_buf_t *k, const char *tie, const json_t *v,
                    st_error_t *err) {
  char *s = json_dumps(v, DUMP_FLAGS);
  int rc = s ? st__trec_append(out, k, tie, s, strlen(s), err)
             : st_fail(err, ST_ENOMEM, "trivy: json");
  st_free(s);
  return rc;
}

static int advisory_value(const entry_t *en, const json_t *vendor, json_t **out,
                          st_error_t *err) {
  json_t *a = json_object();
  int bad = !a || (json_array_size(vendor) && json_object_set(a, "VendorIDs", (json_t *)vendor));
  if (!bad && en->eco.slug) {
    bad = json_object_set(a, "VulnerableVersions", en->pa.vuln) ||
          (json_array_size(en->pa.patched) &&
           json_object_set(a, "PatchedVersions", en->pa.patched));
  } else if (!bad) {
    if (en->pa.fixed && en->pa.open) {
      json_decref(a);
      return st_fail(err, ST_EINVAL, "affected: package \"%s\" in %s has both a fixed and an "
                     "unfixed range: a Trivy OS advisory holds one state", en->pkg,
                     en->eco.bucket);
    }
    bad = en->pa.fixed ? json_object_set_new(a, "FixedVersion", json_string(en->pa.fixed))
                       : json_object_set_new(a, "Status", json_integer(2));
  }
  if (bad) {
    json_decref(a);
    return st_fail(err, ST_ENOMEM, "trivy");
  }
  *out = a;
  return 0;
}

static int emit(const map_t *m, const json_t *keys, const json_t *vendor, const json_t *vuln,
                const char *id, const st__tmap_opts_t *o, st_buf_t *out, st_error_t *err) {
  st_buf_t k = ST_BUF_INIT;
  json_t *adv = NULL, *v, *ds = NULL;
  size_t i, j;
  int rc = 0;

  for (i = 0; i < m->n && !rc; i++) {
    const entry_t *en = &m->e[i];
    if ((rc = advisory_value(en, vendor, &adv, err)))
      break;
    json_array_foreach(keys, j, v) {
      if (key_of(&k, en->eco.bucket, en->pkg, json_string_value(v))) {
        rc = st_fail(err, ST_ENOMEM, "trivy");
        break;
      }
      if ((rc = put_json(out, &k, id, adv, err)))
        break;
    }
    json_decref(adv);
    adv = NULL;
    if (rc)
      break;
    if (!(ds = json_pack("{s:s,s:s}", "ID", o->source_id, "Name", en->eco.ds_name)) ||
        (o->source_url && json_object_set_new(ds, "URL", json_string(o->source_url))) ||
        key_of(&k, "data-source", en->eco.bucket, NULL)) {
      rc = st_fail(err, ST_ENOMEM, "trivy");
      break;
    }
    rc = put_json(out, &k, id, ds, err);
    json_decref(ds);
    ds = NULL;
  }
  json_array_foreach(keys, j, v) {
    if (rc)
      break;
    if (key_of(&k, "vulnerability", json_string_value(v), NULL))
      rc = st_fail(err, ST_ENOMEM, "trivy");
    else
      rc = put_json(out, &k, id, vuln, err);
  }
  st_buf_release(&k);
  return rc;
}

int st__trivy_map_osv(const json_t *doc, const st__tmap_opts_t *o, st_buf_t *out,
                      int *withdrawn, char modified_out[32], st_error_t *err) {
  const char *id = json_string_value(json_object_get(doc, "id"));
  const json_t *aff = json_object_get(doc, "affected"), *a;
  json_t *keys = json_array(), *vendor = json_array(), *vuln = NULL;
  st_buf_t local = ST_BUF_INIT;
  map_t m = {0};
  int64_t t;
  size_t i;
  int rc = 0;

  *withdrawn = 0;
  if (!id || st__trivy_time(json_string_value(json_object_get(doc, "modified")), &t)) {
    rc = st_fail(err, ST_EINVAL, "not a validated OSV document");
    goto done;
  }
  st__trivy_time_fmt(t, modified_out);
  if (json_object_get(doc, "withdrawn")) {
    *withdrawn = 1;
    goto done;
  }
  if (!keys || !vendor || !(m.index = json_object())) {
    rc = st_fail(err, ST_ENOMEM, "trivy");
    goto done;
  }
  if ((rc = vuln_ids(doc, id, keys, vendor, err)) || (rc = vulnerability(doc, o, &vuln, err)))
    goto done;
  json_array_foreach(aff, i, a) if ((rc = affected_entry(&m, a, i, o, err))) goto done;
  if ((rc = emit(&m, keys, vendor, vuln, id, o, &local, err)))
    goto done;
  if (st_buf_add(out, local.data, local.len))
    rc = st_fail(err, ST_ENOMEM, "trivy: record buffer");
done:
  for (i = 0; i < m.n; i++) {
    st_free(m.e[i].pkg);
    pa_release(&m.e[i].pa);
  }
  st_free(m.e);
  json_decref(m.index);
  json_decref(keys);
  json_decref(vendor);
  json_decref(vuln);
  st_buf_release(&local);
  return rc;
}
