/* jwt.c: compact JWS HS256/ES256 with Stella's claims. The token is split and bounded
 * first, the header's alg picked against the configured keys (never from the token
 * alone), then the signature checked, and only then the payload parsed. */
#include "stella/jwt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "stella/buf.h"
#include "stella/mem.h"

#define SCOPE_MAX 1024
#define SUB_MAX 256
#define PEM_MAX 65536

struct st_jwt_keys_s {
  unsigned char *secret;
  size_t secret_len;
  EVP_PKEY *es_pub;
  EVP_PKEY *es_priv;
};

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_encode(st_buf_t *b, const unsigned char *p, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i += 3) {
    unsigned v = (unsigned)p[i] << 16;
    size_t left = n - i;
    if (left > 1)
      v |= (unsigned)p[i + 1] << 8;
    if (left > 2)
      v |= p[i + 2];
    char q[4] = {b64url_alpha[(v >> 18) & 63], b64url_alpha[(v >> 12) & 63],
                 b64url_alpha[(v >> 6) & 63], b64url_alpha[v & 63]};
    rc = st_buf_add(b, q, left >= 3 ? 4 : left + 1);
  }
  return rc;
}

static int b64url_val(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

/* Strict unpadded base64url: rejects padding, other alphabets and non-zero spare bits. */
static int b64url_decode(const char *s, size_t n, unsigned char **out, size_t *out_len) {
  unsigned char *o;
  size_t k = 0;
  unsigned acc = 0;
  int bits = 0;

  if (n % 4 == 1)
    return ST_EPARSE;
  o = st_malloc(n * 3 / 4 + 1);
  if (!o)
    return ST_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int v = b64url_val(s[i]);
    if (v < 0) {
      st_free(o);
      return ST_EPARSE;
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[k++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc) {
    st_free(o);
    return ST_EPARSE;
  }
  *out = o;
  *out_len = k;
  return 0;
}

static EVP_PKEY *pem_load(const char *pem, int priv) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = NULL;
  char group[64];
  size_t glen = 0;

  if (!bio)
    return NULL;
  k = priv ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
           : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (k && (!EVP_PKEY_is_a(k, "EC") ||
            !EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), &glen) ||
            strcmp(group, "prime256v1") != 0)) {
    EVP_PKEY_free(k);
    k = NULL;
  }
  return k;
}

int st_jwt_keys_new(st_jwt_keys_t **out, const void *hs256_secret, size_t secret_len,
                    const char *es256_public_pem, const char *es256_private_pem,
                    st_error_t *err) {
  st_jwt_keys_t *k = NULL;
  int rc = 0;

  *out = NULL;
  if (!hs256_secret && !es256_public_pem && !es256_private_pem)
    return st_fail(err, ST_ECONFIG, "jwt: no key configured");
  if (hs256_secret && secret_len < ST_JWT_HS256_MIN_SECRET)
    return st_fail(err, ST_ECONFIG, "jwt_hs256_secret: shorter than %d bytes",
                   ST_JWT_HS256_MIN_SECRET);
  if (!(k = st_calloc(1, sizeof(*k))))
    return st_fail(err, ST_ENOMEM, "jwt: out of memory");
  if (hs256_secret) {
    if (!(k->secret = st_malloc(secret_len))) {
      rc = st_fail(err, ST_ENOMEM, "jwt: out of memory");
      goto done;
    }
    memcpy(k->secret, hs256_secret, secret_len);
    k->secret_len = secret_len;
  }
  if (es256_private_pem && !(k->es_priv = pem_load(es256_private_pem, 1))) {
    rc = st_fail(err, ST_ECONFIG, "jwt_es256_private_key: not a P-256 private key PEM");
    goto done;
  }
  if (es256_public_pem && !(k->es_pub = pem_load(es256_public_pem, 0))) {
    rc = st_fail(err, ST_ECONFIG, "jwt_es256_public_key: not a P-256 public key PEM");
    goto done;
  }
  if (!k->es_pub && k->es_priv) {
    EVP_PKEY_up_ref(k->es_priv);
    k->es_pub = k->es_priv;
  }
done:
  if (rc)
    st_jwt_keys_free(k);
  else
    *out = k;
  return rc;
}

static int read_pem(const char *key, const char *path, char **out, st_error_t *err) {
  FILE *f = fopen(path, "rb");
  st_buf_t b = ST_BUF_INIT;
  char chunk[4096];
  size_t n;
  int rc = 0;

  *out = NULL;
  if (!f)
    return st_fail(err, ST_ECONFIG, "%s: cannot open %s: %s", key, path, strerror(errno));
  st_buf_init(&b, PEM_MAX);
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    if ((rc = st_buf_add(&b, chunk, n))) {
      rc = st_fail(err, ST_ECONFIG, "%s: %s is larger than %d bytes", key, path, PEM_MAX);
      break;
    }
  if (!rc && ferror(f))
    rc = st_fail(err, ST_ECONFIG, "%s: cannot read %s", key, path);
  fclose(f);
  if (!rc)
    *out = st_buf_detach(&b, NULL);
  st_buf_release(&b);
  return rc;
}

int st_jwt_keys_from_config(st_jwt_keys_t **out, const st_config_t *cfg, st_error_t *err) {
  const char *secret = st_config_str(cfg, "jwt_hs256_secret");
  const char *pub_path = st_config_str(cfg, "jwt_es256_public_key");
  const char *priv_path = st_config_str(cfg, "jwt_es256_private_key");
  char *pub = NULL, *priv = NULL;
  int rc = 0;

  *out = NULL;
  if (secret && !*secret)
    secret = NULL;
  if (!secret && !pub_path && !priv_path) {
    rc = st_fail(err, ST_ECONFIG, "jwt_hs256_secret, jwt_es256_public_key: none is set");
    goto done;
  }
  if (pub_path && (rc = read_pem("jwt_es256_public_key", pub_path, &pub, err)))
    goto done;
  if (priv_path && (rc = read_pem("jwt_es256_private_key", priv_path, &priv, err)))
    goto done;
  rc = st_jwt_keys_new(out, secret, secret ? strlen(secret) : 0, pub, priv, err);
done:
  if (priv)
    st_memzero(priv, strlen(priv));
  st_free(priv);
  st_free(pub);
  return rc;
}

void st_jwt_keys_free(st_jwt_keys_t *keys) {
  if (!keys)
    return;
  if (keys->secret) {
    st_memzero(keys->secret, keys->secret_len);
    st_free(keys->secret);
  }
  EVP_PKEY_free(keys->es_pub);
  EVP_PKEY_free(keys->es_priv);
  st_free(keys);
}

int st_jwt_keys_can_verify(const st_jwt_keys_t *keys, st_jwt_alg alg) {
  return alg == ST_JWT_HS256 ? keys->secret != NULL
                             : alg == ST_JWT_ES256 && keys->es_pub != NULL;
}

int st_jwt_keys_can_sign(const st_jwt_keys_t *keys, st_jwt_alg alg) {
  return alg == ST_JWT_HS256 ? keys->secret != NULL
                             : alg == ST_JWT_ES256 && keys->es_priv != NULL;
}

static int hmac256(const st_jwt_keys_t *k, const char *in, size_t n, unsigned char out[32]) {
  size_t olen = 0;
  if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k->secret, k->secret_len,
                 (const unsigned char *)in, n, out, 32, &olen) ||
      olen != 32)
    return ST_ECRYPTO;
  return 0;
}

/* ECDSA over SHA-256, DER from OpenSSL converted to JOSE r||s. */
static int es256_sign(EVP_PKEY *key, const char *in, size_t n, unsigned char out[64]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char der[80];
  const unsigned char *p = der;
  size_t dlen = sizeof(der);
  ECDSA_SIG *sig = NULL;
  const BIGNUM *r, *s;
  int rc = ST_ECRYPTO;

  if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
      EVP_DigestSign(md, der, &dlen, (const unsigned char *)in, n) != 1)
    goto done;
  if (!(sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen)))
    goto done;
  ECDSA_SIG_get0(sig, &r, &s);
  if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32)
    goto done;
  rc = 0;
done:
  ECDSA_SIG_free(sig);
  EVP_MD_CTX_free(md);
  return rc;
}

static int es256_verify(EVP_PKEY *key, const char *in, size_t n, const unsigned char *raw,
                        size_t raw_len) {
  EVP_MD_CTX *md = NULL;
  ECDSA_SIG *sig = NULL;
  BIGNUM *r = NULL, *s = NULL;
  unsigned char *der = NULL;
  int dlen, rc = ST_EVERIFY;

  if (raw_len != 64)
    return ST_EVERIFY;
  if (!(sig = ECDSA_SIG_new()) || !(r = BN_bin2bn(raw, 32, NULL)) ||
      !(s = BN_bin2bn(raw + 32, 32, NULL)) || !ECDSA_SIG_set0(sig, r, s)) {
    BN_free(r);
    BN_free(s);
    rc = ST_ECRYPTO;
    goto done;
  }
  if ((dlen = i2d_ECDSA_SIG(sig, &der)) <= 0) {
    rc = ST_ECRYPTO;
    goto done;
  }
  if (!(md = EVP_MD_CTX_new()) || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1) {
    rc = ST_ECRYPTO;
    goto done;
  }
  if (EVP_DigestVerify(md, der, (size_t)dlen, (const unsigned char *)in, n) == 1)
    rc = 0;
done:
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX_free(md);
  return rc;
}

int st_jwt_tenant_valid(const char *s) {
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return n >= 1 && n <= ST_JWT_TENANT_MAX;
}

static int scope_valid(const char *s) {
  size_t n = strlen(s);
  if (n > SCOPE_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == ':' || c == '.' || c == '_' || c == '-' || c == ' '))
      return 0;
  }
  return 1;
}

int st_jwt_scope_has(const char *scopes, const char *want) {
  size_t wl = strlen(want);
  const char *p = scopes;
  if (!scopes || !wl)
    return 0;
  while (*p) {
    size_t tl;
    while (*p == ' ')
      p++;
    tl = strcspn(p, " ");
    if (tl == wl && memcmp(p, want, wl) == 0)
      return 1;
    p += tl;
  }
  return 0;
}

int st_jwt_sign(const st_jwt_keys_t *keys, st_jwt_alg alg, const st_jwt_claims_t *c,
                char **out, st_error_t *err) {
  st_buf_t b = ST_BUF_INIT;
  json_t *payload = NULL;
  char *pjson = NULL;
  unsigned char sig[64];
  size_t siglen = alg == ST_JWT_HS256 ? 32 : 64;
  const char *header = alg == ST_JWT_HS256 ? "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
                                           : "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
  int rc = 0;

  *out = NULL;
  if (!st_jwt_keys_can_sign(keys, alg))
    return st_fail(err, ST_ECONFIG, "jwt: no %s signing key configured",
                   alg == ST_JWT_HS256 ? "jwt_hs256_secret" : "jwt_es256_private_key");
  if (!c->tenant || !st_jwt_tenant_valid(c->tenant))
    return st_fail(err, ST_EINVAL, "tenant: expected [A-Za-z0-9._-]{1,64}");
  if (c->scope && !scope_valid(c->scope))
    return st_fail(err, ST_EINVAL, "scope: expected space-separated [A-Za-z0-9:._-] tokens");
  if (c->sub && strlen(c->sub) > SUB_MAX)
    return st_fail(err, ST_EINVAL, "sub: longer than %d bytes", SUB_MAX);
  if (c->exp <= 0)
    return st_fail(err, ST_EINVAL, "exp: required");
  payload = json_pack("{s:s, s:s, s:I}", "tenant", c->tenant, "scope",
                      c->scope ? c->scope : "", "exp", (json_int_t)c->exp);
  if (!payload || (c->sub && json_object_set_new(payload, "sub", json_string(c->sub))) ||
      (c->nbf && json_object_set_new(payload, "nbf", json_integer(c->nbf))) ||
      (c->iat && json_object_set_new(payload, "iat", json_integer(c->iat))) ||
      !(pjson = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS))) {
    rc = st_fail(err, ST_ENOMEM, "jwt: out of memory");
    goto done;
  }
  st_buf_init(&b, ST_JWT_MAX_TOKEN);
  if ((rc = b64url_encode(&b, (const unsigned char *)header, strlen(header))) ||
      (rc = st_buf_addc(&b, '.')) ||
      (rc = b64url_encode(&b, (const unsigned char *)pjson, strlen(pjson)))) {
    rc = st_fail(err, rc, "jwt: token longer than %d bytes", ST_JWT_MAX_TOKEN);
    goto done;
  }
  rc = alg == ST_JWT_HS256 ? hmac256(keys, b.data, b.len, sig)
                           : es256_sign(keys->es_priv, b.data, b.len, sig);
  if (rc) {
    rc = st_fail(err, rc, "jwt: signing failed");
    goto done;
  }
  if ((rc = st_buf_addc(&b, '.')) || (rc = b64url_encode(&b, sig, siglen))) {
    rc = st_fail(err, rc, "jwt: token longer than %d bytes", ST_JWT_MAX_TOKEN);
    goto done;
  }
  *out = st_buf_detach(&b, NULL);
done:
  free(pjson);
  json_decref(payload);
  st_buf_release(&b);
  return rc;
}

static int header_alg(const unsigned char *h, size_t n, st_jwt_alg *alg, st_error_t *err) {
  json_error_t jerr;
  json_t *j = json_loadb((const char *)h, n, JSON_REJECT_DUPLICATES, &jerr);
  const char *a, *typ;
  int rc = 0;

  if (!j || !json_is_object(j)) {
    rc = st_fail(err, ST_EPARSE, "jwt: header is not a JSON object");
    goto done;
  }
  a = json_string_value(json_object_get(j, "alg"));
  typ = json_string_value(json_object_get(j, "typ"));
  if (json_object_get(j, "typ") && (!typ || strcmp(typ, "JWT") != 0)) {
    rc = st_fail(err, ST_EVERIFY, "jwt: typ must be JWT");
  } else if (json_object_get(j, "crit")) {
    rc = st_fail(err, ST_EVERIFY, "jwt: crit header parameters are not supported");
  } else if (a && strcmp(a, "HS256") == 0) {
    *alg = ST_JWT_HS256;
  } else if (a && strcmp(a, "ES256") == 0) {
    *alg = ST_JWT_ES256;
  } else {
    rc = st_fail(err, ST_EVERIFY, "jwt: alg must be HS256 or ES256");
  }
done:
  json_decref(j);
  return rc;
}

int st_jwt_decode(const st_jwt_keys_t *keys, const char *token, size_t len,
                  st_jwt_alg *alg_out, char **payload, size_t *payload_len,
                  st_error_t *err) {
  const char *dot1, *dot2;
  unsigned char *hdr = NULL, *sig = NULL, *body = NULL;
  unsigned char mac[32];
  size_t hlen = 0, slen = 0, blen = 0;
  st_jwt_alg alg = 0;
  int rc = 0;

  *payload = NULL;
  if (len > ST_JWT_MAX_TOKEN)
    return st_fail(err, ST_ETOOBIG, "jwt: token longer than %d bytes", ST_JWT_MAX_TOKEN);
  if (!(dot1 = memchr(token, '.', len)) ||
      !(dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) ||
      memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
    return st_fail(err, ST_EPARSE, "jwt: expected three dot-separated parts");
  if ((rc = b64url_decode(token, (size_t)(dot1 - token), &hdr, &hlen)) ||
      (rc = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig, &slen))) {
    rc = st_fail(err, rc == ST_ENOMEM ? ST_ENOMEM : ST_EPARSE, "jwt: bad base64url");
    goto done;
  }
  if ((rc = header_alg(hdr, hlen, &alg, err)))
    goto done;
  if (!st_jwt_keys_can_verify(keys, alg)) {
    rc = st_fail(err, ST_EVERIFY, "jwt: alg %s is not accepted here",
                 alg == ST_JWT_HS256 ? "HS256" : "ES256");
    goto done;
  }
  if (alg == ST_JWT_HS256) {
    if ((rc = hmac256(keys, token, (size_t)(dot2 - token), mac))) {
      rc = st_fail(err, rc, "jwt: HMAC failed");
      goto done;
    }
    if (slen != sizeof(mac) || CRYPTO_memcmp(mac, sig, sizeof(mac)) != 0)
      rc = ST_EVERIFY;
  } else {
    rc = es256_verify(keys->es_pub, token, (size_t)(dot2 - token), sig, slen);
  }
  if (rc) {
    rc = st_fail(err, rc, rc == ST_EVERIFY ? "jwt: bad signature" : "jwt: verify failed");
    goto done;
  }
  if ((rc = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &body, &blen))) {
    rc = st_fail(err, rc == ST_ENOMEM ? ST_ENOMEM : ST_EPARSE, "jwt: bad base64url");
    goto done;
  }
  body[blen] = '\0';
  *payload = (char *)body;
  body = NULL;
  if (payload_len)
    *payload_len = blen;
  if (alg_out)
    *alg_out = alg;
done:
  st_free(hdr);
  st_free(sig);
  st_free(body);
  return rc;
}

/* An optional integer claim; ST_EVERIFY when present but not an integer. */
static int int_claim(json_t *j, const char *name, long long *out, st_error_t *err) {
  json_t *v = json_object_get(j, name);
  *out = 0;
  if (!v)
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) <= 0)
    return st_fail(err, ST_EVERIFY, "jwt: %s must be a positive integer", name);
  *out = json_integer_value(v);
  return 0;
}

int st_jwt_verify(const st_jwt_keys_t *keys, const char *token, size_t len, long long now,
                  long long leeway, st_jwt_claims_t *claims, st_error_t *err) {
  char *payload = NULL;
  size_t plen = 0;
  json_t *j = NULL, *v;
  json_error_t jerr;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  const char *s;
  int rc;

  if ((rc = st_jwt_decode(keys, token, len, NULL, &payload, &plen, err)))
    goto done;
  j = json_loadb(payload, plen, JSON_REJECT_DUPLICATES, &jerr);
  if (!j || !json_is_object(j)) {
    rc = st_fail(err, ST_EPARSE, "jwt: payload is not a JSON object");
    goto done;
  }
  if ((rc = int_claim(j, "exp", &c.exp, err)) || (rc = int_claim(j, "nbf", &c.nbf, err)) ||
      (rc = int_claim(j, "iat", &c.iat, err)))
    goto done;
  rc = ST_EVERIFY;
  if (!c.exp) {
    st_fail(err, rc, "jwt: exp is required");
    goto done;
  }
  if (now >= c.exp + leeway) {
    st_fail(err, rc, "jwt: token expired");
    goto done;
  }
  if ((c.nbf && now + leeway < c.nbf) || (c.iat && now + leeway < c.iat)) {
    st_fail(err, rc, "jwt: token not yet valid");
    goto done;
  }
  v = json_object_get(j, "tenant");
  s = json_string_value(v);
  if (!s || strlen(s) != json_string_length(v) || !st_jwt_tenant_valid(s)) {
    st_fail(err, rc, "jwt: tenant must match [A-Za-z0-9._-]{1,64}");
    goto done;
  }
  c.tenant = st_strdup(s);
  v = json_object_get(j, "scope");
  s = v ? json_string_value(v) : "";
  if (!s || (v && strlen(s) != json_string_length(v)) || !scope_valid(s)) {
    st_fail(err, rc, "jwt: scope must be a string of space-separated scopes");
    goto done;
  }
  c.scope = st_strdup(s);
  if ((v = json_object_get(j, "sub"))) {
    s = json_string_value(v);
    if (!s || strlen(s) > SUB_MAX || strlen(s) != json_string_length(v)) {
      st_fail(err, rc, "jwt: sub must be a string of at most %d bytes", SUB_MAX);
      goto done;
    }
    c.sub = st_strdup(s);
  }
  if (!c.tenant || !c.scope || (v && !c.sub)) {
    rc = st_fail(err, ST_ENOMEM, "jwt: out of memory");
    goto done;
  }
  rc = 0;
  *claims = c;
  c = (st_jwt_claims_t)ST_JWT_CLAIMS_INIT;
done:
  st_jwt_claims_release(&c);
  json_decref(j);
  st_free(payload);
  return rc;
}

void st_jwt_claims_release(st_jwt_claims_t *c) {
  st_free(c->tenant);
  st_free(c->scope);
  st_free(c->sub);
  *c = (st_jwt_claims_t)ST_JWT_CLAIMS_INIT;
}
