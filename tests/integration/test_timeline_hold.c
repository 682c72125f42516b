/* test_timeline_hold.c: the timeline's legal hold marker against real holds: bundles
 * recorded and held through the Evidence Locker library (st_evidence_pending,
 * st_evidence_hold_place / _release on Postgres and the filesystem store); an event linking
 * a held bundle carries legal_hold in lists, get and its evidence links, an event linking an
 * unheld bundle or none does not, another tenant's hold on a bundle of the same id marks
 * nothing, and releasing the case clears the marker. */
#include "st_test_db.h"

#include <stdlib.h>
#include <string.h>

#include "stella/evidence.h"
#include "stella/mem.h"
#include "timeline/timeline_query.h"
#include "timeline/timeline_worker.h"

static const char *app_url, *admin_url;
static char ta[32], tb[32], dir[64];
static st_db_pool_t *pool;
static st_objstore_t *store;
static st_evidence_t *ev;
static const st_tl_cursor_key_t key = {(const unsigned char *)"hold-test-cursor-key-0123", 25};
#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void admin_delete(const char *sql, const char *tenant) {
  PGconn *c = PQconnectdb(admin_url);
  PQclear(PQexecParams(c, sql, 1, NULL, &tenant, NULL, NULL, 0));
  PQfinish(c);
}

static void cleanup(void) {
  const char *t[2] = {ta, tb};
  for (int i = 0; i < 2; i++) {
    admin_delete("DELETE FROM timeline_events WHERE tenant_id = $1", t[i]);
    admin_delete("DELETE FROM timeline_event_digests WHERE tenant_id = $1", t[i]);
  }
}

static int setup(void **state) {
  st_error_t err = ST_ERROR_INIT;
  st_evidence_opts_t o = {0};
  char root[96];

  (void)state;
  st_test_db_setup(&app_url, &admin_url, "tlh", ta, tb, sizeof(ta));
  cleanup();
  snprintf(dir, sizeof(dir), "/tmp/st-tlhold-XXXXXX");
  assert_non_null(mkdtemp(dir));
  snprintf(root, sizeof(root), "%s/store", dir);
  if (st_db_pool_new(app_url, 2, &pool, &err) || st_objstore_fs_new(&store, root, &err))
    fail_msg("%s", st_error_text(&err));
  o.db = pool, o.store = store, o.tmp_dir = dir;
  if (st_evidence_new(&ev, &o, &err))
    fail_msg("%s", st_error_text(&err));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  (void)state;
  cleanup();
  st_evidence_free(ev);
  st_objstore_free(store);
  st_db_pool_free(pool);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

typedef struct pend_s {
  const st_evidence_who_t *who;
  const char *bundle_id;
} pend_t;

static int pend_tx(PGconn *c, void *arg, st_error_t *err) {
  pend_t *p = arg;
  json_t *payload = json_pack("{s:s, s:{s:s, s:s}}", "kind", "job", "run", "run_id", "r-1",
                              "actor", "alice");
  int created, rc = st_evidence_pending(ev, c, p->who, p->bundle_id, payload, NULL, &created,
                                        err);
  json_decref(payload);
  return rc;
}

/* A pending evidence bundle of tenant, then a hold case on it. */
static void bundle(const st_evidence_who_t *who, const char *bundle_id) {
  pend_t p = {who, bundle_id};
  st_error_t err = ST_ERROR_INIT;
  if (st_db_tenant_tx(pool, who->tenant, pend_tx, &p, &err))
    fail_msg("pending %s: %s", bundle_id, st_error_text(&err));
}

static void hold(const st_evidence_who_t *who, const char *case_id, const char *bundle_id) {
  st_error_t err = ST_ERROR_INIT;
  json_t *spec = json_pack("{s:s, s:[s]}", "reason", "litigation", "bundle_ids", bundle_id);
  if (st_evidence_hold_place(ev, who, case_id, spec, NULL, &err))
    fail_msg("hold: %s", st_error_text(&err));
  json_decref(spec);
}

/* The legal_hold of event id in tenant's list and get is want; among its evidence links,
 * exactly those naming bundle `held` are marked (when want). */
static void expect_hold(const char *tenant, const char *id, int want, const char *held) {
  st_tl_filter_t f = {.type = "hold.test"};
  st_tl_page_t page;
  st_tl_row_t row;
  st_tl_link_t *links = NULL;
  size_t n = 0;
  char *payload = NULL;
  st_error_t err = ST_ERROR_INIT;
  int seen = 0;

  assert_int_equal(st_tl_query(pool, tenant, &f, NULL, &key, &page, &err), 0);
  for (size_t i = 0; i < page.n; i++)
    if (!strcmp(page.rows[i].event_id, id)) {
      assert_int_equal(page.rows[i].legal_hold, want);
      seen = 1;
    }
  assert_true(seen);
  st_tl_page_release(&page);
  assert_int_equal(st_tl_get(pool, tenant, id, &row, &payload, &err), 0);
  assert_int_equal(row.legal_hold, want);
  json_t *j = st_tl_row_json(&row);
  assert_true(json_is_boolean(json_object_get(j, "legal_hold")));
  assert_int_equal(json_is_true(json_object_get(j, "legal_hold")), want);
  json_decref(j);
  st_tl_row_release(&row);
  st_free(payload);
  assert_int_equal(st_tl_evidence(pool, tenant, id, &links, &n, &err), 0);
  assert_true(n >= 1);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(links[i].legal_hold,
                     want && links[i].bundle_id && !strcmp(links[i].bundle_id, held));
  st_tl_links_free(links, n);
}

static void ingest(const char *tenant) {
  char body[3][512];
  st_tl_raw_t raw[3];
  st_tl_result_t res[3];
  st_error_t err = ST_ERROR_INIT;
  const char *ev_extra[3] = {
      ",\"evidence\":[{\"digest\":\"" D1 "\",\"bundle_id\":\"b-held\"},"
      "{\"digest\":\"" D2 "\",\"bundle_id\":\"b-free\"}]",
      ",\"evidence\":[{\"digest\":\"" D2 "\",\"bundle_id\":\"b-free\"}]",
      ",\"evidence\":[{\"digest\":\"" D1 "\"}]"};
  const char *ids[3] = {"h-1", "h-2", "h-3"};
  for (int i = 0; i < 3; i++) {
    snprintf(body[i], sizeof(body[i]),
             "{\"event_id\":\"%s\",\"tenant\":\"%s\",\"type\":\"hold.test\","
             "\"occurred_at\":\"2026-06-01T00:00:0%dZ\"%s}",
             ids[i], tenant, i, ev_extra[i]);
    raw[i] = (st_tl_raw_t){"redis:hold", (uint64_t)i + 1, 0, body[i], strlen(body[i]),
                           NULL, NULL, NULL};
  }
  assert_int_equal(st_tl_ingest_batch(pool, raw, 3, res, NULL, &err), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(res[i].outcome, ST_TL_STORED);
}

static void hold_marker(void **state) {
  st_evidence_who_t wa = {ta, "alice", NULL, NULL, NULL}, wb = {tb, "bob", NULL, NULL, NULL};
  st_error_t err = ST_ERROR_INIT;
  char case_a[48], case_b[48];

  (void)state;
  snprintf(case_a, sizeof(case_a), "case-a-%d", (int)getpid());
  snprintf(case_b, sizeof(case_b), "case-b-%d", (int)getpid());
  ingest(ta);
  ingest(tb);
  bundle(&wa, "b-held");
  bundle(&wa, "b-free");
  bundle(&wb, "b-held");
  bundle(&wb, "b-free");
  /* nothing held yet */
  expect_hold(ta, "h-1", 0, NULL);
  hold(&wa, case_a, "b-held");
  expect_hold(ta, "h-1", 1, "b-held"); /* links the held bundle (and an unheld one) */
  expect_hold(ta, "h-2", 0, NULL);     /* links only an unheld bundle */
  expect_hold(ta, "h-3", 0, NULL);     /* links a digest, no bundle */
  expect_hold(tb, "h-1", 0, NULL);     /* tenant A's hold on "b-held" is not tenant B's */
  /* tenant B holds its own "b-free": B's events linking it are marked, A's are not */
  hold(&wb, case_b, "b-free");
  expect_hold(tb, "h-1", 1, "b-free");
  expect_hold(tb, "h-2", 1, "b-free");
  expect_hold(ta, "h-2", 0, NULL);
  /* released: the marker goes */
  assert_int_equal(st_evidence_hold_release(ev, &wa, case_a, NULL, &err), 0);
  expect_hold(ta, "h-1", 0, NULL);
  assert_int_equal(st_evidence_hold_release(ev, &wb, case_b, NULL, &err), 0);
  expect_hold(tb, "h-2", 0, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(hold_marker)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
