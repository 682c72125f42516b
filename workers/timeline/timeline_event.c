/* timeline_event.c: decode a transport's bytes into a timeline event and validate it.
 *
 * JSON goes through jansson (duplicate keys rejected). Msgpack goes through msgpack-c after
 * a bounded pre-scan: msgpack-c allocates a container's declared element count up front, so
 * a 5-byte hostile header claiming 2^32 elements would ask for ~100 GB; the scan refuses any
 * container claiming more elements than bytes remain, and any nesting past a depth cap. The
 * msgpack map is converted to the same jansson object, so one validator serves both.
 */
#include "timeline/timeline_event.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "stella/buf.h"
#include "stella/db.h"
#include "stella/mem.h"

#define MP_DEPTH_MAX 32

void st_tl_event_init(st_tl_event_t *ev) { memset(ev, 0, sizeof(*ev)); }

void st_tl_event_release(st_tl_event_t *ev) {
  char **strs[] = {&ev->event_id, &ev->tenant,  &ev->type,           &ev->occurred_at,
                   &ev->subject,  &ev->actor,   &ev->trace_id,       &ev->correlation_id,
                   &ev->payload,  &ev->source};
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
    st_free(*strs[i]);
  for (size_t i = 0; i < ev->n_evidence; i++) {
    st_free(ev->evidence[i].digest);
    st_free(ev->evidence[i].bundle_id);
    st_free(ev->evidence[i].manifest_ref);
  }
  st_free(ev->evidence);
  st_tl_event_init(ev);
}

/* ---- small parsers ---- */

static int parse_u63(const char *s, size_t len, uint64_t *out) {
  uint64_t v = 0;
  if (len == 0 || len > 19)
    return ST_EINVAL;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return ST_EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > (uint64_t)INT64_MAX)
    return ST_EINVAL;
  *out = v;
  return 0;
}

int st_tl_stream_id_parse(const char *id, uint64_t *seq, uint64_t *seq_minor) {
  const char *dash = id ? strchr(id, '-') : NULL;
  if (!dash || parse_u63(id, (size_t)(dash - id), seq) ||
      parse_u63(dash + 1, strlen(dash + 1), seq_minor))
    return ST_EINVAL;
  return 0;
}

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int st_tl_rfc3339_valid(const char *s) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, mo, d, h, mi, sec, oh, om;
  size_t n = strlen(s), i = 19;

  if (n < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
      digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
      s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
    return 0;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
      sec > 60)
    return 0;
  if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 0;
  if (s[i] == '.') {
    size_t f = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == f || i - f > 9)
      return 0;
  }
  if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
    return 1;
  if ((s[i] == '+' || s[i] == '-') && n - i == 6 && !digits(s + i + 1, 2, &oh) &&
      s[i + 3] == ':' && !digits(s + i + 4, 2, &om))
    return oh <= 23 && om <= 59;
  return 0;
}

/* ---- msgpack -> jansson ---- */

/* Walk one msgpack object at p[*off..len): structure only, counts bounded by bytes left. */
static int mp_scan(const unsigned char *p, size_t len, size_t *off, int depth) {
  size_t o = *off, count = 0, skip = 0;
  int pairs = 0;
  unsigned char b;

  if (depth > MP_DEPTH_MAX)
    return ST_EDEPTH;
  if (o >= len)
    return ST_EPARSE;
  b = p[o++];
#define NEED(k) \
  if (len - o < (k)) \
    return ST_EPARSE;
#define BE(k) (k == 1 ? p[o] : k == 2 ? ((size_t)p[o] << 8 | p[o + 1]) \
               : ((size_t)p[o] << 24 | (size_t)p[o + 1] << 16 | (size_t)p[o + 2] << 8 | p[o + 3]))
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
    skip = 0;
  } else if (b >= 0x80 && b <= 0x8f) {
    count = b & 0x0f, pairs = 1;
  } else if (b >= 0x90 && b <= 0x9f) {
    count = b & 0x0f;
  } else if (b >= 0xa0 && b <= 0xbf) {
    skip = b & 0x1f;
  } else {
    switch (b) {
    case 0xcc: case 0xd0: skip = 1; break;
    case 0xcd: case 0xd1: skip = 2; break;
    case 0xca: case 0xce: case 0xd2: skip = 4; break;
    case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
    case 0xc4: case 0xd9: NEED(1) skip = BE(1), o += 1; break;
    case 0xc5: case 0xda: NEED(2) skip = BE(2), o += 2; break;
    case 0xc6: case 0xdb: NEED(4) skip = BE(4), o += 4; break;
    case 0xdc: NEED(2) count = BE(2), o += 2; break;
    case 0xdd: NEED(4) count = BE(4), o += 4; break;
    case 0xde: NEED(2) count = BE(2), o += 2, pairs = 1; break;
    case 0xdf: NEED(4) count = BE(4), o += 4, pairs = 1; break;
    default: return ST_EPARSE; /* ext types and the reserved 0xc1 */
    }
  }
#undef BE
  NEED(skip)
#undef NEED
  o += skip;
  if (pairs)
    count *= 2;
  if (count > len - o)
    return ST_EPARSE;
  for (size_t i = 0; i < count; i++) {
    int rc = mp_scan(p, len, &o, depth + 1);
    if (rc)
      return rc;
  }
  *off = o;
  return 0;
}

static json_t *mp_to_json(const msgpack_object *o, st_error_t *err) {
  json_t *j = NULL;
  switch (o->type) {
  case MSGPACK_OBJECT_NIL: return json_null();
  case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (o->via.u64 > (uint64_t)INT64_MAX)
      return st_fail(err, ST_ERANGE, "msgpack integer out of range"), NULL;
    return json_integer((json_int_t)o->via.u64);
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
  case MSGPACK_OBJECT_STR:
    if (!st_utf8_valid(o->via.str.ptr, o->via.str.size))
      return st_fail(err, ST_EUTF8, "msgpack string is not UTF-8"), NULL;
    return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
  case MSGPACK_OBJECT_ARRAY:
    if (!(j = json_array()))
      return NULL;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
      json_t *v = mp_to_json(&o->via.array.ptr[i], err);
      if (!v || json_array_append_new(j, v))
        return json_decref(j), NULL;
    }
    return j;
  case MSGPACK_OBJECT_MAP:
    if (!(j = json_object()))
      return NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      const msgpack_object *k = &o->via.map.ptr[i].key;
      json_t *v;
      if (k->type != MSGPACK_OBJECT_STR || !st_utf8_valid(k->via.str.ptr, k->via.str.size))
        return st_fail(err, ST_EPARSE, "msgpack map key is not a UTF-8 string"),
               json_decref(j), NULL;
      if (json_object_getn(j, k->via.str.ptr, k->via.str.size))
        return st_fail(err, ST_EPARSE, "msgpack map has a duplicate key"), json_decref(j),
               NULL;
      if (!(v = mp_to_json(&o->via.map.ptr[i].val, err)) ||
          json_object_setn_new_nocheck(j, k->via.str.ptr, k->via.str.size, v))
        return json_decref(j), NULL;
    }
    return j;
  default:
    return st_fail(err, ST_EPARSE, "msgpack binary or extension values are not allowed"),
           NULL;
  }
}

static int parse_msgpack(const unsigned char *p, size_t len, json_t **out, st_error_t *err) {
  msgpack_unpacked up;
  size_t off = 0;
  int rc;

  if ((rc = mp_scan(p, len, &off, 0)))
    return st_fail(err, rc, "event: malformed msgpack%s",
                   rc == ST_EDEPTH ? " (nested too deep)" : "");
  if (off != len)
    return st_fail(err, ST_EPARSE, "event: trailing bytes after the msgpack map");
  msgpack_unpacked_init(&up);
  off = 0;
  if (msgpack_unpack_next(&up, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS) {
    msgpack_unpacked_destroy(&up);
    return st_fail(err, ST_EPARSE, "event: malformed msgpack");
  }
  *out = mp_to_json(&up.data, err);
  msgpack_unpacked_destroy(&up);
  if (!*out)
    return err && err->code ? err->code : st_fail(err, ST_ENOMEM, "event: out of memory");
  return 0;
}

/* ---- validation ---- */

static int printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  return st_utf8_valid(s, n);
}

/* Copy an optional string member (absent or null -> NULL) of at most max bytes. */
static int take_str(const json_t *obj, const char *key, size_t max, int required,
                    char **out, st_error_t *err) {
  const json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) {
    if (required)
      return st_fail(err, ST_EINVAL, "event: missing required field \"%s\"", key);
    return 0;
  }
  if (!json_is_string(v))
    return st_fail(err, ST_EINVAL, "event: field \"%s\" must be a string", key);
  if (json_string_length(v) < 1 || json_string_length(v) > max)
    return st_fail(err, ST_EINVAL, "event: field \"%s\" must be 1..%zu bytes", key, max);
  if (!printable(json_string_value(v), json_string_length(v)))
    return st_fail(err, ST_EINVAL, "event: field \"%s\" has control characters", key);
  if (!(*out = st_strndup(json_string_value(v), json_string_length(v))))
    return st_fail(err, ST_ENOMEM, "event: out of memory");
  return 0;
}

static int type_valid(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
          *s == '-'))
      return 0;
  return 1;
}

static int digest_valid(const char *s) {
  size_t n;
  if (!strncmp(s, "sha256:", 7))
    n = 64;
  else if (!strncmp(s, "sha512:", 7))
    n = 128;
  else
    return 0;
  s += 7;
  if (strlen(s) != n)
    return 0;
  for (; *s; s++)
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
      return 0;
  return 1;
}

static int dump_cb(const char *buf, size_t size, void *data) {
  return st_buf_add(data, buf, size) ? -1 : 0;
}

static int take_evidence(const json_t *obj, st_tl_event_t *ev, st_error_t *err) {
  static const char *const known[] = {"digest", "bundle_id", "manifest_ref"};
  const json_t *arr = json_object_get(obj, "evidence"), *e;
  size_t i;

  if (!arr || json_is_null(arr))
    return 0;
  if (!json_is_array(arr))
    return st_fail(err, ST_EINVAL, "event: field \"evidence\" must be an array");
  if (json_array_size(arr) > ST_TL_EVIDENCE_MAX)
    return st_fail(err, ST_ETOOBIG, "event: \"evidence\" has more than %d entries",
                   ST_TL_EVIDENCE_MAX);
  if (!json_array_size(arr))
    return 0;
  if (!(ev->evidence = st_calloc(json_array_size(arr), sizeof(*ev->evidence))))
    return st_fail(err, ST_ENOMEM, "event: out of memory");
  json_array_foreach(arr, i, e) {
    st_tl_evidence_t *d = &ev->evidence[i];
    const char *k;
    const json_t *v;
    int rc;
    ev->n_evidence = i + 1;
    if (!json_is_object(e))
      return st_fail(err, ST_EINVAL, "event: evidence[%zu] must be an object", i);
    json_object_foreach((json_t *)e, k, v) {
      size_t j = 0;
      while (j < 3 && strcmp(k, known[j]))
        j++;
      if (j == 3)
        return st_fail(err, ST_EINVAL, "event: evidence[%zu]: unknown field", i);
    }
    if ((rc = take_str(e, "digest", 135, 1, &d->digest, err)) ||
        (rc = take_str(e, "bundle_id", 128, 0, &d->bundle_id, err)) ||
        (rc = take_str(e, "manifest_ref", 512, 0, &d->manifest_ref, err)))
      return st_error_wrap(err, "evidence[%zu]", i), rc;
    if (!digest_valid(d->digest))
      return st_fail(err, ST_EINVAL,
                     "event: evidence[%zu].digest must be sha256:<64 hex> or sha512:<128 hex>",
                     i);
  }
  return 0;
}

static int check_hint(const char *hint, const char *value, const char *name,
                      st_error_t *err) {
  if (hint && strcmp(hint, value))
    return st_fail(err, ST_EINVAL,
                   "event: transport field \"%s\" does not match the envelope's", name);
  return 0;
}

static int from_json(const json_t *obj, const st_tl_raw_t *raw, st_tl_event_t *ev,
                     st_error_t *err) {
  static const char *const known[] = {"schema",   "event_id",       "tenant",  "type",
                                      "occurred_at", "subject",     "actor",   "trace_id",
                                      "correlation_id", "payload",  "evidence"};
  const json_t *v, *schema = json_object_get(obj, "schema");
  const char *k;
  st_buf_t pl = ST_BUF_INIT;
  int rc;

  json_object_foreach((json_t *)obj, k, v) {
    size_t j = 0, n = sizeof(known) / sizeof(known[0]);
    while (j < n && strcmp(k, known[j]))
      j++;
    if (j == n) {
      st_buf_t name = ST_BUF_INIT;
      st_buf_init(&name, 256);
      rc = st_buf_add_json_str(&name, k, strlen(k) > 64 ? 64 : strlen(k));
      rc = st_fail(err, ST_EINVAL, "event: unknown field %s", rc ? "(long)" : name.data);
      st_buf_release(&name);
      return rc;
    }
  }
  if (schema && !(json_is_string(schema) && !strcmp(json_string_value(schema), "stella.event/v1")))
    return st_fail(err, ST_EINVAL, "event: field \"schema\" must be \"stella.event/v1\"");
  if ((rc = take_str(obj, "tenant", ST_DB_TENANT_MAX, 1, &ev->tenant, err)))
    return rc;
  if (st_db_tenant_check(ev->tenant, NULL))
    return st_fail(err, ST_EINVAL, "event: field \"tenant\" is not a valid tenant id");
  if ((rc = take_str(obj, "event_id", ST_TL_EVENT_ID_MAX, 1, &ev->event_id, err)) ||
      (rc = take_str(obj, "type", 128, 1, &ev->type, err)) ||
      (rc = take_str(obj, "occurred_at", 64, 1, &ev->occurred_at, err)) ||
      (rc = take_str(obj, "subject", 512, 0, &ev->subject, err)) ||
      (rc = take_str(obj, "actor", 256, 0, &ev->actor, err)) ||
      (rc = take_str(obj, "trace_id", 128, 0, &ev->trace_id, err)) ||
      (rc = take_str(obj, "correlation_id", 128, 0, &ev->correlation_id, err)))
    return rc;
  if (!type_valid(ev->type))
    return st_fail(err, ST_EINVAL, "event: field \"type\" must match [a-z0-9][a-z0-9._-]*");
  if (!st_tl_rfc3339_valid(ev->occurred_at))
    return st_fail(err, ST_EINVAL, "event: field \"occurred_at\" is not an RFC 3339 date-time");
  if ((rc = check_hint(raw->event_id, ev->event_id, "event_id", err)) ||
      (rc = check_hint(raw->tenant, ev->tenant, "tenant", err)) ||
      (rc = check_hint(raw->type, ev->type, "type", err)))
    return rc;
  v = json_object_get(obj, "payload");
  if (v && !json_is_null(v) && !json_is_object(v))
    return st_fail(err, ST_EINVAL, "event: field \"payload\" must be an object");
  st_buf_init(&pl, ST_TL_EVENT_MAX_BYTES * 2);
  if (v && !json_is_null(v) ? json_dump_callback(v, dump_cb, &pl, JSON_COMPACT | JSON_SORT_KEYS)
                            : st_buf_adds(&pl, "{}"))
    return st_buf_release(&pl), st_fail(err, ST_ENOMEM, "event: payload too large to copy");
  ev->payload = st_buf_detach(&pl, NULL);
  return take_evidence(obj, ev, err);
}

int st_tl_event_decode(const st_tl_raw_t *raw, st_tl_event_t *ev, st_error_t *err) {
  json_t *obj = NULL;
  json_error_t jerr;
  const unsigned char *p = raw->body;
  int rc = 0;

  if (!raw->source || !*raw->source || strlen(raw->source) > ST_TL_SOURCE_MAX)
    return st_fail(err, ST_EINVAL, "event: source name must be 1..%d bytes", ST_TL_SOURCE_MAX);
  if (!p || raw->body_len == 0)
    return st_fail(err, ST_EPARSE, "event: empty body");
  if (raw->body_len > ST_TL_EVENT_MAX_BYTES)
    return st_fail(err, ST_ETOOBIG, "event: body of %zu bytes exceeds %zu", raw->body_len,
                   ST_TL_EVENT_MAX_BYTES);
  if ((p[0] >= 0x80 && p[0] <= 0x8f) || p[0] == 0xde || p[0] == 0xdf) {
    if ((rc = parse_msgpack(p, raw->body_len, &obj, err)))
      goto done;
  } else if (!(obj = json_loadb(raw->body, raw->body_len, JSON_REJECT_DUPLICATES, &jerr))) {
    rc = st_fail(err, ST_EPARSE, "event: malformed JSON at byte %d: %s", jerr.position,
                 jerr.text);
    goto done;
  }
  if (!json_is_object(obj)) {
    rc = st_fail(err, ST_EINVAL, "event: envelope must be an object");
    goto done;
  }
  if ((rc = from_json(obj, raw, ev, err)))
    goto done;
  if (!(ev->source = st_strdup(raw->source))) {
    rc = st_fail(err, ST_ENOMEM, "event: out of memory");
    goto done;
  }
  ev->seq = raw->seq;
  ev->seq_minor = raw->seq_minor;
done:
  json_decref(obj);
  if (rc)
    st_tl_event_release(ev);
  return rc;
}
