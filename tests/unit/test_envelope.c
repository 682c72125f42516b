/* test_envelope.c: the envelope v1 codec: round trip, and every bad-input kind is
 * refused with the field named (missing, wrong type, oversized, unknown type/field,
 * duplicate, bad msgpack, hostile container counts, too deep, trailing bytes). */
#include "st_test.h"

#include <msgpack.h>

#include "envelope.h"
#include "stella/mem.h"

static const char *const types[] = {"probe", NULL};
static const st_envelope_limits_t lim = {4096, types};
#define TRACE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void good(st_envelope_t *e) {
  st_envelope_init(e);
  e->job_id = st_strdup("job-1");
  e->tenant = st_strdup("acme");
  e->type = st_strdup("probe");
  e->attempt = 1;
  e->not_before = 1700000000000ULL;
  e->idempotency_key = st_strdup("k 1");
  e->trace = st_strdup(TRACE);
  e->payload = json_pack("{s:i,s:s,s:[i,f,b,n],s:{s:i}}", "sleep_ms", 5, "s", "h\xc3\xa9",
                         "a", -3, 1.5, 1, "o", "x", 1);
}

static void test_round_trip(void **state) {
  st_envelope_t e, d;
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;

  good(&e);
  assert_int_equal(st_envelope_encode(&e, 4096, &b, &err), 0);
  assert_int_equal(st_envelope_decode(&d, b.data, b.len, &lim, &err), 0);
  assert_string_equal(d.job_id, "job-1");
  assert_string_equal(d.tenant, "acme");
  assert_string_equal(d.type, "probe");
  assert_int_equal(d.attempt, 1);
  assert_true(d.not_before == 1700000000000ULL);
  assert_string_equal(d.idempotency_key, "k 1");
  assert_string_equal(d.trace, TRACE);
  assert_true(json_equal(d.payload, e.payload));
  st_envelope_release(&d);
  /* optional fields absent */
  st_free(e.trace);
  st_free(e.idempotency_key);
  e.trace = e.idempotency_key = NULL;
  st_buf_reset(&b);
  assert_int_equal(st_envelope_encode(&e, 4096, &b, &err), 0);
  assert_int_equal(st_envelope_decode(&d, b.data, b.len, &lim, &err), 0);
  assert_null(d.trace);
  assert_null(d.idempotency_key);
  st_envelope_release(&d);
  st_envelope_release(&e);
  st_buf_release(&b);
}

/* Encode a map of n (key, value-writer) pairs by hand. */
typedef void (*writer)(msgpack_packer *pk);
static void w_v(msgpack_packer *pk) { msgpack_pack_uint8(pk, 1); }
static void w_id(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "j1", 2); }
static void w_tenant(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "acme", 4); }
static void w_type(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "probe", 5); }
static void w_one(msgpack_packer *pk) { msgpack_pack_uint8(pk, 1); }
static void w_zero(msgpack_packer *pk) { msgpack_pack_uint8(pk, 0); }
static void w_map(msgpack_packer *pk) { msgpack_pack_map(pk, 0); }
static void w_int(msgpack_packer *pk) { msgpack_pack_int(pk, 7); }
static void w_neg(msgpack_packer *pk) { msgpack_pack_int(pk, -1); }
static void w_str(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "x", 1); }
static void w_nosuch(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "nosuch", 6); }
static void w_badchars(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "a/b", 3); }
static void w_empty(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "", 0); }
static void w_long(msgpack_packer *pk) {
  char s[200];
  memset(s, 'a', sizeof(s));
  msgpack_pack_str_with_body(pk, s, sizeof(s));
}
static void w_badtrace(msgpack_packer *pk) {
  msgpack_pack_str_with_body(pk, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", 55);
}
static void w_bin_payload(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  msgpack_pack_str_with_body(pk, "b", 1);
  msgpack_pack_bin_with_body(pk, "\x01", 1);
}
static void w_badutf8_payload(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  msgpack_pack_str_with_body(pk, "s", 1);
  msgpack_pack_str_with_body(pk, "\xff", 1);
}
static void w_dupkey_payload(msgpack_packer *pk) {
  msgpack_pack_map(pk, 2);
  msgpack_pack_str_with_body(pk, "k", 1);
  msgpack_pack_nil(pk);
  msgpack_pack_str_with_body(pk, "k", 1);
  msgpack_pack_nil(pk);
}
static void w_intkey_payload(msgpack_packer *pk) {
  msgpack_pack_map(pk, 1);
  msgpack_pack_int(pk, 1);
  msgpack_pack_nil(pk);
}

typedef struct {
  const char *key;
  writer w;
} kv_t;

static void pack(st_buf_t *out, const kv_t *kvs, size_t n) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, n);
  for (size_t i = 0; i < n; i++) {
    msgpack_pack_str_with_body(&pk, kvs[i].key, strlen(kvs[i].key));
    kvs[i].w(&pk);
  }
  st_buf_reset(out);
  assert_int_equal(st_buf_add(out, sb.data, sb.size), 0);
  msgpack_sbuffer_destroy(&sb);
}

/* The base envelope with field `key` replaced by w (w NULL: removed; key not in the base:
 * added). Decoding must fail with code and a message containing `needle`. */
static void expect_bad(const char *key, writer w, int code, const char *needle) {
  kv_t kvs[10] = {{"v", w_v},        {"job_id", w_id},    {"tenant", w_tenant},
                  {"type", w_type},  {"attempt", w_one},  {"not_before", w_zero},
                  {"payload", w_map}};
  size_t n = 7, i;
  st_buf_t b = ST_BUF_INIT;
  st_envelope_t e;
  st_error_t err = ST_ERROR_INIT;

  for (i = 0; i < n && strcmp(kvs[i].key, key); i++)
    ;
  if (i == n)
    kvs[n++] = (kv_t){key, w};
  else if (w)
    kvs[i].w = w;
  else
    kvs[i] = kvs[--n];
  pack(&b, kvs, n);
  assert_int_equal(st_envelope_decode(&e, b.data, b.len, &lim, &err), code);
  if (!strstr(err.msg, needle)) {
    fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.msg, needle);
    fail();
  }
  assert_null(e.job_id); /* left released */
  assert_null(e.payload);
  st_buf_release(&b);
}

static void test_base_ok(void **state) {
  kv_t kvs[] = {{"v", w_v},       {"job_id", w_id},   {"tenant", w_tenant},
                {"type", w_type}, {"attempt", w_one}, {"not_before", w_zero},
                {"payload", w_map}};
  st_buf_t b = ST_BUF_INIT;
  st_envelope_t e;
  st_error_t err = ST_ERROR_INIT;
  pack(&b, kvs, 7);
  assert_int_equal(st_envelope_decode(&e, b.data, b.len, &lim, &err), 0);
  st_envelope_release(&e);
  st_buf_release(&b);
}

static void test_bad_fields(void **state) {
  expect_bad("tenant", NULL, ST_EINVAL, "tenant: missing");
  expect_bad("job_id", NULL, ST_EINVAL, "job_id: missing");
  expect_bad("payload", NULL, ST_EINVAL, "payload: missing");
  expect_bad("v", NULL, ST_EINVAL, "v: missing");
  expect_bad("tenant", w_int, ST_EINVAL, "tenant: expected a string");
  expect_bad("tenant", w_empty, ST_EINVAL, "tenant: length 0");
  expect_bad("tenant", w_long, ST_ETOOBIG, "tenant: length 200");
  expect_bad("tenant", w_badchars, ST_EINVAL, "tenant: only");
  expect_bad("job_id", w_long, ST_ETOOBIG, "job_id: length 200");
  expect_bad("type", w_nosuch, ST_EUNSUPPORTED, "type: unknown job type \"nosuch\"");
  expect_bad("type", w_badchars, ST_EINVAL, "type: only");
  expect_bad("attempt", w_zero, ST_EINVAL, "attempt: must be at least 1");
  expect_bad("attempt", w_neg, ST_EINVAL, "attempt: expected a non-negative integer");
  expect_bad("attempt", w_str, ST_EINVAL, "attempt: expected");
  expect_bad("not_before", w_str, ST_EINVAL, "not_before: expected");
  expect_bad("v", w_int, ST_EUNSUPPORTED, "v: version 7");
  expect_bad("payload", w_str, ST_EINVAL, "payload: expected a map");
  expect_bad("payload", w_bin_payload, ST_EINVAL, "payload: binary");
  expect_bad("payload", w_badutf8_payload, ST_EUTF8, "payload: string is not UTF-8");
  expect_bad("payload", w_dupkey_payload, ST_EINVAL, "payload: duplicate key \"k\"");
  expect_bad("payload", w_intkey_payload, ST_EINVAL, "payload: map key is not a string");
  expect_bad("trace", w_badtrace, ST_EINVAL, "trace: not a W3C traceparent");
  expect_bad("trace", w_str, ST_EINVAL, "trace: not a W3C traceparent");
  expect_bad("idempotency_key", w_empty, ST_EINVAL, "idempotency_key: length 0");
  expect_bad("extra", w_str, ST_EINVAL, "unknown field \"extra\"");
}

static void expect_raw(const void *p, size_t n, int code, const char *needle) {
  st_envelope_t e;
  st_error_t err = ST_ERROR_INIT;
  assert_int_equal(st_envelope_decode(&e, p, n, &lim, &err), code);
  assert_non_null(strstr(err.msg, needle));
}

static void test_bad_msgpack(void **state) {
  unsigned char deep[64];
  expect_raw("garbage", 7, ST_EPARSE, "not one well-formed msgpack value");
  expect_raw("", 0, ST_EPARSE, "msgpack");
  expect_raw("\xc1", 1, ST_EPARSE, "msgpack");
  /* container headers promising billions of elements: refused before any allocation */
  expect_raw("\xdd\xff\xff\xff\xff", 5, ST_EPARSE, "msgpack");
  expect_raw("\xdf\xff\xff\xff\xff\x00", 6, ST_EPARSE, "msgpack");
  expect_raw("\xdb\xff\xff\xff\xff", 5, ST_EPARSE, "msgpack"); /* str32 past the end */
  expect_raw("\x91\x01", 2, ST_EINVAL, "expected a map at the top level");
  expect_raw("\x80\x80", 2, ST_EPARSE, "msgpack"); /* trailing bytes */
  expect_raw("\x81\xa1v", 3, ST_EPARSE, "msgpack");  /* truncated */
  memset(deep, 0x91, sizeof(deep));
  deep[63] = 0xc0;
  expect_raw(deep, sizeof(deep), ST_EDEPTH, "nested deeper");
}

static void test_oversized(void **state) {
  st_envelope_t e, d;
  st_buf_t b = ST_BUF_INIT, big = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  const st_envelope_limits_t small = {64, types};

  good(&e);
  for (int i = 0; i < 5000; i++)
    assert_int_equal(st_buf_addc(&big, 'x'), 0);
  json_object_set_new(e.payload, "big", json_string(big.data));
  assert_int_equal(st_envelope_encode(&e, 4096, &b, &err), ST_ETOOBIG);
  assert_non_null(strstr(err.msg, "max_envelope_bytes"));
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), 0);
  assert_int_equal(st_envelope_decode(&d, b.data, b.len, &lim, &err), ST_ETOOBIG);
  assert_non_null(strstr(err.msg, "above max_envelope_bytes 4096"));
  assert_int_equal(st_envelope_decode(&d, b.data, b.len, &small, &err), ST_ETOOBIG);
  st_envelope_release(&e);
  st_buf_release(&b);
  st_buf_release(&big);
}

static void test_encode_checks(void **state) {
  st_envelope_t e;
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;

  good(&e);
  st_free(e.tenant);
  e.tenant = NULL;
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), ST_EINVAL);
  assert_non_null(strstr(err.msg, "tenant: missing"));
  e.tenant = st_strdup("ac me");
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), ST_EINVAL);
  e.attempt = 0;
  st_free(e.tenant);
  e.tenant = st_strdup("acme");
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), ST_ERANGE);
  assert_int_equal(b.len, 0);
  e.attempt = 1;
  assert_int_equal(st_envelope_new_id(&e, &err), 0);
  assert_int_equal(strlen(e.job_id), 36);
  assert_int_equal(e.job_id[14], '4');
  st_envelope_release(&e);
  st_buf_release(&b);
}

static void test_nomem(void **state) {
  st_envelope_t e, d;
  st_buf_t b = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  int failures = 0;

  good(&e);
  assert_int_equal(st_envelope_encode(&e, 0, &b, &err), 0);
  for (long n = 0; n < 64; n++) {
    st_mem_fail_after(n);
    int rc = st_envelope_decode(&d, b.data, b.len, &lim, &err);
    st_mem_fail_after(-1);
    if (rc == 0)
      st_envelope_release(&d);
    else
      assert_int_equal(rc, ST_ENOMEM), failures++;
  }
  assert_true(failures > 0);
  st_envelope_release(&e);
  st_buf_release(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_base_ok),
      cmocka_unit_test(test_bad_fields),  cmocka_unit_test(test_bad_msgpack),
      cmocka_unit_test(test_oversized),   cmocka_unit_test(test_encode_checks),
      cmocka_unit_test(test_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
