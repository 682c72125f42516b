/* dsse.c: DSSE v1 envelope signing (hand-written JSON in a fixed key order, so output is
 * byte-stable) and verification (jansson parse with duplicate keys rejected, bounded
 * sizes, strict base64). See dsse.h for the rules. */
#include "stella/dsse.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "stella/base64.h"

int st_dsse_pae(st_buf_t *out, const char *payload_type, size_t type_len, const void *payload,
                size_t payload_len) {
  int rc = st_buf_addf(out, "DSSEv1 %zu ", type_len);
  if (!rc)
    rc = st_buf_add(out, payload_type, type_len);
  if (!rc)
    rc = st_buf_addf(out, " %zu ", payload_len);
  if (!rc)
    rc = st_buf_add(out, payload, payload_len);
  return rc;
}

int st_dsse_sign(st_signer_t *signer, const char *payload_type, const void *payload,
                 size_t payload_len, st_buf_t *envelope_json, st_error_t *err) {
  st_buf_t pae = ST_BUF_INIT, sig = ST_BUF_INIT;
  size_t type_len = strlen(payload_type), start = envelope_json->len;
  const char *keyid = st_pubkey_keyid(st_signer_pubkey(signer));
  int rc = 0;

  if (type_len == 0 || type_len > ST_DSSE_TYPE_MAX || !st_utf8_valid(payload_type, type_len)) {
    rc = st_fail(err, ST_EINVAL, "dsse sign: payloadType must be 1..%d bytes of UTF-8",
                 ST_DSSE_TYPE_MAX);
    goto done;
  }
  if ((rc = st_dsse_pae(&pae, payload_type, type_len, payload, payload_len))) {
    st_fail(err, rc, "dsse sign: building PAE: %s", st_strerror(rc));
    goto done;
  }
  if ((rc = st_signer_sign(signer, pae.data, pae.len, &sig, err))) {
    st_error_wrap(err, "dsse sign");
    goto done;
  }
  if ((rc = st_buf_adds(envelope_json, "{\"payload\":\"")) ||
      (rc = st_base64_encode(envelope_json, payload, payload_len)) ||
      (rc = st_buf_adds(envelope_json, "\",\"payloadType\":")) ||
      (rc = st_buf_add_json_str(envelope_json, payload_type, type_len)) ||
      (rc = st_buf_adds(envelope_json, ",\"signatures\":[{\"keyid\":")) ||
      (rc = st_buf_add_json_str(envelope_json, keyid, strlen(keyid))) ||
      (rc = st_buf_adds(envelope_json, ",\"sig\":\"")) ||
      (rc = st_base64_encode(envelope_json, sig.data, sig.len)) ||
      (rc = st_buf_adds(envelope_json, "\"}]}")))
    st_fail(err, rc, "dsse sign: writing the envelope: %s", st_strerror(rc));
done:
  if (rc) {
    envelope_json->len = start;
    envelope_json->data[start] = '\0';
  }
  st_buf_release(&pae);
  st_buf_release(&sig);
  return rc;
}

/* The string member `name` of obj: 0, ST_ENOENT if absent (and optional), else
 * ST_EPARSE naming the field. */
static int get_str(json_t *obj, const char *name, const char *where, int optional,
                   const char **s, size_t *len, st_error_t *err) {
  json_t *v = json_object_get(obj, name);
  if (!v && optional)
    return ST_ENOENT;
  if (!json_is_string(v))
    return st_fail(err, ST_EPARSE, "envelope: %s%s %s", where, name,
                   v ? "is not a string" : "is missing");
  *s = json_string_value(v);
  *len = json_string_length(v);
  return 0;
}

/* Try signature i against the trusted keys its keyid allows. 0 = verified by *which. */
static int check_sig(json_t *sobj, size_t i, const st_buf_t *pae,
                     const st_pubkey_t *const *trusted, size_t ntrusted, size_t *which,
                     size_t *tried, st_error_t *err) {
  st_buf_t sig;
  const char *keyid = "", *b64 = NULL;
  size_t keyid_len = 0, b64_len = 0, j;
  char where[48];
  int rc;

  st_buf_init(&sig, ST_SIG_MAX);
  snprintf(where, sizeof(where), "signatures[%zu].", i);
  if (!json_is_object(sobj)) {
    rc = st_fail(err, ST_EPARSE, "envelope: signatures[%zu] is not an object", i);
    goto done;
  }
  rc = get_str(sobj, "keyid", where, 1, &keyid, &keyid_len, err);
  if (rc == ST_ENOENT)
    keyid = "", keyid_len = 0, rc = 0;
  if (rc)
    goto done;
  if (keyid_len > ST_DSSE_KEYID_MAX) {
    rc = st_fail(err, ST_ETOOBIG, "envelope: %skeyid longer than %d bytes", where,
                 ST_DSSE_KEYID_MAX);
    goto done;
  }
  if ((rc = get_str(sobj, "sig", where, 0, &b64, &b64_len, err)))
    goto done;
  if ((rc = st_base64_decode(&sig, b64, b64_len, err))) {
    st_error_wrap(err, "envelope: %ssig: malformed", where);
    goto done;
  }
  rc = ST_EVERIFY;
  for (j = 0; j < ntrusted && rc; j++) {
    const char *kid = st_pubkey_keyid(trusted[j]);
    if (keyid_len && (strlen(kid) != keyid_len || memcmp(kid, keyid, keyid_len) != 0))
      continue;
    ++*tried;
    if ((rc = st_pubkey_verify(trusted[j], pae->data, pae->len, sig.data, sig.len, err)))
      st_error_wrap(err, "bad signature: signatures[%zu]", i);
    else
      *which = j;
  }
done:
  st_buf_release(&sig);
  return rc;
}

int st_dsse_verify(const char *json, size_t len, const st_pubkey_t *const *trusted,
                   size_t ntrusted, const char *expected_type, st_buf_t *payload_type,
                   st_buf_t *payload, size_t *signed_by, st_error_t *err) {
  st_buf_t body = ST_BUF_INIT, pae = ST_BUF_INIT;
  json_t *root = NULL, *sigs;
  json_error_t jerr;
  const char *type = NULL, *b64 = NULL;
  size_t type_len = 0, b64_len = 0, i, which = 0, tried = 0;
  int rc = 0;

  if (payload_type)
    st_buf_reset(payload_type);
  if (payload)
    st_buf_reset(payload);
  if (ntrusted == 0) {
    rc = st_fail(err, ST_EINVAL, "dsse verify: no trusted keys given");
    goto done;
  }
  if (len > ST_DSSE_ENVELOPE_MAX) {
    rc = st_fail(err, ST_ETOOBIG, "envelope: larger than %zu bytes", ST_DSSE_ENVELOPE_MAX);
    goto done;
  }
  if (!(root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
    rc = st_fail(err, ST_EPARSE, "envelope: not JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
    goto done;
  }
  if (!json_is_object(root)) {
    rc = st_fail(err, ST_EPARSE, "envelope: not a JSON object");
    goto done;
  }
  if ((rc = get_str(root, "payloadType", "", 0, &type, &type_len, err)) ||
      (rc = get_str(root, "payload", "", 0, &b64, &b64_len, err)))
    goto done;
  if (type_len > ST_DSSE_TYPE_MAX) {
    rc = st_fail(err, ST_ETOOBIG, "envelope: payloadType longer than %d bytes",
                 ST_DSSE_TYPE_MAX);
    goto done;
  }
  sigs = json_object_get(root, "signatures");
  if (!json_is_array(sigs)) {
    rc = st_fail(err, ST_EPARSE, "envelope: signatures %s",
                 sigs ? "is not an array" : "is missing");
    goto done;
  }
  if (json_array_size(sigs) == 0) {
    rc = st_fail(err, ST_EVERIFY, "no signatures: the envelope is unsigned");
    goto done;
  }
  if (json_array_size(sigs) > ST_DSSE_SIGS_MAX) {
    rc = st_fail(err, ST_ETOOBIG, "envelope: more than %d signatures", ST_DSSE_SIGS_MAX);
    goto done;
  }
  if (expected_type &&
      (strlen(expected_type) != type_len || memcmp(expected_type, type, type_len) != 0)) {
    rc = st_fail(err, ST_EVERIFY, "wrong payloadType: expected \"%s\"", expected_type);
    goto done;
  }
  if ((rc = st_base64_decode(&body, b64, b64_len, err))) {
    st_error_wrap(err, "envelope: payload: malformed");
    goto done;
  }
  if ((rc = st_dsse_pae(&pae, type, type_len, body.data, body.len))) {
    st_fail(err, rc, "envelope: building PAE: %s", st_strerror(rc));
    goto done;
  }
  rc = ST_EVERIFY;
  for (i = 0; i < json_array_size(sigs) && rc == ST_EVERIFY; i++)
    rc = check_sig(json_array_get(sigs, i), i, &pae, trusted, ntrusted, &which, &tried, err);
  if (rc == ST_EVERIFY && tried == 0)
    rc = st_fail(err, ST_EVERIFY, "unknown key: no signature has the keyid of a trusted key "
                 "(trusted: %s%s)", st_pubkey_keyid(trusted[0]), ntrusted > 1 ? ", ..." : "");
  if (rc)
    goto done;
  if ((payload_type && (rc = st_buf_add(payload_type, type, type_len))) ||
      (payload && (rc = st_buf_add(payload, body.data, body.len)))) {
    st_fail(err, rc, "envelope: payload: %s", st_strerror(rc));
    goto done;
  }
  if (signed_by)
    *signed_by = which;
done:
  if (rc) {
    if (payload_type)
      st_buf_reset(payload_type);
    if (payload)
      st_buf_reset(payload);
  }
  st_buf_release(&body);
  st_buf_release(&pae);
  json_decref(root);
  return rc;
}
