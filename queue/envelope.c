/* envelope.c: job envelope v1 codec (msgpack <-> st_envelope_t, payload <-> json_t).
 *
 * Decoding runs in three steps: a size check, a bounded pre-scan of the raw msgpack
 * (prescan below; msgpack-c allocates by declared counts, so it must never see a header
 * that promises more elements than there are bytes), then msgpack_unpack_next and a
 * field-by-field walk that names the field in every error. */
#include "envelope.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "stella/mem.h"

/* ---- pre-scan ----------------------------------------------------------- */

static uint64_t be(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Skip one msgpack object at *pos; 0 or ST_EPARSE / ST_EDEPTH. */
static int prescan(const unsigned char *p, size_t len, size_t *pos, int depth) {
  size_t at = *pos, skip = 0;
  uint64_t count = 0;
  int hdr = 0, is_map = 0;
  unsigned char b;

  if (at >= len)
    return ST_EPARSE;
  b = p[at++];
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
    /* fixint, nil, bool */
  } else if (b >= 0x80 && b <= 0x9f) {
    count = b & 0x0f;
    is_map = b <= 0x8f;
    hdr = -1;
  } else if (b >= 0xa0 && b <= 0xbf) {
    skip = b & 0x1f;
  } else {
    switch (b) {
    case 0xc4: case 0xd9: hdr = 1; break;
    case 0xc5: case 0xda: hdr = 2; break;
    case 0xc6: case 0xdb: hdr = 4; break;
    case 0xc7: hdr = 1; skip = 1; break;
    case 0xc8: hdr = 2; skip = 1; break;
    case 0xc9: hdr = 4; skip = 1; break;
    case 0xca: skip = 4; break;
    case 0xcb: skip = 8; break;
    case 0xcc: case 0xd0: skip = 1; break;
    case 0xcd: case 0xd1: skip = 2; break;
    case 0xce: case 0xd2: skip = 4; break;
    case 0xcf: case 0xd3: skip = 8; break;
    case 0xd4: skip = 2; break;
    case 0xd5: skip = 3; break;
    case 0xd6: skip = 5; break;
    case 0xd7: skip = 9; break;
    case 0xd8: skip = 17; break;
    case 0xdc: hdr = 2; count = 1; break;
    case 0xdd: hdr = 4; count = 1; break;
    case 0xde: hdr = 2; count = 1; is_map = 1; break;
    case 0xdf: hdr = 4; count = 1; is_map = 1; break;
    default: return ST_EPARSE; /* 0xc1 never used */
    }
    if (hdr > 0) {
      uint64_t n;
      if (len - at < (size_t)hdr)
        return ST_EPARSE;
      n = be(p + at, hdr);
      at += (size_t)hdr;
      if (count) {
        count = n; /* container: n elements (pairs for a map) */
        hdr = -1;
      } else {
        skip += (size_t)n; /* n <= 2^32, no overflow on 64-bit size_t */
      }
    }
  }
  if (hdr == -1) {
    uint64_t elems = is_map ? count * 2 : count;
    if (depth >= ST_ENVELOPE_MAX_DEPTH)
      return ST_EDEPTH;
    if (elems > len - at) /* every element takes at least one byte */
      return ST_EPARSE;
    for (uint64_t i = 0; i < elems; i++) {
      int rc = prescan(p, len, &at, depth + 1);
      if (rc)
        return rc;
    }
  } else {
    if (skip > len - at)
      return ST_EPARSE;
    at += skip;
  }
  *pos = at;
  return 0;
}

/* ---- field rules -------------------------------------------------------- */

static int chars_ok(const char *s, size_t n, const char *extra, int upper) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
        (c && strchr(extra, c)))
      continue;
    return 0;
  }
  return 1;
}

static int lowerhex(const char *s, size_t n, int *all_zero) {
  *all_zero = 1;
  for (size_t i = 0; i < n; i++) {
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
    if (s[i] != '0')
      *all_zero = 0;
  }
  return 1;
}

/* W3C traceparent version 00: 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>. */
static int traceparent_ok(const char *s, size_t n) {
  int z1, z2, z3;
  if (n != 55 || memcmp(s, "00-", 3) || s[35] != '-' || s[52] != '-')
    return 0;
  return lowerhex(s + 3, 32, &z1) && !z1 && lowerhex(s + 36, 16, &z2) && !z2 &&
         lowerhex(s + 53, 2, &z3);
}

static int printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
      return 0;
  return 1;
}

/* Check one string field; names it in the error. */
static int check_str(const char *field, const char *s, size_t n, st_error_t *err) {
  if (strcmp(field, "job_id") == 0) {
    if (n == 0 || n > ST_ENVELOPE_MAX_ID)
      return st_fail(err, n ? ST_ETOOBIG : ST_EINVAL, "envelope: job_id: length %zu not in 1..%d",
                     n, ST_ENVELOPE_MAX_ID);
    if (!chars_ok(s, n, "._:-", 1))
      return st_fail(err, ST_EINVAL, "envelope: job_id: only A-Z a-z 0-9 . _ : - allowed");
  } else if (strcmp(field, "tenant") == 0) {
    if (n == 0 || n > ST_ENVELOPE_MAX_TENANT)
      return st_fail(err, n ? ST_ETOOBIG : ST_EINVAL, "envelope: tenant: length %zu not in 1..%d",
                     n, ST_ENVELOPE_MAX_TENANT);
    if (!chars_ok(s, n, "._-", 1))
      return st_fail(err, ST_EINVAL, "envelope: tenant: only A-Z a-z 0-9 . _ - allowed");
  } else if (strcmp(field, "type") == 0) {
    if (n == 0 || n > ST_ENVELOPE_MAX_TYPE)
      return st_fail(err, n ? ST_ETOOBIG : ST_EINVAL, "envelope: type: length %zu not in 1..%d",
                     n, ST_ENVELOPE_MAX_TYPE);
    if (!chars_ok(s, n, "_", 0))
      return st_fail(err, ST_EINVAL, "envelope: type: only a-z 0-9 _ allowed");
  } else if (strcmp(field, "idempotency_key") == 0) {
    if (n == 0 || n > ST_ENVELOPE_MAX_ID)
      return st_fail(err, n ? ST_ETOOBIG : ST_EINVAL,
                     "envelope: idempotency_key: length %zu not in 1..%d", n, ST_ENVELOPE_MAX_ID);
    if (!printable(s, n))
      return st_fail(err, ST_EINVAL, "envelope: idempotency_key: printable ASCII only");
  } else if (strcmp(field, "trace") == 0) {
    if (!traceparent_ok(s, n))
      return st_fail(err, ST_EINVAL, "envelope: trace: not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)");
  }
  return 0;
}

static int check_type_known(const char *type, const st_envelope_limits_t *lim, st_error_t *err) {
  if (!lim || !lim->types)
    return 0;
  for (const char *const *t = lim->types; *t; t++)
    if (strcmp(*t, type) == 0)
      return 0;
  return st_fail(err, ST_EUNSUPPORTED, "envelope: type: unknown job type \"%s\"", type);
}

/* ---- msgpack -> json ---------------------------------------------------- */

static int to_json(const msgpack_object *o, json_t **out, const char *path, st_error_t *err) {
  json_t *j = NULL;
  int rc = 0;

  switch (o->type) {
  case MSGPACK_OBJECT_NIL: j = json_null(); break;
  case MSGPACK_OBJECT_BOOLEAN: j = json_boolean(o->via.boolean); break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (o->via.u64 > (uint64_t)INT64_MAX)
      return st_fail(err, ST_ERANGE, "envelope: %s: integer above int64", path);
    j = json_integer((json_int_t)o->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: j = json_integer((json_int_t)o->via.i64); break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    if (!isfinite(o->via.f64))
      return st_fail(err, ST_EINVAL, "envelope: %s: number is not finite", path);
    j = json_real(o->via.f64);
    break;
  case MSGPACK_OBJECT_STR:
    if (!st_utf8_valid(o->via.str.ptr, o->via.str.size))
      return st_fail(err, ST_EUTF8, "envelope: %s: string is not UTF-8", path);
    j = json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
    break;
  case MSGPACK_OBJECT_ARRAY:
    if (o->via.array.size > ST_ENVELOPE_MAX_PAYLOAD_KEYS)
      return st_fail(err, ST_ETOOBIG, "envelope: %s: more than %d elements", path,
                     ST_ENVELOPE_MAX_PAYLOAD_KEYS);
    if (!(j = json_array()))
      break;
    for (uint32_t i = 0; i < o->via.array.size && !rc; i++) {
      json_t *e = NULL;
      if (!(rc = to_json(&o->via.array.ptr[i], &e, path, err)) && json_array_append_new(j, e))
        rc = st_fail(err, ST_ENOMEM, "envelope: %s: out of memory", path);
    }
    break;
  case MSGPACK_OBJECT_MAP:
    if (o->via.map.size > ST_ENVELOPE_MAX_PAYLOAD_KEYS)
      return st_fail(err, ST_ETOOBIG, "envelope: %s: more than %d keys", path,
                     ST_ENVELOPE_MAX_PAYLOAD_KEYS);
    if (!(j = json_object()))
      break;
    for (uint32_t i = 0; i < o->via.map.size && !rc; i++) {
      const msgpack_object_kv *kv = &o->via.map.ptr[i];
      char *key;
      json_t *v = NULL;
      if (kv->key.type != MSGPACK_OBJECT_STR) {
        rc = st_fail(err, ST_EINVAL, "envelope: %s: map key is not a string", path);
        break;
      }
      if (!st_utf8_valid(kv->key.via.str.ptr, kv->key.via.str.size) ||
          memchr(kv->key.via.str.ptr, 0, kv->key.via.str.size)) {
        rc = st_fail(err, ST_EUTF8, "envelope: %s: map key is not UTF-8 text", path);
        break;
      }
      if (!(key = st_strndup(kv->key.via.str.ptr, kv->key.via.str.size))) {
        rc = st_fail(err, ST_ENOMEM, "envelope: %s: out of memory", path);
        break;
      }
      if (json_object_get(j, key))
        rc = st_fail(err, ST_EINVAL, "envelope: %s: duplicate key \"%.64s\"", path, key);
      else if (!(rc = to_json(&kv->val, &v, path, err)) && json_object_set_new_nocheck(j, key, v))
        rc = st_fail(err, ST_ENOMEM, "envelope: %s: out of memory", path);
      st_free(key);
    }
    break;
  default:
    return st_fail(err, ST_EINVAL, "envelope: %s: binary and extension values are not allowed",
                   path);
  }
  if (!rc && !j)
    rc = st_fail(err, ST_ENOMEM, "envelope: %s: out of memory", path);
  if (rc) {
    json_decref(j);
    return rc;
  }
  *out = j;
  return 0;
}

/* ---- decode ------------------------------------------------------------- */

void st_envelope_init(st_envelope_t *env) { memset(env, 0, sizeof(*env)); }

void st_envelope_release(st_envelope_t *env) {
  st_free(env->job_id);
  st_free(env->tenant);
  st_free(env->type);
  st_free(env->idempotency_key);
  st_free(env->trace);
  json_decref(env->payload);
  st_envelope_init(env);
}

enum { F_V, F_JOB_ID, F_TENANT, F_TYPE, F_ATTEMPT, F_NOT_BEFORE, F_IDEM, F_TRACE, F_PAYLOAD, F_N };
static const char *const field_names[F_N] = {"v", "job_id", "tenant", "type", "attempt",
                                             "not_before", "idempotency_key", "trace", "payload"};

static int take_str(st_envelope_t *env, int f, const msgpack_object *v, st_error_t *err) {
  char **slot = f == F_JOB_ID ? &env->job_id : f == F_TENANT ? &env->tenant
              : f == F_TYPE   ? &env->type   : f == F_IDEM   ? &env->idempotency_key
                                             : &env->trace;
  int rc;
  if (v->type != MSGPACK_OBJECT_STR)
    return st_fail(err, ST_EINVAL, "envelope: %s: expected a string", field_names[f]);
  if ((rc = check_str(field_names[f], v->via.str.ptr, v->via.str.size, err)))
    return rc;
  if (!(*slot = st_strndup(v->via.str.ptr, v->via.str.size)))
    return st_fail(err, ST_ENOMEM, "envelope: %s: out of memory", field_names[f]);
  return 0;
}

static int take_uint(int f, const msgpack_object *v, uint64_t max, uint64_t *out, st_error_t *err) {
  if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return st_fail(err, ST_EINVAL, "envelope: %s: expected a non-negative integer",
                   field_names[f]);
  if (v->via.u64 > max)
    return st_fail(err, ST_ERANGE, "envelope: %s: %llu is above %llu", field_names[f],
                   (unsigned long long)v->via.u64, (unsigned long long)max);
  *out = v->via.u64;
  return 0;
}

static int take_field(st_envelope_t *env, int f, const msgpack_object *v, st_error_t *err) {
  uint64_t n = 0;
  int rc;
  switch (f) {
  case F_V:
    if ((rc = take_uint(f, v, UINT32_MAX, &n, err)))
      return rc;
    if (n != ST_ENVELOPE_VERSION)
      return st_fail(err, ST_EUNSUPPORTED, "envelope: v: version %llu is not supported",
                     (unsigned long long)n);
    return 0;
  case F_ATTEMPT:
    if ((rc = take_uint(f, v, ST_ENVELOPE_MAX_ATTEMPT, &n, err)))
      return rc;
    if (n == 0)
      return st_fail(err, ST_EINVAL, "envelope: attempt: must be at least 1");
    env->attempt = (uint32_t)n;
    return 0;
  case F_NOT_BEFORE:
    return take_uint(f, v, INT64_MAX, &env->not_before, err);
  case F_PAYLOAD:
    if (v->type != MSGPACK_OBJECT_MAP)
      return st_fail(err, ST_EINVAL, "envelope: payload: expected a map");
    return to_json(v, &env->payload, "payload", err);
  default:
    return take_str(env, f, v, err);
  }
}

int st_envelope_decode(st_envelope_t *env, const void *data, size_t len,
                       const st_envelope_limits_t *lim, st_error_t *err) {
  msgpack_unpacked u;
  size_t off = 0;
  unsigned seen = 0;
  int rc = 0;

  st_envelope_init(env);
  msgpack_unpacked_init(&u);
  if (lim && lim->max_bytes && len > lim->max_bytes) {
    rc = st_fail(err, ST_ETOOBIG, "envelope: %zu bytes, above max_envelope_bytes %zu", len,
                 lim->max_bytes);
    goto done;
  }
  if ((rc = prescan(data, len, &off, 0)) == ST_EDEPTH) {
    rc = st_fail(err, ST_EDEPTH, "envelope: nested deeper than %d", ST_ENVELOPE_MAX_DEPTH);
    goto done;
  }
  if (rc || off != len) {
    rc = st_fail(err, ST_EPARSE, "envelope: not one well-formed msgpack value");
    goto done;
  }
  off = 0;
  if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
    rc = st_fail(err, ST_EPARSE, "envelope: msgpack decoding failed");
    goto done;
  }
  if (u.data.type != MSGPACK_OBJECT_MAP) {
    rc = st_fail(err, ST_EINVAL, "envelope: expected a map at the top level");
    goto done;
  }
  for (uint32_t i = 0; i < u.data.via.map.size; i++) {
    const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
    int f;
    if (kv->key.type != MSGPACK_OBJECT_STR) {
      rc = st_fail(err, ST_EINVAL, "envelope: field name is not a string");
      goto done;
    }
    for (f = 0; f < F_N; f++)
      if (strlen(field_names[f]) == kv->key.via.str.size &&
          memcmp(field_names[f], kv->key.via.str.ptr, kv->key.via.str.size) == 0)
        break;
    if (f == F_N) {
      int n = kv->key.via.str.size > 64 ? 64 : (int)kv->key.via.str.size;
      rc = st_fail(err, ST_EINVAL, "envelope: unknown field \"%.*s\"",
                   printable(kv->key.via.str.ptr, (size_t)n) ? n : 0, kv->key.via.str.ptr);
      goto done;
    }
    if (seen & (1u << f)) {
      rc = st_fail(err, ST_EINVAL, "envelope: %s: duplicate field", field_names[f]);
      goto done;
    }
    seen |= 1u << f;
    if ((rc = take_field(env, f, &kv->val, err)))
      goto done;
  }
  for (int f = 0; f < F_N; f++) {
    if (f == F_IDEM || f == F_TRACE || (seen & (1u << f)))
      continue;
    rc = st_fail(err, ST_EINVAL, "envelope: %s: missing", field_names[f]);
    goto done;
  }
  rc = check_type_known(env->type, lim, err);
done:
  msgpack_unpacked_destroy(&u);
  if (rc)
    st_envelope_release(env);
  return rc;
}

/* ---- encode ------------------------------------------------------------- */

typedef struct {
  st_buf_t *buf;
  int rc;
} sink_t;

static int write_cb(void *data, const char *p, size_t n) {
  sink_t *s = data;
  if (!s->rc)
    s->rc = st_buf_add(s->buf, p, n);
  return s->rc ? -1 : 0;
}

static int pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int pack_json(msgpack_packer *pk, const json_t *j, int depth, st_error_t *err) {
  if (depth > ST_ENVELOPE_MAX_DEPTH)
    return st_fail(err, ST_EDEPTH, "envelope: payload: nested deeper than %d",
                   ST_ENVELOPE_MAX_DEPTH);
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    const char *k;
    json_t *v;
    if (json_object_size(j) > ST_ENVELOPE_MAX_PAYLOAD_KEYS)
      return st_fail(err, ST_ETOOBIG, "envelope: payload: more than %d keys",
                     ST_ENVELOPE_MAX_PAYLOAD_KEYS);
    if (msgpack_pack_map(pk, json_object_size(j)))
      return ST_ETOOBIG;
    json_object_foreach((json_t *)j, k, v) {
      int rc;
      if (pack_str(pk, k))
        return ST_ETOOBIG;
      if ((rc = pack_json(pk, v, depth + 1, err)))
        return rc;
    }
    return 0;
  }
  case JSON_ARRAY: {
    size_t i;
    json_t *v;
    if (json_array_size(j) > ST_ENVELOPE_MAX_PAYLOAD_KEYS)
      return st_fail(err, ST_ETOOBIG, "envelope: payload: more than %d elements",
                     ST_ENVELOPE_MAX_PAYLOAD_KEYS);
    if (msgpack_pack_array(pk, json_array_size(j)))
      return ST_ETOOBIG;
    json_array_foreach(j, i, v) {
      int rc = pack_json(pk, v, depth + 1, err);
      if (rc)
        return rc;
    }
    return 0;
  }
  case JSON_STRING:
    return msgpack_pack_str(pk, json_string_length(j)) ||
                   msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j))
               ? ST_ETOOBIG
               : 0;
  case JSON_INTEGER: return msgpack_pack_int64(pk, json_integer_value(j)) ? ST_ETOOBIG : 0;
  case JSON_REAL: return msgpack_pack_double(pk, json_real_value(j)) ? ST_ETOOBIG : 0;
  case JSON_TRUE: return msgpack_pack_true(pk) ? ST_ETOOBIG : 0;
  case JSON_FALSE: return msgpack_pack_false(pk) ? ST_ETOOBIG : 0;
  default: return msgpack_pack_nil(pk) ? ST_ETOOBIG : 0;
  }
}

int st_envelope_encode(const st_envelope_t *env, size_t max_bytes, st_buf_t *out,
                       st_error_t *err) {
  st_buf_t tmp = ST_BUF_INIT;
  sink_t s = {&tmp, 0};
  msgpack_packer pk;
  const char *strs[] = {env->job_id, env->tenant, env->type, env->idempotency_key, env->trace};
  const char *names[] = {"job_id", "tenant", "type", "idempotency_key", "trace"};
  size_t nfields = 7;
  int rc = 0;

  for (int i = 0; i < 5; i++) {
    if (!strs[i] && i < 3) {
      rc = st_fail(err, ST_EINVAL, "envelope: %s: missing", names[i]);
      goto done;
    }
    if (strs[i] && (rc = check_str(names[i], strs[i], strlen(strs[i]), err)))
      goto done;
    if (strs[i] && i >= 3)
      nfields++;
  }
  if (env->attempt < 1 || env->attempt > ST_ENVELOPE_MAX_ATTEMPT) {
    rc = st_fail(err, ST_ERANGE, "envelope: attempt: %u not in 1..%d", env->attempt,
                 ST_ENVELOPE_MAX_ATTEMPT);
    goto done;
  }
  if (env->not_before > (uint64_t)INT64_MAX) {
    rc = st_fail(err, ST_ERANGE, "envelope: not_before: above int64");
    goto done;
  }
  if (!json_is_object(env->payload)) {
    rc = st_fail(err, ST_EINVAL, "envelope: payload: expected an object");
    goto done;
  }
  st_buf_init(&tmp, max_bytes ? max_bytes : out->max);
  msgpack_packer_init(&pk, &s, write_cb);
  if (msgpack_pack_map(&pk, nfields) || pack_str(&pk, "v") ||
      msgpack_pack_uint32(&pk, ST_ENVELOPE_VERSION))
    goto packfail;
  for (int i = 0; i < 5; i++)
    if (strs[i] && (pack_str(&pk, names[i]) || pack_str(&pk, strs[i])))
      goto packfail;
  if (pack_str(&pk, "attempt") || msgpack_pack_uint32(&pk, env->attempt) ||
      pack_str(&pk, "not_before") || msgpack_pack_uint64(&pk, env->not_before) ||
      pack_str(&pk, "payload"))
    goto packfail;
  if ((rc = pack_json(&pk, env->payload, 1, err)) && !s.rc)
    goto done;
  if (s.rc)
    goto packfail;
  rc = st_buf_add(out, tmp.data, tmp.len);
  if (rc)
    st_fail(err, rc, "envelope: does not fit the output buffer");
  goto done;
packfail:
  rc = st_fail(err, s.rc ? s.rc : ST_EINTERNAL, "envelope: encoding %s",
               s.rc == ST_ETOOBIG ? "exceeds max_envelope_bytes" : "failed");
done:
  st_buf_release(&tmp);
  return rc;
}

int st_envelope_new_id(st_envelope_t *env, st_error_t *err) {
  unsigned char r[16];
  char id[37];
  if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
    return st_fail(err, ST_EIO, "envelope: job_id: getrandom failed");
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  snprintf(id, sizeof(id),
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
           r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
           r[15]);
  st_free(env->job_id);
  if (!(env->job_id = st_strdup(id)))
    return st_fail(err, ST_ENOMEM, "envelope: job_id: out of memory");
  return 0;
}

int st_envelope_stream(const char *type, st_buf_t *out) {
  int rc = st_buf_adds(out, ST_STREAM_PREFIX);
  return rc ? rc : st_buf_adds(out, type);
}
