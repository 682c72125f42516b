/* keys_fixtures.h: fixed test keys for the keys and DSSE tests.
 *
 * ED25519_*: RFC 8032 section 7.1 TEST 1 (seed 9d61b1...7f60, public d75a98...511a) as
 * PKCS#8 / SPKI PEM (made with `openssl pkey` from the raw seed). P256_*: a P-256 key made
 * with `openssl genpkey`. The keyids are what `ssh-keygen -l` prints for the same public
 * keys (P-256 converted with `ssh-keygen -i -m PKCS8`; Ed25519, which ssh-keygen 9.2
 * cannot import from PKCS#8, from an `ssh-ed25519` line built from the raw public key). */
#ifndef STELLA_KEYS_FIXTURES_H
#define STELLA_KEYS_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stella/keys.h"

#define ED25519_PRIV_PEM                                                                   \
  "-----BEGIN PRIVATE KEY-----\n"                                                          \
  "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"                     \
  "-----END PRIVATE KEY-----\n"
#define ED25519_PUB_PEM                                                                    \
  "-----BEGIN PUBLIC KEY-----\n"                                                           \
  "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"                         \
  "-----END PUBLIC KEY-----\n"
#define ED25519_KEYID "SHA256:bbXpuKG6zhzdmnxq256TlqzFBzRl2f6OOg722cYNbU8"

#define P256_PRIV_PEM                                                                      \
  "-----BEGIN PRIVATE KEY-----\n"                                                          \
  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguoY5jwndLEv1pPVn\n"                     \
  "ByxP8zM568qJjuDgY4FBFpOKN+OhRANCAARqZ2nywM/twMIl85bBSszvkaWWAWlr\n"                     \
  "E/nMjiw/46uiVozrewol0FCK84anVVZfny7p6hBuJ1Xi8E60NSHaxDiN\n"                             \
  "-----END PRIVATE KEY-----\n"
#define P256_PUB_PEM                                                                       \
  "-----BEGIN PUBLIC KEY-----\n"                                                           \
  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEamdp8sDP7cDCJfOWwUrM75GllgFp\n"                     \
  "axP5zI4sP+OrolaM63sKJdBQivOGp1VWX58u6eoQbidV4vBOtDUh2sQ4jQ==\n"                         \
  "-----END PUBLIC KEY-----\n"
#define P256_KEYID "SHA256:a7ReS8QpoUFHgTSyt1kpEZN2qLgJfSs48Ky+irUpgAI"

#define P384_PUB_PEM                                                                       \
  "-----BEGIN PUBLIC KEY-----\n"                                                           \
  "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEjisemdX/rY/kN+0QP06iv0tph8eErapb\n"                     \
  "6iRHIX6Py/9YMdlk11S4LevdP+AIp0GG2q1u/rPtr8LwkxBwqW1YAiFIhLn2SEGq\n"                     \
  "ftCOOTpuT2d395ROOlu0qAmaahlwZfo8\n"                                                     \
  "-----END PUBLIC KEY-----\n"

/* A fresh private temp directory; the caller removes it with fx_rmdir. */
static inline char *fx_tmpdir(void) {
  char *d = strdup("/tmp/stella-test-XXXXXX");
  return d && mkdtemp(d) ? d : NULL;
}

static inline void fx_rmdir(char *dir) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "cannot remove %s\n", dir);
  free(dir);
}

/* Write text to dir/name; returns the path (free it). */
static inline char *fx_write(const char *dir, const char *name, const char *text) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *path = malloc(n);
  FILE *f;
  snprintf(path, n, "%s/%s", dir, name);
  f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0)
    abort();
  return path;
}

/* A file signer for the PEM text (in a temp dir removed before returning). */
static inline st_signer_t *fx_signer(const char *pem) {
  char *dir = fx_tmpdir(), *path;
  st_signer_t *s = NULL;
  st_error_t err = ST_ERROR_INIT;
  if (!dir)
    abort();
  path = fx_write(dir, "key.pem", pem);
  if (st_signer_file_open(&s, path, &err) != 0) {
    fprintf(stderr, "fx_signer: %s\n", st_error_text(&err));
    abort();
  }
  free(path);
  fx_rmdir(dir);
  return s;
}

static inline st_pubkey_t *fx_pubkey(const char *pem) {
  st_pubkey_t *k = NULL;
  if (st_pubkey_from_pem(&k, pem, strlen(pem), NULL) != 0)
    abort();
  return k;
}

#endif
