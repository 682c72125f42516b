/* filters.c: validation of an export profile's `filters` and its compilation into a ledger
 * scope (the rules are in export.h). Every error names the field as `filters.<path>`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export/export.h"
#include "stella/mem.h"

#define LIST_MAX 10000

static const char *const known[] = {"sources", "ecosystems", "severities", "modified_since",
                                    "modified_until", "ids", "sample", NULL};
static const char *const severities[] = {"none", "low", "medium", "high", "critical", NULL};

static int in(const char *s, const char *const *set) {
  for (; *set; set++)
    if (!strcmp(s, *set))
      return 1;
  return 0;
}

/* Seconds since the epoch and nanoseconds of a valid RFC 3339 time, for ordering. */
static void to_instant(const char *s, long long *sec, long nsec[1]) {
  struct tm tm = {0};
  const char *p = s + 19;
  long frac = 0, scale = 100000000;
  int off = 0;

  tm.tm_year = atoi(s) - 1900;
  tm.tm_mon = atoi(s + 5) - 1;
  tm.tm_mday = atoi(s + 8);
  tm.tm_hour = atoi(s + 11);
  tm.tm_min = atoi(s + 14);
  tm.tm_sec = atoi(s + 17);
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
      frac += (*p - '0') * scale;
  if (*p == '+' || *p == '-')
    off = (*p == '-' ? -1 : 1) * (atoi(p + 1) * 3600 + atoi(p + 4) * 60);
  *sec = (long long)timegm(&tm) - off;
  *nsec = frac;
}

/* filters[key] as an array of valid strings into strs[*n...]; returns the count via
 * *count and the start via *start. */
static int str_list(const json_t *f, const char *key, size_t maxlen, const char *const *allowed,
                    const char **strs, size_t *n, const char *const **start, size_t *count,
                    st_error_t *err) {
  const json_t *a = json_object_get(f, key), *v;
  size_t i;

  *start = NULL;
  *count = 0;
  if (!a)
    return 0;
  if (!json_is_array(a))
    return st_fail(err, ST_EINVAL, "filters.%s: expected an array of strings", key);
  if (json_array_size(a) == 0)
    return st_fail(err, ST_EINVAL, "filters.%s: empty: it would select nothing (omit it to "
                   "select everything)", key);
  if (json_array_size(a) > LIST_MAX)
    return st_fail(err, ST_EINVAL, "filters.%s: more than %d entries", key, LIST_MAX);
  *start = strs + *n;
  json_array_foreach(a, i, v) {
    const char *s = json_string_value(v);
    if (!s || !*s || json_string_length(v) > maxlen || strpbrk(s, "\n\r\t"))
      return st_fail(err, ST_EINVAL, "filters.%s[%zu]: expected a string of 1..%zu bytes "
                     "without control characters", key, i, maxlen);
    if (allowed && !in(s, allowed))
      return st_fail(err, ST_EINVAL, "filters.%s[%zu]: \"%s\" is not one of none, low, "
                     "medium, high, critical", key, i, s);
    strs[(*n)++] = s;
  }
  *count = json_array_size(a);
  return 0;
}

static int sources(const json_t *f, unsigned *out, st_error_t *err) {
  const json_t *a = json_object_get(f, "sources"), *v;
  size_t i;

  *out = ST_EXPORT_SRC_ADVISORIES | ST_EXPORT_SRC_VEX | ST_EXPORT_SRC_POLICY;
  if (!a)
    return 0;
  if (!json_is_array(a))
    return st_fail(err, ST_EINVAL, "filters.sources: expected an array");
  if (json_array_size(a) == 0)
    return st_fail(err, ST_EINVAL, "filters.sources: empty: the scope is unsatisfiable");
  *out = 0;
  json_array_foreach(a, i, v) {
    const char *s = json_string_value(v);
    if (s && !strcmp(s, "advisories"))
      *out |= ST_EXPORT_SRC_ADVISORIES;
    else if (s && !strcmp(s, "vex"))
      *out |= ST_EXPORT_SRC_VEX;
    else if (s && !strcmp(s, "policy"))
      *out |= ST_EXPORT_SRC_POLICY;
    else if (s && !strcmp(s, "maven"))
      *out |= ST_EXPORT_SRC_MAVEN;
    else
      return st_fail(err, ST_EINVAL, "filters.sources[%zu]: expected one of advisories, vex, "
                     "policy, maven", i);
  }
  return 0;
}

static int sample(const json_t *f, st_ledger_scope_t *s, st_error_t *err) {
  const json_t *o = json_object_get(f, "sample"), *rate, *seed;
  const char *key;
  json_t *v;

  s->sample_rate = 1;
  s->seed = "";
  if (!o)
    return 0;
  if (!json_is_object(o))
    return st_fail(err, ST_EINVAL, "filters.sample: expected an object {rate, seed}");
  json_object_foreach((json_t *)o, key, v) if (strcmp(key, "rate") && strcmp(key, "seed"))
      return st_fail(err, ST_EINVAL, "filters.sample.%s: unknown field (known: rate, seed)",
                     key);
  rate = json_object_get(o, "rate");
  seed = json_object_get(o, "seed");
  if (!json_is_number(rate))
    return st_fail(err, ST_EINVAL, "filters.sample.rate: expected a number in (0, 1]");
  s->sample_rate = json_number_value(rate);
  if (!(s->sample_rate > 0))
    return st_fail(err, ST_EINVAL, "filters.sample.rate: %g selects nothing: the scope is "
                   "unsatisfiable (use a rate in (0, 1])", s->sample_rate);
  if (s->sample_rate > 1)
    return st_fail(err, ST_EINVAL, "filters.sample.rate: %g is above 1", s->sample_rate);
  if (!json_is_string(seed) || json_string_length(seed) == 0 || json_string_length(seed) > 256 ||
      strpbrk(json_string_value(seed), "\n\r\t"))
    return st_fail(err, ST_EINVAL, "filters.sample.seed: expected a string of 1..256 bytes "
                   "without control characters");
  s->seed = json_string_value(seed);
  return 0;
}

static int window(const json_t *f, st_ledger_scope_t *s, st_error_t *err) {
  static const char *const keys[2] = {"modified_since", "modified_until"};
  const char **slots[2] = {&s->since, &s->until};

  for (int i = 0; i < 2; i++) {
    const json_t *v = json_object_get(f, keys[i]);
    if (!v)
      continue;
    if (!json_is_string(v) || !st_ledger_rfc3339_valid(json_string_value(v)))
      return st_fail(err, ST_EINVAL, "filters.%s: expected an RFC 3339 date-time", keys[i]);
    *slots[i] = json_string_value(v);
  }
  if (s->since && s->until) {
    long long a, b;
    long na, nb;
    to_instant(s->since, &a, &na);
    to_instant(s->until, &b, &nb);
    if (a > b || (a == b && na > nb))
      return st_fail(err, ST_EINVAL, "filters.modified_since (%s) is after "
                     "filters.modified_until (%s): the time window is inverted", s->since,
                     s->until);
  }
  return 0;
}

int st_export_filters_parse(const json_t *filters, st_export_filters_t *out, st_error_t *err) {
  st_ledger_scope_t *s = &out->scope;
  size_t total = 0, n = 0;
  const char *key;
  json_t *v;
  int rc;

  memset(out, 0, sizeof(*out));
  if (filters && !json_is_object(filters))
    return st_fail(err, ST_EINVAL, "filters: expected an object");
  json_object_foreach((json_t *)filters, key, v) {
    if (!in(key, known))
      return st_fail(err, ST_EINVAL, "filters.%s: unknown filter field (known: sources, "
                     "ecosystems, severities, modified_since, modified_until, ids, sample)",
                     key);
    if (json_is_array(v))
      total += json_array_size(v);
  }
  if (!(out->strs = st_calloc(total ? total : 1, sizeof(*out->strs))))
    return st_fail(err, ST_ENOMEM, "filters");
  if ((rc = sources(filters, &out->sources, err)) ||
      (rc = str_list(filters, "ecosystems", 128, NULL, out->strs, &n, &s->ecosystems,
                     &s->n_ecosystems, err)) ||
      (rc = str_list(filters, "severities", 16, severities, out->strs, &n, &s->severities,
                     &s->n_severities, err)) ||
      (rc = str_list(filters, "ids", ST_LEDGER_ID_MAX, NULL, out->strs, &n, &s->ids, &s->n_ids,
                     err)) ||
      (rc = window(filters, s, err)) || (rc = sample(filters, s, err)))
    goto done;
  if ((s->n_ecosystems || s->n_severities) && !(out->sources & ST_EXPORT_SRC_ADVISORIES))
    rc = st_fail(err, ST_EINVAL, "filters.%s: applies to advisories only, which "
                 "filters.sources leaves out: the scope is unsatisfiable",
                 s->n_ecosystems ? "ecosystems" : "severities");
done:
  if (rc)
    st_export_filters_release(out);
  return rc;
}

unsigned st_export_kind_sources(const char *kind, unsigned sources) {
  if (kind && !strcmp(kind, "trivy:db"))
    return ST_EXPORT_SRC_ADVISORIES;
  if (kind && !strcmp(kind, "trivy:java-db"))
    return ST_EXPORT_SRC_MAVEN;
  return sources & ~ST_EXPORT_SRC_MAVEN;
}

void st_export_filters_release(st_export_filters_t *f) {
  if (!f)
    return;
  st_free(f->strs);
  memset(f, 0, sizeof(*f));
}
