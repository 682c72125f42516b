/* objstore_s3.c: the S3-compatible object store backend over libcurl.
 *
 * Requests are path-style (endpoint/bucket/key) and signed with SigV4 (s3_sigv4.c).
 * A PUT signs the body's SHA-256 as x-amz-content-sha256 (the caller names the digest,
 * so S3 itself rejects a body that does not match) and sends x-amz-checksum-sha256
 * (which Object Lock requires on a locked write); the body is hashed again while it
 * streams out and the upload is aborted before its last byte on a mismatch, so the
 * server never sees a complete request. The digest travels as x-amz-meta-sha256 for
 * stat. Retention and legal hold use Object Lock (?retention, ?legal-hold with
 * Content-MD5) and need s3_worm_mode; deletes of a WORM store name the version.
 *
 * Errors: 404 -> ST_ENOENT, 403 -> ST_EPERM, 416 -> ST_ERANGE, 5xx, 429 and transport
 * failures -> retried with exponential backoff, then ST_ENET (transient). A body from
 * a plain callback cannot be replayed, so such a PUT is tried once.
 *
 * One curl easy handle per request: calls are independent and thread-safe given
 * curl_global_init (done once, on first store creation).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "objstore_int.h"
#include "s3_sigv4.h"
#include "stella/mem.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ERRBODY_MAX (64 * 1024)
#define LISTBODY_MAX (16 * 1024 * 1024)
#define HDRVAL_MAX 256
#define MAX_HDRS 12

typedef struct s3_store_s {
  st_objstore_t base;
  char *endpoint, *host, *region, *bucket, *access_key, *secret_key, *worm_mode, *ca_file;
  int max_attempts;
  long timeout_ms;
} s3_store_t;

/* Response headers the backend reads. */
typedef struct s3_resp_s {
  st_buf_t length, sha256, retain_until, legal_hold, version_id;
} s3_resp_t;

typedef struct s3_req_s {
  const char *method, *key;
  const char *const *query; /* name, value pairs */
  size_t nquery;
  const char *hdrs[2 * MAX_HDRS]; /* extra signed headers: name, value pairs */
  size_t nhdrs;
  const char *payload_hash; /* NULL: empty body */
  /* body: a callback source of `size` bytes, hashed against expect (if set) */
  st_objstore_read_fn read_fn;
  void *read_ctx;
  uint64_t size;
  int replayable;
  const char *expect;
  /* response body: to write_fn when 2xx, else (and when write_fn is NULL) into body */
  st_objstore_write_fn write_fn;
  void *write_ctx;
  st_buf_t body;
  s3_resp_t resp;
  long status;
  /* transfer state */
  uint64_t sent, delivered;
  st__os_hash_t hash;
  int cb_rc; /* a callback's failure, which ends the request without retry */
} s3_req_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- curl callbacks ---- */

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud) {
  s3_req_t *r = ud;
  size_t len = size * nmemb;
  uint64_t left = r->size - r->sent;
  ssize_t n;
  char probe, hex[65];

  if (left == 0)
    return 0;
  n = r->read_fn(r->read_ctx, buf, len < left ? len : (size_t)left);
  if (n <= 0) {
    r->cb_rc = n < 0 ? (int)n : ST_EVERIFY; /* 0: the source ended early */
    return CURL_READFUNC_ABORT;
  }
  r->sent += (uint64_t)n;
  if (r->expect && st__os_hash_update(&r->hash, buf, (size_t)n)) {
    r->cb_rc = ST_ECRYPTO;
    return CURL_READFUNC_ABORT;
  }
  if (r->sent == r->size && r->expect) {
    /* Last bytes: check before handing them over, so a bad body never completes. */
    if (r->read_fn(r->read_ctx, &probe, 1) != 0 || st__os_hash_final_hex(&r->hash, hex) ||
        !st__objstore_digest_eq(hex, r->expect)) {
      r->cb_rc = ST_EVERIFY;
      return CURL_READFUNC_ABORT;
    }
  }
  return (size_t)n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud) {
  s3_req_t *r = ud;
  size_t len = size * nmemb;
  if (r->write_fn && r->status >= 200 && r->status < 300) {
    int rc = r->write_fn(r->write_ctx, data, len);
    if (rc) {
      r->cb_rc = rc;
      return 0;
    }
    r->delivered += len;
    return len;
  }
  if (st_buf_add(&r->body, data, len)) {
    r->cb_rc = ST_ETOOBIG;
    return 0;
  }
  return len;
}

static void keep_header(st_buf_t *b, const char *v, size_t len) {
  st_buf_reset(b);
  if (st_buf_add(b, v, len))
    st_buf_reset(b);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  s3_req_t *r = ud;
  size_t len = size * nmemb, nlen;
  const char *colon = memchr(data, ':', len), *v;
  static const struct {
    const char *name;
    size_t off;
  } want[] = {
      {"content-length", offsetof(s3_resp_t, length)},
      {"x-amz-meta-sha256", offsetof(s3_resp_t, sha256)},
      {"x-amz-object-lock-retain-until-date", offsetof(s3_resp_t, retain_until)},
      {"x-amz-object-lock-legal-hold", offsetof(s3_resp_t, legal_hold)},
      {"x-amz-version-id", offsetof(s3_resp_t, version_id)},
  };

  if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    const char *sp = memchr(data, ' ', len);
    r->status = sp ? strtol(sp + 1, NULL, 10) : 0; /* a new response (100, redirects) */
    return len;
  }
  if (!colon)
    return len;
  nlen = (size_t)(colon - data);
  v = colon + 1;
  while (v < data + len && (*v == ' ' || *v == '\t'))
    v++;
  while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n' || data[len - 1] == ' '))
    len--;
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
    if (strlen(want[i].name) == nlen && strncasecmp(data, want[i].name, nlen) == 0 &&
        v <= data + len)
      keep_header((st_buf_t *)((char *)&r->resp + want[i].off), v, (size_t)(data + len - v));
  return size * nmemb;
}

/* ---- requests ---- */

static void req_init(s3_req_t *r, const char *method, const char *key) {
  memset(r, 0, sizeof(*r));
  r->method = method;
  r->key = key;
  st_buf_init(&r->body, ERRBODY_MAX);
  st_buf_init(&r->resp.length, HDRVAL_MAX);
  st_buf_init(&r->resp.sha256, HDRVAL_MAX);
  st_buf_init(&r->resp.retain_until, HDRVAL_MAX);
  st_buf_init(&r->resp.legal_hold, HDRVAL_MAX);
  st_buf_init(&r->resp.version_id, HDRVAL_MAX);
}

static void req_release(s3_req_t *r) {
  st_buf_release(&r->body);
  st_buf_release(&r->resp.length);
  st_buf_release(&r->resp.sha256);
  st_buf_release(&r->resp.retain_until);
  st_buf_release(&r->resp.legal_hold);
  st_buf_release(&r->resp.version_id);
  st__os_hash_release(&r->hash);
}

static void req_header(s3_req_t *r, const char *name, const char *value) {
  r->hdrs[2 * r->nhdrs] = name;
  r->hdrs[2 * r->nhdrs + 1] = value;
  r->nhdrs++;
}

/* S3's <Code> from an error body, for messages. */
static void error_code(const st_buf_t *body, char *out, size_t cap) {
  const char *a = strstr(body->data, "<Code>"), *b;
  out[0] = '\0';
  if (a && (b = strstr(a + 6, "</Code>")) && (size_t)(b - a - 6) < cap) {
    memcpy(out, a + 6, (size_t)(b - a - 6));
    out[b - a - 6] = '\0';
  }
}

/* One attempt. Returns 0 with r->status set, or a negative code for a transport
 * failure (ST_ENET) or a callback's failure (its code). */
static int attempt(s3_store_t *s3, s3_req_t *r, st_error_t *err) {
  st_buf_t url = ST_BUF_INIT, path = ST_BUF_INIT, query = ST_BUF_INIT, auth = ST_BUF_INIT,
           line = ST_BUF_INIT;
  st__sigv4_header_t sh[MAX_HDRS + 3];
  struct curl_slist *list = NULL;
  char date[17];
  CURL *c = NULL;
  CURLcode cc;
  size_t nsh = 0;
  int rc = 0;
  const char *payload = r->payload_hash ? r->payload_hash : EMPTY_SHA256;

  st__sigv4_amz_date((int64_t)time(NULL), date);
  if ((rc = st_buf_addf(&path, "/%s/", s3->bucket)) ||
      (r->key && (rc = st__sigv4_uri_encode(&path, r->key, strlen(r->key), 1))) ||
      (rc = st__sigv4_query(&query, r->query, r->nquery)) ||
      (rc = st_buf_addf(&url, "%s%s%s%s", s3->endpoint, path.data, query.len ? "?" : "",
                        query.data)))
    goto oom;
  sh[nsh++] = (st__sigv4_header_t){"host", s3->host};
  sh[nsh++] = (st__sigv4_header_t){"x-amz-content-sha256", payload};
  sh[nsh++] = (st__sigv4_header_t){"x-amz-date", date};
  for (size_t i = 0; i < r->nhdrs; i++)
    sh[nsh++] = (st__sigv4_header_t){r->hdrs[2 * i], r->hdrs[2 * i + 1]};
  {
    st__sigv4_req_t sr = {r->method, path.data, query.data, sh, nsh, payload, date,
                          s3->region, "s3", s3->access_key, s3->secret_key};
    if ((rc = st__sigv4_authorization(&sr, &auth, NULL)))
      goto oom;
  }
  for (size_t i = 0; i < nsh; i++) {
    struct curl_slist *n;
    st_buf_reset(&line);
    if ((rc = st_buf_addf(&line, "%s: %s", sh[i].name, sh[i].value)) ||
        !(n = curl_slist_append(list, line.data)))
      goto oom;
    list = n;
  }
  st_buf_reset(&line);
  {
    struct curl_slist *n;
    if ((rc = st_buf_addf(&line, "Authorization: %s", auth.data)) ||
        !(n = curl_slist_append(list, line.data)) || !(list = n) ||
        !(n = curl_slist_append(list, "Expect:")) || !(list = n))
      goto oom;
  }
  if (!(c = curl_easy_init()))
    goto oom;
  curl_easy_setopt(c, CURLOPT_URL, url.data);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s3->timeout_ms);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (s3->timeout_ms + 999) / 1000);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  if (s3->ca_file)
    curl_easy_setopt(c, CURLOPT_CAINFO, s3->ca_file);
  if (strcmp(r->method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (strcmp(r->method, "PUT") == 0) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->size);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, r);
  } else if (strcmp(r->method, "GET") != 0) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
  }
  r->status = 0;
  cc = curl_easy_perform(c);
  if (r->cb_rc)
    rc = st_fail(err, r->cb_rc, "objstore s3: %s %s: %s", r->method, path.data,
                 r->cb_rc == ST_EVERIFY ? "body does not match its size and digest"
                                        : st_strerror(r->cb_rc));
  else if (cc != CURLE_OK)
    rc = st_fail(err, ST_ENET, "objstore s3: %s %s: %s", r->method, path.data,
                 curl_easy_strerror(cc));
  goto done;
oom:
  rc = st_fail(err, ST_ENOMEM, "objstore s3: request: out of memory");
done:
  if (c)
    curl_easy_cleanup(c);
  curl_slist_free_all(list);
  if (auth.len)
    st_memzero(auth.data, auth.len);
  st_buf_release(&auth);
  st_buf_release(&line);
  st_buf_release(&url);
  st_buf_release(&path);
  st_buf_release(&query);
  return rc;
}

static int retryable_status(long st) { return st >= 500 || st == 429 || st == 408; }

/* Run r with retries; map the final status. Statuses in ok_also (0-terminated) are
 * returned as 0 like 2xx, leaving r->status for the caller. */
static int perform(s3_store_t *s3, s3_req_t *r, const long *ok_also, st_error_t *err) {
  char code[64];
  int rc = 0;

  for (int i = 0; i < s3->max_attempts; i++) {
    if (i) {
      struct timespec ts = {0, 0};
      long ms = 100L << (i - 1 < 5 ? i - 1 : 5);
      if ((r->read_fn && !r->replayable) || r->delivered)
        break; /* the body cannot be sent again / the sink already has bytes */
      if (r->read_fn && r->read_fn(r->read_ctx, NULL, 0) != 0)
        break;
      r->sent = 0;
      st__os_hash_release(&r->hash);
      if (r->expect && st__os_hash_init(&r->hash))
        return st_fail(err, ST_ENOMEM, "objstore s3: out of memory");
      st_buf_reset(&r->body);
      ts.tv_sec = ms / 1000;
      ts.tv_nsec = (ms % 1000) * 1000000L;
      nanosleep(&ts, NULL);
    }
    rc = attempt(s3, r, err);
    if (r->cb_rc)
      break;
    if (rc == ST_ENET || (!rc && retryable_status(r->status)))
      continue;
    break;
  }
  if (rc)
    return rc;
  if (r->status >= 200 && r->status < 300)
    return 0;
  for (; ok_also && *ok_also; ok_also++)
    if (r->status == *ok_also)
      return 0;
  error_code(&r->body, code, sizeof(code));
  switch (r->status) {
  case 404:
    return st_fail(err, ST_ENOENT, "objstore: %s: not found", r->key ? r->key : s3->bucket);
  case 403:
    return st_fail(err, ST_EPERM, "objstore s3: %s %s: refused (403 %s)", r->method,
                   r->key ? r->key : "", code);
  case 416:
    return st_fail(err, ST_ERANGE, "objstore s3: %s: range not satisfiable", r->key);
  case 409:
  case 412:
    return st_fail(err, ST_ECONFLICT, "objstore s3: %s %s: conflict (%ld %s)", r->method,
                   r->key ? r->key : "", r->status, code);
  default:
    if (strcmp(code, "XAmzContentSHA256Mismatch") == 0 || strcmp(code, "BadDigest") == 0)
      return st_fail(err, ST_EVERIFY, "objstore s3: %s: server saw another digest", r->key);
    return st_fail(err, retryable_status(r->status) ? ST_ENET : ST_EIO,
                   "objstore s3: %s %s: HTTP %ld %s", r->method, r->key ? r->key : "",
                   r->status, code);
  }
}

/* ---- operations ---- */

static int head(s3_store_t *s3, const char *key, st_objstore_stat_t *out, st_buf_t *version,
                st_error_t *err) {
  s3_req_t r;
  int rc;
  req_init(&r, "HEAD", key);
  if (!(rc = perform(s3, &r, NULL, err))) {
    memset(out, 0, sizeof(*out));
    out->size = strtoull(r.resp.length.data, NULL, 10);
    if (!st__objstore_digest_ok(r.resp.sha256.data))
      rc = st_fail(err, ST_EPARSE, "objstore s3: %s: no x-amz-meta-sha256", key);
    else
      memcpy(out->sha256, r.resp.sha256.data, 65);
    if (!rc && r.resp.retain_until.len &&
        st__objstore_parse_rfc3339(r.resp.retain_until.data, r.resp.retain_until.len,
                                   &out->retain_until))
      rc = st_fail(err, ST_EPARSE, "objstore s3: %s: bad retain-until date", key);
    out->legal_hold = strcasecmp(r.resp.legal_hold.data, "ON") == 0;
    if (!rc && version && st_buf_add(version, r.resp.version_id.data, r.resp.version_id.len))
      rc = st_fail(err, ST_ENOMEM, "objstore s3: out of memory");
  }
  req_release(&r);
  return rc;
}

static int s3_stat(st_objstore_t *s, const char *key, st_objstore_stat_t *out,
                   st_error_t *err) {
  return head((s3_store_t *)s, key, out, NULL, err);
}

static int worm_on(const s3_store_t *s3) { return s3->worm_mode != NULL; }

typedef struct mem_src_s {
  const char *p;
  size_t len, off;
} mem_src_t;

static ssize_t mem_src_read(void *ctx, void *buf, size_t len) {
  mem_src_t *m = ctx;
  size_t n = m->len - m->off < len ? m->len - m->off : len;
  if (len == 0) {
    m->off = 0; /* rewind */
    return 0;
  }
  memcpy(buf, m->p + m->off, n);
  m->off += n;
  return (ssize_t)n;
}

/* PUT of a small lock document (?retention / ?legal-hold) with Content-MD5. */
static int put_subresource(s3_store_t *s3, const char *key, const char *sub, const char *doc,
                           st_error_t *err) {
  const char *q[2] = {sub, ""};
  unsigned char md5[16], b64[32];
  char sha[65];
  mem_src_t src = {doc, strlen(doc), 0};
  st__os_hash_t h = {NULL};
  s3_req_t r;
  int rc;

  req_init(&r, "PUT", key);
  if (EVP_Digest(doc, src.len, md5, NULL, EVP_md5(), NULL) != 1 ||
      EVP_EncodeBlock(b64, md5, 16) != 24 || st__os_hash_init(&h) ||
      st__os_hash_update(&h, doc, src.len) || st__os_hash_final_hex(&h, sha)) {
    rc = st_fail(err, ST_ECRYPTO, "objstore s3: %s: digest", key);
    goto done;
  }
  r.query = q;
  r.nquery = 1;
  req_header(&r, "content-md5", (const char *)b64);
  r.payload_hash = sha;
  r.read_fn = mem_src_read;
  r.read_ctx = &src;
  r.size = src.len;
  r.replayable = 1;
  rc = perform(s3, &r, NULL, err);
done:
  st__os_hash_release(&h);
  req_release(&r);
  return rc;
}

static int s3_set_retention(st_objstore_t *s, const char *key, int64_t until,
                            st_error_t *err) {
  s3_store_t *s3 = (s3_store_t *)s;
  st_buf_t doc = ST_BUF_INIT;
  char when[21];
  int rc;
  if (!worm_on(s3))
    return st_fail(err, ST_EUNSUPPORTED, "objstore s3: %s: retention needs s3_worm_mode", key);
  st__objstore_rfc3339(until, when);
  if (st_buf_addf(&doc,
                  "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>%s</Mode>"
                  "<RetainUntilDate>%s</RetainUntilDate></Retention>",
                  s3->worm_mode, when))
    rc = st_fail(err, ST_ENOMEM, "objstore s3: out of memory");
  else
    rc = put_subresource(s3, key, "retention", doc.data, err);
  st_buf_release(&doc);
  return rc;
}

static int s3_set_legal_hold(st_objstore_t *s, const char *key, int on, st_error_t *err) {
  s3_store_t *s3 = (s3_store_t *)s;
  if (!worm_on(s3))
    return st_fail(err, ST_EUNSUPPORTED, "objstore s3: %s: legal hold needs s3_worm_mode", key);
  return put_subresource(s3, key,
                         "legal-hold",
                         on ? "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                              "<Status>ON</Status></LegalHold>"
                            : "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                              "<Status>OFF</Status></LegalHold>",
                         err);
}

static int apply_lock(s3_store_t *s3, const char *key, const st_objstore_lock_t *lock,
                      const st_objstore_stat_t *st, st_error_t *err) {
  int rc = 0;
  if (lock && lock->retain_until > st->retain_until)
    rc = s3_set_retention(&s3->base, key, lock->retain_until, err);
  if (!rc && lock && lock->legal_hold && !st->legal_hold)
    rc = s3_set_legal_hold(&s3->base, key, 1, err);
  return rc;
}

/* 1: key exists with digest (lock applied); 0: absent; ST_EEXIST: other bytes. */
static int s3_existing(s3_store_t *s3, const char *key, const char *digest,
                       const st_objstore_lock_t *lock, st_error_t *err) {
  st_objstore_stat_t st;
  st_error_t e2 = ST_ERROR_INIT;
  int rc = head(s3, key, &st, NULL, &e2);
  if (rc == ST_ENOENT)
    return 0;
  if (rc)
    return st_fail(err, rc, "%s", e2.msg);
  if (!st__objstore_digest_eq(st.sha256, digest))
    return st_fail(err, ST_EEXIST, "objstore: %s: exists with another digest", key);
  rc = apply_lock(s3, key, lock, &st, err);
  return rc ? rc : 1;
}

static int s3_put(st_objstore_t *s, const char *key, const char *digest, uint64_t size,
                  st_objstore_read_fn read_fn, void *ctx, int replayable,
                  const st_objstore_lock_t *lock, st_error_t *err) {
  s3_store_t *s3 = (s3_store_t *)s;
  static const long conflict[] = {412, 0};
  unsigned char raw[32], b64[48];
  char until[21], probe;
  s3_req_t r;
  int rc;

  req_init(&r, "PUT", key);
  if (lock && (lock->retain_until || lock->legal_hold) && !worm_on(s3)) {
    rc = st_fail(err, ST_EUNSUPPORTED, "objstore s3: %s: a lock needs s3_worm_mode", key);
    goto done;
  }
  if ((rc = s3_existing(s3, key, digest, lock, err)) != 0) {
    rc = rc > 0 ? 0 : rc;
    goto done;
  }
  if (size == 0 && (read_fn(ctx, &probe, 1) != 0 || strcmp(digest, EMPTY_SHA256) != 0)) {
    rc = st_fail(err, ST_EVERIFY, "objstore: %s: content does not match 0 bytes of %s", key,
                 digest);
    goto done;
  }
  for (int i = 0; i < 32; i++) {
    int hi = digest[2 * i] <= '9' ? digest[2 * i] - '0' : digest[2 * i] - 'a' + 10;
    int lo = digest[2 * i + 1] <= '9' ? digest[2 * i + 1] - '0' : digest[2 * i + 1] - 'a' + 10;
    raw[i] = (unsigned char)(hi << 4 | lo);
  }
  EVP_EncodeBlock(b64, raw, 32);
  if ((rc = st__os_hash_init(&r.hash))) {
    rc = st_fail(err, rc, "objstore s3: out of memory");
    goto done;
  }
  r.payload_hash = digest;
  r.expect = digest;
  r.read_fn = read_fn;
  r.read_ctx = ctx;
  r.size = size;
  r.replayable = replayable;
  req_header(&r, "if-none-match", "*");
  req_header(&r, "x-amz-checksum-sha256", (const char *)b64);
  req_header(&r, "x-amz-meta-sha256", digest);
  if (lock && lock->retain_until) {
    st__objstore_rfc3339(lock->retain_until, until);
    req_header(&r, "x-amz-object-lock-mode", s3->worm_mode);
    req_header(&r, "x-amz-object-lock-retain-until-date", until);
  }
  if (lock && lock->legal_hold)
    req_header(&r, "x-amz-object-lock-legal-hold", "ON");
  if ((rc = perform(s3, &r, conflict, err)))
    goto done;
  if (r.status == 412) { /* another writer published first: same bytes or not */
    rc = s3_existing(s3, key, digest, lock, err);
    rc = rc > 0 ? 0 : rc == 0 ? st_fail(err, ST_ECONFLICT, "objstore: %s: changed", key) : rc;
  }
done:
  req_release(&r);
  return rc;
}

static int s3_get(st_objstore_t *s, const char *key, uint64_t offset, uint64_t length,
                  st_objstore_write_fn write_fn, void *ctx, st_error_t *err) {
  s3_store_t *s3 = (s3_store_t *)s;
  static const long range_fail[] = {416, 0};
  char range[64];
  s3_req_t r;
  int rc;

  req_init(&r, "GET", key);
  r.write_fn = write_fn;
  r.write_ctx = ctx;
  if (length == 0) { /* nothing to fetch: still answer for a missing object or bad offset */
    st_objstore_stat_t st;
    rc = head(s3, key, &st, NULL, err);
    if (!rc && offset > st.size)
      rc = st_fail(err, ST_ERANGE, "objstore s3: %s: range starts past the end", key);
    goto done;
  }
  if (offset || length != ST_OBJSTORE_TO_END) {
    if (length != ST_OBJSTORE_TO_END && length - 1 <= UINT64_MAX - offset)
      snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
               (unsigned long long)(offset + length - 1));
    else
      snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
    req_header(&r, "range", range);
  }
  if ((rc = perform(s3, &r, range_fail, err)))
    goto done;
  if (r.status == 416) { /* S3 answers 416 for a range starting at the end too */
    st_objstore_stat_t st;
    if (!(rc = head(s3, key, &st, NULL, err)) && offset != st.size)
      rc = st_fail(err, ST_ERANGE, "objstore s3: %s: range starts past the end", key);
  }
done:
  req_release(&r);
  return rc;
}

static int s3_del(st_objstore_t *s, const char *key, st_error_t *err) {
  s3_store_t *s3 = (s3_store_t *)s;
  st_buf_t version = ST_BUF_INIT;
  st_objstore_stat_t st;
  const char *q[2] = {"versionId", NULL};
  s3_req_t r;
  int rc;

  req_init(&r, "DELETE", key);
  if ((rc = head(s3, key, &st, &version, err)))
    goto done;
  if (st.legal_hold || st.retain_until > st__objstore_now(s)) {
    rc = st_fail(err, ST_EPERM, "objstore: %s: retained or under legal hold", key);
    goto done;
  }
  if (worm_on(s3) && version.len) { /* without it S3 only adds a delete marker */
    q[1] = version.data;
    r.query = q;
    r.nquery = 1;
  }
  rc = perform(s3, &r, NULL, err);
done:
  req_release(&r);
  st_buf_release(&version);
  return rc;
}

/* Decode the XML text between a and b (the five entities and &#N; / &#xN;) into out. */
static int xml_text(st_buf_t *out, const char *a, const char *b) {
  static const struct {
    const char *ent;
    char c;
  } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  st_buf_reset(out);
  while (a < b) {
    size_t i;
    if (*a != '&') {
      if (st_buf_addc(out, *a++))
        return ST_ETOOBIG;
      continue;
    }
    for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
      size_t n = strlen(ents[i].ent);
      if ((size_t)(b - a) >= n && memcmp(a, ents[i].ent, n) == 0) {
        if (st_buf_addc(out, ents[i].c))
          return ST_ETOOBIG;
        a += n;
        break;
      }
    }
    if (i == sizeof(ents) / sizeof(ents[0]))
      return ST_EPARSE; /* numeric references never occur in our key charset */
  }
  return 0;
}

static int s3_list(st_objstore_t *s, const char *prefix, const char *start_after, size_t max,
                   st_objstore_page_t *page, st_error_t *err) {
  s3_store_t *s3 = (s3_store_t *)s;
  st_objstore_page_t tmp = ST_OBJSTORE_PAGE_INIT;
  st_buf_t key = ST_BUF_INIT;
  char maxs[16];
  const char *q[8] = {"list-type", "2", "prefix", prefix, "max-keys", maxs, "start-after",
                      start_after};
  const char *p, *trunc;
  s3_req_t r;
  int rc;

  snprintf(maxs, sizeof(maxs), "%zu", max);
  req_init(&r, "GET", NULL);
  st_buf_init(&r.body, LISTBODY_MAX);
  st_buf_init(&key, ST_OBJSTORE_KEY_MAX);
  r.query = q;
  r.nquery = start_after ? 4 : 3;
  if ((rc = perform(s3, &r, NULL, err)))
    goto done;
  for (p = r.body.data; (p = strstr(p, "<Contents>"));) {
    const char *end = strstr(p, "</Contents>"), *k, *ke;
    if (!end || !(k = strstr(p, "<Key>")) || k > end || !(ke = strstr(k, "</Key>")) ||
        ke > end) {
      rc = st_fail(err, ST_EPARSE, "objstore s3: list %s: malformed <Contents>", prefix);
      goto done;
    }
    if ((rc = xml_text(&key, k + 5, ke))) {
      rc = st_fail(err, rc, "objstore s3: list %s: bad <Key>", prefix);
      goto done;
    }
    /* Only what was asked for, whatever the server says. */
    if (strncmp(key.data, prefix, strlen(prefix)) == 0 &&
        (!start_after || strcmp(key.data, start_after) > 0) &&
        (rc = st__objstore_page_offer(&tmp, max, key.data, key.len))) {
      rc = st_fail(err, rc, "objstore s3: list: out of memory");
      goto done;
    }
    p = end + 11;
  }
  trunc = strstr(r.body.data, "<IsTruncated>");
  if (trunc && strncmp(trunc + 13, "true", 4) == 0)
    tmp.truncated = 1;
  *page = tmp;
  tmp = (st_objstore_page_t)ST_OBJSTORE_PAGE_INIT;
done:
  st_objstore_page_release(&tmp);
  st_buf_release(&key);
  req_release(&r);
  return rc;
}

static void s3_free(st_objstore_t *s) {
  s3_store_t *s3 = (s3_store_t *)s;
  if (s3->secret_key)
    st_memzero(s3->secret_key, strlen(s3->secret_key));
  st_free(s3->endpoint);
  st_free(s3->host);
  st_free(s3->region);
  st_free(s3->bucket);
  st_free(s3->access_key);
  st_free(s3->secret_key);
  st_free(s3->worm_mode);
  st_free(s3->ca_file);
  st_free(s3);
}

static const st__objstore_vt_t s3_vt = {
    "s3",    s3_put,  s3_get, s3_stat, s3_del, s3_set_retention, s3_set_legal_hold,
    s3_list, NULL,    s3_free,
};

int st_objstore_s3_new(st_objstore_t **out, const st_objstore_s3_opts_t *o, st_error_t *err) {
  s3_store_t *s3;
  const char *h, *slash;
  size_t elen;

  *out = NULL;
  if (!o->endpoint || !o->bucket || !*o->bucket || !o->access_key || !o->secret_key)
    return st_fail(err, ST_ECONFIG, "s3: endpoint, bucket, access key and secret key are required");
  if (strncmp(o->endpoint, "http://", 7) && strncmp(o->endpoint, "https://", 8))
    return st_fail(err, ST_ECONFIG, "s3_endpoint: expected http(s)://host[:port], got \"%s\"",
                   o->endpoint);
  if (o->worm_mode && *o->worm_mode && strcmp(o->worm_mode, "off") &&
      strcmp(o->worm_mode, "GOVERNANCE") && strcmp(o->worm_mode, "COMPLIANCE"))
    return st_fail(err, ST_ECONFIG, "s3_worm_mode: expected off, GOVERNANCE or COMPLIANCE");
  h = strstr(o->endpoint, "://") + 3;
  slash = strchr(h, '/');
  if (!*h || *h == '/' || (slash && slash[strspn(slash, "/")] != '\0'))
    return st_fail(err, ST_ECONFIG, "s3_endpoint: \"%s\": expected no path (requests are "
                   "path-style under the bucket)", o->endpoint);
  pthread_once(&curl_once, curl_init_once);
  if (!(s3 = st_calloc(1, sizeof(*s3))))
    return st_fail(err, ST_ENOMEM, "objstore s3: out of memory");
  s3->base.vt = &s3_vt;
  elen = strlen(o->endpoint);
  while (elen && o->endpoint[elen - 1] == '/')
    elen--;
  s3->endpoint = st_strndup(o->endpoint, elen);
  s3->host = slash ? st_strndup(h, (size_t)(slash - h)) : st_strdup(h);
  s3->region = st_strdup(o->region && *o->region ? o->region : "us-east-1");
  s3->bucket = st_strdup(o->bucket);
  s3->access_key = st_strdup(o->access_key);
  s3->secret_key = st_strdup(o->secret_key);
  if (o->worm_mode && *o->worm_mode && strcmp(o->worm_mode, "off"))
    s3->worm_mode = st_strdup(o->worm_mode);
  if (o->ca_file && *o->ca_file)
    s3->ca_file = st_strdup(o->ca_file);
  s3->max_attempts = o->max_attempts > 0 ? o->max_attempts : 4;
  s3->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
  if (!s3->endpoint || !s3->host || !s3->region || !s3->bucket || !s3->access_key ||
      !s3->secret_key || (o->worm_mode && *o->worm_mode && strcmp(o->worm_mode, "off") &&
                          !s3->worm_mode) ||
      (o->ca_file && *o->ca_file && !s3->ca_file)) {
    s3_free(&s3->base);
    return st_fail(err, ST_ENOMEM, "objstore s3: out of memory");
  }
  *out = &s3->base;
  return 0;
}
