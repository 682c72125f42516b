/* cmd_export_run.c: the Export Center through the API (what users run):
 *
 *   export run PROFILE --tenant T [--wait] [--idempotency-key K]
 *   export download RUN --tenant T -o FILE
 *   export verify FILE [--key PUB.pem ...] [--tsa-ca CA.pem] [--json]   (offline)
 *
 * The API is $STELLA_API_URL (default http://<api_listen>) with the bearer token in
 * $STELLA_TOKEN; --tenant must be the token's tenant (checked with /whoami first, so a
 * wrong token is a clear error rather than a 404). `run --wait` follows the run's SSE
 * stream, reconnecting with Last-Event-ID when the connection drops, and draws a
 * progress bar on a terminal (plain lines otherwise); exit 0 when the run is
 * distributed, 1 when it failed or was cancelled. `download` writes FILE.part, checks its
 * SHA-256 against the ETag, then renames it. `verify` is `stella verify` that also
 * requires kind export (whose metadata rules the bundle library applies). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "stella/config.h"
#include "stella/json.h"
#include "stella/mem.h"
#include "stella/sha256.h"

#define SSE_LINE_MAX ((size_t)1 << 20)

typedef struct api_s {
  char *base;
  char *token;
} api_t;

typedef struct resp_s {
  long status;
  st_buf_t body;
  char etag[80];
} resp_t;

static void api_release(api_t *a) {
  st_free(a->base);
  st_free(a->token);
}

static int api_open(api_t *a, const char *tenant) {
  const char *url = getenv("STELLA_API_URL"), *tok = getenv("STELLA_TOKEN");
  st_config_t *cfg = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t b = ST_BUF_INIT;

  memset(a, 0, sizeof(*a));
  if (!tok || !*tok)
    return st_cli_usage("export: set STELLA_TOKEN (e.g. stella token mint --tenant %s "
                        "--scope \"export:viewer export:operator\")", tenant ? tenant : "T");
  if (!url) {
    if (st_config_load(&cfg, NULL, &err))
      return st_cli_usage("%s", st_error_text(&err));
    if (st_buf_addf(&b, "http://%s", st_config_str(cfg, "api_listen"))) {
      st_config_free(cfg);
      return st_cli_usage("out of memory");
    }
    st_config_free(cfg);
    url = b.data;
  }
  a->base = st_strdup(url);
  a->token = st_strdup(tok);
  st_buf_release(&b);
  return a->base && a->token ? 0 : st_cli_usage("out of memory");
}

static size_t on_body(char *p, size_t s, size_t n, void *ud) {
  return st_buf_add(&((resp_t *)ud)->body, p, s * n) ? 0 : s * n;
}

static size_t on_header(char *p, size_t s, size_t n, void *ud) {
  resp_t *r = ud;
  size_t len = s * n;
  if (len > 6 && !strncasecmp(p, "ETag:", 5)) {
    const char *v = p + 5;
    while (*v == ' ')
      v++;
    snprintf(r->etag, sizeof(r->etag), "%.*s", (int)strcspn(v, "\r\n"), v);
  }
  return len;
}

/* One request; a non-NULL sink gets the body instead of r->body. */
static int request(const api_t *a, const char *method, const char *path, const char *body,
                   const char *idem, FILE *sink, resp_t *r) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  st_buf_t url = ST_BUF_INIT, auth = ST_BUF_INIT, ik = ST_BUF_INIT;
  CURLcode cc = CURLE_OUT_OF_MEMORY;

  memset(r, 0, sizeof(*r));
  st_buf_init(&r->body, (size_t)64 << 20);
  if (c && !st_buf_addf(&url, "%s%s", a->base, path) &&
      !st_buf_addf(&auth, "Authorization: Bearer %s", a->token) &&
      (h = curl_slist_append(h, auth.data)) &&
      (!body || (h = curl_slist_append(h, "Content-Type: application/json"))) &&
      (!idem || (!st_buf_addf(&ik, "Idempotency-Key: %s", idem) &&
                 (h = curl_slist_append(h, ik.data))))) {
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body)
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else if (!strcmp(method, "POST"))
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    if (sink) {
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    } else {
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  }
  curl_slist_free_all(h);
  if (c)
    curl_easy_cleanup(c);
  st_buf_release(&url);
  st_buf_release(&auth);
  st_buf_release(&ik);
  if (cc != CURLE_OK)
    return st_cli_usage("export: %s %s: %s", method, path, curl_easy_strerror(cc));
  return 0;
}

/* Exit code for a non-2xx answer, printing the problem's detail. */
static int problem(const char *what, const resp_t *r) {
  json_t *j = NULL;
  const char *detail = NULL;
  if (r->body.len && !st_json_parse(r->body.data, r->body.len, NULL, &j, NULL))
    detail = json_string_value(json_object_get(j, "detail"));
  fprintf(stderr, "stella: %s: HTTP %ld%s%s\n", what, r->status, detail ? ": " : "",
          detail ? detail : "");
  json_decref(j);
  return r->status >= 500 || r->status == 401 ? ST_EXIT_USAGE : ST_EXIT_FAIL;
}

static int check_tenant(const api_t *a, const char *tenant) {
  resp_t r;
  json_t *j = NULL;
  int rc = request(a, "GET", "/whoami", NULL, NULL, NULL, &r);
  const char *t;
  if (!rc && r.status != 200)
    rc = problem("whoami", &r);
  if (!rc && (st_json_parse(r.body.data, r.body.len, NULL, &j, NULL) ||
              !(t = json_string_value(json_object_get(j, "tenant"))) || strcmp(t, tenant)))
    rc = st_cli_usage("export: STELLA_TOKEN is not a token of tenant %s", tenant);
  json_decref(j);
  st_buf_release(&r.body);
  return rc;
}

/* ---- run --wait: the SSE stream ---- */

typedef struct follow_s {
  st_buf_t line, data, event;
  char id[32];
  int tty, done;
  char state[32];
} follow_t;

static void show(follow_t *f, json_t *d) {
  const char *state = json_string_value(json_object_get(d, "state"));
  double p = json_number_value(json_object_get(d, "progress"));
  int is_state = !strcmp(f->event.data, "state");
  if (state)
    snprintf(f->state, sizeof(f->state), "%s", state);
  if (f->tty) {
    int w = (int)(p * 30 + 0.5);
    fprintf(stderr, "\r[%.*s%.*s] %3d%% %-12s", w, "##############################", 30 - w,
            "..............................", (int)(p * 100 + 0.5), f->state);
    if (is_state && (!strcmp(f->state, "distributed") || !strcmp(f->state, "failed") ||
                     !strcmp(f->state, "cancelled")))
      fputc('\n', stderr);
  } else if (is_state) {
    const char *e = json_string_value(json_object_get(d, "error"));
    printf("state %s%s%s\n", f->state, e ? ": " : "", e ? e : "");
  } else {
    printf("progress %d%%\n", (int)(p * 100 + 0.5));
  }
  fflush(stdout);
  if (is_state && (!strcmp(f->state, "distributed") || !strcmp(f->state, "failed") ||
                   !strcmp(f->state, "cancelled")))
    f->done = 1;
}

static void dispatch(follow_t *f) {
  json_t *d = NULL;
  if (f->data.len && !st_json_parse(f->data.data, f->data.len, NULL, &d, NULL))
    show(f, d);
  json_decref(d);
  st_buf_reset(&f->data);
  st_buf_reset(&f->event);
}

static size_t on_sse(char *p, size_t s, size_t n, void *ud) {
  follow_t *f = ud;
  size_t len = s * n;
  for (size_t i = 0; i < len; i++) {
    if (p[i] != '\n') {
      if (st_buf_addc(&f->line, p[i]))
        return 0;
      continue;
    }
    if (!f->line.len)
      dispatch(f);
    else if (!strncmp(f->line.data, "id:", 3))
      snprintf(f->id, sizeof(f->id), "%s", f->line.data + 3 + (f->line.data[3] == ' '));
    else if ((!strncmp(f->line.data, "event:", 6) &&
              st_buf_adds(&f->event, f->line.data + 6 + (f->line.data[6] == ' '))) ||
             (!strncmp(f->line.data, "data:", 5) &&
              st_buf_adds(&f->data, f->line.data + 5 + (f->line.data[5] == ' '))))
      return 0; /* over the line cap: abort this connection */
    st_buf_reset(&f->line);
  }
  return len;
}

static int follow(const api_t *a, const char *run_id) {
  follow_t f;
  int tries = 0;
  memset(&f, 0, sizeof(f));
  st_buf_init(&f.line, SSE_LINE_MAX);
  st_buf_init(&f.data, SSE_LINE_MAX);
  st_buf_init(&f.event, 64);
  f.tty = isatty(2);
  while (!f.done && tries < 10) {
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    st_buf_t url = ST_BUF_INIT, auth = ST_BUF_INIT, last = ST_BUF_INIT;
    long status = 0;
    if (!c || st_buf_addf(&url, "%s/exports/runs/%s/events", a->base, run_id) ||
        st_buf_addf(&auth, "Authorization: Bearer %s", a->token) ||
        !(h = curl_slist_append(h, auth.data)) ||
        (f.id[0] && (st_buf_addf(&last, "Last-Event-ID: %s", f.id) ||
                     !(h = curl_slist_append(h, last.data))))) {
      tries = 10;
    } else {
      curl_easy_setopt(c, CURLOPT_URL, url.data);
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_sse);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
      curl_easy_perform(c);
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
      if (status != 200)
        tries = 10;
    }
    curl_slist_free_all(h);
    if (c)
      curl_easy_cleanup(c);
    st_buf_release(&url);
    st_buf_release(&auth);
    st_buf_release(&last);
    if (!f.done && ++tries < 10)
      sleep(1);
  }
  st_buf_release(&f.line);
  st_buf_release(&f.data);
  st_buf_release(&f.event);
  if (!f.done)
    return st_cli_usage("export: lost the event stream of run %s", run_id);
  return strcmp(f.state, "distributed") ? ST_EXIT_FAIL : ST_EXIT_OK;
}

static int run(int argc, char **argv) {
  const char *profile = NULL, *tenant = NULL, *idem = NULL, *run_id;
  int wait = 0, rc;
  api_t a;
  resp_t r;
  json_t *body = NULL, *j = NULL;
  char *text = NULL;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
      tenant = argv[++i];
    else if (!strcmp(argv[i], "--idempotency-key") && i + 1 < argc)
      idem = argv[++i];
    else if (!strcmp(argv[i], "--wait"))
      wait = 1;
    else if (argv[i][0] != '-' && !profile)
      profile = argv[i];
    else
      return st_cli_usage("usage: stella export run PROFILE --tenant T [--wait] "
                          "[--idempotency-key K]");
  }
  if (!profile || !tenant)
    return st_cli_usage("export run: PROFILE and --tenant are required");
  if ((rc = api_open(&a, tenant)))
    return rc;
  memset(&r, 0, sizeof(r));
  if ((rc = check_tenant(&a, tenant)))
    goto done;
  if (!(body = json_pack("{s:s}", "profile", profile)) ||
      !(text = json_dumps(body, JSON_COMPACT))) {
    rc = st_cli_usage("out of memory");
    goto done;
  }
  if ((rc = request(&a, "POST", "/exports/runs", text, idem, NULL, &r)))
    goto done;
  if (r.status != 202 && r.status != 200) {
    rc = problem("export run", &r);
    goto done;
  }
  if (st_json_parse(r.body.data, r.body.len, NULL, &j, NULL) ||
      !(run_id = json_string_value(json_object_get(j, "run_id")))) {
    rc = st_cli_usage("export run: unexpected answer");
    goto done;
  }
  printf("run %s\n", run_id);
  fflush(stdout);
  rc = wait ? follow(&a, run_id) : ST_EXIT_OK;
done:
  free(text);
  json_decref(body);
  json_decref(j);
  st_buf_release(&r.body);
  api_release(&a);
  return rc;
}

static int download(int argc, char **argv) {
  const char *run_id = NULL, *tenant = NULL, *out = NULL;
  st_buf_t path = ST_BUF_INIT, part = ST_BUF_INIT;
  char dig[ST_SHA256_HEX_LEN + 1], etag[ST_SHA256_HEX_LEN + 3];
  uint8_t d[32];
  st_error_t err = ST_ERROR_INIT;
  FILE *f = NULL;
  api_t a;
  resp_t r;
  int rc;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tenant") && i + 1 < argc)
      tenant = argv[++i];
    else if (!strcmp(argv[i], "-o") && i + 1 < argc)
      out = argv[++i];
    else if (argv[i][0] != '-' && !run_id)
      run_id = argv[i];
    else
      return st_cli_usage("usage: stella export download RUN --tenant T -o FILE");
  }
  if (!run_id || !tenant || !out)
    return st_cli_usage("export download: RUN, --tenant and -o are required");
  if ((rc = api_open(&a, tenant)))
    return rc;
  memset(&r, 0, sizeof(r));
  if ((rc = check_tenant(&a, tenant)))
    goto done;
  if (st_buf_addf(&path, "/exports/runs/%s/download", run_id) ||
      st_buf_addf(&part, "%s.part", out)) {
    rc = st_cli_usage("out of memory");
    goto done;
  }
  if (!(f = fopen(part.data, "wb"))) {
    rc = st_cli_usage("export download: cannot write %s: %s", part.data, strerror(errno));
    goto done;
  }
  rc = request(&a, "GET", path.data, NULL, NULL, f, &r);
  if (fclose(f) && !rc)
    rc = st_cli_usage("export download: writing %s failed", part.data);
  f = NULL;
  if (rc)
    goto done;
  if (r.status != 200) {
    unlink(part.data);
    /* the body went to the file: say what the status means */
    fprintf(stderr, "stella: export download: HTTP %ld\n", r.status);
    rc = r.status >= 500 ? ST_EXIT_USAGE : ST_EXIT_FAIL;
    goto done;
  }
  if (st_sha256_file(part.data, d, NULL, &err)) {
    rc = st_cli_usage("export download: %s", st_error_text(&err));
    goto done;
  }
  st_sha256_hex(d, dig);
  snprintf(etag, sizeof(etag), "\"%s\"", dig);
  if (strcmp(etag, r.etag)) {
    unlink(part.data);
    fprintf(stderr, "stella: export download: SHA-256 %s does not match the ETag %s\n", dig,
            r.etag);
    rc = ST_EXIT_FAIL;
    goto done;
  }
  if (rename(part.data, out)) {
    rc = st_cli_usage("export download: cannot rename to %s: %s", out, strerror(errno));
    goto done;
  }
  printf("%s  %s\n", dig, out);
done:
  st_buf_release(&path);
  st_buf_release(&part);
  st_buf_release(&r.body);
  api_release(&a);
  return rc;
}

int st_cli_export_api(int argc, char **argv) {
  if (!strcmp(argv[0], "run"))
    return run(argc, argv);
  if (!strcmp(argv[0], "download"))
    return download(argc, argv);
  return st_cli_verify_kind(argc, argv, "export");
}
