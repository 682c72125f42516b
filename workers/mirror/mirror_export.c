/* mirror_export.c: mirror:full and mirror:delta export runs (st_mirror_export_run): the
 * export run machinery's plan, the ledger read in plan order (every item checked against
 * the recorded plan, every document's RFC 8785 digest against the ledger's doc_sha256),
 * the mirror builder, and st_export_publish (export.tgz, its detached signature files and
 * mirror.state.ndjson, the tree's state and the base of a later delta, under
 * tenants/<t>/projects/<p>/exports/<run>/).
 *
 * Documents travel whole (their digests are the ledger's), so a mirror profile's redaction
 * must be empty; policy results are planned (sources "policy") but not mirrored. A delta's
 * base is the run given, else the tenant's newest distributed mirror run of the same
 * project; its state object is read from the object store. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "mirror_export.h"
#include "mirror_int.h"
#include "stella/jcs.h"
#include "stella/mem.h"

#define BUNDLE "export.tgz"
#define STATE "mirror.state.ndjson"

typedef struct mx_s {
  const st_export_env_t *env;
  const char *tenant, *run_id, *base_run;
  const st_mirror_opts_t *ttl;
  st_export_profile_t prof;
  st_export_plan_t plan;
  st_mirror_builder_t *b;
  st_mirror_state_t *base;
  st_mirror_result_t res;
  char *dir;
  size_t next;
  unsigned since_poll;
} mx_t;

static int item(mx_t *x, const char *tenant, const st_ledger_item_t *it, st_buf_t *canon,
                st_error_t *err) {
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc;
  if ((rc = st_export_plan_expect(&x->plan, &x->next, tenant, it, err)))
    return rc;
  if (it->kind == ST_LEDGER_POLICY_RESULT)
    return 0;
  st_buf_reset(canon);
  if ((rc = st_jcs_canonicalize(it->doc, strlen(it->doc), NULL, canon, err)))
    return rc;
  if (st_sha256(canon->data, canon->len, d))
    return st_fail(err, ST_ECRYPTO, "mirror: sha256");
  st_sha256_hex(d, hex);
  if (strcmp(hex, it->digest))
    return st_fail(err, ST_ECONFLICT,
                   "mirror: %s %s: the document's digest is not the "
                   "ledger's doc_sha256",
                   st_ledger_kind_name(it->kind), it->id);
  return st_mirror_builder_add(x->b,
                               it->kind == ST_LEDGER_ADVISORY ? ST_MIRROR_ADVISORIES
                               : it->kind == ST_LEDGER_VEX    ? ST_MIRROR_VEX
                                                              : ST_MIRROR_POLICY,
                               it->id, canon->data, canon->len, it->modified, err);
}

static int documents(mx_t *x, st_error_t *err) {
  st_export_filters_t f;
  st_ledger_iter_t *it = NULL;
  st_buf_t canon = ST_BUF_INIT;
  int rc;
  if ((rc = st_export_filters_parse(x->prof.filters, &f, err)))
    return rc;
  for (size_t t = 0; t < x->plan.ntenants && !rc; t++)
    for (int k = 0; k < ST_LEDGER_NKINDS && !rc; k++) {
      const st_ledger_item_t *li;
      if (!(f.sources & (1u << k)))
        continue;
      if ((rc = st_ledger_iter_new(x->env->db, x->plan.tenants[t], (st_ledger_kind)k, &f.scope,
                                   k != ST_LEDGER_POLICY_RESULT, 0, &it, err)))
        break;
      while (!rc && (rc = st_ledger_iter_next(it, &li, err)) == 1)
        if (!(rc = item(x, x->plan.tenants[t], li, &canon, err)))
          rc =
              st_export_poll(x->env, x->tenant, x->run_id, &x->since_poll, x->next, x->plan.n, err);
      st_ledger_iter_free(it);
      it = NULL;
    }
  if (!rc && x->next != x->plan.n)
    rc = st_fail(err, ST_ECONFLICT,
                 "mirror: the ledger changed since the run was planned "
                 "(%zu of %zu planned items read)",
                 x->next, x->plan.n);
  st_export_filters_release(&f);
  st_buf_release(&canon);
  return rc;
}

static int write_to_file(void *ctx, const void *buf, size_t len) {
  return fwrite(buf, 1, len, ctx) == len ? 0 : ST_EIO;
}

/* The base state: base_run's, else the newest distributed mirror run of the project. */
static int load_base(mx_t *x, st_error_t *err) {
  json_t *list = NULL, *run = NULL, *r;
  st_buf_t key = ST_BUF_INIT, path = ST_BUF_INIT;
  const char *base = x->base_run, *akey;
  FILE *f = NULL;
  size_t i;
  int rc;

  if (!base) {
    if ((rc = st_export_run_list(x->env->db, x->tenant, NULL, 500, &list, err)))
      goto done;
    json_array_foreach(list, i, r) {
      const char *kind = json_string_value(json_object_get(r, "kind"));
      const char *state = json_string_value(json_object_get(r, "state"));
      const char *proj = json_string_value(json_object_get(r, "project"));
      if (kind && !strncmp(kind, "mirror:", 7) && state && !strcmp(state, "distributed") && proj &&
          !strcmp(proj, x->prof.project) &&
          strcmp(json_string_value(json_object_get(r, "run_id")), x->run_id)) {
        base = json_string_value(json_object_get(r, "run_id"));
        break;
      }
    }
    if (!base) {
      rc = st_fail(err, ST_ENOENT,
                   "mirror:delta: no distributed mirror run of project %s to "
                   "diff against (run a mirror:full profile first, or give base_run)",
                   x->prof.project);
      goto done;
    }
  }
  if ((rc = st_export_run_get(x->env->db, x->tenant, base, &run, err)))
    goto done;
  akey = json_string_value(json_object_get(json_object_get(run, "artifact"), "key"));
  if (strncmp(json_string_value(json_object_get(run, "kind")), "mirror:", 7) || !akey ||
      strlen(akey) < strlen(BUNDLE) || strcmp(akey + strlen(akey) - strlen(BUNDLE), BUNDLE)) {
    rc = st_fail(err, ST_EINVAL, "base_run %s: not a built mirror run", base);
    goto done;
  }
  if (st_buf_add(&key, akey, strlen(akey) - strlen(BUNDLE)) || st_buf_adds(&key, STATE) ||
      st_buf_addf(&path, "%s/base.state", x->dir)) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  if (!(f = fopen(path.data, "wbx"))) {
    rc = st_fail(err, ST_EIO, "mirror: cannot create %s", path.data);
    goto done;
  }
  rc = st_objstore_get(x->env->store, x->tenant, key.data, 0, ST_OBJSTORE_TO_END, write_to_file, f,
                       err);
  if (fclose(f) && !rc)
    rc = st_fail(err, ST_EIO, "mirror: writing %s", path.data);
  if (!rc)
    rc = st_mirror_state_load(path.data, &x->base, err);
  if (rc)
    st_error_wrap(err, "base_run %s", base);
done:
  json_decref(list);
  json_decref(run);
  st_buf_release(&key);
  st_buf_release(&path);
  return rc;
}

static int build(void *ud, st_error_t *err) {
  static const char *const extra[] = {STATE, NULL};
  mx_t *x = ud;
  st_mirror_opts_t o = {x->tenant, x->prof.name, 0, 0, 0, 0};
  st_buf_t out = ST_BUF_INIT, state = ST_BUF_INIT;
  json_t *counts = NULL;
  int rc;

  if (strcmp(x->prof.kind, "mirror:full") && strcmp(x->prof.kind, "mirror:delta"))
    return st_fail(err, ST_EUNSUPPORTED, "kind: %s is not a mirror export", x->prof.kind);
  if (json_array_size(x->prof.redaction))
    return st_fail(err, ST_EINVAL,
                   "redaction: a mirror ships documents whole (their digests "
                   "are the ledger's); want []");
  if (x->ttl) {
    o.ttl_timestamp = x->ttl->ttl_timestamp;
    o.ttl_metadata = x->ttl->ttl_metadata;
    o.ttl_root = x->ttl->ttl_root;
  }
  if ((rc = st_export_plan_build(x->env->db, x->tenant, &x->prof, &x->plan, err)) ||
      (rc = st_export_plan_record(x->env->db, x->tenant, x->run_id, &x->plan, err)) ||
      (rc = st_export_run_set_state(x->env->db, x->tenant, x->run_id, "running", NULL, err)) ||
      (rc = st_export_tmpdir(x->env->tmp_dir, &x->dir, err)))
    goto done;
  if ((!strcmp(x->prof.kind, "mirror:delta") && (rc = load_base(x, err))) ||
      (rc = st_mirror_builder_new(x->dir, &x->b, err)) || (rc = documents(x, err)))
    goto done;
  if (st_buf_addf(&out, "%s/%s", x->dir, BUNDLE) || st_buf_addf(&state, "%s/%s", x->dir, STATE) ||
      !(counts = json_object())) {
    rc = st_fail(err, ST_ENOMEM, "mirror: out of memory");
    goto done;
  }
  if ((rc = st_mirror_builder_seal(x->b, &o, x->base, x->env->signer, x->env->tsa, out.data,
                                   state.data, &x->res, err)))
    goto done;
  for (int k = 0; k < ST_MIRROR_NDIRS; k++)
    json_object_set_new(counts, st_mirror_dir_name(k), json_integer(x->res.docs[k]));
  {
    st_export_out_t po = {x->env, x->tenant,      x->run_id, &x->prof, x->plan.digest,
                          x->dir, &x->res.sealed, counts,    extra};
    rc = st_export_publish(&po, err);
  }
done:
  json_decref(counts);
  st_buf_release(&out);
  st_buf_release(&state);
  return rc;
}

int st_mirror_export_run(const st_export_env_t *env, const st_mirror_opts_t *ttl,
                         const char *tenant, const char *run_id, const char *base_run,
                         st_error_t *err) {
  mx_t x;
  int rc;

  memset(&x, 0, sizeof(x));
  st_export_profile_init(&x.prof);
  x.env = env;
  x.tenant = tenant;
  x.run_id = run_id;
  x.base_run = base_run;
  x.ttl = ttl;
  rc = st_export_drive(env, tenant, run_id, &x.prof, build, &x, err);
  st_mirror_builder_free(x.b);
  st_mirror_state_free(x.base);
  st_export_rmtree(x.dir);
  st_free(x.dir);
  st_export_plan_release(&x.plan);
  st_export_profile_release(&x.prof);
  return rc;
}
