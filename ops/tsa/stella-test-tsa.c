/* stella-test-tsa: a small RFC 3161 Time-Stamp Authority over HTTP, for tests and demos.
 *
 *   stella-test-tsa --port N --cert tsa.pem --key tsa.key [--chain ca.pem] [--policy OID]
 *
 * Listens on 127.0.0.1 only. POST a DER TimeStampReq with Content-Type
 * application/timestamp-query to any path; the answer is a TimeStampResp made by OpenSSL's
 * TS_RESP_CTX (application/timestamp-reply). Bad input gets an HTTP error, not a token:
 * 405 for another method, 415 for another content type, 413 past REQ_MAX bytes, 400 when
 * the body is not exactly one DER TimeStampReq. A well-formed request OpenSSL will not
 * grant (say a SHA-1 imprint) gets a 200 with a "rejection" TimeStampResp, as RFC 3161 says.
 *
 * The signer certificate must carry the critical timeStamping EKU alone (OpenSSL refuses
 * otherwise). Accepted imprints: SHA-256/384/512. Serial numbers count up from the start
 * time in milliseconds, so restarts do not repeat them. certReq is honoured (signer and
 * --chain certificates go into the token when asked). ESS signing-certificate-v2 uses
 * SHA-256. One MHD polling thread serves everything, so the TS_RESP_CTX is never shared
 * between threads. SIGINT/SIGTERM stop it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ts.h>

#include "stella/buf.h"
#include "stella/log.h"
#include "stella/mem.h"

#define REQ_MAX 16384 /* a TimeStampReq with a SHA-512 imprint and extensions fits easily */
#define QUERY_TYPE "application/timestamp-query"

typedef struct tsa_s {
  TS_RESP_CTX *ctx;
  unsigned long long serial;
  unsigned long served;
} tsa_t;

typedef struct conn_s {
  st_buf_t body;
  int too_big;
} conn_t;

static ASN1_INTEGER *next_serial(TS_RESP_CTX *ctx, void *data) {
  tsa_t *t = data;
  ASN1_INTEGER *s = ASN1_INTEGER_new();
  if (!s || !ASN1_INTEGER_set_uint64(s, ++t->serial)) {
    ASN1_INTEGER_free(s);
    TS_RESP_CTX_set_status_info(ctx, TS_STATUS_REJECTION, "serial number unavailable");
    TS_RESP_CTX_add_failure_info(ctx, TS_INFO_ADD_INFO_NOT_AVAILABLE);
    return NULL;
  }
  return s;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type,
                             const void *body, size_t len) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result ok;
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  ok = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned code, const char *msg) {
  st_logkv(ST_LOG_INFO, "tsa request refused", "status",
           code == 400 ? "400" : code == 405 ? "405" : code == 413 ? "413" : "415", "why",
           msg, NULL);
  return reply(c, code, "text/plain", msg, strlen(msg));
}

/* Answer a complete body: 400 unless it is exactly one DER TimeStampReq, else the TSA's
 * TimeStampResp (granted or, for requests OpenSSL refuses, a rejection). */
static enum MHD_Result stamp(tsa_t *t, struct MHD_Connection *c, const st_buf_t *body) {
  const unsigned char *p = (const unsigned char *)body->data;
  TS_REQ *req = d2i_TS_REQ(NULL, &p, (long)body->len);
  TS_RESP *resp = NULL;
  BIO *in = NULL;
  unsigned char *der = NULL;
  enum MHD_Result ok;
  int n = 0;

  if (!req || p != (const unsigned char *)body->data + body->len) {
    ok = text(c, MHD_HTTP_BAD_REQUEST, "body is not a DER TimeStampReq\n");
    goto done;
  }
  if (!(in = BIO_new_mem_buf(body->data, (int)body->len)) ||
      !(resp = TS_RESP_create_response(t->ctx, in)) || (n = i2d_TS_RESP(resp, &der)) <= 0) {
    ok = reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "tsa failure\n", 12);
    goto done;
  }
  t->served++;
  st_logkv(ST_LOG_INFO, "tsa request answered", "status",
           ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp))) <= 1
               ? "granted"
               : "refused",
           NULL);
  ok = reply(c, MHD_HTTP_OK, "application/timestamp-reply", der, (size_t)n);
done:
  OPENSSL_free(der);
  BIO_free(in);
  TS_RESP_free(resp);
  TS_REQ_free(req);
  ERR_clear_error();
  return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
  conn_t *k = *con_cls;
  const char *ct;

  if (!k) {
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
      return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "POST a TimeStampReq\n");
    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, QUERY_TYPE, strlen(QUERY_TYPE)) != 0 ||
        (ct[strlen(QUERY_TYPE)] != '\0' && ct[strlen(QUERY_TYPE)] != ';'))
      return text(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Content-Type must be " QUERY_TYPE "\n");
    if (!(k = st_calloc(1, sizeof(*k))))
      return MHD_NO;
    st_buf_init(&k->body, REQ_MAX);
    *con_cls = k;
    return MHD_YES;
  }
  if (*upload_size) {
    if (!k->too_big && st_buf_add(&k->body, upload, *upload_size))
      k->too_big = 1;
    *upload_size = 0;
    return MHD_YES;
  }
  if (k->too_big)
    return text(c, MHD_HTTP_CONTENT_TOO_LARGE, "request larger than 16384 bytes\n");
  return stamp(cls, c, &k->body);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode why) {
  conn_t *k = *con_cls;
  if (k) {
    st_buf_release(&k->body);
    st_free(k);
    *con_cls = NULL;
  }
}

static int load(tsa_t *t, const char *cert, const char *key, const char *chain,
                const char *policy) {
  BIO *bio = NULL;
  X509 *signer = NULL, *x = NULL;
  EVP_PKEY *pkey = NULL;
  STACK_OF(X509) *certs = NULL;
  ASN1_OBJECT *pol = NULL;
  int ok = 0;

  if (!(bio = BIO_new_file(cert, "r")) || !(signer = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
    fprintf(stderr, "stella-test-tsa: cannot read certificate %s\n", cert);
    goto done;
  }
  BIO_free(bio);
  if (!(bio = BIO_new_file(key, "r")) ||
      !(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
    fprintf(stderr, "stella-test-tsa: cannot read key %s\n", key);
    goto done;
  }
  BIO_free(bio);
  bio = NULL;
  if (!(certs = sk_X509_new_null()))
    goto done;
  if (chain) {
    if (!(bio = BIO_new_file(chain, "r"))) {
      fprintf(stderr, "stella-test-tsa: cannot read chain %s\n", chain);
      goto done;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) && sk_X509_num(certs) < 16) {
      if (!sk_X509_push(certs, x))
        goto done;
      x = NULL;
    }
  }
  if (!(pol = OBJ_txt2obj(policy, 1))) {
    fprintf(stderr, "stella-test-tsa: policy '%s' is not an OID\n", policy);
    goto done;
  }
  if (!(t->ctx = TS_RESP_CTX_new()) || !TS_RESP_CTX_set_signer_cert(t->ctx, signer)) {
    fprintf(stderr, "stella-test-tsa: %s is not a timestamping certificate (needs the "
                    "critical extendedKeyUsage timeStamping, alone)\n", cert);
    goto done;
  }
  if (!TS_RESP_CTX_set_signer_key(t->ctx, pkey) || !TS_RESP_CTX_set_certs(t->ctx, certs) ||
      !TS_RESP_CTX_set_def_policy(t->ctx, pol) ||
      !TS_RESP_CTX_set_signer_digest(t->ctx, EVP_sha256()) ||
      !TS_RESP_CTX_set_ess_cert_id_digest(t->ctx, EVP_sha256()) ||
      !TS_RESP_CTX_add_md(t->ctx, EVP_sha256()) || !TS_RESP_CTX_add_md(t->ctx, EVP_sha384()) ||
      !TS_RESP_CTX_add_md(t->ctx, EVP_sha512()) || !TS_RESP_CTX_set_accuracy(t->ctx, 1, 0, 0)) {
    fprintf(stderr, "stella-test-tsa: cannot configure the TSA (key matches certificate?)\n");
    goto done;
  }
  TS_RESP_CTX_add_flags(t->ctx, TS_TSA_NAME);
  TS_RESP_CTX_set_serial_cb(t->ctx, next_serial, t);
  ok = 1;
done:
  ASN1_OBJECT_free(pol);
  sk_X509_pop_free(certs, X509_free);
  X509_free(x);
  EVP_PKEY_free(pkey);
  X509_free(signer);
  BIO_free(bio);
  return ok;
}

static int usage(void) {
  fprintf(stderr, "usage: stella-test-tsa --port N --cert tsa.pem --key tsa.key "
                  "[--chain ca.pem] [--policy OID]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *cert = NULL, *key = NULL, *chain = NULL, *policy = "1.2.3.4.1";
  long port = 0;
  tsa_t t = {0};
  struct MHD_Daemon *d = NULL;
  struct sockaddr_in sin;
  struct timeval now;
  sigset_t sigs;
  int sig, rc = 1;

  for (int i = 1; i < argc; i += 2) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (!v)
      return usage();
    if (strcmp(argv[i], "--port") == 0) {
      errno = 0;
      port = strtol(v, &end, 10);
      if (errno || *end || port < 1 || port > 65535)
        return usage();
    } else if (strcmp(argv[i], "--cert") == 0) {
      cert = v;
    } else if (strcmp(argv[i], "--key") == 0) {
      key = v;
    } else if (strcmp(argv[i], "--chain") == 0) {
      chain = v;
    } else if (strcmp(argv[i], "--policy") == 0) {
      policy = v;
    } else {
      return usage();
    }
  }
  if (!port || !cert || !key)
    return usage();
  if (!load(&t, cert, key, chain, policy))
    goto done;
  gettimeofday(&now, NULL);
  t.serial = (unsigned long long)now.tv_sec * 1000ULL + (unsigned long long)now.tv_usec / 1000;

  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* the MHD thread inherits the mask */

  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                       NULL, NULL, on_request, &t, MHD_OPTION_SOCK_ADDR, &sin,
                       MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                       MHD_OPTION_CONNECTION_TIMEOUT, 10U,
                       MHD_OPTION_CONNECTION_LIMIT, 64U, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "stella-test-tsa: cannot listen on 127.0.0.1:%ld\n", port);
    goto done;
  }
  st_logkv(ST_LOG_INFO, "tsa listening", "addr", "127.0.0.1", "cert", cert, NULL);
  while (sigwait(&sigs, &sig) != 0)
    ;
  rc = 0;
done:
  if (d)
    MHD_stop_daemon(d);
  TS_RESP_CTX_free(t.ctx);
  return rc;
}
