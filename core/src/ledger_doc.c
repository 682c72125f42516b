/* ledger_doc.c: a ledger document from bytes: parse (bounded), detect the kind by content,
 * hand it to the kind's validator, and digest its RFC 8785 form. Also the shared field
 * checks (strings, RFC 3339 times) and the CVSS v3 base score used to grade advisories.
 *
 * Detection is by content, never by file name: OpenVEX has an `@context` under
 * https://openvex.dev/ns, our policy formats a `schema`, OSV an `id` and `modified` (OSV has
 * no marker of its own; schema_version is optional). A document matching none is refused,
 * naming what was looked for. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_internal.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/mem.h"

const char *st_ledger_kind_name(st_ledger_kind k) {
  static const char *const names[ST_LEDGER_NKINDS] = {"advisory", "vex", "policy_pack",
                                                      "policy_result", "maven_artifact"};
  return (unsigned)k < ST_LEDGER_NKINDS ? names[k] : "unknown";
}

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

int st_ledger_rfc3339_valid(const char *s) {
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h, mi, se, oh, om;

  if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
      s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
      !digits(s + 17, 2, &se))
    return 0;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
    return 0;
  if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 0;
  s += 19;
  if (*s == '.') {
    size_t n = strspn(++s, "0123456789");
    if (n == 0 || n > 9)
      return 0;
    s += n;
  }
  if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
    return 1;
  return (*s == '+' || *s == '-') && digits(s + 1, 2, &oh) && s[3] == ':' &&
         digits(s + 4, 2, &om) && s[6] == '\0' && oh <= 23 && om <= 59;
}

/* CVSS v3.1 specification section 7.4 / Appendix A. */
static double cvss_roundup(double x) {
  long long i = llround(x * 100000.0);
  return i % 10000 == 0 ? (double)i / 100000.0 : (floor((double)i / 10000.0) + 1) / 10.0;
}

static int cvss_pick(const char *v, const char *opts, const double *w, double *out) {
  const char *p = strlen(v) == 1 ? strchr(opts, v[0]) : NULL;
  if (!p || !*v)
    return 0;
  *out = w[p - opts];
  return 1;
}

int st_ledger_cvss3_score(const char *vector, double *out) {
  static const char *const base[8] = {"AV", "AC", "PR", "UI", "S", "C", "I", "A"};
  char val[8][2] = {{0}};
  double av, ac, pr, ui, c, i, a, iss, imp, expl, score;
  const char *p;
  int scope_changed;

  if (!vector || (strncmp(vector, "CVSS:3.0/", 9) && strncmp(vector, "CVSS:3.1/", 9)))
    return ST_EINVAL;
  for (p = vector + 9; *p;) {
    size_t klen = strcspn(p, ":/"), vlen;
    int k;
    if (p[klen] != ':')
      return ST_EINVAL;
    vlen = strcspn(p + klen + 1, "/");
    if (klen == 0 || vlen == 0)
      return ST_EINVAL;
    for (k = 0; k < 8; k++)
      if (strlen(base[k]) == klen && !strncmp(p, base[k], klen))
        break;
    if (k < 8) {
      if (val[k][0] || vlen != 1)
        return ST_EINVAL;
      val[k][0] = p[klen + 1];
    }
    p += klen + 1 + vlen;
    if (*p == '/' && *++p == '\0')
      return ST_EINVAL;
  }
  for (int k = 0; k < 8; k++)
    if (!val[k][0])
      return ST_EINVAL;
  if (val[4][0] != 'U' && val[4][0] != 'C')
    return ST_EINVAL;
  scope_changed = val[4][0] == 'C';
  {
    const double wav[] = {0.85, 0.62, 0.55, 0.2}, wac[] = {0.77, 0.44},
                 wpr_u[] = {0.85, 0.62, 0.27}, wpr_c[] = {0.85, 0.68, 0.5},
                 wui[] = {0.85, 0.62}, wcia[] = {0.56, 0.22, 0};
    if (!cvss_pick(val[0], "NALP", wav, &av) || !cvss_pick(val[1], "LH", wac, &ac) ||
        !cvss_pick(val[2], "NLH", scope_changed ? wpr_c : wpr_u, &pr) ||
        !cvss_pick(val[3], "NR", wui, &ui) || !cvss_pick(val[5], "HLN", wcia, &c) ||
        !cvss_pick(val[6], "HLN", wcia, &i) || !cvss_pick(val[7], "HLN", wcia, &a))
      return ST_EINVAL;
  }
  iss = 1 - (1 - c) * (1 - i) * (1 - a);
  imp = scope_changed ? 7.52 * (iss - 0.029) - 3.25 * pow(iss - 0.02, 15) : 6.42 * iss;
  expl = 8.22 * av * ac * pr * ui;
  if (imp <= 0)
    score = 0;
  else
    score = cvss_roundup(fmin((scope_changed ? 1.08 : 1.0) * (imp + expl), 10.0));
  *out = score;
  return 0;
}

const char *st_ledger_cvss3_severity(const char *vector) {
  double score;
  if (st_ledger_cvss3_score(vector, &score))
    return NULL;
  return score == 0 ? "none" : score < 4.0 ? "low" : score < 7.0 ? "medium"
                                        : score < 9.0 ? "high" : "critical";
}

int st__ledger_str(const json_t *obj, const char *path, const char *key, size_t max,
                   int optional, const char **out, st_error_t *err) {
  const json_t *v = json_object_get(obj, key);
  const char *s;
  size_t len;

  if (!v) {
    if (optional)
      return ST_ENOENT;
    return st_fail(err, ST_EINVAL, "%s%s%s: missing", path, *path ? "." : "", key);
  }
  if (!json_is_string(v))
    return st_fail(err, ST_EINVAL, "%s%s%s: expected a string", path, *path ? "." : "", key);
  s = json_string_value(v);
  len = json_string_length(v);
  if (len == 0 || len > max)
    return st_fail(err, ST_EINVAL, "%s%s%s: length %zu not in 1..%zu", path, *path ? "." : "",
                   key, len, max);
  for (size_t k = 0; k < len; k++)
    if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
      return st_fail(err, ST_EINVAL, "%s%s%s: control character", path, *path ? "." : "",
                     key);
  *out = s;
  return 0;
}

int st__ledger_time(const json_t *obj, const char *path, const char *key, int optional,
                    const char **out, st_error_t *err) {
  int rc = st__ledger_str(obj, path, key, 64, optional, out, err);
  if (rc)
    return rc;
  if (!st_ledger_rfc3339_valid(*out))
    return st_fail(err, ST_EINVAL, "%s%s%s: \"%s\" is not an RFC 3339 date-time", path,
                   *path ? "." : "", key, *out);
  return 0;
}

int st__ledger_row(const json_t *row, const st_buf_t *canon, st_buf_t *out, st_error_t *err) {
  int rc = st_jcs_encode(row, out, err);
  if (rc || !canon)
    return rc;
  out->len--; /* the closing brace */
  if (st_buf_adds(out, json_object_size(row) ? ",\"doc\":" : "\"doc\":") ||
      st_buf_add(out, canon->data, canon->len) || st_buf_addc(out, '}'))
    return st_fail(err, ST_ENOMEM, "ledger: row too large");
  return 0;
}

static int has_openvex_context(const json_t *doc) {
  const json_t *c = json_object_get(doc, "@context");
  return json_is_string(c) && !strncmp(json_string_value(c), "https://openvex.dev/ns", 22);
}

int st_ledger_doc_parse(const char *s, size_t len, st_ledger_doc_t *out, st_error_t *err) {
  st_json_limits_t lim = {ST_LEDGER_DOC_MAX_BYTES, 32};
  st_buf_t canon = ST_BUF_INIT;
  json_t *doc = NULL, *row = NULL;
  const json_t *schema;
  uint8_t digest[ST_SHA256_LEN];
  int rc;

  memset(out, 0, sizeof(*out));
  st_buf_init(&out->row, 0);
  if ((rc = st_json_parse(s, len, &lim, &doc, err)))
    goto done;
  if (!json_is_object(doc)) {
    rc = st_fail(err, ST_EINVAL, "the document is not a JSON object");
    goto done;
  }
  if ((rc = st_jcs_encode(doc, &canon, err)))
    goto done;
  if (st_sha256(canon.data, canon.len, digest)) {
    rc = st_fail(err, ST_ECRYPTO, "sha256 of the document failed");
    goto done;
  }
  st_sha256_hex(digest, out->sha256);
  schema = json_object_get(doc, "schema");
  if (has_openvex_context(doc)) {
    out->kind = ST_LEDGER_VEX;
    rc = st__ledger_vex(doc, out, &row, err);
  } else if (json_is_string(schema) &&
             !strcmp(json_string_value(schema), "stella.policy-pack/v1")) {
    out->kind = ST_LEDGER_POLICY_PACK;
    rc = st__ledger_policy_pack(doc, out, &row, err);
  } else if (json_is_string(schema) &&
             !strcmp(json_string_value(schema), "stella.policy-results/v1")) {
    out->kind = ST_LEDGER_POLICY_RESULT;
    rc = st__ledger_policy_results(doc, out, &row, err);
  } else if (json_object_get(doc, "id") && json_object_get(doc, "modified")) {
    out->kind = ST_LEDGER_ADVISORY;
    rc = st__ledger_osv(doc, out, &row, err);
  } else {
    rc = st_fail(err, ST_EINVAL,
                 "unknown document kind: not OSV (id + modified), OpenVEX (@context "
                 "https://openvex.dev/ns...) or a stella policy schema");
  }
  /* Policy results are stored as their rows, the other kinds with the whole document. */
  if (!rc)
    rc = st__ledger_row(row, out->kind == ST_LEDGER_POLICY_RESULT ? NULL : &canon, &out->row,
                        err);
done:
  if (rc)
    st_ledger_doc_release(out);
  json_decref(row);
  json_decref(doc);
  st_buf_release(&canon);
  return rc;
}

void st_ledger_doc_release(st_ledger_doc_t *d) {
  if (!d)
    return;
  st_free(d->key);
  d->key = NULL;
  st_buf_release(&d->row);
}
