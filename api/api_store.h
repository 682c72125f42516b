/* api_store.h: the seam between API handlers and the tables behind audit, idempotency
 * and storage quotas.
 *
 * Transactions. A handler whose effect is in Postgres runs it with st_api_tx(req, fn,
 * arg): one st_db_tenant_tx on the API's pool for the caller's tenant. Inside fn it calls
 * st_api_audit(req, c, ...) with the transaction's PGconn, so the audit row commits or
 * rolls back with the effect (and is written again when the transaction is retried).
 * Passing c = NULL writes the row in a transaction of its own (refusals that have no
 * effect, such as a 403 on a mutating route).
 *
 * Idempotency (Idempotency-Key on POSTs that create work), keyed (tenant, key, route)
 * where route is "<METHOD> <pattern>": the first request with a key claims it (in
 * flight) and runs; its reply (status < 500) is stored with the headers the handler added
 * and every later request with the same key and the same body gets that reply again
 * (Idempotent-Replayed: true); the same key with a different body answers 422
 * idempotency-key-reused; a request while the first is still in flight answers 409
 * idempotency-in-flight; a 5xx reply or a dropped request releases the key so a retry can
 * run. Records expire: a done one after api_idempotency_ttl_s, an in-flight one (its
 * server crashed between claiming and finishing) after api_idempotency_inflight_s, after
 * which the key is free again. Claiming, the effect and storing the reply are three
 * transactions: a crash after the effect committed and before the reply was stored
 * leaves an in-flight record that expires, so effects must also be idempotent on their
 * own key (POST /jobs stores the key in jobs.idempotency_key).
 *
 * Storage quotas: st_api_quota_charge adds an upload's bytes to the tenant's usage inside
 * the handler's transaction, so a refused upload rolls back everything it wrote.
 *
 * Ownership: a store's functions fill st_api_idem_record_t with memory the record owns
 * (st_api_idem_record_release frees it). st_api_set_store copies the table; the API calls
 * store.release(self) when it is freed. Thread rules: store functions are called from any
 * server thread concurrently and must be thread-safe; st_api_tx blocks (server threads
 * only, which is where handlers run).
 */
#ifndef STELLA_API_STORE_H
#define STELLA_API_STORE_H

#include <stddef.h>

#include "api.h"
#include "stella/db.h"

#define ST_API_IDEM_KEY_MAX 255

typedef struct st_api_audit_s {
  const char *tenant;
  const char *actor;
  const char *action;   /* "job.submit" */
  const char *resource; /* "jobs/abc" */
  const char *outcome;  /* "ok", "denied", "error" */
  const char *request_id;
  const char *trace_id;
} st_api_audit_t;

typedef enum st_api_idem_state {
  ST_API_IDEM_NEW = 0,   /* claimed now by this request */
  ST_API_IDEM_IN_FLIGHT, /* another request holds it */
  ST_API_IDEM_DONE,      /* finished; the stored reply is in the record */
} st_api_idem_state;

/* Which key: strings borrowed. */
typedef struct st_api_idem_key_s {
  const char *tenant;
  const char *key;
  const char *route; /* "POST /jobs" */
} st_api_idem_key_t;

/* A reply to keep (borrowed) or a kept one (owned by the record). */
typedef struct st_api_idem_reply_s {
  unsigned status;
  char *content_type; /* "" when none */
  json_t *headers;    /* object name -> string: the handler's extra headers; NULL = none */
  char *body;
  size_t body_len;
} st_api_idem_reply_t;

typedef struct st_api_idem_record_s {
  st_api_idem_state state;
  unsigned char request_hash[32]; /* of the request that claimed the key */
  st_api_idem_reply_t reply;      /* DONE only */
} st_api_idem_record_t;

void st_api_idem_record_release(st_api_idem_record_t *rec);

typedef struct st_api_store_s {
  void *self;
  /* Write one audit row in tx (the handler's open tenant transaction), or in a
   * transaction of its own when tx is NULL. */
  int (*audit_record)(void *self, PGconn *tx, const st_api_audit_t *a, st_error_t *err);
  /* Atomically: when the key is absent or its record expired, record it in flight with
   * hash and answer NEW; otherwise fill rec with the stored state, hash and (DONE)
   * reply. */
  int (*idem_begin)(void *self, const st_api_idem_key_t *k, const unsigned char hash[32],
                    st_api_idem_record_t *rec, st_error_t *err);
  /* Store the reply of the request that claimed the key. */
  int (*idem_finish)(void *self, const st_api_idem_key_t *k, const st_api_idem_reply_t *r,
                     st_error_t *err);
  /* Release a claimed key (5xx or dropped request). */
  int (*idem_abort)(void *self, const st_api_idem_key_t *k, st_error_t *err);
  /* Free self (NULL = nothing to free). */
  void (*release)(void *self);
} st_api_store_t;

/* Install the store (copied) before st_api_listen; a store installed before is released. */
void st_api_set_store(st_api_t *api, const st_api_store_t *store);

/* The Postgres store on pool (borrowed; must outlive the API): audit_log rows, the
 * api_idempotency table (schemas/postgres/0040_api_idempotency.sql). ttl_s and
 * inflight_s as api_idempotency_ttl_s and api_idempotency_inflight_s. */
int st_api_store_pg(st_api_store_t *out, st_db_pool_t *pool, long long ttl_s,
                    long long inflight_s, st_error_t *err) ST_MUST_CHECK;

/* Give the API a Postgres pool (borrowed; freed by the caller after st_api_free) for
 * st_api_tx. st_api_start opens one itself when pg_url is set. */
void st_api_set_db(st_api_t *api, st_db_pool_t *pool);
/* The pool, NULL when none. */
st_db_pool_t *st_api_db(const st_api_t *api);

/* Run fn in a transaction of the caller's tenant (st_db_tenant_txf with flags). fn may
 * run more than once (retried transactions); it must not reply. ST_EUNSUPPORTED when the
 * API has no pool or the route is public. */
int st_api_tx(st_api_req_t *req, int flags, st_db_tx_fn fn, void *arg, st_error_t *err)
    ST_MUST_CHECK;

/* Record an audit row for this request (tenant, actor, request and trace id from it) in
 * tx (see above). ST_EUNSUPPORTED when no store is installed: mutating handlers fail
 * closed. */
int st_api_audit(st_api_req_t *req, PGconn *tx, const char *action, const char *resource,
                 const char *outcome) ST_MUST_CHECK;

/* For a request carrying Idempotency-Key (JSON routes): 0 = proceed (no key, or the key
 * is now claimed: the server stores the reply this request sends, or releases the key
 * when it is a 5xx; that is the "finish" half); 1 = a reply was already sent (the stored
 * reply replayed, 409, 422, or a problem for a bad key or a missing store) and the
 * handler returns 0. */
int st_api_idempotency_begin(st_api_req_t *req) ST_MUST_CHECK;

/* Charge `bytes` of new storage to the tenant in the open tenant transaction c. The limit
 * is the tenant's tenant_quotas.storage_bytes_max, else default_max (0 = unlimited).
 * ST_ETOOBIG (413) when bytes alone exceed the limit, ST_EQUOTA (429 quota-exceeded) when
 * they do not fit in what is left; either way the caller returns the code from its
 * transaction function so nothing of the upload is stored. err names the numbers. */
int st_api_storage_charge(PGconn *c, const char *tenant, unsigned long long bytes,
                          unsigned long long default_max, st_error_t *err) ST_MUST_CHECK;
/* Give back bytes (a delete), never below zero. */
int st_api_storage_credit(PGconn *c, const char *tenant, unsigned long long bytes,
                          st_error_t *err) ST_MUST_CHECK;
/* st_api_storage_charge for the request's tenant with the configured default
 * (api_storage_quota_bytes). */
int st_api_quota_charge(st_api_req_t *req, PGconn *c, unsigned long long bytes,
                        st_error_t *err) ST_MUST_CHECK;

#endif
