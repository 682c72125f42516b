/* ledger_vex.c: OpenVEX document validation (v0.2.0, and v0.0.x's string forms) and the
 * statement rows the ledger stores with it.
 *
 * Checked: @context under https://openvex.dev/ns (the detection rule), @id, author,
 * timestamp (and last_updated) as RFC 3339, version a positive integer when present,
 * statements a non-empty array whose entries have a vulnerability (a string, or an object
 * with a name), products (a non-empty array of purl strings or objects with @id), a status
 * of not_affected / affected / fixed / under_investigation, and the justification rules of
 * the OpenVEX spec: a justification only with not_affected and then one of the five labels;
 * not_affected needs a justification or an impact_statement; affected needs an
 * action_statement. */
#include <stdio.h>
#include <string.h>

#include "ledger_internal.h"
#include "stella/mem.h"

#define STATEMENTS_MAX 100000

static int one_of(const char *s, const char *const *set) {
  for (; *set; set++)
    if (!strcmp(s, *set))
      return 1;
  return 0;
}

static int products(const json_t *st, const char *path, json_t *out, st_error_t *err) {
  const json_t *a = json_object_get(st, "products"), *p;
  size_t i;
  int rc;

  if (!json_is_array(a) || json_array_size(a) == 0)
    return st_fail(err, ST_EINVAL, "%s.products: expected a non-empty array", path);
  json_array_foreach(a, i, p) {
    char sub[96];
    const char *id;
    snprintf(sub, sizeof(sub), "%s.products[%zu]", path, i);
    if (json_is_string(p)) {
      if (json_string_length(p) == 0 || json_string_length(p) > 2048)
        return st_fail(err, ST_EINVAL, "%s: expected 1..2048 bytes", sub);
      id = json_string_value(p);
    } else if (json_is_object(p)) {
      if ((rc = st__ledger_str(p, sub, "@id", 2048, 0, &id, err)))
        return rc;
    } else {
      return st_fail(err, ST_EINVAL, "%s: expected a string or an object with @id", sub);
    }
    if (json_array_append_new(out, json_string(id)))
      return st_fail(err, ST_ENOMEM, "%s", sub);
  }
  return 0;
}

static int statement(const json_t *st, size_t ord, json_t *rows, st_error_t *err) {
  static const char *const statuses[] = {"not_affected", "affected", "fixed",
                                         "under_investigation", NULL};
  static const char *const justifications[] = {
      "component_not_present", "vulnerable_code_not_present",
      "vulnerable_code_not_in_execute_path", "vulnerable_code_cannot_be_controlled_by_adversary",
      "inline_mitigations_already_exist", NULL};
  const char *vuln, *status, *just = NULL, *impact = NULL, *action = NULL, *ts;
  const json_t *v = json_object_get(st, "vulnerability");
  json_t *row = NULL, *prods = NULL;
  char path[48];
  int rc;

  snprintf(path, sizeof(path), "statements[%zu]", ord);
  if (!json_is_object(st))
    return st_fail(err, ST_EINVAL, "%s: expected an object", path);
  if (json_is_string(v)) {
    if ((rc = st__ledger_str(st, path, "vulnerability", ST_LEDGER_ID_MAX, 0, &vuln, err)))
      return rc;
  } else if (json_is_object(v)) {
    char sub[64];
    snprintf(sub, sizeof(sub), "%s.vulnerability", path);
    if ((rc = st__ledger_str(v, sub, "name", ST_LEDGER_ID_MAX, 0, &vuln, err)))
      return rc;
  } else {
    return st_fail(err, ST_EINVAL, "%s.vulnerability: %s", path,
                   v ? "expected a string or an object with a name" : "missing");
  }
  if ((rc = st__ledger_str(st, path, "status", 32, 0, &status, err)))
    return rc;
  if (!one_of(status, statuses))
    return st_fail(err, ST_EINVAL, "%s.status: \"%s\" is not one of not_affected, affected, "
                   "fixed, under_investigation", path, status);
  if ((rc = st__ledger_str(st, path, "justification", 64, 1, &just, err)) && rc != ST_ENOENT)
    return rc;
  if ((rc = st__ledger_str(st, path, "impact_statement", 65536, 1, &impact, err)) &&
      rc != ST_ENOENT)
    return rc;
  if ((rc = st__ledger_str(st, path, "action_statement", 65536, 1, &action, err)) &&
      rc != ST_ENOENT)
    return rc;
  if ((rc = st__ledger_time(st, path, "timestamp", 1, &ts, err)) && rc != ST_ENOENT)
    return rc;
  if (just && !one_of(just, justifications))
    return st_fail(err, ST_EINVAL, "%s.justification: \"%s\" is not an OpenVEX justification",
                   path, just);
  if (just && strcmp(status, "not_affected"))
    return st_fail(err, ST_EINVAL, "%s.justification: only allowed with status not_affected",
                   path);
  if (!strcmp(status, "not_affected") && !just && !impact)
    return st_fail(err, ST_EINVAL, "%s: status not_affected needs a justification or an "
                   "impact_statement", path);
  if (!strcmp(status, "affected") && !action)
    return st_fail(err, ST_EINVAL, "%s: status affected needs an action_statement", path);
  if (!(prods = json_array()) || !(row = json_object())) {
    rc = st_fail(err, ST_ENOMEM, "%s", path);
    goto done;
  }
  if ((rc = products(st, path, prods, err)))
    goto done;
  if (json_object_set_new(row, "ord", json_integer((json_int_t)ord)) ||
      json_object_set_new(row, "vuln_id", json_string(vuln)) ||
      json_object_set(row, "products", prods) ||
      json_object_set_new(row, "status", json_string(status)) ||
      json_object_set_new(row, "justification", just ? json_string(just) : json_null()) ||
      json_object_set_new(row, "impact_statement", impact ? json_string(impact) : json_null()) ||
      json_object_set_new(row, "action_statement", action ? json_string(action) : json_null()) ||
      json_array_append(rows, row))
    rc = st_fail(err, ST_ENOMEM, "%s", path);
done:
  json_decref(row);
  json_decref(prods);
  return rc;
}

int st__ledger_vex(const json_t *doc, st_ledger_doc_t *d, json_t **row, st_error_t *err) {
  const char *id, *author, *ts, *updated;
  const json_t *stmts = json_object_get(doc, "statements"), *st,
               *version = json_object_get(doc, "version");
  json_t *r = NULL, *rows = NULL;
  size_t i;
  int rc;

  *row = NULL;
  if ((rc = st__ledger_str(doc, "", "@id", 1024, 0, &id, err)) ||
      (rc = st__ledger_str(doc, "", "author", 1024, 0, &author, err)) ||
      (rc = st__ledger_time(doc, "", "timestamp", 0, &ts, err)))
    return rc;
  if ((rc = st__ledger_time(doc, "", "last_updated", 1, &updated, err)) == ST_ENOENT)
    updated = ts;
  else if (rc)
    return rc;
  if (version && (!json_is_integer(version) || json_integer_value(version) < 1 ||
                  json_integer_value(version) > 2147483647))
    return st_fail(err, ST_EINVAL, "version: expected a positive integer");
  if (!json_is_array(stmts) || json_array_size(stmts) == 0)
    return st_fail(err, ST_EINVAL, "statements: expected a non-empty array");
  if (json_array_size(stmts) > STATEMENTS_MAX)
    return st_fail(err, ST_ETOOBIG, "statements: more than %d", STATEMENTS_MAX);
  if (!(rows = json_array()) || !(r = json_object())) {
    rc = st_fail(err, ST_ENOMEM, "vex");
    goto done;
  }
  json_array_foreach(stmts, i, st) if ((rc = statement(st, i, rows, err))) goto done;
  if (!(d->key = st_strdup(id)) || json_object_set_new(r, "doc_id", json_string(id)) ||
      json_object_set_new(r, "author", json_string(author)) ||
      json_object_set_new(r, "issued", json_string(ts)) ||
      json_object_set_new(r, "updated", json_string(updated)) ||
      json_object_set_new(r, "version", version ? json_integer(json_integer_value(version))
                                                : json_null()) ||
      json_object_set(r, "statements", rows) ||
      json_object_set_new(r, "doc_sha256", json_string(d->sha256))) {
    rc = st_fail(err, ST_ENOMEM, "vex");
    goto done;
  }
  *row = r;
  r = NULL;
done:
  json_decref(r);
  json_decref(rows);
  return rc;
}
