/* test_jwt.c: RFC 7515 vectors (A.1 HS256, A.3 ES256 with JOSE r||s), HS256 and ES256
 * round trips, and every rejection: forged, expired, not yet valid, alg none, alg
 * confusion, oversized, malformed, bad claims. */
#include "st_test.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <time.h>

#include "stella/jwt.h"
#include "stella/mem.h"

static const unsigned char a1_key[64] =
    "\x03\x23\x35\x4b\x2b\x0f\xa5\xbc\x83\x7e\x06\x65\x77\x7b\xa6\x8f\x5a\xb3\x28\xe6\xf0\x54"
    "\xc9\x28\xa9\x0f\x84\xb2\xd2\x50\x2e\xbf\xd3\xfb\x5a\x92\xd2\x06\x47\xef\x96\x8a\xb4\xc3"
    "\x77\x62\x3d\x22\x3d\x2e\x21\x72\x05\x2e\x4f\x08\xc0\xcd\x9a\xf5\x67\xd0\x80\xa3";
static const char a1_token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQo"
    "gImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOE"
    "jXk";
static const char a3_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
                             "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
                             "-----END PUBLIC KEY-----\n";
static const char a3_token[] =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
    "LmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8IS"
    "lSApmWQxfKTUJqPP3-Kg6NU1Q";
static const char a_payload[] =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

static const char secret[] = "0123456789abcdef0123456789abcdef";

static void test_rfc7515_a1_hs256(void **state) {
  st_jwt_keys_t *k = NULL;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  st_jwt_alg alg = 0;
  char *payload = NULL;
  size_t n = 0;

  assert_int_equal(st_jwt_keys_new(&k, a1_key, sizeof(a1_key), NULL, NULL, &err), 0);
  assert_int_equal(st_jwt_decode(k, a1_token, strlen(a1_token), &alg, &payload, &n, &err), 0);
  assert_int_equal(alg, ST_JWT_HS256);
  assert_int_equal(n, strlen(a_payload));
  assert_memory_equal(payload, a_payload, n);
  st_free(payload);
  /* valid signature, but no tenant and long expired */
  assert_int_equal(st_jwt_verify(k, a1_token, strlen(a1_token), 1300819000, 0, &c, &err),
                   ST_EVERIFY);
  assert_int_equal(st_jwt_verify(k, a1_token, strlen(a1_token), time(NULL), 0, &c, &err),
                   ST_EVERIFY);
  assert_non_null(strstr(err.msg, "expired"));
  st_jwt_keys_free(k);
}

static void test_rfc7515_a3_es256(void **state) {
  st_jwt_keys_t *k = NULL;
  st_error_t err = ST_ERROR_INIT;
  char *payload = NULL, *bad;
  size_t n = 0;

  assert_int_equal(st_jwt_keys_new(&k, NULL, 0, a3_pub, NULL, &err), 0);
  assert_int_equal(st_jwt_decode(k, a3_token, strlen(a3_token), NULL, &payload, &n, &err), 0);
  assert_memory_equal(payload, a_payload, n);
  st_free(payload);
  /* flip one bit of s */
  bad = st_strdup(a3_token);
  bad[strlen(bad) - 3] ^= 1;
  assert_int_equal(st_jwt_decode(k, bad, strlen(bad), NULL, &payload, &n, &err), ST_EVERIFY);
  st_free(bad);
  /* HS256 token (A.1) against an ES256-only key set: alg confusion refused */
  assert_int_equal(st_jwt_decode(k, a1_token, strlen(a1_token), NULL, &payload, &n, &err),
                   ST_EVERIFY);
  assert_non_null(strstr(err.msg, "not accepted"));
  st_jwt_keys_free(k);
}

/* priv 1: the private key PEM; 2: the public PEM, then forget the key */
static char *gen_pem(int priv) {
  static EVP_PKEY *key;
  BIO *bio = BIO_new(BIO_s_mem());
  char *data, *out;
  long n;
  if (!key)
    key = EVP_EC_gen("P-256");
  assert_non_null(key);
  if (priv == 1)
    assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
  else
    assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
  n = BIO_get_mem_data(bio, &data);
  out = st_strndup(data, (size_t)n);
  BIO_free(bio);
  if (priv == 2) {
    EVP_PKEY_free(key);
    key = NULL;
  }
  return out;
}

static char *mint(const st_jwt_keys_t *k, st_jwt_alg alg, const char *tenant, long long exp,
                  long long nbf) {
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  char *tok = NULL;
  c.tenant = (char *)tenant;
  c.scope = "evidence:read audit:read";
  c.sub = "alice";
  c.exp = exp;
  c.nbf = nbf;
  c.iat = time(NULL);
  assert_int_equal(st_jwt_sign(k, alg, &c, &tok, &err), 0);
  return tok;
}

static void test_round_trips(void **state) {
  char *priv = gen_pem(1), *pub = gen_pem(2);
  st_jwt_keys_t *k = NULL, *verify_only = NULL, *hs_only = NULL;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  long long now = time(NULL);
  st_jwt_alg algs[] = {ST_JWT_HS256, ST_JWT_ES256};

  assert_int_equal(st_jwt_keys_new(&k, secret, strlen(secret), NULL, priv, &err), 0);
  assert_int_equal(st_jwt_keys_new(&verify_only, NULL, 0, pub, NULL, &err), 0);
  assert_int_equal(st_jwt_keys_new(&hs_only, secret, strlen(secret), NULL, NULL, &err), 0);
  for (int i = 0; i < 2; i++) {
    char *tok = mint(k, algs[i], "acme.eu-1", now + 60, 0);
    assert_int_equal(st_jwt_verify(k, tok, strlen(tok), now, 0, &c, &err), 0);
    assert_string_equal(c.tenant, "acme.eu-1");
    assert_string_equal(c.sub, "alice");
    assert_true(st_jwt_scope_has(c.scope, "audit:read"));
    assert_false(st_jwt_scope_has(c.scope, "audit"));
    assert_false(st_jwt_scope_has(c.scope, "evidence:write"));
    st_jwt_claims_release(&c);
    if (algs[i] == ST_JWT_ES256) { /* the public half alone verifies; HS-only refuses */
      assert_int_equal(st_jwt_verify(verify_only, tok, strlen(tok), now, 0, &c, &err), 0);
      st_jwt_claims_release(&c);
      assert_int_equal(st_jwt_verify(hs_only, tok, strlen(tok), now, 0, &c, &err), ST_EVERIFY);
    } else {
      assert_int_equal(st_jwt_verify(verify_only, tok, strlen(tok), now, 0, &c, &err),
                       ST_EVERIFY);
    }
    /* expired, and within leeway */
    assert_int_equal(st_jwt_verify(k, tok, strlen(tok), now + 61, 0, &c, &err), ST_EVERIFY);
    assert_int_equal(st_jwt_verify(k, tok, strlen(tok), now + 61, 30, &c, &err), 0);
    st_jwt_claims_release(&c);
    /* forged: another payload under the same signature */
    {
      char *other = mint(k, algs[i], "evil", now + 60, 0);
      char *forged = st_calloc(1, strlen(tok) + strlen(other) + 1);
      const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
      const char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
      memcpy(forged, tok, (size_t)(d1 - tok));
      memcpy(forged + (d1 - tok), o1, (size_t)(o2 - o1));
      strcat(forged, d2);
      assert_int_equal(st_jwt_verify(k, forged, strlen(forged), now, 0, &c, &err), ST_EVERIFY);
      st_free(forged);
      st_free(other);
    }
    st_free(tok);
  }
  /* not yet valid */
  {
    char *tok = mint(k, ST_JWT_HS256, "acme", now + 600, now + 300);
    assert_int_equal(st_jwt_verify(k, tok, strlen(tok), now, 0, &c, &err), ST_EVERIFY);
    assert_non_null(strstr(err.msg, "not yet"));
    st_free(tok);
  }
  st_jwt_keys_free(k);
  st_jwt_keys_free(verify_only);
  st_jwt_keys_free(hs_only);
  st_free(priv);
  st_free(pub);
}

/* Append unpadded base64url of s[0..n) at o; returns the new end. */
static char *b64u(char *o, const unsigned char *s, size_t n) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) |
                 (i + 2 < n ? s[i + 2] : 0);
    *o++ = a[v >> 18 & 63];
    *o++ = a[v >> 12 & 63];
    if (i + 1 < n)
      *o++ = a[v >> 6 & 63];
    if (i + 2 < n)
      *o++ = a[v & 63];
  }
  *o = '\0';
  return o;
}

/* base64url of header and payload, signature left as given */
static char *craft(const char *header, const char *payload, const char *sig) {
  char *out = st_calloc(1, 4096), *o;
  o = b64u(out, (const unsigned char *)header, strlen(header));
  *o++ = '.';
  o = b64u(o, (const unsigned char *)payload, strlen(payload));
  *o++ = '.';
  strcpy(o, sig);
  return out;
}

static void test_rejections(void **state) {
  st_jwt_keys_t *k = NULL;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  char *tok, *big;
  const char *p = "{\"tenant\":\"acme\",\"exp\":99999999999}";

  assert_int_equal(st_jwt_keys_new(&k, secret, strlen(secret), NULL, NULL, &err), 0);
  tok = craft("{\"alg\":\"none\"}", p, "");
  assert_int_equal(st_jwt_verify(k, tok, strlen(tok), time(NULL), 0, &c, &err), ST_EVERIFY);
  st_free(tok);
  tok = craft("{\"alg\":\"HS512\"}", p, "AAAA");
  assert_int_equal(st_jwt_verify(k, tok, strlen(tok), time(NULL), 0, &c, &err), ST_EVERIFY);
  st_free(tok);
  tok = craft("{\"alg\":\"ES256\"}", p, "AAAA"); /* no ES key configured */
  assert_int_equal(st_jwt_verify(k, tok, strlen(tok), time(NULL), 0, &c, &err), ST_EVERIFY);
  st_free(tok);
  tok = craft("{\"alg\":\"HS256\",\"crit\":[\"x\"]}", p, "AAAA");
  assert_int_equal(st_jwt_verify(k, tok, strlen(tok), time(NULL), 0, &c, &err), ST_EVERIFY);
  st_free(tok);
  tok = craft("not json", p, "AAAA");
  assert_int_equal(st_jwt_verify(k, tok, strlen(tok), time(NULL), 0, &c, &err), ST_EPARSE);
  st_free(tok);
  assert_int_equal(st_jwt_verify(k, "a.b", 3, time(NULL), 0, &c, &err), ST_EPARSE);
  assert_int_equal(st_jwt_verify(k, "a.b.c.d", 7, time(NULL), 0, &c, &err), ST_EPARSE);
  assert_int_equal(st_jwt_verify(k, "e30=.e30.AAAA", 13, time(NULL), 0, &c, &err), ST_EPARSE);
  big = st_calloc(1, ST_JWT_MAX_TOKEN + 2);
  memset(big, 'A', ST_JWT_MAX_TOKEN + 1);
  assert_int_equal(st_jwt_verify(k, big, strlen(big), time(NULL), 0, &c, &err), ST_ETOOBIG);
  st_free(big);
  /* signed correctly but bad claims: each rejected */
  {
    static const char *bad[] = {
        "{\"tenant\":\"acme\",\"exp\":99999999999}",                /* control */
        "{\"exp\":99999999999}",                                   /* no tenant */
        "{\"tenant\":\"ac me\",\"exp\":99999999999}",               /* charset */
        "{\"tenant\":\"../x\",\"exp\":99999999999}",
        "{\"tenant\":\"acme\"}",                                    /* no exp */
        "{\"tenant\":\"acme\",\"exp\":\"99999999999\"}",            /* exp not a number */
        "{\"tenant\":\"acme\",\"exp\":99999999999,\"scope\":5}",
        "{\"tenant\":\"acme\",\"exp\":99999999999,\"scope\":\"a\\nb\"}",
        "{\"tenant\":\"acme\\u0000x\",\"exp\":99999999999}",
        "{\"tenant\":\"acme\",\"tenant\":\"other\",\"exp\":99999999999}", /* duplicate */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
      /* signed with the real key, so only the claims can be wrong */
      char *forged = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", bad[i], "");
      size_t fl = strlen(forged) - 1; /* without the trailing '.' */
      unsigned char mac[32];
      size_t ml = 0;
      int rc;
      EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
                (unsigned char *)forged, fl, mac, 32, &ml);
      b64u(forged + fl + 1, mac, sizeof(mac));
      rc = st_jwt_verify(k, forged, strlen(forged), time(NULL), 0, &c, &err);
      if (i == 0) { /* the control: well-formed claims signed this way pass */
        assert_int_equal(rc, 0);
        st_jwt_claims_release(&c);
        st_free(forged);
        continue;
      }
      if (rc == 0)
        fail_msg("payload %zu accepted: %s", i, bad[i]);
      assert_true(rc == ST_EVERIFY || rc == ST_EPARSE);
      st_free(forged);
    }
  }
  st_jwt_keys_free(k);
}

static void test_keys_and_claims(void **state) {
  st_jwt_keys_t *k = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  char *tok = NULL;

  assert_int_equal(st_jwt_keys_new(&k, NULL, 0, NULL, NULL, &err), ST_ECONFIG);
  assert_int_equal(st_jwt_keys_new(&k, "short", 5, NULL, NULL, &err), ST_ECONFIG);
  assert_int_equal(st_jwt_keys_new(&k, NULL, 0, "-----BEGIN PUBLIC KEY-----\nxx\n", NULL, &err),
                   ST_ECONFIG);
  assert_non_null(strstr(err.msg, "jwt_es256_public_key"));
  assert_int_equal(st_jwt_keys_new(&k, secret, strlen(secret), NULL, NULL, &err), 0);
  assert_int_equal(st_jwt_sign(k, ST_JWT_ES256, &c, &tok, &err), ST_ECONFIG);
  c.tenant = "bad tenant";
  c.exp = 1;
  assert_int_equal(st_jwt_sign(k, ST_JWT_HS256, &c, &tok, &err), ST_EINVAL);
  assert_true(st_jwt_tenant_valid("a"));
  assert_true(st_jwt_tenant_valid("A-z_0.9"));
  assert_false(st_jwt_tenant_valid(""));
  assert_false(st_jwt_tenant_valid("a/b"));
  assert_false(st_jwt_tenant_valid("0123456789012345678901234567890123456789012345678901234567890123x"));
  assert_true(st_jwt_tenant_valid("0123456789012345678901234567890123456789012345678901234567890123"));
  st_jwt_keys_free(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc7515_a1_hs256), cmocka_unit_test(test_rfc7515_a3_es256),
      cmocka_unit_test(test_round_trips),      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_keys_and_claims),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
