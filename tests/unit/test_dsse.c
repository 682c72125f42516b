/* test_dsse.c: PAE, the DSSE vector from notes/signing-formats.md, envelope layout,
 * tampering, wrong keys, and malformed envelopes with their reasons. */
#include "st_test.h"

#include "keys_fixtures.h"
#include "stella/base64.h"
#include "stella/dsse.h"
#include "stella/mem.h"

#define INTOTO "application/vnd.in-toto+json"
#define STMT "{\"_type\":\"https://in-toto.io/Statement/v1\"}"
#define VECTOR_SIG                                                                          \
  "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="
#define VECTOR_ENV                                                                          \
  "{\"payload\":\"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==\","          \
  "\"payloadType\":\"" INTOTO "\",\"signatures\":[{\"keyid\":\"" ED25519_KEYID "\","        \
  "\"sig\":\"" VECTOR_SIG "\"}]}"

static void pae_spec_examples(void **state) {
  st_buf_t b = ST_BUF_INIT;
  assert_int_equal(st_dsse_pae(&b, "http://example.com/HelloWorld", 29, "hello world", 11), 0);
  assert_string_equal(b.data, "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  st_buf_reset(&b);
  assert_int_equal(st_dsse_pae(&b, INTOTO, strlen(INTOTO), "", 0), 0);
  assert_string_equal(b.data, "DSSEv1 28 application/vnd.in-toto+json 0 ");
  st_buf_reset(&b);
  /* Binary payloads are taken byte for byte. */
  assert_int_equal(st_dsse_pae(&b, "t", 1, "a\0b", 3), 0);
  assert_int_equal(b.len, 16);
  assert_memory_equal(b.data, "DSSEv1 1 t 3 a\0b", 16);
  st_buf_release(&b);
}

static void ed25519_vector_exact_envelope(void **state) {
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  st_pubkey_t *k = fx_pubkey(ED25519_PUB_PEM);
  st_buf_t env = ST_BUF_INIT, type = ST_BUF_INIT, payload = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  size_t which = 99;

  assert_int_equal(st_dsse_sign(s, INTOTO, STMT, strlen(STMT), &env, &err), 0);
  assert_string_equal(env.data, VECTOR_ENV);
  assert_int_equal(st_dsse_verify(env.data, env.len, (const st_pubkey_t *const *)&k, 1, INTOTO,
                                  &type, &payload, &which, &err), 0);
  assert_string_equal(type.data, INTOTO);
  assert_string_equal(payload.data, STMT);
  assert_int_equal(which, 0);
  st_buf_release(&env);
  st_buf_release(&type);
  st_buf_release(&payload);
  st_pubkey_free(k);
  st_signer_free(s);
}

static int verify(const char *env, const st_pubkey_t *k, const char *type, st_error_t *err) {
  st_buf_t t = ST_BUF_INIT, p = ST_BUF_INIT;
  int rc = st_dsse_verify(env, strlen(env), &k, 1, type, &t, &p, NULL, err);
  if (rc) {
    assert_int_equal(t.len, 0); /* nothing handed out on failure */
    assert_int_equal(p.len, 0);
  }
  st_buf_release(&t);
  st_buf_release(&p);
  return rc;
}

static void expect_fail(const char *env, const st_pubkey_t *k, const char *type, int code,
                        const char *reason) {
  st_error_t err = ST_ERROR_INIT;
  int rc = verify(env, k, type, &err);
  if (rc != code || !strstr(err.msg, reason))
    fail_msg("envelope %.80s: got %s '%s', want %s '%s'", env, st_err_name(rc), err.msg,
             st_err_name(code), reason);
}

static void p256_sign_verify_and_empty_payload(void **state) {
  st_signer_t *s = fx_signer(P256_PRIV_PEM);
  st_pubkey_t *k = fx_pubkey(P256_PUB_PEM);
  st_buf_t env = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;

  assert_int_equal(st_dsse_sign(s, INTOTO, STMT, strlen(STMT), &env, &err), 0);
  assert_non_null(strstr(env.data, "\"keyid\":\"" P256_KEYID "\""));
  assert_int_equal(verify(env.data, k, INTOTO, &err), 0);
  st_buf_reset(&env);
  assert_int_equal(st_dsse_sign(s, INTOTO, "", 0, &env, &err), 0);
  assert_non_null(strstr(env.data, "{\"payload\":\"\","));
  assert_int_equal(verify(env.data, k, NULL, &err), 0);
  /* payloadType must be UTF-8 and non-empty. */
  assert_int_equal(st_dsse_sign(s, "", "x", 1, &env, &err), ST_EINVAL);
  assert_int_equal(st_dsse_sign(s, "\xff", "x", 1, &env, &err), ST_EINVAL);
  st_buf_release(&env);
  st_pubkey_free(k);
  st_signer_free(s);
}

/* A copy of VECTOR_ENV with the first `from` replaced by `to`. */
static char *edit(const char *from, const char *to) {
  const char *env = VECTOR_ENV, *at = strstr(env, from);
  size_t n = strlen(env) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  assert_non_null(at);
  snprintf(out, n, "%.*s%s%s", (int)(at - env), env, to, at + strlen(from));
  return out;
}

static void expect_edit_fails(const char *from, const char *to, const st_pubkey_t *k,
                              int code, const char *reason) {
  char *env = edit(from, to);
  expect_fail(env, k, INTOTO, code, reason);
  free(env);
}

static void tampering_fails(void **state) {
  st_pubkey_t *k = fx_pubkey(ED25519_PUB_PEM);
  /* One payload byte (base64 of `{"_type"` -> `{"_typf"`). */
  expect_edit_fails("eyJfdHlwZSI6", "eyJfdHlwZiI6", k, ST_EVERIFY, "bad signature");
  /* One signature byte. */
  expect_edit_fails("2WAfaHm5", "2WAfaHm6", k, ST_EVERIFY, "bad signature");
  /* payloadType changed while no type is expected: the PAE differs. */
  {
    char *env = edit("\"payloadType\":\"application/vnd.in-toto+json\"",
                     "\"payloadType\":\"application/vnd.in-toto+jsoN\"");
    expect_fail(env, k, NULL, ST_EVERIFY, "bad signature");
    expect_fail(env, k, INTOTO, ST_EVERIFY, "wrong payloadType");
    free(env);
  }
  st_pubkey_free(k);
}

static void wrong_or_unknown_key_fails(void **state) {
  st_pubkey_t *p256 = fx_pubkey(P256_PUB_PEM), *ed = fx_pubkey(ED25519_PUB_PEM);
  const st_pubkey_t *both[2] = {p256, ed};
  st_error_t err = ST_ERROR_INIT;
  size_t which = 9;
  char *env;

  expect_fail(VECTOR_ENV, p256, INTOTO, ST_EVERIFY, "unknown key");
  /* With an empty keyid every trusted key is tried: the wrong one gives a bad signature. */
  env = edit(ED25519_KEYID, "");
  expect_fail(env, p256, INTOTO, ST_EVERIFY, "bad signature");
  assert_int_equal(verify(env, ed, INTOTO, &err), 0);
  free(env);
  /* A keyid naming the trusted key over a signature made by another key. */
  env = edit(ED25519_KEYID, P256_KEYID);
  expect_fail(env, p256, INTOTO, ST_EVERIFY, "bad signature");
  expect_fail(env, ed, INTOTO, ST_EVERIFY, "unknown key");
  free(env);
  /* Among several trusted keys the right one is reported. */
  assert_int_equal(st_dsse_verify(VECTOR_ENV, strlen(VECTOR_ENV), both, 2, INTOTO, NULL, NULL,
                                  &which, &err), 0);
  assert_int_equal(which, 1);
  assert_int_equal(st_dsse_verify(VECTOR_ENV, strlen(VECTOR_ENV), both, 0, INTOTO, NULL, NULL,
                                  NULL, &err), ST_EINVAL);
  st_pubkey_free(p256);
  st_pubkey_free(ed);
}

static void base64_variants_accepted(void **state) {
  st_pubkey_t *k = fx_pubkey(ED25519_PUB_PEM);
  st_error_t err = ST_ERROR_INIT;
  /* Unpadded, and URL-safe: the vector's signature contains '+' and '/'. */
  char *a = edit("Q==\"", "Q\""), *b = edit(VECTOR_SIG, VECTOR_SIG), *p;

  assert_int_equal(verify(a, k, INTOTO, &err), 0);
  for (p = strstr(b, VECTOR_SIG); *p != '"'; p++)
    *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
  assert_int_equal(verify(b, k, INTOTO, &err), 0);
  free(a);
  free(b);
  a = edit("CA==", "CA");
  assert_int_equal(verify(a, k, INTOTO, &err), 0);
  free(a);
  /* Unknown fields are ignored (the spec allows them). */
  a = edit("{\"payload\"", "{\"extra\":[1,2],\"payload\"");
  assert_int_equal(verify(a, k, INTOTO, &err), 0);
  free(a);
  st_pubkey_free(k);
}

static void malformed_envelopes_fail(void **state) {
  st_pubkey_t *k = fx_pubkey(ED25519_PUB_PEM);
  st_error_t err = ST_ERROR_INIT;
  char *big, *sigs;
  size_t i, n;

  expect_fail("", k, NULL, ST_EPARSE, "not JSON");
  expect_fail("{\"payload\":", k, NULL, ST_EPARSE, "not JSON");
  expect_fail("[1,2]", k, NULL, ST_EPARSE, "not a JSON object");
  expect_fail("{\"payloadType\":\"t\",\"signatures\":[]}", k, NULL, ST_EPARSE,
              "payload is missing");
  expect_fail("{\"payload\":\"\",\"signatures\":[]}", k, NULL, ST_EPARSE,
              "payloadType is missing");
  expect_fail("{\"payload\":5,\"payloadType\":\"t\",\"signatures\":[]}", k, NULL, ST_EPARSE,
              "payload is not a string");
  expect_fail("{\"payload\":\"\",\"payloadType\":\"t\"}", k, NULL, ST_EPARSE,
              "signatures is missing");
  expect_fail("{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":{}}", k, NULL, ST_EPARSE,
              "signatures is not an array");
  expect_fail("{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[]}", k, NULL,
              ST_EVERIFY, "no signatures");
  expect_fail("{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[7]}", k, NULL,
              ST_EPARSE, "signatures[0] is not an object");
  expect_fail("{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[{\"keyid\":\"\"}]}", k,
              NULL, ST_EPARSE, "signatures[0].sig is missing");
  expect_fail("{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[{\"keyid\":1,\"sig\":\"\"}]}",
              k, NULL, ST_EPARSE, "signatures[0].keyid is not a string");
  expect_edit_fails("eyJfdHlwZSI6", "eyJfdHlwZSI*", k, ST_EPARSE,
                    "payload: malformed: base64: invalid character at offset 11");
  expect_edit_fails("2WAfaHm5", "2WAf.Hm5", k, ST_EPARSE,
                    "signatures[0].sig: malformed: base64: invalid character at offset 4");
  expect_edit_fails("\"payload\"", "\"payload\":\"\",\"payload\"", k, ST_EPARSE,
                    "duplicate object key");
  expect_fail("{\"payload\":\"\",\"payloadType\":\"t\\u0000x\",\"signatures\":[]}", k, NULL,
              ST_EPARSE, "not JSON");

  /* Sizes: a huge signature, too many signatures, a long keyid / payloadType, and an
   * envelope over the limit (length is checked before parsing). */
  big = malloc(4096 + 1);
  memset(big, 'A', 4096);
  big[4096] = '\0';
  {
    char *env = edit(VECTOR_SIG, big);
    expect_fail(env, k, INTOTO, ST_ETOOBIG, "signatures[0].sig");
    free(env);
    big[300] = '\0';
    env = edit(ED25519_KEYID, big);
    expect_fail(env, k, INTOTO, ST_ETOOBIG, "keyid longer than");
    free(env);
  }
  n = 64 + (ST_DSSE_SIGS_MAX + 1) * 24;
  sigs = malloc(n);
  strcpy(sigs, "{\"payload\":\"\",\"payloadType\":\"t\",\"signatures\":[");
  for (i = 0; i <= ST_DSSE_SIGS_MAX; i++)
    strcat(sigs, i ? ",{\"sig\":\"\"}" : "{\"sig\":\"\"}");
  strcat(sigs, "]}");
  expect_fail(sigs, k, NULL, ST_ETOOBIG, "more than 16 signatures");
  free(sigs);
  sigs = malloc(600);
  snprintf(sigs, 600, "{\"payload\":\"\",\"payloadType\":\"%s\",\"signatures\":[{\"sig\":\"\"}]}",
           big);
  expect_fail(sigs, k, NULL, ST_ETOOBIG, "payloadType longer than 256");
  free(sigs);
  free(big);
  assert_int_equal(st_dsse_verify("{}", ST_DSSE_ENVELOPE_MAX + 1,
                                  (const st_pubkey_t *const *)&k, 1, NULL, NULL, NULL, NULL,
                                  &err), ST_ETOOBIG);
  st_pubkey_free(k);
}

/* Every allocation failure while signing and verifying is reported, not crashed on, and
 * leaks nothing (LeakSanitizer checks at exit). */
static void allocation_failures(void **state) {
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  st_pubkey_t *k = fx_pubkey(ED25519_PUB_PEM);
  int done_sign = 0, done_verify = 0;

  for (long n = 0; n < 200 && !(done_sign && done_verify); n++) {
    st_buf_t env = ST_BUF_INIT, p = ST_BUF_INIT;
    int rc;
    st_mem_fail_after(n);
    rc = st_dsse_sign(s, INTOTO, STMT, strlen(STMT), &env, NULL);
    st_mem_fail_after(-1);
    if (rc == 0) {
      done_sign = 1;
      assert_string_equal(env.data, VECTOR_ENV);
    } else {
      assert_int_equal(rc, ST_ENOMEM);
      assert_int_equal(env.len, 0);
    }
    st_mem_fail_after(n);
    rc = st_dsse_verify(VECTOR_ENV, strlen(VECTOR_ENV), (const st_pubkey_t *const *)&k, 1,
                        INTOTO, NULL, &p, NULL, NULL);
    st_mem_fail_after(-1);
    if (rc == 0)
      done_verify = 1, assert_string_equal(p.data, STMT);
    else
      assert_int_equal(rc, ST_ENOMEM);
    st_buf_release(&env);
    st_buf_release(&p);
  }
  assert_true(done_sign && done_verify);
  st_pubkey_free(k);
  st_signer_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(pae_spec_examples),
      cmocka_unit_test(ed25519_vector_exact_envelope),
      cmocka_unit_test(p256_sign_verify_and_empty_payload),
      cmocka_unit_test(tampering_fails),
      cmocka_unit_test(wrong_or_unknown_key_fails),
      cmocka_unit_test(base64_variants_accepted),
      cmocka_unit_test(malformed_envelopes_fail),
      cmocka_unit_test(allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
