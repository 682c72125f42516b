/* evidence_snapshot.c: the snapshot payload's rules and the build of one evidence bundle.
 *
 * The build runs in three steps so that a crash anywhere leaves nothing a re-run cannot
 * finish: (1) a tenant transaction records the bundle as pending (evidence.created) and
 * reads its retention window; (2) outside any transaction, the object under the bundle's
 * key is adopted if a previous run stored it, else the inputs are fetched into a private
 * temporary directory, sealed, and the bundle is put under that key (a concurrent run that
 * won the put is adopted the same way); (3) a tenant transaction turns the row sealed with
 * the facts read back from the stored bytes, inserts its artifact rows and appends
 * evidence.sealed, only if the row was not sealed already. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evidence_internal.h"
#include "stella/bundle.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/sha256.h"

#define PATH_MAX_BYTES 500

static int bad(st_error_t *err, const char *field, const char *what) {
  return st_fail(err, ST_EINVAL, "%s: %s", field, what);
}

static int is_hex64(const char *s) {
  return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int is_utc(const char *s) {
  int y, mo, d, h, mi, se;
  char z;
  return s && strlen(s) == 20 &&
         sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &z) == 7 &&
         z == 'Z' && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && se < 61;
}

/* A relative path of [A-Za-z0-9._-] segments, no empty, "." or ".." segment. */
static int path_ok(const char *p) {
  size_t n = strlen(p);
  const char *seg = p;
  if (n == 0 || n > PATH_MAX_BYTES ||
      strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/") != n)
    return 0;
  for (;;) {
    size_t len = strcspn(seg, "/");
    if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && !strncmp(seg, "..", 2)))
      return 0;
    if (!seg[len])
      return 1;
    seg += len + 1;
  }
}

static int check_artifacts(const json_t *arr, const char *field, size_t *total,
                           st_error_t *err) {
  size_t i;
  json_t *a;
  if (!arr)
    return 0;
  if (!json_is_array(arr))
    return bad(err, field, "expected an array");
  json_array_foreach(arr, i, a) {
    const char *path = json_string_value(json_object_get(a, "path"));
    json_t *sha = json_object_get(a, "sha256"), *inl = json_object_get(a, "json");
    if (!json_is_object(a) || json_object_size(a) != 2 || !path)
      return st_fail(err, ST_EINVAL, "%s[%zu]: want {path, sha256} or {path, json}", field, i);
    if (!path_ok(path))
      return st_fail(err, ST_EINVAL, "%s[%zu].path: unsafe or malformed", field, i);
    if (!(sha && is_hex64(json_string_value(sha))) && !inl)
      return st_fail(err, ST_EINVAL, "%s[%zu]: sha256 (64 lower-case hex) or json required",
                     field, i);
    if (++*total > ST_EVIDENCE_MAX_ARTIFACTS)
      return st_fail(err, ST_ETOOBIG, "%s: more than %d artifacts", field,
                     ST_EVIDENCE_MAX_ARTIFACTS);
  }
  return 0;
}

int st_evidence_payload_check(const json_t *p, st_error_t *err) {
  static const char *const keys[] = {"bundle_id", "kind",   "created",     "run",
                                     "inputs",    "outputs", "environment", "debug"};
  const char *k, *kind;
  json_t *v, *run;
  size_t total = 0;
  int rc;

  if (!json_is_object(p))
    return bad(err, "payload", "expected an object");
  json_object_foreach((json_t *)p, k, v) {
    size_t i;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]) && strcmp(k, keys[i]); i++)
      ;
    if (i == sizeof(keys) / sizeof(keys[0]))
      return st_fail(err, ST_EINVAL, "%.64s: unknown key", k);
  }
  if ((v = json_object_get(p, "bundle_id")) &&
      !st__evidence_id_ok(json_string_value(v), ST_EVIDENCE_ID_MAX))
    return bad(err, "bundle_id", "want [A-Za-z0-9._:-]{1,128}");
  kind = json_string_value(json_object_get(p, "kind"));
  if (!kind || (strcmp(kind, "evaluation") && strcmp(kind, "job") && strcmp(kind, "export")))
    return bad(err, "kind", "want evaluation, job or export");
  if (!is_utc(json_string_value(json_object_get(p, "created"))))
    return bad(err, "created", "want YYYY-MM-DDTHH:MM:SSZ");
  run = json_object_get(p, "run");
  if (!json_is_object(run))
    return bad(err, "run", "expected an object with run_id and actor");
  json_object_foreach(run, k, v) {
    if (strcmp(k, "run_id") && strcmp(k, "actor") && strcmp(k, "started") &&
        strcmp(k, "finished"))
      return st_fail(err, ST_EINVAL, "run.%.64s: unknown key", k);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256)
      return st_fail(err, ST_EINVAL, "run.%s: want a string of 1..256 bytes", k);
  }
  if (!json_object_get(run, "run_id") || !json_object_get(run, "actor"))
    return bad(err, "run", "run_id and actor are required");
  if ((rc = check_artifacts(json_object_get(p, "inputs"), "inputs", &total, err)) ||
      (rc = check_artifacts(json_object_get(p, "outputs"), "outputs", &total, err)))
    return rc;
  if (!total)
    return bad(err, "inputs", "a snapshot needs at least one input or output");
  if ((v = json_object_get(p, "environment"))) {
    if (!json_is_object(v) || json_object_size(v) > 256)
      return bad(err, "environment", "expected an object of at most 256 strings");
    json_object_foreach(v, k, run) {
      if (!json_is_string(run) || json_string_length(run) > 256 || strlen(k) > 64)
        return st_fail(err, ST_EINVAL, "environment.%.64s: want a string of at most 256 bytes",
                       k);
    }
  }
  if ((v = json_object_get(p, "debug")) && !json_is_object(v))
    return bad(err, "debug", "expected an object");
  return 0;
}

int st_evidence_derive_id(const char *tenant, const char *seed, st_buf_t *out) {
  st_buf_t b = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  int rc = ST_ENOMEM;
  if (st_buf_addf(&b, "stella.evidence/v1\n%s\n%s\n", tenant, seed) ||
      st_sha256(b.data, b.len, d))
    goto done;
  st_sha256_hex(d, hex);
  hex[40] = '\0';
  rc = st_buf_addf(out, "ev-%s", hex) ? ST_ENOMEM : 0;
done:
  st_buf_release(&b);
  return rc;
}

int st_evidence_upload_record(PGconn *c, const st_evidence_who_t *who, const char *sha256_hex,
                              uint64_t size, int *is_new, st_error_t *err) {
  char sz[24];
  long long n = 0;
  int rc;
  snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
  {
    const char *p[4] = {who->tenant, sha256_hex, sz, who->actor ? who->actor : "unknown"};
    rc = st_db_exec_count(c,
                          "INSERT INTO evidence_uploads (tenant_id, sha256, size, uploaded_by)"
                          " VALUES ($1, $2, $3::bigint, $4) ON CONFLICT DO NOTHING",
                          4, p, &n, err);
  }
  *is_new = n > 0;
  return rc;
}

/* ---- step 1: pending row ---- */

int st_evidence_pending(st_evidence_t *ev, PGconn *c, const st_evidence_who_t *who,
                        const char *bundle_id, const json_t *payload, const char *job_id,
                        int *created, st_error_t *err) {
  const json_t *run = json_object_get(payload, "run");
  const char *p[6] = {who->tenant,
                      bundle_id,
                      json_string_value(json_object_get(payload, "kind")),
                      job_id,
                      json_string_value(json_object_get(run, "run_id")),
                      json_string_value(json_object_get(run, "actor"))};
  long long n = 0;
  int rc;

  *created = 0;
  if ((rc = st_db_exec_count(c,
                             "INSERT INTO evidence_bundles (tenant_id, bundle_id, kind, job_id,"
                             " run_id, actor) VALUES ($1, $2, $3, $4, $5, $6)"
                             " ON CONFLICT DO NOTHING",
                             6, p, &n, err)))
    return rc;
  if (!n)
    return 0;
  *created = 1;
  return st_evidence_custody_append(ev, c, who, "evidence.created", bundle_id, NULL, NULL, err);
}

typedef struct prep_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const char *bundle_id;
  const json_t *payload;
  const char *job_id;
  int sealed;
  long long days;
  json_t *incident; /* {id, reason, extension_days, job_log} while incident mode is on */
} prep_t;

/* The job log of an incident snapshot: the transitions of the snapshot's own job and of
 * the job the run names (run_id), oldest first. */
static int job_log(PGconn *c, prep_t *s, json_t **out, st_error_t *err) {
  const char *p[2] = {s->job_id, json_string_value(json_object_get(
                                     json_object_get(s->payload, "run"), "run_id"))};
  PGresult *res = NULL;
  int rc;
  if ((rc = st_db_exec(c,
                       "SELECT coalesce(json_agg(json_build_object('job_id', e.job_id,"
                       " 'attempt', e.attempt, 'from', e.from_state, 'to', e.to_state,"
                       " 'detail', e.detail, 'error', j.error, 'at',"
                       " to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
                       " ORDER BY e.at, e.job_id, e.attempt), '[]')::text"
                       " FROM job_events e JOIN jobs j USING (tenant_id, job_id)"
                       " WHERE e.job_id IN ($1, $2)",
                       2, p, &res, err)))
    return rc;
  rc = st_json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), NULL, out, err);
  PQclear(res);
  return rc;
}

static int prep_tx(PGconn *c, void *arg, st_error_t *err) {
  prep_t *s = arg;
  PGresult *res = NULL;
  json_t *log = NULL;
  int created, rc;
  const char *kind = json_string_value(json_object_get(s->payload, "kind"));
  const char *p[4] = {s->who->tenant, s->bundle_id, kind, NULL};
  char def[24];

  json_decref(s->incident);
  s->incident = NULL;
  snprintf(def, sizeof(def), "%d", st__evidence_kind_days(s->ev, kind));
  p[3] = def;
  if ((rc = st_evidence_pending(s->ev, c, s->who, s->bundle_id, s->payload, s->job_id, &created,
                                err)) ||
      (rc = st_db_exec(c,
                       "SELECT b.status = 'sealed', coalesce("
                       " (SELECT days FROM evidence_retention WHERE kind = $3),"
                       " (SELECT days FROM evidence_retention WHERE kind = '*'), $4::int),"
                       " i.incident_id, i.reason, i.extension_days"
                       " FROM evidence_bundles b LEFT JOIN evidence_incidents i"
                       " ON i.tenant_id = b.tenant_id AND i.deactivated_at IS NULL"
                       " WHERE b.tenant_id = $1 AND b.bundle_id = $2",
                       4, p, &res, err)))
    goto done;
  if (PQntuples(res) != 1) {
    rc = st_fail(err, ST_EDB, "evidence: bundle %s vanished", s->bundle_id);
    goto done;
  }
  s->sealed = !strcmp(PQgetvalue(res, 0, 0), "t");
  s->days = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
  if (!PQgetisnull(res, 0, 2) && !s->sealed) {
    long long ext = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    if ((rc = job_log(c, s, &log, err)))
      goto done;
    s->days += ext;
    if (!(s->incident = json_pack("{s:I, s:s, s:I, s:o}", "id",
                                  (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10),
                                  "reason", PQgetvalue(res, 0, 3), "extension_days",
                                  (json_int_t)ext, "job_log", log))) {
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
      goto done;
    }
    log = NULL;
  }
done:
  json_decref(log);
  if (res)
    PQclear(res);
  return rc;
}

/* ---- step 2: seal or adopt ---- */

typedef struct build_s {
  st_bundle_input_t *inputs;
  size_t n;
  st_buf_t *mem;   /* canonical JSON of inline artifacts, one per input */
  char **files;    /* fetched artifact files, NULL for inline */
  st_buf_t dir;
} build_t;

static int to_fd(void *ctx, const void *buf, size_t len) {
  FILE *f = ctx;
  return fwrite(buf, 1, len, f) == len ? 0 : ST_EIO;
}

static int fetch(st_evidence_t *ev, const char *tenant, const char *sha, const char *path,
                 st_error_t *err) {
  st_buf_t key = ST_BUF_INIT;
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  FILE *f = NULL;
  int rc;

  if ((rc = st_objstore_key(&key, tenant, sha, err)))
    goto done;
  if (!(f = fopen(path, "wbx"))) {
    rc = st_fail(err, ST_EIO, "evidence: cannot create %s: %s", path, strerror(errno));
    goto done;
  }
  rc = st_objstore_get(ev->store, tenant, key.data, 0, ST_OBJSTORE_TO_END, to_fd, f, err);
  if (fclose(f) && !rc)
    rc = st_fail(err, ST_EIO, "evidence: cannot write %s", path);
  f = NULL;
  if (rc == ST_ENOENT)
    rc = st_fail(err, ST_ENOENT, "evidence: artifact sha256:%s is not stored for %s", sha,
                 tenant);
  if (rc || (rc = st_sha256_file(path, d, NULL, err)))
    goto done;
  st_sha256_hex(d, hex);
  if (strcmp(hex, sha))
    rc = st_fail(err, ST_EVERIFY, "evidence: stored artifact sha256:%s reads back as %s", sha,
                 hex);
done:
  st_buf_release(&key);
  return rc;
}

static void build_release(build_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    if (b->files && b->files[i]) {
      unlink(b->files[i]);
      st_free(b->files[i]);
    }
    if (b->mem)
      st_buf_release(&b->mem[i]);
    if (b->inputs)
      st_free((char *)b->inputs[i].path);
  }
  if (b->dir.len)
    rmdir(b->dir.data);
  st_buf_release(&b->dir);
  st_free(b->inputs);
  st_free(b->mem);
  st_free(b->files);
}

static int add_input(st_evidence_t *ev, const char *tenant, build_t *b, const char *prefix,
                     const json_t *a, st_error_t *err) {
  size_t i = b->n++;
  const char *sha = json_string_value(json_object_get(a, "sha256"));
  st_buf_t path = ST_BUF_INIT;
  int rc;

  st_buf_init(&b->mem[i], ST_EVIDENCE_INLINE_MAX);
  if (st_buf_addf(&path, "%s/%s", prefix, json_string_value(json_object_get(a, "path"))))
    return st_fail(err, ST_ENOMEM, "evidence: out of memory");
  b->inputs[i].path = st_buf_detach(&path, NULL);
  if (sha) {
    st_buf_t f = ST_BUF_INIT;
    if (st_buf_addf(&f, "%s/%zu", b->dir.data, i))
      return st_fail(err, ST_ENOMEM, "evidence: out of memory");
    b->files[i] = st_buf_detach(&f, NULL);
    if ((rc = fetch(ev, tenant, sha, b->files[i], err)))
      return rc;
    b->inputs[i].src = ST_BUNDLE_SRC_FILE;
    b->inputs[i].fs_path = b->files[i];
    return 0;
  }
  if ((rc = st_jcs_encode(json_object_get(a, "json"), &b->mem[i], err)))
    return rc == ST_ETOOBIG ? st_fail(err, ST_ETOOBIG, "%s: inline JSON over %zu bytes",
                                      b->inputs[i].path, ST_EVIDENCE_INLINE_MAX)
                            : rc;
  b->inputs[i].src = ST_BUNDLE_SRC_MEM;
  b->inputs[i].data = b->mem[i].data;
  b->inputs[i].len = b->mem[i].len;
  b->inputs[i].media_type = "application/json";
  return 0;
}

/* Incident mode: run/debug/{job-log,config,environment}.json. */
static int add_debug(st_evidence_t *ev, const char *tenant, build_t *b, const json_t *incident,
                     st_error_t *err) {
  json_t *env = st__evidence_environment_json(), *a[3] = {NULL, NULL, NULL};
  int rc = 0;
  if (!env ||
      !(a[0] = json_pack("{s:s, s:O}", "path", "debug/job-log.json", "json",
                         json_object_get(incident, "job_log"))) ||
      !(a[1] = json_pack("{s:s, s:O}", "path", "debug/config.json", "json", ev->debug_config)) ||
      !(a[2] = json_pack("{s:s, s:O}", "path", "debug/environment.json", "json", env)))
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
  for (size_t i = 0; i < 3 && !rc; i++)
    rc = add_input(ev, tenant, b, "run", a[i], err);
  for (size_t i = 0; i < 3; i++)
    json_decref(a[i]);
  json_decref(env);
  return rc;
}

static int seal(st_evidence_t *ev, const st_evidence_who_t *who, const char *bundle_id,
                const json_t *payload, const json_t *incident, const char *out,
                st_error_t *err) {
  static const char *const groups[] = {"inputs", "outputs"};
  build_t b = {0};
  json_t *meta = NULL, *env = json_object_get(payload, "environment"), *dbg;
  st_bundle_spec_t spec = {0};
  st_tsa_opts_t tsa = {0};
  size_t cap = 5;
  int rc;

  if (!ev->signer)
    return st_fail(err, ST_ECONFIG, "signing_key: needed to seal evidence");
  for (size_t g = 0; g < 2; g++)
    cap += json_array_size(json_object_get(payload, groups[g]));
  st_buf_init(&b.dir, 0);
  if (!(b.inputs = st_calloc(cap, sizeof(*b.inputs))) ||
      !(b.mem = st_calloc(cap, sizeof(*b.mem))) || !(b.files = st_calloc(cap, sizeof(char *))) ||
      st_buf_addf(&b.dir, "%s/stella-evidence-XXXXXX", ev->tmp_dir)) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  if (!mkdtemp(b.dir.data)) {
    st_buf_reset(&b.dir);
    rc = st_fail(err, ST_EIO, "evidence: cannot create a directory in %s", ev->tmp_dir);
    goto done;
  }
  for (size_t g = 0; g < 2; g++) {
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(payload, groups[g]), i, a) {
      if ((rc = add_input(ev, who->tenant, &b, groups[g], a, err)))
        goto done;
    }
  }
  {
    json_t *empty = json_object();
    json_t *e = empty ? json_pack("{s:s, s:O}", "path", "environment.json", "json",
                                  env ? env : empty)
                      : NULL;
    json_t *d = (dbg = json_object_get(payload, "debug"))
                    ? json_pack("{s:s, s:O}", "path", "debug.json", "json", dbg)
                    : NULL;
    json_decref(empty);
    if (!e || (dbg && !d))
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    else if (!(rc = add_input(ev, who->tenant, &b, "run", e, err)) && d)
      rc = add_input(ev, who->tenant, &b, "run", d, err);
    json_decref(e);
    json_decref(d);
    if (rc)
      goto done;
  }
  if (incident && (rc = add_debug(ev, who->tenant, &b, incident, err)))
    goto done;
  meta = json_pack("{s:s, s:O, s:O?}", "snapshot_kind",
                   json_string_value(json_object_get(payload, "kind")), "run",
                   json_object_get(payload, "run"), "environment", env);
  if (meta && incident &&
      json_object_set_new(meta, "incident",
                          json_pack("{s:O, s:O}", "id", json_object_get(incident, "id"),
                                    "reason", json_object_get(incident, "reason")))) {
    json_decref(meta);
    meta = NULL;
  }
  if (!meta) {
    rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
    goto done;
  }
  spec.kind = "evidence";
  spec.id = bundle_id;
  spec.tenant = who->tenant;
  spec.created = json_string_value(json_object_get(payload, "created"));
  spec.metadata = meta;
  spec.inputs = b.inputs;
  spec.ninputs = b.n;
  tsa.url = ev->tsa_url;
  rc = st_bundle_seal(&spec, ev->signer, ev->tsa_url ? &tsa : NULL, out, err);
done:
  json_decref(meta);
  build_release(&b);
  return rc;
}

static int store_or_adopt(st_evidence_t *ev, const st_evidence_who_t *who, const char *key,
                          const char *bundle_id, const json_t *payload,
                          const json_t *incident, long long days, const char *tmp,
                          st_error_t *err) {
  st_objstore_stat_t st;
  st_objstore_lock_t lock = {0, 0};
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  FILE *f = NULL;
  int rc;

  rc = st_objstore_stat(ev->store, who->tenant, key, &st, err);
  if (rc && rc != ST_ENOENT)
    return rc;
  if (rc == ST_ENOENT) {
    if ((rc = seal(ev, who, bundle_id, payload, incident, tmp, err)) ||
        (rc = st_sha256_file(tmp, d, NULL, err)))
      return rc;
    st_sha256_hex(d, hex);
    lock.retain_until = days > 0 ? (int64_t)time(NULL) + days * 86400 : 0;
    rc = st_objstore_put_file(ev->store, who->tenant, key, hex, tmp, &lock, err);
    if (rc != ST_EEXIST)
      return rc;
  }
  /* stored before (a crashed or concurrent run): the stored bytes are the bundle */
  if (!(f = fopen(tmp, "wb")))
    return st_fail(err, ST_EIO, "evidence: cannot write %s", tmp);
  rc = st_objstore_get(ev->store, who->tenant, key, 0, ST_OBJSTORE_TO_END, to_fd, f, err);
  if (fclose(f) && !rc)
    rc = st_fail(err, ST_EIO, "evidence: cannot write %s", tmp);
  return rc;
}

/* ---- step 3: sealed row ---- */

typedef struct fin_s {
  st_evidence_t *ev;
  const st_evidence_who_t *who;
  const char *key;
  const st_evidence_facts_t *f;
  long long days;
} fin_t;

static int fin_tx(PGconn *c, void *arg, st_error_t *err) {
  fin_t *s = arg;
  const st_evidence_facts_t *f = s->f;
  char size[24], days[24];
  long long n = 0;
  int rc;

  snprintf(size, sizeof(size), "%llu", (unsigned long long)f->object_size);
  snprintf(days, sizeof(days), "%lld", s->days);
  {
    const char *p[11] = {s->who->tenant,
                         f->id.data,
                         f->merkle_root.data,
                         f->manifest_sha256.data,
                         s->key,
                         f->object_sha256.data,
                         size,
                         f->keyid.data,
                         f->tsa_gen_time.len ? f->tsa_gen_time.data : NULL,
                         f->tsa_serial.len ? f->tsa_serial.data : NULL,
                         f->created.data};
    const char *p2[12];
    memcpy(p2, p, sizeof(p));
    p2[11] = days;
    if ((rc = st_db_exec_count(
             c,
             "UPDATE evidence_bundles SET status = 'sealed', merkle_root = $3,"
             " manifest_sha256 = $4, object_key = $5, object_sha256 = $6,"
             " object_size = $7::bigint, keyid = $8, tsa_gen_time = $9::timestamptz,"
             " tsa_serial = $10, created = $11::timestamptz, sealed_at = now(),"
             " retention_until = now() + make_interval(days => $12::int)"
             " WHERE tenant_id = $1 AND bundle_id = $2 AND status <> 'sealed'",
             12, p2, &n, err)))
      return rc;
  }
  if (!n) /* sealed by an earlier run */
    return 0;
  if ((rc = st__evidence_artifact_rows(c, s->who->tenant, f, err)))
    return rc;
  {
    json_t *detail = json_pack("{s:s, s:s, s:s}", "merkle_root", f->merkle_root.data,
                               "manifest_sha256", f->manifest_sha256.data, "object_key",
                               s->key);
    rc = detail ? st_evidence_custody_append(s->ev, c, s->who, "evidence.sealed", f->id.data,
                                             f->object_sha256.data, detail, err)
                : st_fail(err, ST_ENOMEM, "evidence: out of memory");
    json_decref(detail);
  }
  return rc;
}

int st_evidence_snapshot(st_evidence_t *ev, const st_evidence_who_t *who,
                         const char *bundle_id, const json_t *payload, const char *job_id,
                         json_t **out, st_error_t *err) {
  prep_t prep = {ev, who, bundle_id, payload, job_id, 0, 0, NULL};
  st_evidence_facts_t facts;
  st_buf_t key = ST_BUF_INIT, tmp = ST_BUF_INIT;
  int rc;

  st_evidence_facts_init(&facts);
  if (out)
    *out = NULL;
  if ((rc = st_evidence_payload_check(payload, err)))
    goto done;
  if (!st__evidence_id_ok(bundle_id, ST_EVIDENCE_ID_MAX)) {
    rc = st_fail(err, ST_EINVAL, "bundle_id: want [A-Za-z0-9._:-]{1,128}");
    goto done;
  }
  if ((rc = st_db_tenant_tx(ev->db, who->tenant, prep_tx, &prep, err)))
    goto done;
  if (!prep.sealed) {
    fin_t fin = {ev, who, NULL, &facts, prep.days};
    if (st__evidence_object_key(&key, who->tenant, bundle_id)) {
      rc = st_fail(err, ST_ENOMEM, "evidence: out of memory");
      goto done;
    }
    if ((rc = st__evidence_tmpfile(ev, &tmp, err)) ||
        (rc = store_or_adopt(ev, who, key.data, bundle_id, payload, prep.incident, prep.days,
                             tmp.data, err)) ||
        (rc = st_evidence_facts_read(tmp.data, ev->tsa_ca_pem, ev->tsa_ca_len, &facts, err)))
      goto done;
    if (strcmp(facts.id.data, bundle_id) || strcmp(facts.tenant.data, who->tenant)) {
      rc = st_fail(err, ST_EVERIFY, "evidence: %s holds bundle %s of tenant %s", key.data,
                   facts.id.data, facts.tenant.data);
      goto done;
    }
    fin.key = key.data;
    if ((rc = st_db_tenant_tx(ev->db, who->tenant, fin_tx, &fin, err)))
      goto done;
  }
  if (out)
    rc = st_evidence_get(ev, NULL, who->tenant, bundle_id, out, err);
done:
  if (tmp.len)
    unlink(tmp.data);
  st_buf_release(&tmp);
  st_buf_release(&key);
  st_evidence_facts_release(&facts);
  json_decref(prep.incident);
  return rc;
}
