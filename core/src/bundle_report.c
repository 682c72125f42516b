/* bundle_report.c: the verification report (per-check status and reason, JSON form) and
 * the timestamp check shared by bundles and proofs.
 *
 * Timestamp semantics: no manifest.tsr -> skip, unless the verifier gave a TSA CA (then
 * fail: the caller asked for a timestamp). With a CA: the response must verify against it
 * (st_tsa_verify: imprint over the raw signature bytes, CMS signature, chain at the time of
 * verification, EKU) -> pass or fail. Without a CA: the same checks against the chain the
 * bundle carries -> "untrusted" when consistent (it proves nothing about time to someone
 * who does not trust that TSA), fail when not. */
#include <stdio.h>
#include <string.h>

#include "bundle_internal.h"
#include "stella/jcs.h"
#include "stella/mem.h"

void st_bundle_report_init(st_bundle_report_t *r) {
  memset(r, 0, sizeof(*r));
  st_buf_init(&r->kind, 256);
  st_buf_init(&r->id, 256);
  st_buf_init(&r->tenant, 256);
  st_buf_init(&r->created, 64);
  st_buf_init(&r->keyid, 256);
  st_buf_init(&r->tsa_time, 64);
  st_buf_init(&r->entry, ST_BUNDLE_PATH_MAX + 1);
  for (size_t i = 0; i < ST_BUNDLE_NCHECKS; i++)
    st_buf_init(&r->checks[i].reason, 4096);
}

void st_bundle_report_release(st_bundle_report_t *r) {
  st_buf_release(&r->kind);
  st_buf_release(&r->id);
  st_buf_release(&r->tenant);
  st_buf_release(&r->created);
  st_buf_release(&r->keyid);
  st_buf_release(&r->tsa_time);
  st_buf_release(&r->entry);
  for (size_t i = 0; i < ST_BUNDLE_NCHECKS; i++)
    st_buf_release(&r->checks[i].reason);
  r->nchecks = 0;
}

const char *st_bundle_status_text(st_bundle_status s) {
  switch (s) {
  case ST_BUNDLE_PASS:
    return "pass";
  case ST_BUNDLE_FAIL:
    return "fail";
  case ST_BUNDLE_SKIP:
    return "skip";
  case ST_BUNDLE_UNTRUSTED:
    return "untrusted";
  }
  return "fail";
}

const st_bundle_check_t *st_bundle_report_failed(const st_bundle_report_t *r) {
  for (size_t i = 0; i < r->nchecks; i++)
    if (r->checks[i].status == ST_BUNDLE_FAIL)
      return &r->checks[i];
  return NULL;
}

int st__bundle_report_start(st_bundle_report_t *r, const char *const *names, size_t n,
                            int is_proof) {
  st_buf_t *info[] = {&r->kind, &r->id,       &r->tenant, &r->created,
                      &r->keyid, &r->tsa_time, &r->entry};
  for (size_t i = 0; i < sizeof(info) / sizeof(info[0]); i++)
    st_buf_reset(info[i]);
  r->nchecks = n;
  r->is_proof = is_proof;
  for (size_t i = 0; i < n; i++) {
    r->checks[i].name = names[i];
    r->checks[i].status = ST_BUNDLE_SKIP;
    st_buf_reset(&r->checks[i].reason);
    if (st_buf_adds(&r->checks[i].reason, "not reached"))
      return ST_ENOMEM;
  }
  return 0;
}

int st__bundle_report_set(st_bundle_report_t *r, const char *name, st_bundle_status st,
                          const char *fmt, ...) {
  for (size_t i = 0; i < r->nchecks; i++) {
    st_bundle_check_t *c = &r->checks[i];
    va_list ap;
    if (strcmp(c->name, name))
      continue;
    c->status = st;
    st_buf_reset(&c->reason);
    va_start(ap, fmt);
    if (st_buf_vaddf(&c->reason, fmt, ap))
      st__bundle_note(&c->reason, "(reason too long to show)");
    va_end(ap);
    /* Reasons quote archive bytes: keep them printable ASCII so the JSON form is valid. */
    for (size_t k = 0; k < c->reason.len; k++)
      if ((unsigned char)c->reason.data[k] < 0x20 || (unsigned char)c->reason.data[k] > 0x7e)
        c->reason.data[k] = '?';
    return 0;
  }
  return ST_EINVAL;
}

int st__bundle_report_result(const st_bundle_report_t *r, st_error_t *err) {
  const st_bundle_check_t *c = st_bundle_report_failed(r);
  if (!c)
    return 0;
  return st_fail(err, ST_EVERIFY, "%s check failed: %s", c->name, c->reason.data);
}

static int set_str(json_t *o, const char *k, const st_buf_t *v) {
  char *s = st_strndup(v->data, v->len);
  json_t *j;
  if (!s)
    return ST_ENOMEM;
  for (char *p = s; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
      *p = '?';
  j = json_string(s);
  st_free(s);
  return j && json_object_set_new(o, k, j) == 0 ? 0 : ST_ENOMEM;
}

int st_bundle_report_json(const st_bundle_report_t *r, st_buf_t *out) {
  json_t *o = json_object(), *checks = json_array();
  int rc = ST_ENOMEM;

  if (!o || !checks || json_object_set(o, "checks", checks) ||
      json_object_set_new(o, "ok", json_boolean(st_bundle_report_failed(r) == NULL)) ||
      json_object_set_new(o, "type", json_string(r->is_proof ? "proof" : "bundle")) ||
      set_str(o, "kind", &r->kind) || set_str(o, "id", &r->id) ||
      set_str(o, "tenant", &r->tenant) || set_str(o, "created", &r->created) ||
      set_str(o, "keyid", &r->keyid) || set_str(o, "tsaTime", &r->tsa_time) ||
      (r->is_proof && set_str(o, "entry", &r->entry)))
    goto done;
  for (size_t i = 0; i < r->nchecks; i++) {
    json_t *c = json_object();
    if (!c || json_array_append_new(checks, c) ||
        json_object_set_new(c, "name", json_string(r->checks[i].name)) ||
        json_object_set_new(c, "status",
                            json_string(st_bundle_status_text(r->checks[i].status))) ||
        set_str(c, "reason", &r->checks[i].reason))
      goto done;
  }
  rc = st_jcs_encode(o, out, NULL);
done:
  json_decref(checks);
  json_decref(o);
  return rc;
}

void st__bundle_check_timestamp(st_bundle_report_t *r, const st_bundle_trust_t *trust,
                                const void *tsr, size_t tsr_len, const void *chain,
                                size_t chain_len, const void *sig, size_t sig_len) {
  st_error_t e = ST_ERROR_INIT;
  st_tsa_info_t info;
  int trusted = trust->tsa_ca_pem != NULL, rc;

  if (!tsr_len) {
    if (trusted)
      st__bundle_report_set(r, "timestamp", ST_BUNDLE_FAIL,
                            "no timestamp (manifest.tsr), but a TSA CA was given");
    else
      st__bundle_report_set(r, "timestamp", ST_BUNDLE_SKIP, "no timestamp in this bundle");
    return;
  }
  st_tsa_info_init(&info);
  if (!sig_len) {
    st__bundle_report_set(r, "timestamp", ST_BUNDLE_FAIL, "no DSSE signature to check it over");
  } else if (trusted) {
    rc = st_tsa_verify(tsr, tsr_len, sig, sig_len, trust->tsa_ca_pem, trust->tsa_ca_len, chain,
                       chain_len, &info, &e);
    if (rc)
      st__bundle_report_set(r, "timestamp", ST_BUNDLE_FAIL, "%s: %s",
                            st_tsa_reason_text(info.reason), st_error_text(&e));
    else
      st__bundle_report_set(r, "timestamp", ST_BUNDLE_PASS,
                            "signature stamped at %s by %s, chain to the given TSA CA",
                            info.gen_time_text.data, info.tsa_name.data);
  } else if (!chain_len) {
    st__bundle_report_set(r, "timestamp", ST_BUNDLE_FAIL,
                          "manifest.tsr present but keys/tsa-chain.pem missing");
  } else {
    rc = st_tsa_verify(tsr, tsr_len, sig, sig_len, chain, chain_len, NULL, 0, &info, &e);
    if (rc)
      st__bundle_report_set(r, "timestamp", ST_BUNDLE_FAIL, "%s (against the bundled chain): %s",
                            st_tsa_reason_text(info.reason), st_error_text(&e));
    else
      st__bundle_report_set(r, "timestamp", ST_BUNDLE_UNTRUSTED,
                            "signature stamped at %s by %s; checked only against the chain in "
                            "the bundle (pass --tsa-ca to trust it)",
                            info.gen_time_text.data, info.tsa_name.data);
  }
  st__bundle_note(&r->tsa_time, info.gen_time_text.data);
  st_tsa_info_release(&info);
}
