/* test_s3_sigv4.c: the hand-written SigV4 signer against AWS's published vectors
 * (the SigV4 test suite's get-vanilla, get-vanilla-query-order-key-case, post-vanilla,
 * post-x-www-form-urlencoded; the S3 API reference's GET Object with Range, PUT Object
 * and list examples), plus the URI encoding and date rules. */
#include "st_test.h"

#include "../../core/src/s3_sigv4.h"

#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static void sign(const char *method, const char *uri, const char *query,
                 const st__sigv4_header_t *h, size_t n, const char *payload, const char *date,
                 const char *service, const char *ak, const char *sk, const char *want_auth,
                 const char *want_canonical) {
  st_buf_t auth = ST_BUF_INIT, canon = ST_BUF_INIT;
  st__sigv4_req_t r = {method, uri, query, h, n, payload, date, "us-east-1", service, ak, sk};
  assert_int_equal(st__sigv4_authorization(&r, &auth, &canon), 0);
  assert_string_equal(auth.data, want_auth);
  if (want_canonical)
    assert_string_equal(canon.data, want_canonical);
  st_buf_release(&auth);
  st_buf_release(&canon);
}

static void suite_get_vanilla(void **state) {
  st__sigv4_header_t h[] = {{"Host", "example.amazonaws.com"},
                            {"X-Amz-Date", "20150830T123600Z"}};
  sign("GET", "/", "", h, 2, EMPTY, "20150830T123600Z", "service", "AKIDEXAMPLE", SUITE_SECRET,
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY);
}

static void suite_query_order(void **state) {
  st_buf_t q = ST_BUF_INIT;
  const char *kv[] = {"Param2", "value2", "Param1", "value1"};
  st__sigv4_header_t h[] = {{"host", "example.amazonaws.com"},
                            {"x-amz-date", "20150830T123600Z"}};
  assert_int_equal(st__sigv4_query(&q, kv, 2), 0);
  assert_string_equal(q.data, "Param1=value1&Param2=value2");
  sign("GET", "/", q.data, h, 2, EMPTY, "20150830T123600Z", "service", "AKIDEXAMPLE",
       SUITE_SECRET,
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
       NULL);
  st_buf_release(&q);
}

static void suite_post(void **state) {
  st__sigv4_header_t h[] = {{"host", "example.amazonaws.com"},
                            {"x-amz-date", "20150830T123600Z"}};
  st__sigv4_header_t f[] = {{"Content-Type", "application/x-www-form-urlencoded"},
                            {"host", "example.amazonaws.com"},
                            {"x-amz-date", "20150830T123600Z"}};
  sign("POST", "/", "", h, 2, EMPTY, "20150830T123600Z", "service", "AKIDEXAMPLE", SUITE_SECRET,
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
       "SignedHeaders=host;x-amz-date, "
       "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
       NULL);
  /* body "Param1=value1" */
  sign("POST", "/", "", f, 3, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "20150830T123600Z", "service", "AKIDEXAMPLE", SUITE_SECRET,
       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
       NULL);
}

static void s3_examples(void **state) {
  st_buf_t uri = ST_BUF_INIT, q = ST_BUF_INIT;
  const char *kv[] = {"max-keys", "2", "prefix", "J"};
  st__sigv4_header_t get[] = {{"host", "examplebucket.s3.amazonaws.com"},
                              {"range", "bytes=0-9"},
                              {"x-amz-content-sha256", EMPTY},
                              {"x-amz-date", "20130524T000000Z"}};
  st__sigv4_header_t put[] = {
      {"date", "Fri, 24 May 2013 00:00:00 GMT"},
      {"host", "examplebucket.s3.amazonaws.com"},
      {"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  st__sigv4_header_t list[] = {{"host", "examplebucket.s3.amazonaws.com"},
                               {"x-amz-content-sha256", EMPTY},
                               {"x-amz-date", "20130524T000000Z"}};

  sign("GET", "/test.txt", "", get, 4, EMPTY, "20130524T000000Z", "s3", "AKIAIOSFODNN7EXAMPLE",
       S3_SECRET,
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
       "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
       NULL);
  assert_int_equal(st_buf_adds(&uri, "/"), 0);
  assert_int_equal(st__sigv4_uri_encode(&uri, "test$file.text", 14, 1), 0);
  assert_string_equal(uri.data, "/test%24file.text");
  sign("PUT", uri.data, "", put, 5,
       "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", "20130524T000000Z",
       "s3", "AKIAIOSFODNN7EXAMPLE", S3_SECRET,
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
       "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
       NULL);
  assert_int_equal(st__sigv4_query(&q, kv, 2), 0);
  assert_string_equal(q.data, "max-keys=2&prefix=J");
  sign("GET", "/", q.data, list, 3, EMPTY, "20130524T000000Z", "s3", "AKIAIOSFODNN7EXAMPLE",
       S3_SECRET,
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
       "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
       "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
       NULL);
  st_buf_release(&uri);
  st_buf_release(&q);
}

static void encoding_and_dates(void **state) {
  st_buf_t b = ST_BUF_INIT;
  const char *kv[] = {"prefix", "tenants/a b/", "list-type", "2", "a", "=&"};
  char d[17];
  assert_int_equal(st__sigv4_uri_encode(&b, "a/b c+~", 7, 0), 0);
  assert_string_equal(b.data, "a%2Fb%20c%2B~");
  st_buf_reset(&b);
  assert_int_equal(st__sigv4_query(&b, kv, 3), 0);
  assert_string_equal(b.data, "a=%3D%26&list-type=2&prefix=tenants%2Fa%20b%2F");
  st__sigv4_amz_date(1440938160, d);
  assert_string_equal(d, "20150830T123600Z");
  st__sigv4_amz_date(1709164800, d);
  assert_string_equal(d, "20240229T000000Z");
  st_buf_release(&b);
}

/* A changed header value, payload hash or secret changes the signature. */
static void tamper_changes_signature(void **state) {
  st__sigv4_header_t h[] = {{"host", "example.amazonaws.com"},
                            {"x-amz-date", "20150830T123600Z"}};
  st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT;
  st__sigv4_req_t r = {"GET", "/", "", h, 2, EMPTY, "20150830T123600Z", "us-east-1",
                       "service", "AKIDEXAMPLE", SUITE_SECRET};
  assert_int_equal(st__sigv4_authorization(&r, &a, NULL), 0);
  r.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ";
  assert_int_equal(st__sigv4_authorization(&r, &b, NULL), 0);
  assert_string_not_equal(a.data, b.data);
  st_buf_reset(&b);
  r.secret_key = SUITE_SECRET;
  r.payload_hash = "UNSIGNED-PAYLOAD";
  assert_int_equal(st__sigv4_authorization(&r, &b, NULL), 0);
  assert_string_not_equal(a.data, b.data);
  st_buf_reset(&b);
  r.amz_date = "20150830";
  assert_int_equal(st__sigv4_authorization(&r, &b, NULL), ST_EINVAL);
  st_buf_release(&a);
  st_buf_release(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(suite_get_vanilla),  cmocka_unit_test(suite_query_order),
      cmocka_unit_test(suite_post),         cmocka_unit_test(s3_examples),
      cmocka_unit_test(encoding_and_dates), cmocka_unit_test(tamper_changes_signature),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
