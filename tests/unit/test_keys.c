/* test_keys.c: key providers and public keys.
 *
 * One conformance suite (conformance()) runs against every provider and key type: file
 * Ed25519/P-256 and PKCS#11 Ed25519/P-256 on a SoftHSM2 token created in a temp dir with
 * softhsm2-util and pkcs11-tool. Then the file-only and PKCS#11-only cases: the RFC 8032
 * vector, keyids equal to ssh-keygen's, key generation, and every rejection. */
#include "st_test.h"

#include <pthread.h>
#include <sys/stat.h>

#include "keys_fixtures.h"
#include "stella/keys.h"
#include "stella/mem.h"

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/* SoftHSM 2.6.1 leaks the decoded curve name in every EdDSA C_SignInit (inside the
 * module, seen with LeakSanitizer); not ours to fix. The module is never unmapped
 * (RTLD_NODELETE) and malloc stacks are unwound fully (libcrypto has no frame pointers),
 * so the frames resolve and this suppression matches only leaks under the module. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libsofthsm2.so\n"; }
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

typedef struct {
  st_signer_t *s;
  int failures;
} thread_arg_t;

static void *sign_many(void *p) {
  thread_arg_t *a = p;
  for (int i = 0; i < 10; i++) {
    st_buf_t sig = ST_BUF_INIT;
    char msg[32];
    snprintf(msg, sizeof(msg), "message %d", i);
    if (st_signer_sign(a->s, msg, strlen(msg), &sig, NULL) ||
        st_pubkey_verify(st_signer_pubkey(a->s), msg, strlen(msg), sig.data, sig.len, NULL))
      a->failures++;
    st_buf_release(&sig);
  }
  return NULL;
}

/* What every signer must do, whatever the provider. */
static void conformance(st_signer_t *s, st_key_type type) {
  const st_pubkey_t *pub = st_signer_pubkey(s);
  st_pubkey_t *again = NULL, *from_der = NULL;
  st_buf_t sig = ST_BUF_INIT, big = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  const unsigned char *der;
  size_t der_len, i;
  pthread_t th[4];
  thread_arg_t args[4];

  assert_int_equal(st_pubkey_type(pub), type);
  assert_string_equal(st_pubkey_alg(pub), type == ST_KEY_ED25519 ? "ed25519"
                                                                  : "ecdsa-p256-sha256");
  assert_int_equal(strncmp(st_pubkey_keyid(pub), "SHA256:", 7), 0);
  assert_int_equal(strlen(st_pubkey_keyid(pub)), 7 + 43);
  /* PEM and DER describe the same key. */
  assert_int_equal(st_pubkey_from_pem(&again, st_pubkey_pem(pub), strlen(st_pubkey_pem(pub)),
                                      &err), 0);
  der = st_pubkey_spki(pub, &der_len);
  assert_int_equal(st_pubkey_from_spki(&from_der, der, der_len, &err), 0);
  assert_string_equal(st_pubkey_keyid(again), st_pubkey_keyid(pub));
  assert_string_equal(st_pubkey_keyid(from_der), st_pubkey_keyid(pub));

  /* Empty, short and large messages; signature appended after existing content. */
  for (i = 0; i < 100000; i++)
    assert_int_equal(st_buf_addc(&big, (char)(i * 7)), 0);
  assert_int_equal(st_buf_adds(&sig, "prefix"), 0);
  assert_int_equal(st_signer_sign(s, "", 0, &sig, &err), 0);
  assert_memory_equal(sig.data, "prefix", 6);
  assert_int_equal(st_pubkey_verify(again, "", 0, sig.data + 6, sig.len - 6, &err), 0);
  st_buf_reset(&sig);
  assert_int_equal(st_signer_sign(s, big.data, big.len, &sig, &err), 0);
  assert_int_equal(st_pubkey_verify(from_der, big.data, big.len, sig.data, sig.len, &err), 0);
  if (type == ST_KEY_ED25519) {
    assert_int_equal(sig.len, 64);
  } else {
    assert_true(sig.len >= 8 && sig.len <= 72);
    assert_int_equal((unsigned char)sig.data[0], 0x30); /* DER SEQUENCE */
  }

  /* Tampering with the message or the signature fails. */
  big.data[500] ^= 1;
  assert_int_equal(st_pubkey_verify(pub, big.data, big.len, sig.data, sig.len, &err),
                   ST_EVERIFY);
  assert_non_null(strstr(err.msg, "does not verify"));
  big.data[500] ^= 1;
  sig.data[sig.len - 1] ^= 0x40;
  assert_int_equal(st_pubkey_verify(pub, big.data, big.len, sig.data, sig.len, &err),
                   ST_EVERIFY);
  assert_int_equal(st_pubkey_verify(pub, big.data, big.len, sig.data, 0, &err), ST_EVERIFY);

  /* Concurrent signing. */
  for (i = 0; i < 4; i++) {
    args[i] = (thread_arg_t){s, 0};
    assert_int_equal(pthread_create(&th[i], NULL, sign_many, &args[i]), 0);
  }
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(args[i].failures, 0);
  }
  st_pubkey_free(again);
  st_pubkey_free(from_der);
  st_buf_release(&sig);
  st_buf_release(&big);
}

static void file_provider_conformance(void **state) {
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  assert_string_equal(st_signer_provider(s), "file");
  conformance(s, ST_KEY_ED25519);
  st_signer_free(s);
  s = fx_signer(P256_PRIV_PEM);
  conformance(s, ST_KEY_P256);
  st_signer_free(s);
}

static void rfc8032_test1_and_keyids(void **state) {
  /* RFC 8032 section 7.1 TEST 1: the signature of the empty message. */
  static const char want_hex[] =
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
      "39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  st_pubkey_t *p = fx_pubkey(P256_PUB_PEM);
  st_buf_t sig = ST_BUF_INIT, hex = ST_BUF_INIT;

  assert_int_equal(st_signer_sign(s, "", 0, &sig, NULL), 0);
  assert_int_equal(st_buf_add_hex(&hex, sig.data, sig.len), 0);
  assert_string_equal(hex.data, want_hex);
  assert_string_equal(st_pubkey_keyid(st_signer_pubkey(s)), ED25519_KEYID);
  assert_string_equal(st_pubkey_pem(st_signer_pubkey(s)), ED25519_PUB_PEM);
  assert_string_equal(st_pubkey_keyid(p), P256_KEYID);
  st_buf_release(&sig);
  st_buf_release(&hex);
  st_pubkey_free(p);
  st_signer_free(s);
}

static void wrong_key_fails(void **state) {
  st_signer_t *s = fx_signer(ED25519_PRIV_PEM);
  st_pubkey_t *other = fx_pubkey(P256_PUB_PEM);
  st_buf_t sig = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;

  assert_int_equal(st_signer_sign(s, "m", 1, &sig, NULL), 0);
  assert_int_equal(st_pubkey_verify(other, "m", 1, sig.data, sig.len, &err), ST_EVERIFY);
  st_buf_release(&sig);
  st_pubkey_free(other);
  st_signer_free(s);
}

static void expect_pem_rejected(const char *pem, int code, const char *reason) {
  st_pubkey_t *k = (st_pubkey_t *)1;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_pubkey_from_pem(&k, pem, strlen(pem), &err), code);
  assert_null(k);
  assert_non_null(strstr(err.msg, reason));
}

static void bad_public_keys_rejected(void **state) {
  static const char rsa[] =
      "-----BEGIN PUBLIC KEY-----\n"
      "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC2h6NDBWvA5wMqABkAjUgB6dki\n"
      "TvYxaxyl1MPLjLZBtSiwTawgSw3KcZTzHqT7i78J6LH0d0ohaCov2SYHHKYH5EUq\n"
      "IHh5sOKlP3o3+//Ruq+HF6u8085/WXHSAYz4KIZ5xJm3oEFapTkLMnS1Brz2pSNW\n"
      "zjHmA3fubzN6pxZDcQIDAQAB\n"
      "-----END PUBLIC KEY-----\n";
  st_pubkey_t *k = NULL;
  st_error_t err = ST_ERROR_INIT;
  const unsigned char *der;
  unsigned char longer[200];
  size_t len;
  char *big = calloc(1, ST_PUBKEY_PEM_MAX + 2);

  expect_pem_rejected(rsa, ST_EUNSUPPORTED, "not Ed25519 or ECDSA P-256");
  expect_pem_rejected(P384_PUB_PEM, ST_EUNSUPPORTED, "not Ed25519 or ECDSA P-256");
  expect_pem_rejected("hello", ST_EPARSE, "no PEM PUBLIC KEY");
  expect_pem_rejected(ED25519_PRIV_PEM, ST_EPARSE, "no PEM PUBLIC KEY");
  memset(big, 'A', ST_PUBKEY_PEM_MAX + 1);
  expect_pem_rejected(big, ST_ETOOBIG, "larger than");
  free(big);

  /* DER with trailing bytes, or truncated. */
  k = fx_pubkey(ED25519_PUB_PEM);
  der = st_pubkey_spki(k, &len);
  memcpy(longer, der, len);
  longer[len] = 0;
  st_pubkey_t *k2 = NULL;
  assert_int_equal(st_pubkey_from_spki(&k2, longer, len + 1, &err), ST_EPARSE);
  assert_int_equal(st_pubkey_from_spki(&k2, longer, len - 1, &err), ST_EPARSE);
  assert_null(k2);
  st_pubkey_free(k);

  assert_int_equal(st_pubkey_load(&k, "/nonexistent/key.pem", &err), ST_ENOENT);
  assert_non_null(strstr(err.msg, "/nonexistent/key.pem"));
  assert_int_equal(st_pubkey_load(&k, "/tmp", &err), ST_EIO);
  assert_non_null(strstr(err.msg, "not a regular file"));
}

static void bad_private_keys_rejected(void **state) {
  char *dir = fx_tmpdir(), *pub, *garbage;
  st_signer_t *s = NULL;
  st_error_t err = ST_ERROR_INIT;

  pub = fx_write(dir, "pub.pem", ED25519_PUB_PEM);
  garbage = fx_write(dir, "g.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  assert_int_equal(st_signer_file_open(&s, pub, &err), ST_EPARSE);
  assert_non_null(strstr(err.msg, "no unencrypted PEM private key"));
  assert_int_equal(st_signer_open(&s, garbage, &err), ST_EPARSE);
  assert_int_equal(st_signer_open(&s, "/nonexistent/k.pem", &err), ST_ENOENT);
  assert_null(s);
  free(pub);
  free(garbage);
  fx_rmdir(dir);
}

static void generate_keys(void **state) {
  static const st_key_type types[] = {ST_KEY_ED25519, ST_KEY_P256};
  char *dir = fx_tmpdir(), priv[256], pub[256];
  st_error_t err = ST_ERROR_INIT;
  st_key_type t;

  assert_int_equal(st_key_type_parse("ed25519", &t), 0);
  assert_int_equal(t, ST_KEY_ED25519);
  assert_int_equal(st_key_type_parse("p256", &t), 0);
  assert_int_equal(t, ST_KEY_P256);
  assert_int_equal(st_key_type_parse("rsa", &t), ST_EINVAL);
  for (size_t i = 0; i < 2; i++) {
    st_signer_t *s = NULL;
    st_pubkey_t *p = NULL;
    struct stat st;
    FILE *f;
    char line[64];

    snprintf(priv, sizeof(priv), "%s/k%zu.pem", dir, i);
    snprintf(pub, sizeof(pub), "%s/k%zu.pub.pem", dir, i);
    assert_int_equal(st_key_generate(types[i], priv, pub, &err), 0);
    assert_int_equal(stat(priv, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    f = fopen(priv, "r");
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n"); /* PKCS#8 */
    assert_int_equal(st_signer_file_open(&s, priv, &err), 0);
    assert_int_equal(st_pubkey_load(&p, pub, &err), 0);
    assert_int_equal(st_pubkey_type(p), types[i]);
    assert_string_equal(st_pubkey_keyid(p), st_pubkey_keyid(st_signer_pubkey(s)));
    conformance(s, types[i]);
    /* Never overwrite: neither when the private nor when the public file exists. */
    assert_int_equal(st_key_generate(types[i], priv, "/tmp/unused.pub.pem", &err), ST_EEXIST);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_int_equal(st_key_generate(types[i], "/tmp/unused.pem", pub, &err), ST_EEXIST);
    assert_int_equal(access("/tmp/unused.pem", F_OK), -1);
    st_pubkey_free(p);
    st_signer_free(s);
  }
  /* A failure writing the public key leaves no private key behind. */
  snprintf(priv, sizeof(priv), "%s/lonely.pem", dir);
  assert_int_equal(st_key_generate(ST_KEY_P256, priv, "/nonexistent/dir/pub.pem", &err),
                   ST_EIO);
  assert_int_equal(access(priv, F_OK), -1);
  fx_rmdir(dir);
}

/* --- PKCS#11 on SoftHSM2 --- */

static char *hsm_dir;

static int hsm_setup(void **state) {
  char conf[512];
  if (access(SOFTHSM_MODULE, R_OK) != 0 || system("command -v pkcs11-tool >/dev/null") != 0) {
    const char *ci = getenv("CI");
    fprintf(stderr, "SoftHSM2/opensc missing (ops/deps.sh installs them)\n");
    return ci && strcmp(ci, "true") == 0 ? -1 : 0;
  }
  hsm_dir = fx_tmpdir();
  snprintf(conf, sizeof(conf), "%s/softhsm2.conf", hsm_dir);
  {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "mkdir %s/tokens && printf 'directories.tokendir = %s/tokens\\n"
             "objectstore.backend = file\\nlog.level = ERROR\\n' > %s",
             hsm_dir, hsm_dir, conf);
    if (system(cmd) != 0)
      return -1;
  }
  setenv("SOFTHSM2_CONF", conf, 1);
  if (system("softhsm2-util --init-token --free --label stella --so-pin 5678 --pin 1234 "
             ">/dev/null") != 0 ||
      system("pkcs11-tool --module " SOFTHSM_MODULE " --token-label stella --login --pin 1234"
             " --keypairgen --key-type EC:prime256v1 --label p256 --id 01 >/dev/null 2>&1") != 0 ||
      system("pkcs11-tool --module " SOFTHSM_MODULE " --token-label stella --login --pin 1234"
             " --keypairgen --key-type EC:edwards25519 --label ed --id 02 >/dev/null 2>&1") != 0)
    return -1;
  return 0;
}

static int hsm_teardown(void **state) {
  if (hsm_dir)
    fx_rmdir(hsm_dir);
  return 0;
}

#define URI(obj, q) "pkcs11:token=stella;object=" obj "?module-path=" SOFTHSM_MODULE q

static void pkcs11_provider_conformance(void **state) {
  st_signer_t *s = NULL, *s2 = NULL;
  st_error_t err = ST_ERROR_INIT;

  if (!hsm_dir)
    skip();
  assert_int_equal(st_signer_open(&s, URI("ed", "&pin-value=1234"), &err), 0);
  assert_string_equal(st_signer_provider(s), "pkcs11");
  /* A second signer on the same module shares it; freeing one keeps the other usable. */
  assert_int_equal(st_signer_pkcs11_open(&s2, URI("p256", "&pin-value=1234"), &err), 0);
  conformance(s, ST_KEY_ED25519);
  st_signer_free(s);
  conformance(s2, ST_KEY_P256);
  st_signer_free(s2);
  /* PIN and module from the environment. */
  setenv("STELLA_PKCS11_PIN", "1234", 1);
  setenv("STELLA_PKCS11_MODULE", SOFTHSM_MODULE, 1);
  assert_int_equal(st_signer_open(&s, "pkcs11:token=stella;object=p256;id=%01", &err), 0);
  conformance(s, ST_KEY_P256);
  st_signer_free(s);
  unsetenv("STELLA_PKCS11_PIN");
  unsetenv("STELLA_PKCS11_MODULE");
}

static void expect_p11_fail(const char *uri, int code, const char *reason) {
  st_signer_t *s = (st_signer_t *)1;
  st_error_t err = ST_ERROR_INIT;
  int rc = st_signer_pkcs11_open(&s, uri, &err);
  if (rc == 0)
    st_signer_free(s);
  assert_true(rc == 0 || s == NULL);
  if (rc != code || !strstr(err.msg, reason))
    fail_msg("%s: got '%s', want '%s'", uri, err.msg, reason);
}

static void pkcs11_rejections(void **state) {
  if (!hsm_dir)
    skip();
  expect_p11_fail("pkcs12:token=stella", ST_EPARSE, "pkcs11 URI");
  expect_p11_fail("pkcs11:token=stella;object=ed;frobnicate=1?module-path=" SOFTHSM_MODULE, ST_EPARSE,
                  "unrecognised");
  expect_p11_fail("pkcs11:token=stella?module-path=" SOFTHSM_MODULE, ST_EINVAL,
                  "token= and object= are required");
  expect_p11_fail("pkcs11:object=ed?module-path=" SOFTHSM_MODULE, ST_EINVAL,
                  "token= and object= are required");
  expect_p11_fail("pkcs11:token=stella;object=ed?pin-value=1234", ST_EINVAL,
                  "STELLA_PKCS11_MODULE unset");
  expect_p11_fail("pkcs11:token=stella;object=ed?pin-value=1234&module-path=/nonexistent.so",
                  ST_ENOENT, "cannot load module");
  expect_p11_fail(URI("ed", "&pin-value=9999"), ST_EPERM, "login failed");
  expect_p11_fail(URI("missing", "&pin-value=1234"), ST_ENOENT, "no private key");
  expect_p11_fail("pkcs11:token=other;object=ed?module-path=" SOFTHSM_MODULE "&pin-value=1234",
                  ST_ENOENT, "no token matches");
  /* Without login the private key is invisible. */
  expect_p11_fail(URI("ed", ""), ST_ENOENT, "no private key");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(file_provider_conformance),
      cmocka_unit_test(rfc8032_test1_and_keyids),
      cmocka_unit_test(wrong_key_fails),
      cmocka_unit_test(bad_public_keys_rejected),
      cmocka_unit_test(bad_private_keys_rejected),
      cmocka_unit_test(generate_keys),
  };
  const struct CMUnitTest hsm_tests[] = {
      cmocka_unit_test(pkcs11_provider_conformance),
      cmocka_unit_test(pkcs11_rejections),
  };
  int failed = cmocka_run_group_tests_name("keys", tests, NULL, NULL);
  return failed + cmocka_run_group_tests_name("keys_pkcs11", hsm_tests, hsm_setup,
                                              hsm_teardown);
}
