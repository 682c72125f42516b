/* oci_registry_http.c: the registry client's object and its one request path: a libcurl
 * easy handle reused across requests (keep-alive), bounded header and body capture,
 * retries with capped exponential backoff and full jitter, and 401 challenges answered
 * once per request (oci_registry.h). Bodies are sent from memory or with pread from an
 * fd, so a retry re-sends the same bytes without any seeking state. */
#include "oci_registry_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "stella/base64.h"
#include "stella/mem.h"

#define HDR_TOTAL_MAX ((size_t)64 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

void st__oci_resp_init(st__oci_resp_t *r, size_t body_max) {
  memset(r, 0, sizeof(*r));
  st_buf_init(&r->body, body_max);
  st_buf_init(&r->location, ST__OCI_HDR_MAX);
  st_buf_init(&r->digest, ST__OCI_HDR_MAX);
  st_buf_init(&r->www_auth, ST__OCI_HDR_MAX);
  st_buf_init(&r->range, ST__OCI_HDR_MAX);
  st_buf_init(&r->content_type, ST__OCI_HDR_MAX);
  st_buf_init(&r->subject, ST__OCI_HDR_MAX);
}

void st__oci_resp_release(st__oci_resp_t *r) {
  st_buf_release(&r->body);
  st_buf_release(&r->location);
  st_buf_release(&r->digest);
  st_buf_release(&r->www_auth);
  st_buf_release(&r->range);
  st_buf_release(&r->content_type);
  st_buf_release(&r->subject);
}

static void resp_reset(st__oci_resp_t *r) {
  r->status = 0;
  st_buf_reset(&r->body);
  st_buf_reset(&r->location);
  st_buf_reset(&r->digest);
  st_buf_reset(&r->www_auth);
  st_buf_reset(&r->range);
  st_buf_reset(&r->content_type);
  st_buf_reset(&r->subject);
}

/* ---- client ---- */

static int parse_registry(st_oci_client_t *c, const char *reg, st_error_t *err) {
  const char *scheme = "https", *hp = reg;
  size_t len;
  if (!strncmp(reg, "http://", 7)) {
    scheme = "http";
    hp = reg + 7;
  } else if (!strncmp(reg, "https://", 8)) {
    hp = reg + 8;
  }
  len = strlen(hp);
  while (len && hp[len - 1] == '/')
    len--;
  if (len == 0 || len > 255)
    return st_fail(err, ST_EINVAL, "registry '%.100s': no host", reg);
  for (size_t i = 0; i < len; i++) {
    char ch = hp[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          strchr(".-:[]", ch)))
      return st_fail(err, ST_EINVAL, "registry '%.100s': only host[:port] is allowed", reg);
  }
  if (!(c->hostport = st_strndup(hp, len)) || !(c->origin = st_malloc(len + 9)))
    return st_fail(err, ST_ENOMEM, "registry: out of memory");
  snprintf(c->origin, len + 9, "%s://%s", scheme, c->hostport);
  return 0;
}

int st_oci_client_new(const st_oci_client_opts_t *o, st_oci_client_t **out, st_error_t *err) {
  st_oci_client_t *c = NULL;
  st_buf_t up = ST_BUF_INIT, b64 = ST_BUF_INIT;
  int rc = 0;

  *out = NULL;
  if (!o || !o->registry)
    return st_fail(err, ST_EINVAL, "registry: no registry given");
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return st_fail(err, ST_EINTERNAL, "registry: libcurl did not initialise");
  if (!(c = st_calloc(1, sizeof(*c)))) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  c->o = *o;
  c->o.registry = c->o.username = c->o.password = c->o.docker_config = c->o.ca_file = NULL;
  if (!c->o.max_attempts)
    c->o.max_attempts = 6;
  if (!c->o.backoff_base_ms)
    c->o.backoff_base_ms = 200;
  if (!c->o.backoff_cap_ms)
    c->o.backoff_cap_ms = 5000;
  if (!c->o.connect_timeout_ms)
    c->o.connect_timeout_ms = 10000;
  if (!c->o.max_response_bytes)
    c->o.max_response_bytes = (size_t)4 << 20;
  if (c->o.max_attempts < 1 || c->o.max_attempts > 100 || c->o.backoff_base_ms < 0 ||
      c->o.backoff_cap_ms < c->o.backoff_base_ms) {
    rc = st_fail(err, ST_EINVAL, "registry: max_attempts 1..100 and backoff base <= cap");
    goto done;
  }
  c->cancelled = o->cancelled;
  c->cancel_ud = o->cancel_ud;
  if (RAND_bytes((unsigned char *)&c->rng, sizeof(c->rng)) != 1)
    c->rng = (unsigned)time(NULL) ^ (unsigned)getpid();
  if ((rc = parse_registry(c, o->registry, err)))
    goto done;
  if (o->ca_file && !(c->ca_file = st_strdup(o->ca_file))) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  if (o->username) {
    if (strchr(o->username, ':')) {
      rc = st_fail(err, ST_EINVAL, "registry: a user name cannot contain ':'");
      goto done;
    }
    if ((rc = st_buf_addf(&up, "%s:%s", o->username, o->password ? o->password : "")) ||
        (rc = st_base64_encode(&b64, up.data, up.len))) {
      rc = st_fail(err, rc, "registry: credentials too long");
      goto done;
    }
    c->basic = st_buf_detach(&b64, NULL);
  } else if (o->docker_config && (rc = st__oci_docker_config(c, o->docker_config, err))) {
    goto done;
  }
  if (!(c->h = curl_easy_init())) {
    rc = st_fail(err, ST_ENOMEM, "registry: no curl handle");
    goto done;
  }
  *out = c;
  c = NULL;
done:
  st_memzero(up.data, up.len);
  st_memzero(b64.data, b64.len);
  st_buf_release(&up);
  st_buf_release(&b64);
  st_oci_client_free(c);
  return rc;
}

void st_oci_client_free(st_oci_client_t *c) {
  if (!c)
    return;
  if (c->h)
    curl_easy_cleanup(c->h);
  if (c->basic) {
    st_memzero(c->basic, strlen(c->basic));
    st_free(c->basic);
  }
  for (int i = 0; i < ST__OCI_TOKENS; i++) {
    st_free(c->tokens[i].scope);
    if (c->tokens[i].token) {
      st_memzero(c->tokens[i].token, strlen(c->tokens[i].token));
      st_free(c->tokens[i].token);
    }
  }
  st_free(c->realm);
  st_free(c->service);
  st_free(c->origin);
  st_free(c->hostport);
  st_free(c->ca_file);
  st_free(c);
}

const st_oci_stats_t *st_oci_client_stats(const st_oci_client_t *c) { return &c->stats; }

/* ---- one attempt ---- */

typedef struct xfer_s {
  const st__oci_req_t *req;
  st__oci_resp_t *resp;
  uint64_t sent;
  size_t hdr_total;
  int body_overflow, hdr_overflow, read_failed;
  st_oci_client_t *c;
} xfer_t;

static size_t on_read(char *buf, size_t size, size_t n, void *ud) {
  xfer_t *x = ud;
  size_t want = size * n;
  uint64_t left = x->req->len - x->sent;
  if (want > left)
    want = (size_t)left;
  if (want == 0)
    return 0;
  if (x->req->fd >= 0) {
    ssize_t r;
    do
      r = pread(x->req->fd, buf, want, (off_t)(x->req->off + x->sent));
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
      x->read_failed = 1;
      return CURL_READFUNC_ABORT;
    }
    want = (size_t)r;
  } else {
    memcpy(buf, (const char *)x->req->mem + x->req->off + x->sent, want);
  }
  x->sent += want;
  return want;
}

static int on_seek(void *ud, curl_off_t offset, int origin) {
  xfer_t *x = ud;
  if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->req->len)
    return CURL_SEEKFUNC_CANTSEEK;
  x->sent = (uint64_t)offset;
  return CURL_SEEKFUNC_OK;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  xfer_t *x = ud;
  if (st_buf_add(&x->resp->body, data, size * n)) {
    x->body_overflow = 1;
    return 0;
  }
  return size * n;
}

static int hdr_is(const char *line, size_t len, const char *name, const char **val,
                  size_t *vlen) {
  size_t nl = strlen(name);
  if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl))
    return 0;
  *val = line + nl + 1;
  *vlen = len - nl - 1;
  while (*vlen && (**val == ' ' || **val == '\t')) {
    (*val)++;
    (*vlen)--;
  }
  while (*vlen && ((*val)[*vlen - 1] == '\r' || (*val)[*vlen - 1] == '\n' ||
                   (*val)[*vlen - 1] == ' '))
    (*vlen)--;
  return 1;
}

static size_t on_header(char *line, size_t size, size_t n, void *ud) {
  xfer_t *x = ud;
  size_t len = size * n, vlen;
  const char *v;
  st_buf_t *dst = NULL;
  x->hdr_total += len;
  if (x->hdr_total > HDR_TOTAL_MAX) {
    x->hdr_overflow = 1;
    return 0;
  }
  if (len >= 5 && !strncmp(line, "HTTP/", 5)) { /* a new response (after 100 Continue) */
    resp_reset(x->resp);
    return len;
  }
  if (hdr_is(line, len, "Location", &v, &vlen))
    dst = &x->resp->location;
  else if (hdr_is(line, len, "Docker-Content-Digest", &v, &vlen))
    dst = &x->resp->digest;
  else if (hdr_is(line, len, "WWW-Authenticate", &v, &vlen))
    dst = &x->resp->www_auth;
  else if (hdr_is(line, len, "Range", &v, &vlen))
    dst = &x->resp->range;
  else if (hdr_is(line, len, "Content-Type", &v, &vlen))
    dst = &x->resp->content_type;
  else if (hdr_is(line, len, "OCI-Subject", &v, &vlen))
    dst = &x->resp->subject;
  if (dst) {
    st_buf_reset(dst);
    for (size_t i = 0; i < vlen; i++)
      if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) {
        x->hdr_overflow = 1; /* refuse non-printable header values outright */
        return 0;
      }
    if (st_buf_add(dst, v, vlen)) {
      x->hdr_overflow = 1;
      return 0;
    }
  }
  return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  xfer_t *x = ud;
  (void)dt, (void)dn, (void)ut, (void)un;
  return x->c->cancelled && x->c->cancelled(x->c->cancel_ud);
}

static int add_hdr(struct curl_slist **l, const char *fmt, const char *v) {
  st_buf_t b = ST_BUF_INIT;
  struct curl_slist *n;
  if (st_buf_addf(&b, fmt, v)) {
    st_buf_release(&b);
    return ST_ENOMEM;
  }
  n = curl_slist_append(*l, b.data);
  st_memzero(b.data, b.len);
  st_buf_release(&b);
  if (!n)
    return ST_ENOMEM;
  *l = n;
  return 0;
}

/* 0 with resp->status, or ST_ENET (transport), ST_ETOOBIG, ST_EIO, ST_ECANCELED. */
static int attempt(st_oci_client_t *c, const st__oci_req_t *req, st__oci_resp_t *resp,
                   st_error_t *err) {
  char cerr[CURL_ERROR_SIZE] = {0};
  struct curl_slist *hdrs = NULL;
  xfer_t x = {req, resp, 0, 0, 0, 0, 0, c};
  const char *token = NULL;
  CURL *h = c->h;
  CURLcode cc;
  int rc = 0, has_body = req->len > 0 || !strcmp(req->method, "PUT") ||
                         !strcmp(req->method, "PATCH");

  resp_reset(resp);
  curl_easy_reset(h);
  if (!req->no_auth && c->auth == ST__AUTH_BEARER && req->scope)
    token = st__oci_token_for(c, req->scope);
  if ((token && add_hdr(&hdrs, "Authorization: Bearer %s", token)) ||
      (!token && c->basic && (req->basic_only || c->auth == ST__AUTH_BASIC) &&
       add_hdr(&hdrs, "Authorization: Basic %s", c->basic)) ||
      (req->content_type && add_hdr(&hdrs, "Content-Type: %s", req->content_type)) ||
      (req->accept && add_hdr(&hdrs, "Accept: %s", req->accept)) ||
      (req->content_range && add_hdr(&hdrs, "Content-Range: %s", req->content_range)) ||
      add_hdr(&hdrs, "Expect:%s", "")) {
    rc = st_fail(err, ST_ENOMEM, "registry: out of memory");
    goto done;
  }
  curl_easy_setopt(h, CURLOPT_URL, req->url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
  /* a stalled peer: under 1 byte/s for 60 s ends the attempt (then retried) */
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  if (c->ca_file)
    curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
  if (!strcmp(req->method, "HEAD")) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (!strcmp(req->method, "POST") && !has_body) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
  } else if (has_body) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &x);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->len);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  } else if (strcmp(req->method, "GET")) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
  }
  c->stats.requests++;
  cc = curl_easy_perform(h);
  if (x.body_overflow) {
    rc = st_fail(err, ST_ETOOBIG, "registry: %s %s: response body over %zu bytes",
                 req->method, req->url, resp->body.max);
  } else if (x.hdr_overflow) {
    rc = st_fail(err, ST_ETOOBIG, "registry: %s %s: response headers too large or not "
                 "printable", req->method, req->url);
  } else if (x.read_failed) {
    rc = st_fail(err, ST_EIO, "registry: %s %s: reading the upload source failed",
                 req->method, req->url);
  } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
    rc = st_fail(err, ST_ECANCELED, "registry: cancelled");
  } else if (cc != CURLE_OK) {
    rc = st_fail(err, ST_ENET, "registry: %s %s: %s", req->method, req->url,
                 cerr[0] ? cerr : curl_easy_strerror(cc));
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
  }
done:
  curl_slist_free_all(hdrs);
  return rc;
}

int st__oci_backoff(st_oci_client_t *c, unsigned n, st_error_t *err) {
  long cap = c->o.backoff_base_ms, slept = 0, delay;
  for (unsigned i = 0; i < n && cap < c->o.backoff_cap_ms; i++)
    cap *= 2;
  if (cap > c->o.backoff_cap_ms)
    cap = c->o.backoff_cap_ms;
  delay = cap > 0 ? (long)(rand_r(&c->rng) % (unsigned)(cap + 1)) : 0;
  while (slept < delay) {
    long step = delay - slept < 20 ? delay - slept : 20;
    struct timespec ts = {0, step * 1000000L};
    if (c->cancelled && c->cancelled(c->cancel_ud))
      return st_fail(err, ST_ECANCELED, "registry: cancelled");
    nanosleep(&ts, NULL);
    slept += step;
  }
  if (c->cancelled && c->cancelled(c->cancel_ud))
    return st_fail(err, ST_ECANCELED, "registry: cancelled");
  return 0;
}

static int retryable_status(long s) { return s == 408 || s == 429 || (s >= 500 && s <= 599); }

int st__oci_call(st_oci_client_t *c, const st__oci_req_t *req, st__oci_resp_t *resp,
                 st_error_t *err) {
  int challenged = 0, rc = 0;
  unsigned tries = 0, max = req->no_retry ? 1 : (unsigned)c->o.max_attempts;
  if (!req->no_auth && (rc = st__oci_auth_prepare(c, req->scope, err)))
    return rc;
  for (;;) {
    rc = attempt(c, req, resp, err);
    if (rc == ST_ECANCELED || rc == ST_ETOOBIG || rc == ST_EIO || rc == ST_ENOMEM)
      return rc;
    if (!rc && resp->status == 401 && !req->no_auth && !challenged) {
      challenged = 1;
      if (!resp->www_auth.len)
        return st_fail(err, ST_EPERM, "registry: %s %s: 401 without a challenge", req->method,
                       req->url);
      if ((rc = st__oci_auth_challenge(c, resp->www_auth.data, req->scope, err)))
        return rc;
      continue; /* answering a challenge is not a retry */
    }
    if (!rc && !retryable_status(resp->status))
      return 0;
    if (++tries >= max) {
      if (!rc)
        return 0; /* the caller reports the final status with the registry's message */
      return rc;
    }
    c->stats.retries++;
    if ((rc = st__oci_backoff(c, tries - 1, err)))
      return rc;
  }
}

static void clean_text(const char *s, size_t len, char *out, size_t cap) {
  size_t j = 0;
  for (size_t i = 0; i < len && j + 1 < cap; i++)
    out[j++] = ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) ? s[i] : '?';
  out[j] = '\0';
}

int st__oci_status_fail(const st__oci_resp_t *resp, st_error_t *err, const char *what) {
  char detail[256] = "";
  long s = resp->status;
  json_t *doc = NULL, *e0;
  int code = s == 401 || s == 403 ? ST_EPERM
             : s == 404           ? ST_ENOENT
             : retryable_status(s) ? ST_ENET
             : s == 416           ? ST_ERANGE
                                  : ST_EINVAL;
  /* {"errors":[{"code":"DIGEST_INVALID","message":"..."}]} (distribution-spec) */
  if (resp->body.len && resp->body.len < 65536 &&
      (doc = json_loadb(resp->body.data, resp->body.len, JSON_REJECT_DUPLICATES, NULL)) &&
      (e0 = json_array_get(json_object_get(doc, "errors"), 0))) {
    const char *ec = json_string_value(json_object_get(e0, "code"));
    const char *em = json_string_value(json_object_get(e0, "message"));
    char a[64], b[160];
    clean_text(ec ? ec : "", ec ? strlen(ec) : 0, a, sizeof(a));
    clean_text(em ? em : "", em ? strlen(em) : 0, b, sizeof(b));
    snprintf(detail, sizeof(detail), ": %s %s", a, b);
    if (ec && (!strcmp(ec, "DIGEST_INVALID") || !strcmp(ec, "SIZE_INVALID")))
      code = ST_EVERIFY;
  }
  json_decref(doc);
  if (!detail[0] && (s == 401 || s == 403))
    snprintf(detail, sizeof(detail), " (credentials missing or refused)");
  return st_fail(err, code, "registry: %s: HTTP %ld%s", what, s, detail);
}

int st__oci_location(st_oci_client_t *c, const st_buf_t *loc, st_buf_t *url, st_error_t *err) {
  size_t olen = strlen(c->origin);
  st_buf_reset(url);
  if (!loc->len)
    return st_fail(err, ST_EPARSE, "registry: upload answer without a Location");
  for (size_t i = 0; i < loc->len; i++)
    if (loc->data[i] == ' ' || loc->data[i] == '#')
      return st_fail(err, ST_EPARSE, "registry: malformed Location '%.100s'", loc->data);
  if (loc->data[0] == '/' && (loc->len < 2 || loc->data[1] != '/')) {
    if (st_buf_adds(url, c->origin) || st_buf_add(url, loc->data, loc->len))
      return st_fail(err, ST_ETOOBIG, "registry: Location too long");
    return 0;
  }
  if (loc->len > olen && !strncasecmp(loc->data, c->origin, olen) && loc->data[olen] == '/') {
    if (st_buf_add(url, loc->data, loc->len))
      return st_fail(err, ST_ETOOBIG, "registry: Location too long");
    return 0;
  }
  return st_fail(err, ST_EUNSAFE, "registry: Location '%.100s' is not on %s", loc->data,
                 c->origin);
}
