/* test_timeline.c: timeline event decoding and cursors without a database: RFC 3339 and
 * stream id parsing, JSON and msgpack envelopes (valid, hostile container sizes, depth,
 * trailing bytes, duplicate keys, non-string keys, binary values), routing-field mismatch,
 * and the cursor codec (round trip, every byte altered, wrong key, other filter). */
#include "st_test.h"

#include <msgpack.h>

#include "stella/mem.h"
#include "timeline/timeline_cursor.h"
#include "timeline/timeline_event.h"

static void rfc3339_and_ids(void **state) {
  const char *good[] = {"2026-01-01T00:00:00Z", "2024-02-29T23:59:60.123456789+14:00",
                        "2026-12-31t10:00:00z", "2026-06-30T00:00:00-05:30"};
  const char *bad[] = {"2026-01-01", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                       "2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01 00:00:00Z",
                       "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z",
                       "2026-01-01T00:00:00.1234567890Z", "2026-01-01T00:00:00+1:00",
                       "2026-01-01T00:00:00Zjunk", "1900-02-29T00:00:00Z", ""};
  uint64_t a, b;
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    assert_true(st_tl_rfc3339_valid(good[i]));
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (st_tl_rfc3339_valid(bad[i]))
      fail_msg("accepted %s", bad[i]);
  assert_int_equal(st_tl_stream_id_parse("1700000000000-42", &a, &b), 0);
  assert_true(a == 1700000000000ULL && b == 42);
  assert_int_equal(st_tl_stream_id_parse("9223372036854775808-0", &a, &b), ST_EINVAL);
  assert_int_equal(st_tl_stream_id_parse("1-", &a, &b), ST_EINVAL);
  assert_int_equal(st_tl_stream_id_parse("-1", &a, &b), ST_EINVAL);
  assert_int_equal(st_tl_stream_id_parse("12", &a, &b), ST_EINVAL);
  assert_int_equal(st_tl_stream_id_parse("1-2-3", &a, &b), ST_EINVAL);
}

static int decode(const void *body, size_t len, const char *tenant_hint, st_error_t *err) {
  st_tl_raw_t r = {"redis:t", 1, 2, body, len, NULL, tenant_hint, NULL};
  st_tl_event_t ev;
  int rc;
  st_tl_event_init(&ev);
  rc = st_tl_event_decode(&r, &ev, err);
  if (!rc) {
    assert_string_equal(ev.source, "redis:t");
    assert_int_equal(ev.seq_minor, 2);
  }
  st_tl_event_release(&ev);
  return rc;
}

#define J(s) s, sizeof(s) - 1

static void json_envelopes(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_tl_raw_t r = {"redis:t", 1, 0, NULL, 0, NULL, NULL, NULL};
  st_tl_event_t ev;
  const char full[] =
      "{\"event_id\":\"e\",\"tenant\":\"t\",\"type\":\"a.b\",\"occurred_at\":"
      "\"2026-01-01T00:00:00Z\",\"payload\":{\"z\":1,\"a\":[true,null]},\"evidence\":[{\"digest\":"
      "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}]}";

  r.body = full, r.body_len = sizeof(full) - 1;
  st_tl_event_init(&ev);
  assert_int_equal(st_tl_event_decode(&r, &ev, &err), 0);
  assert_string_equal(ev.payload, "{\"a\":[true,null],\"z\":1}");
  assert_int_equal(ev.n_evidence, 1);
  assert_null(ev.evidence[0].bundle_id);
  assert_null(ev.subject);
  st_tl_event_release(&ev);

  assert_int_equal(decode(J("{\"event_id\":\"e\",\"event_id\":\"f\",\"tenant\":\"t\"}"), NULL, &err),
                   ST_EPARSE);
  assert_int_equal(decode(J("[1]"), NULL, &err), ST_EINVAL);
  assert_int_equal(decode(J("{\"event_id\":\"e\\u0000x\",\"tenant\":\"t\",\"type\":\"a\","
                            "\"occurred_at\":\"2026-01-01T00:00:00Z\"}"), NULL, &err),
                   ST_EPARSE);
  assert_int_equal(decode(J("{\"event_id\":\"e\\nx\",\"tenant\":\"t\",\"type\":\"a\","
                            "\"occurred_at\":\"2026-01-01T00:00:00Z\"}"), NULL, &err),
                   ST_EINVAL);
  assert_non_null(strstr(err.msg, "event_id"));
  assert_int_equal(decode(J("{\"event_id\":\"e\",\"tenant\":\"t\",\"type\":\"a\","
                            "\"occurred_at\":\"2026-01-01T00:00:00Z\"}"), "u", &err),
                   ST_EINVAL);
  assert_non_null(strstr(err.msg, "\"tenant\" does not match"));
  assert_int_equal(decode(J("{\"event_id\":\"e\",\"tenant\":\"t\",\"type\":\"a\","
                            "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"schema\":\"x\"}"),
                          NULL, &err),
                   ST_EINVAL);
  assert_int_equal(decode(J(""), NULL, &err), ST_EPARSE);
  r.source = "";
  assert_int_equal(st_tl_event_decode(&r, &ev, &err), ST_EINVAL);
}

static void msgpack_envelopes(void **state) {
  st_error_t err = ST_ERROR_INIT;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  const char *kv[] = {"event_id", "m", "tenant", "t", "type", "a", "occurred_at",
                      "2026-01-01T00:00:00Z"};

  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 5);
  for (int i = 0; i < 8; i++) {
    msgpack_pack_str(&pk, strlen(kv[i]));
    msgpack_pack_str_body(&pk, kv[i], strlen(kv[i]));
  }
  msgpack_pack_str(&pk, 7);
  msgpack_pack_str_body(&pk, "payload", 7);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, "n", 1);
  msgpack_pack_int64(&pk, -5);
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, "f", 1);
  msgpack_pack_double(&pk, 1.5);
  assert_int_equal(decode(sb.data, sb.size, "t", &err), 0);
  /* Trailing byte after the map. */
  msgpack_pack_nil(&pk);
  assert_int_equal(decode(sb.data, sb.size, NULL, &err), ST_EPARSE);
  /* Truncated. */
  assert_int_equal(decode(sb.data, sb.size - 6, NULL, &err), ST_EPARSE);
  msgpack_sbuffer_destroy(&sb);

  /* Hostile sizes: a map claiming 2^32-1 pairs, an array claiming 65535 elements, a string
   * longer than the input: refused before msgpack-c allocates. */
  const unsigned char huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a'};
  const unsigned char big_arr[] = {0x81, 0xa1, 'a', 0xdc, 0xff, 0xff, 0x01};
  const unsigned char long_str[] = {0x81, 0xa1, 'a', 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'};
  const unsigned char ext[] = {0x81, 0xa1, 'a', 0xd4, 0x01, 0x00};
  const unsigned char bin[] = {0x81, 0xa1, 'a', 0xc4, 0x01, 0x00};
  const unsigned char intkey[] = {0x81, 0x01, 0x01};
  const unsigned char dupkey[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
  const unsigned char badutf[] = {0x81, 0xa1, 'a', 0xa1, 0xff};
  assert_int_equal(decode(huge_map, sizeof(huge_map), NULL, &err), ST_EPARSE);
  assert_int_equal(decode(big_arr, sizeof(big_arr), NULL, &err), ST_EPARSE);
  assert_int_equal(decode(long_str, sizeof(long_str), NULL, &err), ST_EPARSE);
  assert_int_equal(decode(ext, sizeof(ext), NULL, &err), ST_EPARSE);
  assert_int_equal(decode(bin, sizeof(bin), NULL, &err), ST_EPARSE);
  assert_int_equal(decode(intkey, sizeof(intkey), NULL, &err), ST_EPARSE);
  assert_int_equal(decode(dupkey, sizeof(dupkey), NULL, &err), ST_EPARSE);
  assert_int_equal(decode(badutf, sizeof(badutf), NULL, &err), ST_EUTF8);
  /* Nesting 40 deep: refused (depth cap 32), no recursion blow-up. */
  unsigned char deep[64];
  size_t n = 0;
  deep[n++] = 0x81, deep[n++] = 0xa1, deep[n++] = 'a';
  for (int i = 0; i < 40; i++)
    deep[n++] = 0x91;
  deep[n++] = 0xc0;
  assert_int_equal(decode(deep, n, NULL, &err), ST_EDEPTH);
}

static void cursors(void **state) {
  st_tl_cursor_key_t key = {(const unsigned char *)"unit-test-cursor-key!", 21};
  st_tl_cursor_key_t other = {(const unsigned char *)"unit-test-cursor-key?", 21};
  st_tl_filter_t f = {.type = "a.b"}, g = {.type = "a.c"}, h = {.subject = "a.b"};
  st_tl_sortkey_t k = {"2026-01-01T00:00:00.000000Z", "redis:x", "ev\"1", 17, 3}, out;
  char fa[65], fb[65], fc[65], ft[65];
  char *tok = NULL;
  st_error_t err = ST_ERROR_INIT;

  assert_int_equal(st__tl_filter_hash("t", &f, fa), 0);
  assert_int_equal(st__tl_filter_hash("t", &g, fb), 0);
  assert_int_equal(st__tl_filter_hash("t", &h, fc), 0); /* same value, other field */
  assert_int_equal(st__tl_filter_hash("u", &f, ft), 0);
  assert_string_not_equal(fa, fb);
  assert_string_not_equal(fa, fc);
  assert_string_not_equal(fa, ft);
  assert_int_equal(st__tl_cursor_encode(&key, fa, &k, &tok, &err), 0);
  assert_int_equal(st__tl_cursor_decode(&key, fa, tok, &out, &err), 0);
  assert_string_equal(out.event_id, "ev\"1");
  assert_int_equal(out.seq, 17);
  assert_int_equal(out.seq_minor, 3);
  st__tl_sortkey_release(&out);
  assert_int_equal(st__tl_cursor_decode(&key, fb, tok, &out, &err), ST_EVERIFY);
  assert_int_equal(st__tl_cursor_decode(&key, ft, tok, &out, &err), ST_EVERIFY);
  assert_int_equal(st__tl_cursor_decode(&other, fa, tok, &out, &err), ST_EVERIFY);
  /* Every single-character change is refused. */
  for (size_t i = 0; tok[i]; i++) {
    char saved = tok[i];
    tok[i] = saved == 'A' ? 'B' : 'A';
    if (st__tl_cursor_decode(&key, fa, tok, &out, &err) != ST_EVERIFY)
      fail_msg("altered byte %zu accepted", i);
    tok[i] = saved;
  }
  tok[strlen(tok) - 1] = '\0';
  assert_int_equal(st__tl_cursor_decode(&key, fa, tok, &out, &err), ST_EVERIFY);
  st_free(tok);
  st_tl_cursor_key_t none = {NULL, 0};
  assert_int_equal(st__tl_cursor_encode(&none, fa, &k, &tok, &err), ST_ECONFIG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc3339_and_ids), cmocka_unit_test(json_envelopes),
      cmocka_unit_test(msgpack_envelopes), cmocka_unit_test(cursors)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
