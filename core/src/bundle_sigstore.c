/* bundle_sigstore.c: manifest.sigstore.json, the bundle's DSSE envelope and RFC 3161
 * response as a Sigstore bundle v0.3 (public-key hint, no transparency log), written in
 * canonical form and checked back against manifest.dsse.json and manifest.tsr. */
#include <string.h>

#include "bundle_internal.h"
#include "stella/base64.h"
#include "stella/jcs.h"
#include "stella/json.h"

int st__bundle_sigstore_write(const char *env, size_t env_len, const char *keyid,
                              const void *tsr, size_t tsr_len, st_buf_t *out, st_error_t *err) {
  size_t start = out->len;
  int rc;

  if ((rc = st_buf_adds(out, "{\"dsseEnvelope\":")) || (rc = st_buf_add(out, env, env_len)) ||
      (rc = st_buf_adds(out, ",\"mediaType\":\"" ST_BUNDLE_SIGSTORE_MEDIA_TYPE
                        "\",\"verificationMaterial\":{\"publicKey\":{\"hint\":")) ||
      (rc = st_buf_add_json_str(out, keyid, strlen(keyid))) ||
      (rc = st_buf_adds(out, "},\"timestampVerificationData\":{\"rfc3161Timestamps\":[")))
    goto done;
  if (tsr_len && ((rc = st_buf_adds(out, "{\"signedTimestamp\":\"")) ||
                  (rc = st_base64_encode(out, tsr, tsr_len)) || (rc = st_buf_adds(out, "\"}"))))
    goto done;
  rc = st_buf_adds(out, "]},\"tlogEntries\":[]}}");
done:
  if (rc) {
    st_fail(err, rc, "manifest.sigstore.json: %s", st_strerror(rc));
    out->len = start;
    out->data[start] = '\0';
  }
  return rc;
}

int st__bundle_sigstore_check(const char *sb, size_t sb_len, const char *env, size_t env_len,
                              const void *tsr, size_t tsr_len, st_error_t *err) {
  st_json_limits_t lim = {ST_BUNDLE_META_MAX, 16};
  json_t *root = NULL, *envj = NULL;
  st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT, ts = ST_BUF_INIT;
  const json_t *vm, *tvd, *list, *de;
  const char *mt, *hint, *keyid, *st;
  int rc;

  if ((rc = st_json_parse(sb, sb_len, &lim, &root, err))) {
    st_error_wrap(err, "manifest.sigstore.json");
    goto done;
  }
  if ((rc = st_json_parse(env, env_len, &lim, &envj, err))) {
    st_error_wrap(err, "manifest.dsse.json");
    goto done;
  }
  rc = ST_EVERIFY;
  mt = json_string_value(json_object_get(root, "mediaType"));
  vm = json_object_get(root, "verificationMaterial");
  de = json_object_get(root, "dsseEnvelope");
  if (json_object_size(root) != 3 || !mt || strcmp(mt, ST_BUNDLE_SIGSTORE_MEDIA_TYPE) || !de ||
      json_object_size(vm) != 3) {
    st_fail(err, rc, "manifest.sigstore.json: not {dsseEnvelope, mediaType %s, "
            "verificationMaterial}", ST_BUNDLE_SIGSTORE_MEDIA_TYPE);
    goto done;
  }
  hint = json_string_value(json_object_get(json_object_get(vm, "publicKey"), "hint"));
  keyid = json_string_value(
      json_object_get(json_array_get(json_object_get(envj, "signatures"), 0), "keyid"));
  if (!hint || !keyid || strcmp(hint, keyid) ||
      json_object_size(json_object_get(vm, "publicKey")) != 1) {
    st_fail(err, rc, "publicKey.hint differs from the DSSE keyid");
    goto done;
  }
  if (!json_is_array(json_object_get(vm, "tlogEntries")) ||
      json_array_size(json_object_get(vm, "tlogEntries"))) {
    st_fail(err, rc, "tlogEntries must be an empty array");
    goto done;
  }
  if ((rc = st_jcs_encode(de, &a, err)) || (rc = st_jcs_encode(envj, &b, err)))
    goto done;
  rc = ST_EVERIFY;
  if (a.len != b.len || memcmp(a.data, b.data, a.len)) {
    st_fail(err, rc, "dsseEnvelope differs from manifest.dsse.json");
    goto done;
  }
  tvd = json_object_get(vm, "timestampVerificationData");
  list = json_object_get(tvd, "rfc3161Timestamps");
  if (json_object_size(tvd) != 1 || !json_is_array(list) ||
      json_array_size(list) != (tsr_len ? 1u : 0u)) {
    st_fail(err, rc, "expected %d rfc3161Timestamps (manifest.tsr %s)", tsr_len ? 1 : 0,
            tsr_len ? "present" : "absent");
    goto done;
  }
  if (tsr_len) {
    const json_t *t0 = json_array_get(list, 0);
    st = json_string_value(json_object_get(t0, "signedTimestamp"));
    ts.max = ST_TSA_MAX_RESPONSE;
    if (!st || json_object_size(t0) != 1 || st_base64_decode(&ts, st, strlen(st), NULL) ||
        ts.len != tsr_len || memcmp(ts.data, tsr, tsr_len)) {
      st_fail(err, rc, "signedTimestamp differs from manifest.tsr");
      goto done;
    }
  }
  rc = 0;
done:
  json_decref(root);
  json_decref(envj);
  st_buf_release(&a);
  st_buf_release(&b);
  st_buf_release(&ts);
  return rc;
}
