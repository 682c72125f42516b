/* keys_pkcs11.c: the PKCS#11 key provider (tested with SoftHSM2).
 *
 * Approach: the module is dlopen()ed and driven through C_GetFunctionList, with the
 * standard header and the RFC 7512 URI parser from p11-kit (libp11-kit-dev, Debian 12).
 * The alternatives on Debian 12 were worse fits: the OpenSSL `pkcs11` ENGINE (libp11) is
 * the deprecated ENGINE API and hides the session, and the OpenSSL 3 pkcs11-provider is
 * not packaged for bookworm. p11-kit's own module loader would route through its proxy
 * and configuration files, which a test token in a temp dir does not want.
 *
 * Modules are shared per path in a small process-wide table: C_Initialize once (with
 * CKF_OS_LOCKING_OK), C_Finalize and dlclose when the last signer using it is freed.
 * Each signer owns one logged-in session; PKCS#11 sessions must not be used by two
 * threads at once, so sign holds the signer's mutex. ECDSA is hashed here (SHA-256) and
 * signed with CKM_ECDSA, whose raw r||s result is re-encoded as DER; Ed25519 uses
 * CKM_EDDSA over the message. */
#include "stella/keys.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "stella/mem.h"

typedef struct module_s {
  struct module_s *next;
  char *path;
  void *dl;
  CK_FUNCTION_LIST_PTR f;
  int finalize; /* we initialised it, so we finalise it */
  unsigned refs;
} module_t;

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static module_t *modules;

typedef struct p11_key_s {
  module_t *mod;
  CK_SESSION_HANDLE session;
  CK_OBJECT_HANDLE key;
  st_key_type type;
  pthread_mutex_t lock;
} p11_key_t;

static int module_get(const char *path, module_t **out, st_error_t *err) {
  CK_C_GetFunctionList get;
  CK_C_INITIALIZE_ARGS args;
  module_t *m;
  CK_RV rv;
  int rc = 0;

  pthread_mutex_lock(&modules_lock);
  for (m = modules; m; m = m->next)
    if (strcmp(m->path, path) == 0) {
      m->refs++;
      goto done;
    }
  if (!(m = st_calloc(1, sizeof(*m))) || !(m->path = st_strdup(path))) {
    rc = st_fail(err, ST_ENOMEM, "pkcs11: out of memory");
    goto done;
  }
  /* NODELETE: modules may leave threads or atexit handlers behind, so never unmap. */
  if (!(m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE))) {
    rc = st_fail(err, ST_ENOENT, "pkcs11: cannot load module %s: %s", path, dlerror());
    goto done;
  }
  *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
  if (!get || get(&m->f) != CKR_OK || !m->f) {
    rc = st_fail(err, ST_ECRYPTO, "pkcs11: %s has no usable C_GetFunctionList", path);
    goto done;
  }
  memset(&args, 0, sizeof(args));
  args.flags = CKF_OS_LOCKING_OK;
  rv = m->f->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    rc = st_fail(err, ST_ECRYPTO, "pkcs11: C_Initialize of %s failed (CKR 0x%lx)", path,
                 (unsigned long)rv);
    goto done;
  }
  m->finalize = rv == CKR_OK;
  m->refs = 1;
  m->next = modules;
  modules = m;
done:
  if (rc && m) {
    if (m->dl)
      dlclose(m->dl);
    st_free(m->path);
    st_free(m);
    m = NULL;
  }
  pthread_mutex_unlock(&modules_lock);
  *out = m;
  return rc;
}

static void module_put(module_t *m) {
  module_t **pp;

  pthread_mutex_lock(&modules_lock);
  if (--m->refs == 0) {
    for (pp = &modules; *pp != m; pp = &(*pp)->next)
      ;
    *pp = m->next;
    if (m->finalize)
      m->f->C_Finalize(NULL);
    dlclose(m->dl);
    st_free(m->path);
    st_free(m);
  }
  pthread_mutex_unlock(&modules_lock);
}

/* ECDSA raw r||s (2 x 32 bytes) -> DER ECDSA-Sig-Value appended to out. */
static int raw_to_der(const unsigned char *raw, size_t len, st_buf_t *out) {
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = NULL, *s = NULL;
  unsigned char *der = NULL;
  int n, rc = ST_ECRYPTO;

  if (!sig || len != 64 || !(r = BN_bin2bn(raw, 32, NULL)) ||
      !(s = BN_bin2bn(raw + 32, 32, NULL)) || ECDSA_SIG_set0(sig, r, s) != 1)
    goto done;
  r = s = NULL;
  if ((n = i2d_ECDSA_SIG(sig, &der)) > 0)
    rc = st_buf_add(out, der, (size_t)n);
done:
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  OPENSSL_free(der);
  return rc;
}

static int p11_sign(void *impl, const void *msg, size_t len, st_buf_t *sig, st_error_t *err) {
  p11_key_t *k = impl;
  CK_MECHANISM mech = {k->type == ST_KEY_ED25519 ? CKM_EDDSA : CKM_ECDSA, NULL, 0};
  unsigned char md[32], raw[ST_SIG_MAX];
  CK_ULONG raw_len = sizeof(raw);
  const unsigned char *in = msg;
  CK_ULONG in_len = (CK_ULONG)len;
  CK_RV rv;
  int rc = 0;

  if (k->type == ST_KEY_P256) {
    if (EVP_Digest(msg, len, md, NULL, EVP_sha256(), NULL) != 1)
      return st_fail(err, ST_ECRYPTO, "pkcs11 signer: SHA-256 failed");
    in = md, in_len = sizeof(md);
  }
  pthread_mutex_lock(&k->lock);
  rv = k->mod->f->C_SignInit(k->session, &mech, k->key);
  if (rv == CKR_OK)
    rv = k->mod->f->C_Sign(k->session, (CK_BYTE_PTR)in, in_len, raw, &raw_len);
  pthread_mutex_unlock(&k->lock);
  if (rv != CKR_OK)
    return st_fail(err, ST_ECRYPTO, "pkcs11 signer: C_Sign failed (CKR 0x%lx)",
                   (unsigned long)rv);
  if (k->type == ST_KEY_ED25519)
    rc = raw_len == 64 ? st_buf_add(sig, raw, raw_len) : ST_ECRYPTO;
  else
    rc = raw_to_der(raw, raw_len, sig);
  if (rc)
    st_fail(err, rc, "pkcs11 signer: unexpected %lu-byte signature from the token",
            (unsigned long)raw_len);
  return rc;
}

static void p11_free(void *impl) {
  p11_key_t *k = impl;
  if (!k)
    return;
  if (k->mod) {
    if (k->session != CK_INVALID_HANDLE)
      k->mod->f->C_CloseSession(k->session);
    module_put(k->mod);
  }
  pthread_mutex_destroy(&k->lock);
  st_free(k);
}

static const st_signer_ops_t p11_ops = {"pkcs11", p11_sign, p11_free};

/* The one object of class cls matching the URI's label/id. */
static int find_one(p11_key_t *k, P11KitUri *uri, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out,
                    const char *what, st_error_t *err) {
  CK_ATTRIBUTE tmpl[3];
  CK_ATTRIBUTE_PTR a;
  CK_OBJECT_HANDLE found[2];
  CK_ULONG n = 0, count = 0;
  CK_RV rv;

  tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
  if ((a = p11_kit_uri_get_attribute(uri, CKA_LABEL)))
    tmpl[n++] = *a;
  if ((a = p11_kit_uri_get_attribute(uri, CKA_ID)))
    tmpl[n++] = *a;
  rv = k->mod->f->C_FindObjectsInit(k->session, tmpl, n);
  if (rv == CKR_OK) {
    rv = k->mod->f->C_FindObjects(k->session, found, 2, &count);
    k->mod->f->C_FindObjectsFinal(k->session);
  }
  if (rv != CKR_OK)
    return st_fail(err, ST_ECRYPTO, "pkcs11: searching for the %s failed (CKR 0x%lx)", what,
                   (unsigned long)rv);
  if (count == 0)
    return st_fail(err, ST_ENOENT, "pkcs11: no %s with that object label/id on the token", what);
  if (count > 1)
    return st_fail(err, ST_ECONFLICT, "pkcs11: more than one %s matches the URI", what);
  *out = found[0];
  return 0;
}

/* SPKI DER of the public-key object: CKA_EC_POINT (DER OCTET STRING or bare) under the
 * fixed SPKI prefix of its curve. */
static int public_spki(p11_key_t *k, CK_OBJECT_HANDLE pub, st_buf_t *spki, st_error_t *err) {
  static const unsigned char p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                           0xce, 0x3d, 0x03, 0x01, 0x07};
  static const unsigned char p256_spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86,
                                            0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
                                            0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
                                            0x42, 0x00};
  static const unsigned char ed_spki[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                          0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  CK_KEY_TYPE kt = 0;
  unsigned char params[64], point[80];
  CK_ATTRIBUTE attrs[3] = {{CKA_KEY_TYPE, &kt, sizeof(kt)},
                           {CKA_EC_PARAMS, params, sizeof(params)},
                           {CKA_EC_POINT, point, sizeof(point)}};
  const unsigned char *q = point;
  size_t qlen, want;
  CK_RV rv = k->mod->f->C_GetAttributeValue(k->session, pub, attrs, 3);
  int rc;

  if (rv != CKR_OK)
    return st_fail(err, ST_EUNSUPPORTED, "pkcs11: cannot read the public key's EC attributes "
                   "(CKR 0x%lx); only EC P-256 and Ed25519 keys are supported",
                   (unsigned long)rv);
  if (kt == CKK_EC) {
    if (attrs[1].ulValueLen != sizeof(p256_oid) || memcmp(params, p256_oid, sizeof(p256_oid)))
      return st_fail(err, ST_EUNSUPPORTED, "pkcs11: EC key is not on P-256");
    k->type = ST_KEY_P256, want = 65;
  } else if (kt == CKK_EC_EDWARDS) {
    k->type = ST_KEY_ED25519, want = 32;
  } else {
    return st_fail(err, ST_EUNSUPPORTED, "pkcs11: key type 0x%lx is not EC or Ed25519",
                   (unsigned long)kt);
  }
  qlen = attrs[2].ulValueLen;
  if (qlen == want + 2 && q[0] == 0x04 && q[1] == want)
    q += 2, qlen -= 2;
  if (qlen != want)
    return st_fail(err, ST_EPARSE, "pkcs11: CKA_EC_POINT has an unexpected length %zu", qlen);
  if (kt == CKK_EC)
    rc = st_buf_add(spki, p256_spki, sizeof(p256_spki));
  else
    rc = st_buf_add(spki, ed_spki, sizeof(ed_spki));
  if (!rc)
    rc = st_buf_add(spki, q, qlen);
  return rc ? st_fail(err, rc, "pkcs11: %s", st_strerror(rc)) : 0;
}

/* Open a session on the first token the URI matches and log in if a PIN is given. */
static int open_session(p11_key_t *k, P11KitUri *uri, st_buf_t *pin, st_error_t *err) {
  CK_SLOT_ID *slots = NULL;
  CK_ULONG nslots = 0, i;
  CK_TOKEN_INFO ti;
  CK_RV rv;
  int rc = 0;

  rv = k->mod->f->C_GetSlotList(CK_TRUE, NULL, &nslots);
  if (rv == CKR_OK && nslots > 0) {
    if (!(slots = st_calloc(nslots, sizeof(*slots)))) {
      rc = st_fail(err, ST_ENOMEM, "pkcs11: out of memory");
      goto done;
    }
    rv = k->mod->f->C_GetSlotList(CK_TRUE, slots, &nslots);
  }
  if (rv != CKR_OK) {
    rc = st_fail(err, ST_ECRYPTO, "pkcs11: C_GetSlotList failed (CKR 0x%lx)",
                 (unsigned long)rv);
    goto done;
  }
  for (i = 0; i < nslots; i++)
    if (k->mod->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
        p11_kit_uri_match_token_info(uri, &ti))
      break;
  if (i == nslots) {
    rc = st_fail(err, ST_ENOENT, "pkcs11: no token matches the URI's token attributes");
    goto done;
  }
  rv = k->mod->f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &k->session);
  if (rv != CKR_OK) {
    k->session = CK_INVALID_HANDLE;
    rc = st_fail(err, ST_ECRYPTO, "pkcs11: C_OpenSession failed (CKR 0x%lx)",
                 (unsigned long)rv);
    goto done;
  }
  if (pin->len) {
    rv = k->mod->f->C_Login(k->session, CKU_USER, (CK_UTF8CHAR_PTR)pin->data, pin->len);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
      rc = st_fail(err, rv == CKR_PIN_INCORRECT ? ST_EPERM : ST_ECRYPTO,
                   "pkcs11: login failed (CKR 0x%lx)", (unsigned long)rv);
  }
done:
  st_free(slots);
  return rc;
}

int st_signer_pkcs11_open(st_signer_t **out, const char *uri_str, st_error_t *err) {
  P11KitUri *uri = NULL;
  p11_key_t *k = NULL;
  st_buf_t pin = ST_BUF_INIT, spki = ST_BUF_INIT;
  CK_OBJECT_HANDLE pub;
  const char *module, *p;
  int rc = 0, prc;

  *out = NULL;
  if (!(uri = p11_kit_uri_new()) || !(k = st_calloc(1, sizeof(*k)))) {
    rc = st_fail(err, ST_ENOMEM, "pkcs11: out of memory");
    goto done;
  }
  k->session = CK_INVALID_HANDLE;
  pthread_mutex_init(&k->lock, NULL);
  if ((prc = p11_kit_uri_parse(uri_str, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, uri)) !=
      P11_KIT_URI_OK) {
    rc = st_fail(err, ST_EPARSE, "pkcs11 URI: %s", p11_kit_uri_message(prc));
    goto done;
  }
  if (p11_kit_uri_any_unrecognized(uri)) {
    rc = st_fail(err, ST_EPARSE, "pkcs11 URI: unrecognised attribute");
    goto done;
  }
  if (!p11_kit_uri_get_attribute(uri, CKA_LABEL) || !p11_kit_uri_get_token_info(uri)->label[0] ||
      p11_kit_uri_get_token_info(uri)->label[0] == ' ') {
    rc = st_fail(err, ST_EINVAL, "pkcs11 URI: both token= and object= are required");
    goto done;
  }
  module = p11_kit_uri_get_module_path(uri);
  if (!module)
    module = getenv("STELLA_PKCS11_MODULE");
  if (!module || !*module) {
    rc = st_fail(err, ST_EINVAL, "pkcs11 URI: no module-path= and STELLA_PKCS11_MODULE unset");
    goto done;
  }
  p = p11_kit_uri_get_pin_value(uri);
  if (!p)
    p = getenv("STELLA_PKCS11_PIN");
  if (p && (rc = st_buf_adds(&pin, p))) {
    st_fail(err, rc, "pkcs11: PIN too long");
    goto done;
  }
  if ((rc = module_get(module, &k->mod, err)) || (rc = open_session(k, uri, &pin, err)) ||
      (rc = find_one(k, uri, CKO_PRIVATE_KEY, &k->key, "private key", err)) ||
      (rc = find_one(k, uri, CKO_PUBLIC_KEY, &pub, "public key", err)) ||
      (rc = public_spki(k, pub, &spki, err)))
    goto done;
  rc = st_signer_new(out, &p11_ops, k, spki.data, spki.len, err);
  k = NULL; /* owned by the signer now, even on failure */
done:
  st_memzero(pin.data, pin.len);
  st_buf_release(&pin);
  st_buf_release(&spki);
  p11_free(k);
  if (uri)
    p11_kit_uri_free(uri);
  return rc;
}
