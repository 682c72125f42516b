/* routes_export_io.c: what a built export run offers (routes_export.h):
 *
 *   GET  /exports/runs/{id}/download   the sealed .tgz from the object store, streamed;
 *                                      Range (one range: 206), ETag = "<sha256>",
 *                                      If-None-Match (304); 409 until the run is built
 *   GET  /exports/runs/{id}/events     SSE: one event per row of the run's event log
 *                                      (id = seq, event = state|progress, data = JSON);
 *                                      Last-Event-ID resumes after that seq; the stream
 *                                      ends after the final state's event
 *   GET  /exports/{id}/attestation     the detached DSSE envelope of the bundle
 *   POST /exports/{id}/verify          the stored bundle re-read and verified: its digest
 *                                      against the run's record, the detached signature
 *                                      and DSSE, and st_bundle_verify's report
 *
 * Each SSE stream has a feeder thread polling export_run_events (every 250 ms) until the
 * run is final, the client leaves, or the server stops. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"
#include "routes_export.h"
#include "stella/base64.h"
#include "stella/bundle.h"
#include "stella/dsse.h"
#include "stella/json.h"
#include "stella/log.h"
#include "stella/mem.h"
#include "stella/sha256.h"

#define FEED_POLL_MS 250
#define FEED_BATCH 100
#define ATTESTATION_MAX ((size_t)1 << 20)

static const char *tenant_of(st_api_req_t *req) { return st_api_req_auth(req)->tenant; }

/* The run, built or distributed, with its artifact; else a reply was sent (1). */
static int built_run(st_api_req_t *req, st__export_api_t *x, json_t **run) {
  st_error_t err = ST_ERROR_INIT;
  const char *state;
  int rc = st_export_run_get(x->db, tenant_of(req), st_api_req_param(req, "id"), run, &err);
  if (rc) {
    if (rc == ST_ENOENT)
      st_api_reply_problem(req, ST_API_P_NOT_FOUND, "export run not found");
    else
      st_api_reply_error(req, rc, NULL);
    return 1;
  }
  state = json_string_value(json_object_get(*run, "state"));
  if (strcmp(state, "built") && strcmp(state, "distributed")) {
    st_api_reply_problem(req, ST_API_P_CONFLICT, "export run is %s: no artifact", state);
    json_decref(*run);
    *run = NULL;
    return 1;
  }
  return 0;
}

static const char *art(const json_t *run, const char *field) {
  return json_string_value(json_object_get(json_object_get(run, "artifact"), field));
}

typedef struct dl_s {
  st_objstore_t *store;
  char *tenant, *key;
} dl_t;

typedef struct copy_s {
  char *buf;
  size_t n, max;
} copy_t;

static int copy_out(void *ctx, const void *data, size_t len) {
  copy_t *c = ctx;
  if (len > c->max - c->n)
    return ST_ETOOBIG;
  memcpy(c->buf + c->n, data, len);
  c->n += len;
  return 0;
}

static long dl_read(void *arg, unsigned long long pos, char *buf, size_t max) {
  dl_t *d = arg;
  st_error_t err = ST_ERROR_INIT;
  copy_t c = {buf, 0, max};
  int rc = st_objstore_get(d->store, d->tenant, d->key, pos, max, copy_out, &c, &err);
  if (rc) {
    st_logkv(ST_LOG_ERROR, "export download", "key", d->key, "error", st_error_text(&err), NULL);
    return rc;
  }
  return (long)c.n;
}

static void dl_free(void *arg) {
  dl_t *d = arg;
  st_free(d->tenant);
  st_free(d->key);
  st_free(d);
}

int st__export_download(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  json_t *run = NULL;
  dl_t *d = NULL;
  char etag[ST_SHA256_HEX_LEN + 3];
  const char *inm = st_api_req_header(req, "If-None-Match");
  int rc;

  if (built_run(req, x, &run))
    return 0;
  snprintf(etag, sizeof(etag), "\"%s\"", art(run, "sha256"));
  if ((rc = st_api_add_header(req, "ETag", etag)))
    goto done;
  if (inm && st__etag_match(inm, etag)) {
    rc = st_api_reply_bytes(req, 304, NULL, NULL, 0);
    goto done;
  }
  if (!(d = st_calloc(1, sizeof(*d))) || !(d->tenant = st_strdup(tenant_of(req))) ||
      !(d->key = st_strdup(art(run, "key")))) {
    if (d)
      dl_free(d);
    rc = ST_ENOMEM;
    goto done;
  }
  d->store = x->store;
  rc = st_api_reply_ranged(
      req, "application/gzip",
      (unsigned long long)json_integer_value(json_object_get(json_object_get(run, "artifact"),
                                                             "size")),
      dl_read, d, dl_free);
done:
  json_decref(run);
  return rc;
}

/* ---- SSE ---- */

typedef struct feed_s {
  st__export_api_t *x;
  st_api_sse_t *sse;
  char *tenant, *run_id;
  long long after;
} feed_t;

static int feed_batch(feed_t *f, int *done) {
  st_error_t err = ST_ERROR_INIT;
  json_t *ev = NULL, *e;
  size_t i;
  int rc = st_export_run_events(f->x->db, f->tenant, f->run_id, f->after, FEED_BATCH, &ev, done,
                                &err);
  if (rc) {
    st_logkv(ST_LOG_WARN, "export events", "run_id", f->run_id, "error", st_error_text(&err),
             NULL);
    return rc;
  }
  json_array_foreach(ev, i, e) {
    char id[32], *data = json_dumps(json_object_get(e, "data"), JSON_COMPACT | JSON_SORT_KEYS);
    long long seq = json_integer_value(json_object_get(e, "seq"));
    snprintf(id, sizeof(id), "%lld", seq);
    rc = data ? st_api_sse_send(f->sse, id, json_string_value(json_object_get(e, "type")), data)
              : ST_ENOMEM;
    free(data);
    if (rc)
      break;
    f->after = seq;
  }
  json_decref(ev);
  return rc;
}

static void *feed_main(void *arg) {
  feed_t *f = arg;
  st__export_api_t *x = f->x;
  int done = 0;

  for (;;) {
    struct timespec ts;
    int stop;
    if (feed_batch(f, &done) || done)
      break;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += FEED_POLL_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&x->lock);
    if (!x->stopping)
      pthread_cond_timedwait(&x->cond, &x->lock, &ts);
    stop = x->stopping;
    pthread_mutex_unlock(&x->lock);
    if (stop)
      break;
  }
  st_api_sse_close(f->sse);
  st_free(f->tenant);
  st_free(f->run_id);
  st_free(f);
  pthread_mutex_lock(&x->lock);
  x->streams--;
  pthread_cond_broadcast(&x->cond);
  pthread_mutex_unlock(&x->lock);
  return NULL;
}

int st__export_events(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  const char *last = st_api_req_last_event_id(req), *id = st_api_req_param(req, "id");
  st_error_t err = ST_ERROR_INIT;
  json_t *run = NULL;
  feed_t *f = NULL;
  pthread_t t;
  pthread_attr_t attr;
  long long after = 0;
  int rc;

  if (last) {
    char *end;
    errno = 0;
    after = strtoll(last, &end, 10);
    if (errno || end == last || *end || after < 0)
      return st_api_reply_problem(req, ST_API_P_BAD_REQUEST,
                                  "Last-Event-ID: expected an event sequence number");
  }
  if ((rc = st_export_run_get(x->db, tenant_of(req), id, &run, &err)))
    return rc == ST_ENOENT ? st_api_reply_problem(req, ST_API_P_NOT_FOUND, "export run not found")
                           : st_api_reply_error(req, rc, NULL);
  json_decref(run);
  if (!(f = st_calloc(1, sizeof(*f))) || !(f->tenant = st_strdup(tenant_of(req))) ||
      !(f->run_id = st_strdup(id))) {
    rc = ST_ENOMEM;
    goto fail;
  }
  f->x = x;
  f->after = after;
  pthread_mutex_lock(&x->lock);
  rc = x->stopping ? ST_EBUSY : 0;
  if (!rc)
    x->streams++;
  pthread_mutex_unlock(&x->lock);
  if (rc)
    goto fail;
  if ((rc = st_api_reply_sse(req, &f->sse)))
    goto unstream;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  rc = pthread_create(&t, &attr, feed_main, f);
  pthread_attr_destroy(&attr);
  if (rc == 0)
    return 0;
  st_api_sse_close(f->sse);
  rc = 0; /* the reply (an empty stream) is sent */
unstream:
  pthread_mutex_lock(&x->lock);
  x->streams--;
  pthread_cond_broadcast(&x->cond);
  pthread_mutex_unlock(&x->lock);
fail:
  if (f) {
    st_free(f->tenant);
    st_free(f->run_id);
    st_free(f);
  }
  return rc;
}

/* ---- attestation and verification ---- */

static int get_small(st__export_api_t *x, const char *tenant, const char *key, st_buf_t *out,
                     st_error_t *err) {
  copy_t c = {NULL, 0, ATTESTATION_MAX};
  int rc;
  if (!(c.buf = st_malloc(ATTESTATION_MAX + 1)))
    return st_fail(err, ST_ENOMEM, "export: out of memory");
  rc = st_objstore_get(x->store, tenant, key, 0, ST_OBJSTORE_TO_END, copy_out, &c, err);
  if (!rc && st_buf_add(out, c.buf, c.n))
    rc = st_fail(err, ST_ENOMEM, "export: out of memory");
  st_free(c.buf);
  return rc;
}

int st__export_attestation(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t env = ST_BUF_INIT;
  json_t *run = NULL, *e = NULL, *body = NULL;
  int rc;

  if (built_run(req, x, &run))
    return 0;
  if ((rc = get_small(x, tenant_of(req), json_string_value(json_object_get(run, "manifest_key")),
                      &env, &err)) ||
      (rc = st_json_parse(env.data, env.len, NULL, &e, &err))) {
    st_logkv(ST_LOG_ERROR, "export attestation", "error", st_error_text(&err), NULL);
    rc = st_api_reply_error(req, rc, NULL);
    goto done;
  }
  body = json_pack("{s:O, s:{s:s, s:s, s:O}, s:s, s:o}", "run_id",
                   json_object_get(run, "run_id"), "artifact", "key", art(run, "key"), "sha256",
                   art(run, "sha256"), "size",
                   json_object_get(json_object_get(run, "artifact"), "size"), "predicateType",
                   "https://stella.dev/export/v1", "envelope", e);
  e = NULL;
  rc = body ? st_api_reply_json(req, 200, body) : ST_ENOMEM;
done:
  json_decref(e);
  json_decref(body);
  json_decref(run);
  st_buf_release(&env);
  return rc;
}

typedef struct file_s {
  FILE *f;
} file_t;

static int to_file(void *ctx, const void *data, size_t len) {
  return fwrite(data, 1, len, ((file_t *)ctx)->f) == len ? 0 : ST_EIO;
}

/* The detached .sig over the .tgz digest, and the .dsse.json, against the trusted key. */
static void detached_checks(st__export_api_t *x, const char *tenant, const json_t *run,
                            const uint8_t digest[32], json_t *out) {
  const st_pubkey_t *pub = x->signer ? st_signer_pubkey(x->signer) : NULL;
  st_buf_t sig = ST_BUF_INIT, env = ST_BUF_INIT, key = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  const char *dsse = json_string_value(json_object_get(run, "manifest_key"));
  int ok;

  ok = pub && !st_buf_addf(&key, "%s.sig", art(run, "key")) &&
       !get_small(x, tenant, key.data, &sig, &err) &&
       !st_pubkey_verify(pub, digest, 32, sig.data, sig.len, &err);
  json_object_set_new(out, "detached_signature", json_string(ok ? "pass" : "fail"));
  err = (st_error_t)ST_ERROR_INIT;
  ok = pub && !get_small(x, tenant, dsse, &env, &err) &&
       !st_dsse_verify(env.data, env.len, &pub, 1, ST_BUNDLE_PAYLOAD_TYPE, NULL, NULL, NULL,
                       &err);
  json_object_set_new(out, "dsse", json_string(ok ? "pass" : "fail"));
  if (pub)
    json_object_set_new(out, "keyid", json_string(st_pubkey_keyid(pub)));
  st_buf_release(&sig);
  st_buf_release(&env);
  st_buf_release(&key);
}

int st__export_verify(st_api_req_t *req, void *arg) {
  st__export_api_t *x = arg;
  st_error_t err = ST_ERROR_INIT;
  st_bundle_report_t rep;
  st_buf_t path = ST_BUF_INIT, rj = ST_BUF_INIT;
  json_t *run = NULL, *body = NULL, *report = NULL, *sigs = json_object();
  const st_pubkey_t *keys[1] = {x->signer ? st_signer_pubkey(x->signer) : NULL};
  st_bundle_trust_t trust = {keys, x->signer ? 1 : 0, NULL, 0, NULL};
  char hex[ST_SHA256_HEX_LEN + 1] = "";
  uint8_t d[32];
  file_t fo = {NULL};
  int fd = -1, rc, vrc = -1, match;

  st_bundle_report_init(&rep);
  if (built_run(req, x, &run)) {
    rc = 0;
    goto done;
  }
  if (st_buf_addf(&path, "%s/stella-verify-XXXXXX", x->tmp_dir) || !sigs) {
    rc = ST_ENOMEM;
    goto done;
  }
  if ((fd = mkstemp(path.data)) < 0 || !(fo.f = fdopen(fd, "wb"))) {
    rc = st_api_reply_error(req, ST_EIO, NULL);
    goto done;
  }
  fd = -1;
  rc = st_objstore_get(x->store, tenant_of(req), art(run, "key"), 0, ST_OBJSTORE_TO_END, to_file,
                       &fo, &err);
  if (fclose(fo.f) && !rc)
    rc = ST_EIO;
  fo.f = NULL;
  if (rc || (rc = st_sha256_file(path.data, d, NULL, &err))) {
    st_logkv(ST_LOG_ERROR, "export verify", "error", st_error_text(&err), NULL);
    rc = st_api_reply_error(req, rc, NULL);
    goto done;
  }
  st_sha256_hex(d, hex);
  match = !strcmp(hex, art(run, "sha256"));
  vrc = st_bundle_verify(path.data, &trust, &rep, &err);
  detached_checks(x, tenant_of(req), run, d, sigs);
  if (st_bundle_report_json(&rep, &rj) ||
      st_json_parse(rj.data, rj.len, NULL, &report, &err)) {
    rc = ST_ENOMEM;
    goto done;
  }
  body = json_pack("{s:O, s:b, s:{s:s, s:s, s:b}, s:O, s:O}", "run_id",
                   json_object_get(run, "run_id"), "ok",
                   vrc == 0 && match &&
                       !strcmp(json_string_value(json_object_get(sigs, "detached_signature")),
                               "pass") &&
                       !strcmp(json_string_value(json_object_get(sigs, "dsse")), "pass"),
                   "sha256", "expected", art(run, "sha256"), "actual", hex, "match", match,
                   "signatures", sigs, "report", report);
  rc = body ? st_api_reply_json(req, 200, body) : ST_ENOMEM;
done:
  if (fo.f)
    fclose(fo.f);
  if (fd >= 0)
    close(fd);
  if (path.len)
    unlink(path.data);
  st_bundle_report_release(&rep);
  st_buf_release(&path);
  st_buf_release(&rj);
  json_decref(body);
  json_decref(report);
  json_decref(sigs);
  json_decref(run);
  return rc;
}
