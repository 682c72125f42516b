/* api_store.h: the seam between API handlers and the tables behind audit and
 * idempotency. Handlers call st_api_audit and st_api_idempotency_begin; the server calls
 * the store's functions. In this phase the only implementation is an in-memory one in
 * the unit tests; the Postgres one (audit_log rows written through st_db_tenant_tx in the
 * same transaction as the effect, an idempotency table unique on tenant + key) plugs in
 * with st_api_set_store without changing handlers.
 *
 * Idempotency semantics (Idempotency-Key on POSTs that create work): the first request
 * with a key claims it (in flight) and runs; its reply (status < 500) is stored and every
 * later request with the same key and the same body gets that reply again; the same key
 * with a different body answers 422 idempotency-key-reused; a request while the first is
 * still in flight answers 409 idempotency-in-flight; a 5xx reply or a dropped request
 * releases the key so a retry can run.
 *
 * Ownership: a store's functions fill st_api_idem_record_t with strings the record owns
 * (st_api_idem_record_release frees them). Thread rules: store functions are called from
 * any server thread concurrently and must be thread-safe.
 */
#ifndef STELLA_API_STORE_H
#define STELLA_API_STORE_H

#include <stddef.h>

#include "api.h"

#define ST_API_IDEM_KEY_MAX 255

typedef struct st_api_audit_s {
  const char *tenant;
  const char *actor;
  const char *action;   /* "evidence.hold.create" */
  const char *resource; /* "evidence/abc" */
  const char *outcome;  /* "ok", "denied", "failed" */
  const char *request_id;
  const char *trace_id;
} st_api_audit_t;

typedef enum st_api_idem_state {
  ST_API_IDEM_NEW = 0,   /* claimed now by this request */
  ST_API_IDEM_IN_FLIGHT, /* another request holds it */
  ST_API_IDEM_DONE,      /* finished; the stored reply is in the record */
} st_api_idem_state;

typedef struct st_api_idem_record_s {
  st_api_idem_state state;
  unsigned char request_hash[32]; /* of the request that claimed the key */
  unsigned status;
  char *content_type;
  char *body;
  size_t body_len;
} st_api_idem_record_t;

void st_api_idem_record_release(st_api_idem_record_t *rec);

typedef struct st_api_store_s {
  void *self;
  /* Write one audit row; `tx` is the caller's open tenant transaction (NULL in memory). */
  int (*audit_record)(void *self, void *tx, const st_api_audit_t *a, st_error_t *err);
  /* Atomically: when (tenant, key) is absent, record it in flight with hash and answer
   * NEW; otherwise fill rec with the stored state, hash and (DONE) reply. */
  int (*idem_begin)(void *self, const char *tenant, const char *key,
                    const unsigned char hash[32], st_api_idem_record_t *rec, st_error_t *err);
  /* Store the reply of the request that claimed the key. */
  int (*idem_finish)(void *self, const char *tenant, const char *key, unsigned status,
                     const char *content_type, const void *body, size_t len,
                     st_error_t *err);
  /* Release a claimed key (5xx or dropped request). */
  int (*idem_abort)(void *self, const char *tenant, const char *key, st_error_t *err);
} st_api_store_t;

/* Install the store (copied) before st_api_listen. */
void st_api_set_store(st_api_t *api, const st_api_store_t *store);

/* Record an audit row for this request (tenant, actor, request and trace id from it).
 * ST_EUNSUPPORTED when no store is installed: mutating handlers fail closed. */
int st_api_audit(st_api_req_t *req, void *tx, const char *action, const char *resource,
                 const char *outcome) ST_MUST_CHECK;

/* For a request carrying Idempotency-Key (JSON routes): 0 = proceed (no key, or the key
 * is now claimed: the server stores the reply this request sends, or releases the key
 * when it is a 5xx; that is the "finish" half); 1 = a reply was already sent (the stored
 * reply replayed, 409, 422, or a problem for a bad key or a missing store) and the
 * handler returns 0. */
int st_api_idempotency_begin(st_api_req_t *req) ST_MUST_CHECK;

#endif
