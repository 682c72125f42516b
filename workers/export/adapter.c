/* adapter.c: the parts every export adapter shares (adapter.h): scratch directories, the
 * detached signature files, storing and the built/distributed transitions, and the job
 * descriptor side (payload validation, job type per kind, st_export_job). */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export/adapter.h"
#include "stella/dsse.h"
#include "stella/jcs.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/sha256.h"

#define PREDICATE_TYPE "https://stella.dev/export/v1"
#define EXTRA_MAX 8
static const char *const suffixes[3] = {"", ".dsse.json", ".sig"};

int st_export_tmpdir(const char *root, char **out, st_error_t *err) {
  st_buf_t tmpl = ST_BUF_INIT;
  *out = NULL;
  if (st_buf_addf(&tmpl, "%s/stella-export-%ld-XXXXXX", root ? root : "/tmp", (long)getpid()))
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  if (!mkdtemp(tmpl.data)) {
    st_buf_release(&tmpl);
    return st_fail(err, ST_EIO, "export: cannot create a temporary directory under %s",
                   root ? root : "/tmp");
  }
  *out = st_buf_detach(&tmpl, NULL);
  return 0;
}

void st_export_rmtree(const char *dir) {
  DIR *d;
  struct dirent *e;
  st_buf_t p = ST_BUF_INIT;
  if (!dir || !(d = opendir(dir)))
    return;
  while ((e = readdir(d))) {
    struct stat sb;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    st_buf_reset(&p);
    if (st_buf_addf(&p, "%s/%s", dir, e->d_name) || lstat(p.data, &sb))
      continue;
    if (S_ISDIR(sb.st_mode))
      st_export_rmtree(p.data);
    else
      unlink(p.data);
  }
  closedir(d);
  rmdir(dir);
  st_buf_release(&p);
}

/* The pid in "<prefix><pid>-<suffix>", or 0 when name has not that form. */
static long owner_pid(const char *name) {
  static const char *const prefixes[] = {ST_EXPORT_TMP_PREFIX, ST_EXPORT_OCI_TMP_PREFIX};
  for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
    size_t n = strlen(prefixes[i]);
    char *end;
    long pid;
    if (strncmp(name, prefixes[i], n) || name[n] < '1' || name[n] > '9')
      continue;
    errno = 0;
    pid = strtol(name + n, &end, 10);
    if (!errno && *end == '-' && end[1] && pid > 0 && pid <= 4194304)
      return pid;
  }
  return 0;
}

size_t st_export_sweep(const char *root) {
  DIR *d;
  struct dirent *e;
  st_buf_t p = ST_BUF_INIT;
  size_t removed = 0;
  if (!(d = opendir(root ? root : "/tmp")))
    return 0;
  while ((e = readdir(d))) {
    long pid = owner_pid(e->d_name);
    struct stat sb;
    if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue;
    st_buf_reset(&p);
    if (st_buf_addf(&p, "%s/%s", root ? root : "/tmp", e->d_name) || lstat(p.data, &sb) ||
        !S_ISDIR(sb.st_mode))
      continue;
    st_warn("export: removing %s, left by process %ld which is gone", p.data, pid);
    st_export_rmtree(p.data);
    removed++;
  }
  closedir(d);
  st_buf_release(&p);
  return removed;
}

/* Every object under the run's prefix (tenants/<t>/projects/<p>/exports/<run>/): what a
 * worker that died while storing left of a run that will never be built. */
static int unstore_prefix(const st_export_env_t *env, const char *tenant, const char *project,
                          const char *run_id, st_error_t *err) {
  st_buf_t prefix = ST_BUF_INIT;
  st_objstore_page_t page = ST_OBJSTORE_PAGE_INIT;
  int rc;
  if (st_buf_addf(&prefix, "tenants/%s/projects/%s/exports/%s/", tenant, project, run_id))
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  do {
    st_objstore_page_release(&page);
    page = (st_objstore_page_t)ST_OBJSTORE_PAGE_INIT;
    if ((rc = st_objstore_list(env->store, tenant, prefix.data, NULL, 100, &page, err)))
      break;
    for (size_t i = 0; i < page.count && !rc; i++)
      if ((rc = st_objstore_delete(env->store, tenant, page.keys[i], err)) == ST_ENOENT)
        rc = 0;
  } while (!rc && page.count);
  st_objstore_page_release(&page);
  st_buf_release(&prefix);
  return rc;
}

static int file_digest(const char *path, char hex[ST_SHA256_HEX_LEN + 1], uint8_t d[32],
                       long long *size, st_error_t *err) {
  uint64_t n = 0;
  int rc = st_sha256_file(path, d, &n, err);
  if (!rc) {
    st_sha256_hex(d, hex);
    if (size)
      *size = (long long)n;
  }
  return rc;
}

static int write_file(const char *path, const void *data, size_t len, st_error_t *err) {
  FILE *f = fopen(path, "wbx");
  int ok = f && fwrite(data, 1, len, f) == len;
  if (f && fclose(f))
    ok = 0;
  return ok ? 0 : st_fail(err, ST_EIO, "export: cannot write %s", path);
}

/* export.tgz.dsse.json (a Statement whose subject is the .tgz) and export.tgz.sig. */
static int detached(const st_export_out_t *o, const char *sha, const uint8_t digest[32],
                    st_error_t *err) {
  st_buf_t p = ST_BUF_INIT, stmt = ST_BUF_INIT, env = ST_BUF_INIT, sig = ST_BUF_INIT;
  const st_bundle_sealed_t *sealed = o->sealed;
  json_t *s = json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                        "s:s, s:O}}",
                        "_type", ST_BUNDLE_STATEMENT_TYPE, "subject", "name", "export.tgz",
                        "digest", "sha256", sha, "predicateType", PREDICATE_TYPE, "predicate",
                        "bundleId", sealed->id, "manifestSha256", sealed->manifest_sha256,
                        "merkleRoot", sealed->merkle_root, "tenant", o->tenant, "profile",
                        o->prof->name, "kind", o->prof->kind, "planDigest", o->plan_digest,
                        "created", sealed->created, "counts", o->counts);
  int rc;

  if (!s) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = st_jcs_encode(s, &stmt, err)) ||
      (rc = st_dsse_sign(o->env->signer, ST_BUNDLE_PAYLOAD_TYPE, stmt.data, stmt.len, &env,
                         err)) ||
      (rc = st_signer_sign(o->env->signer, digest, 32, &sig, err)))
    goto done;
  if (st_buf_addf(&p, "%s/export.tgz.dsse.json", o->dir)) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = write_file(p.data, env.data, env.len, err)))
    goto done;
  st_buf_reset(&p);
  if (st_buf_addf(&p, "%s/export.tgz.sig", o->dir))
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
  else
    rc = write_file(p.data, sig.data, sig.len, err);
done:
  json_decref(s);
  st_buf_release(&p);
  st_buf_release(&stmt);
  st_buf_release(&env);
  st_buf_release(&sig);
  return rc;
}

/* The i-th stored file name: export.tgz and its two signature files, then the extras. */
static int name_at(const st_export_out_t *o, int i, st_buf_t *out) {
  st_buf_reset(out);
  return i < 3 ? st_buf_addf(out, "export.tgz%s", suffixes[i]) : st_buf_adds(out, o->extra[i - 3]);
}

static int nfiles(const st_export_out_t *o) {
  int n = 3;
  while (o->extra && o->extra[n - 3] && n < 3 + EXTRA_MAX)
    n++;
  return n;
}

static void unstore(const st_export_out_t *o, const char *prefix) {
  st_buf_t k = ST_BUF_INIT, name = ST_BUF_INIT;
  for (int i = 0; i < nfiles(o); i++) {
    st_error_t e = ST_ERROR_INIT;
    st_buf_reset(&k);
    if (!name_at(o, i, &name) && !st_buf_addf(&k, "%s%s", prefix, name.data) &&
        st_objstore_delete(o->env->store, o->tenant, k.data, &e) && e.code != ST_ENOENT)
      st_warn("export run %s: cannot remove %s: %s", o->run_id, k.data, st_error_text(&e));
  }
  st_buf_release(&k);
  st_buf_release(&name);
}

/* Store the files, then record the run built; a run cancelled meanwhile gets its objects
 * removed again. */
static int store(const st_export_out_t *o, const char *sha, long long size, st_error_t *err) {
  st_buf_t prefix = ST_BUF_INIT, key = ST_BUF_INIT, path = ST_BUF_INIT, mkey = ST_BUF_INIT;
  st_buf_t name = ST_BUF_INIT;
  char state[32], hex[ST_SHA256_HEX_LEN + 1];
  uint8_t d[32];
  int rc = 0, stored = 0;

  if (st_buf_addf(&prefix, "tenants/%s/projects/%s/exports/%s/", o->tenant, o->prof->project,
                  o->run_id) ||
      st_buf_addf(&mkey, "%sexport.tgz.dsse.json", prefix.data)) {
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    goto done;
  }
  if ((rc = st_export_run_state(o->env->db, o->tenant, o->run_id, state, sizeof(state), err)))
    goto done;
  if (strcmp(state, "running")) {
    rc = st_fail(err, ST_ECANCELED, "export run %s: %s", o->run_id, state);
    goto done;
  }
  for (int i = 0; i < nfiles(o) && !rc; i++) {
    st_buf_reset(&key);
    st_buf_reset(&path);
    if (name_at(o, i, &name) || st_buf_addf(&key, "%s%s", prefix.data, name.data) ||
        st_buf_addf(&path, "%s/%s", o->dir, name.data))
      rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    else if (!(rc = file_digest(path.data, hex, d, NULL, err)))
      rc = st_objstore_put_file(o->env->store, o->tenant, key.data, hex, path.data, NULL, err);
    stored = 1;
  }
  if (!rc) {
    st_export_artifact_t a = {o->sealed->id, o->sealed->manifest_sha256, NULL, mkey.data, sha,
                              size, o->counts};
    st_buf_reset(&key);
    if (st_buf_addf(&key, "%sexport.tgz", prefix.data))
      rc = st_fail(err, ST_ENOMEM, "export: out of memory");
    a.artifact_key = key.data;
    if (!rc && (rc = st_export_run_built(o->env->db, o->tenant, o->run_id, &a, err)) ==
                   ST_ECONFLICT)
      rc = st_fail(err, ST_ECANCELED, "export run %s: cancelled while storing", o->run_id);
  }
  if (rc && stored)
    unstore(o, prefix.data);
done:
  st_buf_release(&prefix);
  st_buf_release(&key);
  st_buf_release(&path);
  st_buf_release(&mkey);
  st_buf_release(&name);
  return rc;
}

int st_export_publish(const st_export_out_t *o, st_error_t *err) {
  st_buf_t path = ST_BUF_INIT;
  char sha[ST_SHA256_HEX_LEN + 1];
  uint8_t d[32];
  long long size = 0;
  int rc;

  if (st_buf_addf(&path, "%s/export.tgz", o->dir))
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
  else if (!(rc = file_digest(path.data, sha, d, &size, err)) && !(rc = detached(o, sha, d, err)))
    rc = store(o, sha, size, err);
  st_buf_release(&path);
  return rc;
}

int st_export_distribute(const st_export_env_t *env, const char *tenant, const char *run_id,
                         const json_t *run, st_error_t *err) {
  const json_t *art = json_object_get(run, "artifact");
  st_buf_t target = ST_BUF_INIT;
  int rc;
  if (st_buf_addf(&target, "objstore:%s:%s", st_objstore_backend(env->store),
                  json_string_value(json_object_get(art, "key"))))
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  if ((!json_object_get(run, "evidence") &&
       (rc = st_export_evidence(env, tenant, run_id, run, target.data, err))) ||
      (rc = st_export_handoff(env, tenant, run_id, run, err)))
    goto done;
  rc = st_export_run_distributed(env->db, tenant, run_id, target.data,
                                 json_string_value(json_object_get(art, "sha256")), err);
done:
  st_buf_release(&target);
  return rc;
}

int st_export_plan_expect(const st_export_plan_t *plan, size_t *next, const char *tenant,
                          const st_ledger_item_t *it, st_error_t *err) {
  const st_export_input_t *in = *next < plan->n ? &plan->inputs[*next] : NULL;
  if (!in || in->kind != it->kind || strcmp(in->tenant, tenant) || strcmp(in->id, it->id) ||
      strcmp(in->digest, it->digest))
    return st_fail(err, ST_ECONFLICT, "export: the ledger changed since the run was planned "
                   "(%s %s of tenant %s)", st_ledger_kind_name(it->kind), it->id, tenant);
  ++*next;
  return 0;
}

int st_export_poll(const st_export_env_t *env, const char *tenant, const char *run_id,
                   unsigned *since, size_t done, size_t total, st_error_t *err) {
  char state[32];
  int rc;
  if (env->cancel && atomic_load(env->cancel))
    return st_fail(err, ST_ECANCELED, "export run %s: cancelled", run_id);
  if (++*since < (env->poll_every ? env->poll_every : 1000))
    return 0;
  *since = 0;
  if ((rc = st_export_run_state(env->db, tenant, run_id, state, sizeof(state), err)))
    return rc;
  if (strcmp(state, "running"))
    return st_fail(err, ST_ECANCELED, "export run %s: %s", run_id, state);
  if (env->progress)
    env->progress(env->ud, total ? (double)done / (double)total : 1, "documents");
  rc = st_export_run_progress(env->db, tenant, run_id,
                              total ? 0.95 * (double)done / (double)total : 0.95, "documents",
                              err);
  /* refused: the run left `running` (cancelled) since the poll */
  return rc == ST_ECONFLICT ? st_fail(err, ST_ECANCELED, "export run %s: %s", run_id,
                                      st_error_text(err))
                            : rc;
}

int st_export_drive(const st_export_env_t *env, const char *tenant, const char *run_id,
                    st_export_profile_t *prof, int (*build)(void *ud, st_error_t *err),
                    void *ud, st_error_t *err) {
  json_t *run = NULL;
  const char *state;
  int rc;

  if ((rc = st_export_run_get(env->db, tenant, run_id, &run, err)))
    goto done;
  state = json_string_value(json_object_get(run, "state"));
  if ((!strcmp(state, "cancelled") || !strcmp(state, "failed")) &&
      (rc = unstore_prefix(env, tenant, json_string_value(json_object_get(run, "project")),
                           run_id, err)))
    goto done;
  if (!strcmp(state, "cancelled")) {
    rc = st_fail(err, ST_ECANCELED, "export run %s: cancelled", run_id);
    goto done;
  }
  if (!strcmp(state, "failed") || !strcmp(state, "distributed"))
    goto done;
  if (strcmp(state, "built")) {
    if ((rc = st_export_profile_from_json(json_object_get(run, "settings"), prof, err)) ||
        (rc = build(ud, err)))
      goto done;
    json_decref(run);
    run = NULL;
    if ((rc = st_export_run_get(env->db, tenant, run_id, &run, err)))
      goto done;
  }
  if (env->progress)
    env->progress(env->ud, 1, "stored");
  rc = st_export_distribute(env, tenant, run_id, run, err);
done:
  json_decref(run);
  return rc;
}

/* ---- the job side ---- */

const char *st_export_job_type(const char *kind) {
  if (kind && !strcmp(kind, "trivy:db"))
    return "trivy_db";
  if (kind && !strcmp(kind, "trivy:java-db"))
    return "trivy_java_db";
  if (kind && !strncmp(kind, "mirror:", 7))
    return "mirror";
  return "export_json";
}

int st_export_payload_validate(const json_t *payload, st_error_t *err) {
  const char *key;
  json_t *v;
  static const char *const known[] = {"run_id", "profile", "kind", "plan_digest", "tenant",
                                      "inputs", NULL};
  if (!st_export_run_id_valid(json_string_value(json_object_get(payload, "run_id"))))
    return st_fail(err, ST_EINVAL, "run_id: expected an export run id (UUID)");
  json_object_foreach((json_t *)payload, key, v) {
    int ok = 0;
    (void)v;
    for (const char *const *k = known; *k; k++)
      ok |= !strcmp(*k, key);
    if (!ok)
      return st_fail(err, ST_EINVAL, "%s: unknown key", key);
  }
  return 0;
}

static void progress(void *ud, double fraction, const char *note) {
  st_job_ctx_t *ctx = ud;
  if (ctx->progress)
    ctx->progress(ctx, fraction, note);
}

typedef int (*plain_fn)(const st_export_env_t *env, const char *tenant, const char *run_id,
                        st_error_t *err);
typedef struct plain_s {
  plain_fn fn;
} plain_t;

static int call_plain(const st_export_env_t *env, const char *tenant, const char *run_id,
                      void *ud, st_error_t *err) {
  return ((const plain_t *)ud)->fn(env, tenant, run_id, err);
}

int st_export_job(st_job_t *job, st_job_ctx_t *ctx, int max_attempts,
                  int (*fn)(const st_export_env_t *env, const char *tenant, const char *run_id,
                            st_error_t *err),
                  st_error_t *err) {
  plain_t p = {fn};
  return st_export_job_run(job, ctx, max_attempts,
                           json_string_value(json_object_get(job->env->payload, "run_id")),
                           call_plain, &p, err);
}

int st_export_job_run(st_job_t *job, st_job_ctx_t *ctx, int max_attempts, const char *run_id,
                      int (*fn)(const st_export_env_t *env, const char *tenant,
                                const char *run_id, void *ud, st_error_t *err),
                      void *ud, st_error_t *err) {
  const char *tenant = job->env->tenant;
  st_export_env_t env;
  st_objstore_t *store = NULL;
  st_signer_t *signer = NULL;
  st_tsa_opts_t tsa;
  const char *key, *url;
  int rc;

  memset(&env, 0, sizeof(env));
  memset(&tsa, 0, sizeof(tsa));
  if (!ctx->cfg || !ctx->db)
    return st_fail(err, ST_ECONFIG, "%s: needs pg_url (a Postgres pool)", job->env->type);
  if (!(key = st_config_str(ctx->cfg, "signing_key")))
    return st_fail(err, ST_ECONFIG, "signing_key: not set; exports are always signed");
  if ((rc = st_objstore_open(&store, ctx->cfg, err)) || (rc = st_signer_open(&signer, key, err)))
    goto done;
  if ((url = st_config_str(ctx->cfg, "tsa_url"))) {
    tsa.url = url;
    env.tsa = &tsa;
  }
  st_export_sweep(st_config_str(ctx->cfg, "export_tmp_dir"));
  env.db = ctx->db;
  env.store = store;
  env.signer = signer;
  env.tmp_dir = st_config_str(ctx->cfg, "export_tmp_dir");
  env.redis_url = st_config_str(ctx->cfg, "redis_url");
  env.max_envelope = (size_t)st_config_int(ctx->cfg, "max_envelope_bytes");
  env.cancel = &ctx->cancel;
  env.progress = progress;
  env.ud = ctx;
  rc = fn(&env, tenant, run_id, ud, err);
done:
  /* a timeout is final for the run; a shutdown releases the job, which runs again */
  if (rc == ST_ECANCELED && atomic_load(&ctx->cancel) == ST_CANCEL_TIMEOUT)
    st_fail(err, ST_ECANCELED, "export run %s: timed out (job_timeout_ms)", run_id);
  if (rc && (rc != ST_ECANCELED || atomic_load(&ctx->cancel) == ST_CANCEL_TIMEOUT) &&
      (st_err_classify(rc) != ST_ERRCLASS_TRANSIENT ||
       job->env->attempt >= (uint32_t)max_attempts)) {
    st_error_t e2 = ST_ERROR_INIT;
    if (st_export_run_set_state(ctx->db, tenant, run_id, "failed", st_error_text(err), &e2))
      st_warn("export run %s: cannot mark it failed: %s", run_id, st_error_text(&e2));
  }
  st_signer_free(signer);
  st_objstore_free(store);
  return rc;
}
