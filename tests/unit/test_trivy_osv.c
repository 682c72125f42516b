/* test_trivy_osv.c: the OSV -> Trivy DB v2 mapping (workers/trivy/trivy_osv.c), record by
 * record: buckets and package names per ecosystem, vulnerability ids (CVE aliases first),
 * version ranges as trivy-db writes them, OS advisories, the vulnerability and
 * data-source rows, withdrawn advisories, and every reject kind (nothing appended). The
 * DB files themselves are checked against bbolt in tests/e2e/trivy_db.sh. */
#include "st_test.h"

#include <jansson.h>

#include "stella/mem.h"
#include "trivy/trivy_internal.h"

static const st__tmap_opts_t opts = {"stella", "Stella Ledger", NULL};

/* Records as "path\tpath...\tkey\tvalue\n" lines in order (NULs shown as tabs). */
static char *dump(const st_buf_t *recs) {
  st_buf_t o = ST_BUF_INIT;
  for (size_t off = 0; off < recs->len;) {
    uint32_t h[3];
    const char *p = recs->data + off + sizeof(h);
    memcpy(h, recs->data + off, sizeof(h));
    for (uint32_t i = 0; i < h[0]; i++)
      assert_int_equal(st_buf_addc(&o, p[i] ? p[i] : '\t'), 0);
    assert_int_equal(st_buf_addc(&o, '\t'), 0);
    assert_int_equal(st_buf_add(&o, p + h[0] + h[1], h[2]), 0);
    assert_int_equal(st_buf_addc(&o, '\n'), 0);
    off += sizeof(h) + h[0] + h[1] + h[2];
  }
  return st_buf_detach(&o, NULL);
}

/* Map an OSV document text; returns the dump (caller frees) or NULL on a reject (code
 * in *rc, message in err). */
static char *map(const char *text, int *rc, int *withdrawn, st_error_t *err) {
  json_error_t je;
  json_t *doc = json_loads(text, 0, &je);
  st_buf_t out = ST_BUF_INIT;
  char modified[32], *d = NULL;
  int w = 0;
  assert_non_null(doc);
  *rc = st__trivy_map_osv(doc, &opts, &out, &w, modified, err);
  if (withdrawn)
    *withdrawn = w;
  if (*rc)
    assert_int_equal(out.len, 0); /* a reject appends nothing */
  else
    d = dump(&out);
  json_decref(doc);
  st_buf_release(&out);
  return d;
}

#define OSV(eco, name, ranges, extra)                                                      \
  "{\"id\":\"OSV-1\",\"modified\":\"2024-03-01T10:00:00.5+02:00\"," extra                  \
  "\"affected\":[{\"package\":{\"ecosystem\":\"" eco "\",\"name\":\"" name "\"},"          \
  "\"ranges\":[" ranges "]}]}"
#define SEMVER(events) "{\"type\":\"SEMVER\",\"events\":[" events "]}"

static char *ok_map(const char *text) {
  st_error_t err = ST_ERROR_INIT;
  int rc;
  char *d = map(text, &rc, NULL, &err);
  if (rc)
    fail_msg("unexpected reject: %s", st_error_text(&err));
  return d;
}

static void npm_cve_alias(void **state) {
  char *d = ok_map(OSV("npm", "Tiny-Template",
                       SEMVER("{\"introduced\":\"0\"},{\"fixed\":\"2.4.1\"}"),
                       "\"aliases\":[\"CVE-2099-0001\"],\"summary\":\"S\",\"database_specific\":"
                       "{\"severity\":\"HIGH\"},"));
  (void)state;
  assert_non_null(strstr(d, "npm::Stella Ledger npm\ttiny-template\tCVE-2099-0001\t"
                            "{\"VendorIDs\":[\"OSV-1\"],\"VulnerableVersions\":[\"<2.4.1\"],"
                            "\"PatchedVersions\":[\"2.4.1\"]}\n"));
  assert_non_null(strstr(d, "data-source\tnpm::Stella Ledger npm\t{\"ID\":\"stella\","
                            "\"Name\":\"Stella Ledger npm\"}\n"));
  assert_non_null(strstr(d, "vulnerability\tCVE-2099-0001\t{\"Title\":\"S\","));
  assert_non_null(strstr(d, "\"Severity\":\"HIGH\",\"VendorSeverity\":{\"stella\":3}"));
  /* modified normalised to UTC seconds */
  assert_non_null(strstr(d, "\"LastModifiedDate\":\"2024-03-01T08:00:00Z\""));
  assert_null(strstr(d, "\tOSV-1\t")); /* the OSV id is a VendorID, not a key */
  st_free(d);
}

static void names_per_ecosystem(void **state) {
  char *d = ok_map(
      OSV("PyPI", "Yaml_Ish", SEMVER("{\"introduced\":\"1.0\"},{\"fixed\":\"1.3.2\"}"), ""));
  (void)state;
  assert_non_null(strstr(d, "pip::Stella Ledger PyPI\tyaml-ish\tOSV-1\t"
                            "{\"VulnerableVersions\":[\">=1.0, <1.3.2\"],\"PatchedVersions\":"
                            "[\"1.3.2\"]}\n"));
  st_free(d);
  d = ok_map(
      OSV("Go", "Example.org/Net", SEMVER("{\"introduced\":\"0\"},{\"fixed\":\"1.8.0\"}"), ""));
  assert_non_null(strstr(d, "go::Stella Ledger Go\tExample.org/Net\t")); /* go keeps case */
  st_free(d);
  d = ok_map(OSV("crates.io", "fastparse", SEMVER("{\"introduced\":\"0.4.0\"}"), ""));
  assert_non_null(strstr(d, "cargo::Stella Ledger crates.io\tfastparse\tOSV-1\t"
                            "{\"VulnerableVersions\":[\">=0.4.0\"]}\n"));
  st_free(d);
}

static void version_ranges(void **state) {
  char *d;
  (void)state;
  /* last_affected includes its version; two ranges; a version equal to its start */
  d = ok_map(OSV("npm", "p",
                 SEMVER("{\"introduced\":\"0\"},{\"last_affected\":\"1.2\"},{\"introduced\":"
                        "\"2.0\"},{\"fixed\":\"2.1\"},{\"introduced\":\"3.0\"},"
                        "{\"last_affected\":\"3.0\"}"),
                 ""));
  assert_non_null(strstr(d, "\"VulnerableVersions\":[\"<=1.2\",\">=2.0, <2.1\",\"=3.0\"],"
                            "\"PatchedVersions\":[\"2.1\"]"));
  st_free(d);
  /* versions[] outside every range become =v; covered ones do not */
  d = ok_map("{\"id\":\"OSV-2\",\"modified\":\"2024-03-01T10:00:00Z\",\"affected\":[{"
             "\"package\":{\"ecosystem\":\"npm\",\"name\":\"p\"},\"ranges\":[" SEMVER(
                 "{\"introduced\":\"1.0\"},{\"fixed\":\"1.5\"}") "],\"versions\":[\"1.2\","
             "\"0.9\"]}]}");
  assert_non_null(strstr(d, "\"VulnerableVersions\":[\">=1.0, <1.5\",\"=0.9\"]"));
  st_free(d);
}

static void os_buckets(void **state) {
  char *d;
  (void)state;
  d = ok_map(OSV("Debian:12", "libx", "{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},"
                 "{\"fixed\":\"1.2-1\"}]}", ""));
  assert_non_null(strstr(d, "debian 12\tlibx\tOSV-1\t{\"FixedVersion\":\"1.2-1\"}\n"));
  assert_non_null(strstr(d, "data-source\tdebian 12\t{\"ID\":\"stella\",\"Name\":\"Stella Ledger "
                            "Debian:12\"}\n"));
  st_free(d);
  d = ok_map(OSV("Alpine:v3.19", "liby",
                 "{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"}]}", ""));
  assert_non_null(strstr(d, "alpine 3.19\tliby\tOSV-1\t{\"Status\":2}\n"));
  st_free(d);
  d = ok_map(OSV("Ubuntu:22.04:LTS", "libz", "{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":"
                 "\"0\"},{\"fixed\":\"2\"}]}", ""));
  assert_non_null(strstr(d, "ubuntu 22.04\tlibz\t"));
  st_free(d);
}

static void withdrawn_left_out(void **state) {
  st_error_t err = ST_ERROR_INIT;
  int rc, w = 0;
  char *d = map(OSV("npm", "p", SEMVER("{\"introduced\":\"0\"},{\"fixed\":\"1\"}"),
                    "\"withdrawn\":\"2024-03-02T00:00:00Z\","),
                &rc, &w, &err);
  (void)state;
  assert_int_equal(rc, 0);
  assert_int_equal(w, 1);
  assert_string_equal(d, "");
  st_free(d);
}

static void expect_reject(const char *text, int code, const char *needle) {
  st_error_t err = ST_ERROR_INIT;
  int rc;
  char *d = map(text, &rc, NULL, &err);
  assert_null(d);
  if (rc != code || !strstr(st_error_text(&err), needle))
    fail_msg("want %d with \"%s\", got %d: %s", code, needle, rc, st_error_text(&err));
}

static void rejects(void **state) {
  (void)state;
  /* an ecosystem Trivy has no bucket for */
  expect_reject(OSV("CPAN", "Foo", SEMVER("{\"introduced\":\"0\"},{\"fixed\":\"1\"}"), ""),
                ST_EUNSUPPORTED, "CPAN");
  /* an OS ecosystem without a release */
  expect_reject(OSV("Debian", "libx", "{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},"
                    "{\"fixed\":\"1\"}]}", ""),
                ST_EINVAL, "needs its release");
  /* fixed before any introduced (malformed range) */
  expect_reject(OSV("npm", "p", SEMVER("{\"fixed\":\"1.0\"},{\"introduced\":\"0\"}"), ""),
                ST_EINVAL, "without an open \"introduced\"");
  /* OS last_affected, two different fixes */
  expect_reject(OSV("Debian:12", "l", "{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},"
                    "{\"last_affected\":\"1\"}]}", ""),
                ST_EINVAL, "last_affected");
  expect_reject(OSV("Debian:12", "l", "{\"type\":\"ECOSYSTEM\",\"events\":[{\"introduced\":\"0\"},"
                    "{\"fixed\":\"1\"},{\"introduced\":\"2\"},{\"fixed\":\"3\"}]}", ""),
                ST_EINVAL, "FixedVersion");
  /* an OS package with no range at all: no fixed version to give */
  expect_reject("{\"id\":\"OSV-3\",\"modified\":\"2024-03-01T10:00:00Z\",\"affected\":[{"
                "\"package\":{\"ecosystem\":\"Debian:12\",\"name\":\"l\"}}]}",
                ST_EINVAL, "affected[0]");
  /* GIT ranges only: nothing Trivy could match */
  expect_reject(OSV("npm", "p", "{\"type\":\"GIT\",\"repo\":\"https://x.invalid/r\",\"events\":"
                    "[{\"introduced\":\"0\"},{\"fixed\":\"abc\"}]}", ""),
                ST_EINVAL, "affected[0]");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(npm_cve_alias),      cmocka_unit_test(names_per_ecosystem),
      cmocka_unit_test(version_ranges),     cmocka_unit_test(os_buckets),
      cmocka_unit_test(withdrawn_left_out), cmocka_unit_test(rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
