/* profile.c: export profiles: JSON form, validation, and CRUD over export_profiles (the
 * only SQL on that table). The API and `stella export profile` call these. */
#include <string.h>

#include "export/export.h"
#include "registry.h"
#include "stella/jcs.h"
#include "stella/mem.h"

static const char *const kinds[] = {"json:raw", "json:policy", "mirror:full", "mirror:delta",
                                    "trivy:db", "trivy:java-db", NULL};
static const char *const compressions[] = {"none", "gzip", "zstd", NULL};
static const char *const fields[] = {"name", "project", "kind", "filters", "redaction",
                                     "compression", "single_flight", "schedule",
                                     "source_tenants", "distribution", "created_at",
                                     "updated_at", NULL};

static int in(const char *s, const char *const *set) {
  for (; s && *set; set++)
    if (!strcmp(s, *set))
      return 1;
  return 0;
}

static int ident(const char *s) {
  size_t n = s ? strlen(s) : 0;
  return n >= 1 && n <= 64 &&
         s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")] == 0;
}

void st_export_profile_init(st_export_profile_t *p) {
  memset(p, 0, sizeof(*p));
  p->single_flight = 1;
}

void st_export_profile_release(st_export_profile_t *p) {
  if (!p)
    return;
  st_free(p->name);
  st_free(p->project);
  st_free(p->kind);
  st_free(p->compression);
  st_free(p->schedule);
  st_free(p->created_at);
  st_free(p->updated_at);
  json_decref(p->filters);
  json_decref(p->redaction);
  json_decref(p->source_tenants);
  json_decref(p->distribution);
  st_export_profile_init(p);
}

static int str_array(const json_t *a, const char *field, int tenants, st_error_t *err) {
  const json_t *v;
  size_t i;
  if (!json_is_array(a))
    return st_fail(err, ST_EINVAL, "%s: expected an array of strings", field);
  if (json_array_size(a) > 256)
    return st_fail(err, ST_EINVAL, "%s: more than 256 entries", field);
  json_array_foreach(a, i, v) {
    const char *s = json_string_value(v);
    if (tenants ? !ident(s) : (!s || !*s || json_string_length(v) > 256))
      return st_fail(err, ST_EINVAL, "%s[%zu]: expected %s", field, i,
                     tenants ? "a tenant id ([A-Za-z0-9._-]{1,64})" : "a field name");
  }
  return 0;
}

/* distribution: {"targets", "retain_days"?}, checked as the oci_distribute job that a built
 * run queues will check its payload (the run id is filled in then). */
static int distribution_check(const json_t *d, st_error_t *err) {
  const char *key;
  json_t *v, *payload;
  int rc;
  if (!json_is_object(d))
    return st_fail(err, ST_EINVAL, "distribution: expected an object {targets, retain_days?}");
  json_object_foreach((json_t *)d, key, v) if (strcmp(key, "targets") && strcmp(key, "retain_days"))
      return st_fail(err, ST_EINVAL, "distribution.%s: unknown field", key);
  if (!json_object_get(d, "targets"))
    return st_fail(err, ST_EINVAL, "distribution.targets: required");
  if (!(payload = json_deep_copy(d)) ||
      json_object_set_new(payload, "run_id", json_string("00000000-0000-0000-0000-000000000000")))
    rc = st_fail(err, ST_ENOMEM, "profile");
  else if ((rc = st_worker_oci_distribute.validate(payload, err)))
    rc = st_error_wrap(err, "distribution");
  json_decref(payload);
  return rc;
}

int st_export_profile_from_json(const json_t *j, st_export_profile_t *p, st_error_t *err) {
  st_export_filters_t f;
  const char *key;
  json_t *v;
  const char *name, *project, *kind, *comp, *sched;
  int rc;

  st_export_profile_release(p);
  if (!json_is_object(j))
    return st_fail(err, ST_EINVAL, "profile: expected an object");
  json_object_foreach((json_t *)j, key, v) if (!in(key, fields))
      return st_fail(err, ST_EINVAL, "%s: unknown profile field", key);
  name = json_string_value(json_object_get(j, "name"));
  project = json_object_get(j, "project") ? json_string_value(json_object_get(j, "project"))
                                          : "default";
  kind = json_string_value(json_object_get(j, "kind"));
  comp = json_object_get(j, "compression")
             ? json_string_value(json_object_get(j, "compression")) : "gzip";
  v = json_object_get(j, "schedule");
  sched = json_string_value(v);
  if (!ident(name))
    return st_fail(err, ST_EINVAL, "name: expected [A-Za-z0-9._-]{1,64}");
  if (!ident(project))
    return st_fail(err, ST_EINVAL, "project: expected [A-Za-z0-9._-]{1,64}");
  if (!in(kind, kinds))
    return st_fail(err, ST_EINVAL, "kind: expected one of json:raw, json:policy, mirror:full, "
                   "mirror:delta, trivy:db, trivy:java-db");
  if (!in(comp, compressions))
    return st_fail(err, ST_EINVAL, "compression: expected one of none, gzip, zstd");
  if (v && !json_is_null(v) && (!sched || !*sched || strlen(sched) > 128))
    return st_fail(err, ST_EINVAL, "schedule: expected a string of 1..128 bytes or null");
  if ((v = json_object_get(j, "single_flight")) && !json_is_boolean(v))
    return st_fail(err, ST_EINVAL, "single_flight: expected true or false");
  p->single_flight = v ? json_is_true(v) : 1;
  p->filters = json_object_get(j, "filters") ? json_deep_copy(json_object_get(j, "filters"))
                                             : json_object();
  p->redaction = json_object_get(j, "redaction")
                     ? json_deep_copy(json_object_get(j, "redaction")) : json_array();
  p->source_tenants = json_object_get(j, "source_tenants")
                          ? json_deep_copy(json_object_get(j, "source_tenants"))
                          : json_array();
  if ((v = json_object_get(j, "distribution")) && !json_is_null(v)) {
    if ((rc = distribution_check(v, err)))
      goto done;
    if (!(p->distribution = json_deep_copy(v))) {
      rc = st_fail(err, ST_ENOMEM, "profile");
      goto done;
    }
  }
  if (!p->filters || !p->redaction || !p->source_tenants || !(p->name = st_strdup(name)) ||
      !(p->project = st_strdup(project)) || !(p->kind = st_strdup(kind)) ||
      !(p->compression = st_strdup(comp)) || (sched && !(p->schedule = st_strdup(sched)))) {
    rc = st_fail(err, ST_ENOMEM, "profile");
    goto done;
  }
  if ((rc = str_array(p->redaction, "redaction", 0, err)) ||
      (rc = str_array(p->source_tenants, "source_tenants", 1, err)))
    goto done;
  if ((rc = st_export_filters_parse(p->filters, &f, err)))
    goto done;
  st_export_filters_release(&f);
done:
  if (rc)
    st_export_profile_release(p);
  return rc;
}

int st_export_profile_to_json(const st_export_profile_t *p, json_t **out, st_error_t *err) {
  json_t *j = json_pack("{sssssssOsOsssbsOso}", "name", p->name, "project", p->project, "kind",
                        p->kind, "filters", p->filters, "redaction", p->redaction,
                        "compression", p->compression, "single_flight", p->single_flight,
                        "source_tenants", p->source_tenants, "schedule",
                        p->schedule ? json_string(p->schedule) : json_null());
  if (j && p->distribution)
    json_object_set(j, "distribution", p->distribution);
  if (j && p->created_at)
    json_object_set_new(j, "created_at", json_string(p->created_at));
  if (j && p->updated_at)
    json_object_set_new(j, "updated_at", json_string(p->updated_at));
  *out = j;
  return j ? 0 : st_fail(err, ST_ENOMEM, "profile");
}

typedef struct crud_s {
  const char *name;
  const char *json;
  json_t *list;
  st_export_profile_t *out;
  const st_export_hook_t *hook;
} crud_t;

static int hook(PGconn *c, const st_export_hook_t *h, int rc, st_error_t *err) {
  return rc || !h || !h->fn ? rc : h->fn(c, h->arg, err);
}

#define PROFILE_COLS                                                                        \
  "(jsonb_build_object('name', name, 'project', project, 'kind', kind, 'filters', filters," \
  " 'redaction', redaction, 'compression', compression, 'single_flight', single_flight,"    \
  " 'schedule', schedule, 'source_tenants', to_jsonb(source_tenants),"                      \
  " 'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"\
  " 'updated_at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')) ||"\
  " CASE WHEN distribution IS NULL THEN '{}'::jsonb"                                         \
  " ELSE jsonb_build_object('distribution', distribution) END)::text"

static int create_tx(PGconn *c, void *arg, st_error_t *err) {
  crud_t *a = arg;
  const char *p[1] = {a->json};
  int rc = st_db_exec(
      c,
      "INSERT INTO export_profiles (tenant_id, name, project, kind, filters, redaction, "
      "compression, single_flight, schedule, source_tenants, distribution) "
      "SELECT current_setting('stella.tenant'), j->>'name', j->>'project', "
      "(j->>'kind')::export_kind, j->'filters', j->'redaction', "
      "(j->>'compression')::export_compression, (j->>'single_flight')::boolean, "
      "j->>'schedule', ARRAY(SELECT jsonb_array_elements_text(j->'source_tenants')), "
      "j->'distribution' FROM (SELECT $1::jsonb AS j) s",
      1, p, NULL, err);
  return rc == ST_ECONFLICT ? st_fail(err, ST_EEXIST, "name: profile \"%s\" already exists",
                                      a->name)
                            : hook(c, a->hook, rc, err);
}

/* Check p for tenant, encode it and run fn (create_tx or update_tx) with it. */
static int write_profile(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                         st_db_tx_fn fn, const st_export_hook_t *h, st_error_t *err) {
  json_t *j = NULL;
  crud_t a = {p->name, NULL, NULL, NULL, h};
  st_buf_t text = ST_BUF_INIT;
  const json_t *v;
  size_t i;
  int rc;

  json_array_foreach(p->source_tenants, i, v) if (!strcmp(json_string_value(v), tenant))
      return st_fail(err, ST_EINVAL, "source_tenants[%zu]: the profile's own tenant", i);
  if ((rc = st_export_profile_to_json(p, &j, err)))
    return rc;
  if (!(rc = st_jcs_encode(j, &text, err))) {
    a.json = text.data;
    rc = st_db_tenant_tx(pool, tenant, fn, &a, err);
  }
  st_buf_release(&text);
  json_decref(j);
  return rc;
}

int st_export_profile_create(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                             const st_export_hook_t *h, st_error_t *err) {
  return write_profile(pool, tenant, p, create_tx, h, err);
}

static int get_tx(PGconn *c, void *arg, st_error_t *err) {
  crud_t *a = arg;
  const char *p[1] = {a->name};
  PGresult *res = NULL;
  json_t *j = NULL;
  int rc = st_db_exec(c, "SELECT " PROFILE_COLS " FROM export_profiles WHERE name = $1", 1, p,
                      &res, err);
  if (rc)
    return rc;
  if (PQntuples(res) == 0)
    rc = st_fail(err, ST_ENOENT, "profile \"%s\" not found", a->name);
  else if (!(rc = st_json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), NULL,
                                &j, err))) {
    const char *ca = json_string_value(json_object_get(j, "created_at"));
    const char *ua = json_string_value(json_object_get(j, "updated_at"));
    if (!(rc = st_export_profile_from_json(j, a->out, err)) &&
        (!(a->out->created_at = st_strdup(ca)) || !(a->out->updated_at = st_strdup(ua))))
      rc = st_fail(err, ST_ENOMEM, "profile");
  }
  json_decref(j);
  PQclear(res);
  return rc;
}

int st_export_profile_get(st_db_pool_t *pool, const char *tenant, const char *name,
                          st_export_profile_t *out, st_error_t *err) {
  crud_t a = {name, NULL, NULL, out, NULL};
  return st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, get_tx, &a, err);
}

static int list_tx(PGconn *c, void *arg, st_error_t *err) {
  crud_t *a = arg;
  PGresult *res = NULL;
  json_t *j = NULL;
  int rc = st_db_exec(c, "SELECT coalesce(jsonb_agg(p ORDER BY n), '[]')::text FROM "
                         "(SELECT name AS n, (" PROFILE_COLS ")::jsonb AS p "
                         "FROM export_profiles) s",
                      0, NULL, &res, err);
  if (!rc && !(rc = st_json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), NULL,
                                  &j, err))) {
    json_decref(a->list);
    a->list = j;
  }
  PQclear(res);
  return rc;
}

int st_export_profile_list(st_db_pool_t *pool, const char *tenant, json_t **out,
                           st_error_t *err) {
  crud_t a = {NULL, NULL, NULL, NULL, NULL};
  int rc = st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, list_tx, &a, err);
  *out = rc ? NULL : a.list;
  if (rc)
    json_decref(a.list);
  return rc;
}

static int delete_tx(PGconn *c, void *arg, st_error_t *err) {
  crud_t *a = arg;
  const char *p[1] = {a->name};
  long long active = 0, n = 0;
  int rc = st_db_query_int(c, "SELECT count(*) FROM export_runs WHERE profile_name = $1 AND "
                              "state IN ('requested', 'planning', 'running')",
                           1, p, &active, err);
  if (!rc && active)
    rc = st_fail(err, ST_ECONFLICT, "profile \"%s\" has an active run", a->name);
  if (!rc)
    rc = st_db_exec_count(c, "DELETE FROM export_profiles WHERE name = $1", 1, p, &n, err);
  if (!rc && n == 0)
    rc = st_fail(err, ST_ENOENT, "profile \"%s\" not found", a->name);
  return hook(c, a->hook, rc, err);
}

int st_export_profile_delete(st_db_pool_t *pool, const char *tenant, const char *name,
                             const st_export_hook_t *h, st_error_t *err) {
  crud_t a = {name, NULL, NULL, NULL, h};
  return st_db_tenant_tx(pool, tenant, delete_tx, &a, err);
}

static int update_tx(PGconn *c, void *arg, st_error_t *err) {
  crud_t *a = arg;
  const char *p[1] = {a->json};
  long long n = 0;
  int rc = st_db_exec_count(
      c,
      "UPDATE export_profiles SET project = j->>'project', kind = (j->>'kind')::export_kind, "
      "filters = j->'filters', redaction = j->'redaction', "
      "compression = (j->>'compression')::export_compression, "
      "single_flight = (j->>'single_flight')::boolean, schedule = j->>'schedule', "
      "source_tenants = ARRAY(SELECT jsonb_array_elements_text(j->'source_tenants')), "
      "distribution = j->'distribution' FROM (SELECT $1::jsonb AS j) s WHERE name = j->>'name'",
      1, p, &n, err);
  if (!rc && n == 0)
    rc = st_fail(err, ST_ENOENT, "profile \"%s\" not found", a->name);
  return hook(c, a->hook, rc, err);
}

int st_export_profile_update(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                             const st_export_hook_t *h, st_error_t *err) {
  return write_profile(pool, tenant, p, update_tx, h, err);
}
