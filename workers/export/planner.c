/* planner.c: the scope resolver. A profile's filters become a ledger scope; the planner
 * walks the ledger of each source tenant kind by kind through st_ledger_iter (keyset pages
 * in id byte order) and lists the inputs with their digests, in the order and with the
 * digest export.h defines. Cross-tenant sources are read only under a live operator grant
 * (stella_export_grant); a missing grant refuses the plan and writes a `denied` audit row.
 * st_export_plan_record writes the inputs of a run once, in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "stella/jcs.h"
#include "stella/mem.h"

#define INPUTS_BATCH 1000

void st_export_plan_release(st_export_plan_t *plan) {
  if (!plan)
    return;
  for (size_t i = 0; i < plan->n; i++)
    st_free(plan->inputs[i].id);
  for (size_t i = 0; i < plan->ntenants; i++)
    st_free(plan->tenants[i]);
  st_free(plan->tenants);
  st_free(plan->inputs);
  json_decref(plan->profile);
  json_decref(plan->grants);
  memset(plan, 0, sizeof(*plan));
}

typedef struct grant_arg_s {
  const char *source, *profile;
  long long id;
  json_t *grant;
} grant_arg_t;

static int grant_tx(PGconn *c, void *arg, st_error_t *err) {
  grant_arg_t *g = arg;
  const char *p[2] = {g->source, NULL};
  PGresult *res = NULL;
  int rc = st_db_exec(c, "SELECT id, granted_by, reason FROM stella_export_grant($1, "
                         "current_setting('stella.tenant'))",
                      1, p, &res, err);
  if (rc)
    return rc;
  g->id = 0;
  if (PQntuples(res) == 1) {
    g->id = atoll(PQgetvalue(res, 0, 0));
    json_decref(g->grant);
    g->grant = json_pack("{sssIssss}", "source_tenant", g->source, "grant_id",
                         (json_int_t)g->id, "granted_by", PQgetvalue(res, 0, 1), "reason",
                         PQgetvalue(res, 0, 2));
    rc = g->grant ? 0 : st_fail(err, ST_ENOMEM, "grant");
  }
  PQclear(res);
  return rc;
}

/* Refusals are audited in their own transaction (the plan itself writes nothing). */
static int audit_denied_tx(PGconn *c, void *arg, st_error_t *err) {
  grant_arg_t *g = arg;
  const char *p[2] = {g->profile, g->source};
  return st_db_exec(c, "INSERT INTO audit_log (tenant_id, actor, action, resource, outcome, "
                       "detail) VALUES (current_setting('stella.tenant'), 'export-planner', "
                       "'export.cross_tenant', 'export_profiles/' || $1, 'denied', "
                       "jsonb_build_object('source_tenant', $2::text))",
                    2, p, NULL, err);
}

static int add_input(st_export_plan_t *plan, const st_ledger_item_t *it, const char *tenant,
                     long long grant) {
  st_export_input_t *in;
  if (plan->n == plan->cap) {
    size_t cap = plan->cap ? plan->cap * 2 : 1024;
    st_export_input_t *v = st_realloc(plan->inputs, cap * sizeof(*v));
    if (!v)
      return ST_ENOMEM;
    plan->inputs = v;
    plan->cap = cap;
  }
  in = &plan->inputs[plan->n];
  if (!(in->id = st_strdup(it->id)) || strlen(it->digest) != ST_SHA256_HEX_LEN) {
    st_free(in->id);
    return in->id ? ST_EDB : ST_ENOMEM;
  }
  in->kind = it->kind;
  in->tenant = tenant;
  memcpy(in->digest, it->digest, sizeof(in->digest));
  in->grant_id = grant;
  plan->n++;
  plan->counts[it->kind]++;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The source tenants: own first, then the profile's others in byte order. */
static int tenants(st_export_plan_t *plan, const char *own, const json_t *others,
                   st_error_t *err) {
  size_t n = json_array_size(others), i;
  const json_t *v;

  if (!(plan->tenants = st_calloc(n + 1, sizeof(char *))) ||
      !(plan->tenants[0] = st_strdup(own)))
    return st_fail(err, ST_ENOMEM, "plan");
  plan->ntenants = 1;
  json_array_foreach(others, i, v) {
    if (!(plan->tenants[plan->ntenants] = st_strdup(json_string_value(v))))
      return st_fail(err, ST_ENOMEM, "plan");
    plan->ntenants++;
  }
  qsort(plan->tenants + 1, n, sizeof(char *), cmp_str);
  return 0;
}

static int digest(st_export_plan_t *plan, st_error_t *err) {
  st_sha256_t h = {0};
  st_buf_t line = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  int rc = st_sha256_init(&h);

  for (size_t i = 0; i < plan->n && !rc; i++) {
    const st_export_input_t *in = &plan->inputs[i];
    st_buf_reset(&line);
    rc = st_buf_addf(&line, "%s\t%s\t", st_ledger_kind_name(in->kind), in->tenant);
    for (const char *p = in->id; *p && !rc; p++)
      rc = *p == '\n' ? st_buf_adds(&line, "\\n") : st_buf_addc(&line, *p);
    rc = rc || st_buf_addf(&line, "\t%s\n", in->digest) ||
         st_sha256_update(&h, line.data, line.len);
  }
  if (!rc && !(rc = st_sha256_final(&h, d)))
    st_sha256_hex(d, plan->digest);
  st_sha256_release(&h);
  st_buf_release(&line);
  return rc ? st_fail(err, rc, "plan digest") : 0;
}

int st_export_plan_build(st_db_pool_t *pool, const char *tenant,
                         const st_export_profile_t *profile, st_export_plan_t *out,
                         st_error_t *err) {
  st_export_filters_t f;
  st_ledger_iter_t *it = NULL;
  int rc, have_filters = 0;

  st_export_plan_release(out);
  if ((rc = st_db_tenant_check(tenant, err)))
    return rc;
  strcpy(out->tenant, tenant);
  if ((rc = st_export_filters_parse(profile->filters, &f, err)))
    return rc;
  have_filters = 1;
  if ((rc = st_export_profile_to_json(profile, &out->profile, err)))
    goto done;
  json_object_del(out->profile, "created_at");
  json_object_del(out->profile, "updated_at");
  if (!(out->grants = json_array())) {
    rc = st_fail(err, ST_ENOMEM, "plan");
    goto done;
  }
  if ((rc = tenants(out, tenant, profile->source_tenants, err)))
    goto done;
  for (size_t t = 0; t < out->ntenants; t++) {
    long long grant = 0;
    if (t > 0) {
      grant_arg_t g = {out->tenants[t], profile->name, 0, NULL};
      if ((rc = st_db_tenant_txf(pool, tenant, ST_DB_TX_READ_ONLY, grant_tx, &g, err)))
        goto done;
      if (!g.id) {
        st_error_t aerr = ST_ERROR_INIT;
        if (st_db_tenant_tx(pool, tenant, audit_denied_tx, &g, &aerr))
          rc = st_fail(err, aerr.code, "auditing a refused cross-tenant export: %s",
                       st_error_text(&aerr));
        else
          rc = st_fail(err, ST_EPERM, "source_tenants: tenant %s has not allowed tenant %s to "
                       "export its ledger (no live grant in export_cross_tenant_grants); "
                       "refused and audited", out->tenants[t], tenant);
        goto done;
      }
      grant = g.id;
      json_array_append_new(out->grants, g.grant);
    }
    for (int k = 0; k < ST_LEDGER_NKINDS; k++) {
      const st_ledger_item_t *item;
      if (!(st_export_kind_sources(profile->kind, f.sources) & (1u << k)))
        continue;
      if ((rc = st_ledger_iter_new(pool, out->tenants[t], (st_ledger_kind)k, &f.scope, 0, 0,
                                   &it, err)))
        goto done;
      while ((rc = st_ledger_iter_next(it, &item, err)) == 1)
        if ((rc = add_input(out, item, out->tenants[t], grant))) {
          rc = st_fail(err, rc, "plan: %s", rc == ST_ENOMEM ? "out of memory" : "bad digest");
          goto done;
        }
      if (rc)
        goto done;
      st_ledger_iter_free(it);
      it = NULL;
    }
  }
  if (out->n == 0) {
    rc = st_fail(err, ST_ENOENT, "the scope is empty: no ledger rows match the filters of "
                 "profile \"%s\"", profile->name);
    goto done;
  }
  rc = digest(out, err);
done:
  st_ledger_iter_free(it);
  if (have_filters)
    st_export_filters_release(&f);
  if (rc)
    st_export_plan_release(out);
  return rc;
}

int st_export_plan_to_json(const st_export_plan_t *plan, int with_inputs, json_t **out,
                           st_error_t *err) {
  json_t *j = NULL, *counts = json_object(), *ts = json_array(), *ins = NULL;
  long long total = 0;

  *out = NULL;
  for (int k = 0; counts && k < ST_LEDGER_NKINDS; k++) {
    json_object_set_new(counts, st_ledger_kind_name((st_ledger_kind)k),
                        json_integer(plan->counts[k]));
    total += plan->counts[k];
  }
  for (size_t i = 0; ts && i < plan->ntenants; i++)
    json_array_append_new(ts, json_string(plan->tenants[i]));
  if (with_inputs && (ins = json_array()))
    for (size_t i = 0; i < plan->n; i++) {
      const st_export_input_t *in = &plan->inputs[i];
      if (json_array_append_new(ins, json_pack("{ssssssss}", "kind",
                                               st_ledger_kind_name(in->kind), "tenant",
                                               in->tenant, "id", in->id, "digest", in->digest))) {
        json_decref(ins);
        ins = NULL;
        break;
      }
    }
  if (counts && ts && (!with_inputs || ins))
    j = json_pack("{sssssOsssOsIsOsO}", "schema", "stella.export-plan/v1", "tenant",
                  plan->tenant, "profile", plan->profile, "plan_digest", plan->digest,
                  "counts", counts, "total", (json_int_t)total, "source_tenants", ts, "grants",
                  plan->grants);
  if (j && ins)
    json_object_set(j, "inputs", ins);
  json_decref(counts);
  json_decref(ts);
  json_decref(ins);
  *out = j;
  return j ? 0 : st_fail(err, ST_ENOMEM, "plan json");
}

int st_export_plan_payload(const st_export_plan_t *plan, const char *run_id, json_t **out,
                           st_error_t *err) {
  *out = json_pack("{sssssssssssI}", "run_id", run_id, "profile",
                   json_string_value(json_object_get(plan->profile, "name")), "kind",
                   json_string_value(json_object_get(plan->profile, "kind")), "plan_digest",
                   plan->digest, "tenant", plan->tenant, "inputs", (json_int_t)plan->n);
  return *out ? 0 : st_fail(err, ST_ENOMEM, "payload");
}

/* ---- runs ---- */

typedef struct run_arg_s {
  const st_export_profile_t *p;
  const char *profile_json, *idem, *run_id;
  const st_export_plan_t *plan;
  char *out;
  int max_active; /* > 0: per-tenant limit on active runs */
  const st_export_hook_t *hook;
} run_arg_t;

/* The per-tenant limit, counted under a transaction lock on the tenant. */
static int active_limit(PGconn *c, const run_arg_t *a, st_error_t *err) {
  const char *p[1] = {a->p->name};
  long long n = 0, same = 0;
  int rc;

  if ((rc = st_db_exec(c, "SELECT pg_advisory_xact_lock(hashtext('export_runs:' || "
                          "current_setting('stella.tenant')))", 0, NULL, NULL, err)) ||
      (rc = st_db_query_int(c, "SELECT count(*) FROM export_runs WHERE state IN "
                               "('requested', 'planning', 'running')", 0, NULL, &n, err)))
    return rc;
  if ((rc = st_db_query_int(c, "SELECT count(*) FROM export_runs WHERE profile_name = $1 AND "
                               "single_flight AND state IN ('requested', 'planning', 'running')",
                            1, p, &same, err)))
    return rc;
  if (same && a->p->single_flight)
    return st_fail(err, ST_ECONFLICT, "profile \"%s\" is single-flight and already has an "
                   "active run", a->p->name);
  if (n >= a->max_active)
    return st_fail(err, ST_ECONFLICT, "the tenant already has %lld active export runs (limit "
                   "%d)", n, a->max_active);
  return 0;
}

static int run_create_tx(PGconn *c, void *arg, st_error_t *err) {
  run_arg_t *a = arg;
  const char *p[6] = {a->p->name, a->p->project, a->p->kind,
                      a->p->single_flight ? "true" : "false", a->profile_json, a->idem};
  PGresult *res = NULL;
  int rc;

  if (a->idem) {
    const char *q[1] = {a->idem};
    if ((rc = st_db_exec(c, "SELECT run_id FROM export_runs WHERE idempotency_key = $1", 1, q,
                         &res, err)))
      return rc;
    if (PQntuples(res) == 1) {
      snprintf(a->out, ST_EXPORT_RUN_ID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
      PQclear(res);
      return 0;
    }
    PQclear(res);
    res = NULL;
  }
  if (a->max_active > 0 && (rc = active_limit(c, a, err)))
    return rc;
  rc = st_db_exec(c, "INSERT INTO export_runs (tenant_id, profile_name, project, kind, "
                     "single_flight, profile, idempotency_key) VALUES "
                     "(current_setting('stella.tenant'), $1, $2, $3::export_kind, $4::boolean, "
                     "$5::jsonb, $6) RETURNING run_id",
                  6, p, &res, err);
  if (rc == ST_ECONFLICT)
    return st_fail(err, ST_ECONFLICT, "profile \"%s\" is single-flight and already has an "
                   "active run", a->p->name);
  if (!rc)
    snprintf(a->out, ST_EXPORT_RUN_ID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  if (!rc && a->hook && a->hook->fn)
    rc = a->hook->fn(c, a->hook->arg, err);
  return rc;
}

int st_export_run_create(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                         const char *idempotency_key, char run_id[ST_EXPORT_RUN_ID_LEN + 1],
                         st_error_t *err) {
  return st_export_run_start(pool, tenant, p, idempotency_key, 0, NULL, run_id, err);
}

int st_export_run_start(st_db_pool_t *pool, const char *tenant, const st_export_profile_t *p,
                        const char *idempotency_key, int max_active, const st_export_hook_t *hook,
                        char run_id[ST_EXPORT_RUN_ID_LEN + 1], st_error_t *err) {
  json_t *j = NULL;
  st_buf_t text = ST_BUF_INIT;
  run_arg_t a = {p, NULL, idempotency_key, NULL, NULL, run_id, max_active, hook};
  int rc;

  run_id[0] = '\0';
  if (!(rc = st_export_profile_to_json(p, &j, err)) && !(rc = st_jcs_encode(j, &text, err))) {
    a.profile_json = text.data;
    rc = st_db_tenant_tx(pool, tenant, run_create_tx, &a, err);
  }
  json_decref(j);
  st_buf_release(&text);
  return rc;
}

static int record_tx(PGconn *c, void *arg, st_error_t *err) {
  run_arg_t *a = arg;
  const st_export_plan_t *plan = a->plan;
  const char *p[3] = {a->run_id, NULL, NULL};
  st_buf_t batch = ST_BUF_INIT, prov = ST_BUF_INIT;
  PGresult *res = NULL;
  json_t *pj = NULL;
  int rc;

  if ((rc = st_db_exec(c, "SELECT plan_digest, state FROM export_runs WHERE run_id = $1::uuid "
                          "FOR UPDATE", 1, p, &res, err)))
    return rc;
  if (PQntuples(res) == 0) {
    rc = st_fail(err, ST_ENOENT, "export run %s not found", a->run_id);
    goto done;
  }
  if (!PQgetisnull(res, 0, 0)) {
    if (strcmp(PQgetvalue(res, 0, 0), plan->digest))
      rc = st_fail(err, ST_ECONFLICT, "export run %s was planned with digest %.16s..., now "
                   "%.16s...: the ledger changed since", a->run_id, PQgetvalue(res, 0, 0),
                   plan->digest);
    goto done;
  }
  for (size_t i = 0; i < plan->n && !rc; i += INPUTS_BATCH) {
    st_buf_reset(&batch);
    rc = st_buf_addc(&batch, '[');
    for (size_t k = i; k < plan->n && k < i + INPUTS_BATCH && !rc; k++) {
      const st_export_input_t *in = &plan->inputs[k];
      json_t *o = json_pack("{sIsssssssssI}", "ord", (json_int_t)k, "source_kind",
                            st_ledger_kind_name(in->kind), "source_tenant", in->tenant,
                            "source_id", in->id, "digest", in->digest, "grant_id",
                            (json_int_t)in->grant_id);
      rc = !o || (k > i && st_buf_addc(&batch, ',')) ? ST_ENOMEM : st_jcs_encode(o, &batch, err);
      json_decref(o);
    }
    rc = rc || st_buf_addc(&batch, ']');
    if (rc) {
      rc = st_fail(err, ST_ENOMEM, "plan record");
      break;
    }
    p[1] = batch.data;
    rc = st_db_exec(c, "INSERT INTO export_inputs (tenant_id, run_id, ord, source_kind, "
                       "source_tenant, source_id, digest, grant_id) SELECT "
                       "current_setting('stella.tenant'), $1::uuid, r.ord, r.source_kind, "
                       "r.source_tenant, r.source_id, r.digest, NULLIF(r.grant_id, 0) FROM "
                       "jsonb_to_recordset($2::jsonb) AS r(ord bigint, source_kind "
                       "export_source_kind, source_tenant text, source_id text, digest text, "
                       "grant_id bigint) ON CONFLICT DO NOTHING",
                    2, p, NULL, err);
  }
  if (rc)
    goto done;
  if ((rc = st_export_plan_to_json(plan, 0, &pj, err)) || (rc = st_jcs_encode(pj, &prov, err)))
    goto done;
  p[1] = plan->digest;
  p[2] = prov.data;
  rc = st_db_exec(c, "UPDATE export_runs SET plan_digest = $2, input_count = "
                     "($3::jsonb->>'total')::bigint, provenance = jsonb_build_object('plan', "
                     "$3::jsonb), state = CASE WHEN state = 'requested' THEN "
                     "'planning'::export_run_state ELSE state END WHERE run_id = $1::uuid",
                  3, p, NULL, err);
done:
  json_decref(pj);
  PQclear(res);
  st_buf_release(&batch);
  st_buf_release(&prov);
  return rc;
}

int st_export_plan_record(st_db_pool_t *pool, const char *tenant, const char *run_id,
                          const st_export_plan_t *plan, st_error_t *err) {
  run_arg_t a = {NULL, NULL, NULL, run_id, plan, NULL, 0, NULL};
  return st_db_tenant_tx(pool, tenant, record_tx, &a, err);
}
