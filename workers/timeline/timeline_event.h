/* timeline_event.h: the timeline event envelope (schemas/json/event-v1.schema.json), its
 * decoding from source bytes (JSON or msgpack) and its validation.
 *
 * An event reaches the ingester as an st_tl_raw_t: where it came from (source name and
 * sequence), the envelope bytes, and the routing fields the transport carried beside them
 * (Redis stream fields event_id/tenant/type, NATS headers). Decoding turns that into an
 * st_tl_event_t or says why it cannot: every failure is permanent (ST_EPARSE bad bytes,
 * ST_ETOOBIG over a size cap, ST_EINVAL a bad or missing field, named in err), so the caller
 * dead-letters that one event and goes on with the batch.
 *
 * Ownership: st_tl_event_decode fills a caller-allocated st_tl_event_t (st_tl_event_init
 * first) whose strings it allocates; st_tl_event_release frees them. A raw event's pointers
 * are borrowed and only read during the call.
 *
 * Thread rules: no shared state; any thread.
 */
#ifndef STELLA_TIMELINE_EVENT_H
#define STELLA_TIMELINE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"

#define ST_TL_EVENT_MAX_BYTES ((size_t)64 * 1024) /* envelope bytes */
#define ST_TL_EVIDENCE_MAX 64                     /* evidence entries per event */
#define ST_TL_EVENT_ID_MAX 128
#define ST_TL_SOURCE_MAX 128

typedef struct st_tl_evidence_s {
  char *digest;       /* "sha256:<64 hex>" or "sha512:<128 hex>", lower case */
  char *bundle_id;    /* NULL when absent */
  char *manifest_ref; /* NULL when absent */
} st_tl_evidence_t;

/* A decoded, valid event. Optional strings are NULL when absent. */
typedef struct st_tl_event_s {
  char *event_id;    /* 1..128 bytes of printable UTF-8; unique per tenant */
  char *tenant;      /* a tenant id (st_db_tenant_check) */
  char *type;        /* [a-z0-9][a-z0-9._-]{0,127}, e.g. "export.built" */
  char *occurred_at; /* RFC 3339 date-time as sent */
  char *subject, *actor, *trace_id, *correlation_id;
  char *payload; /* compact JSON object text, "{}" when absent */
  st_tl_evidence_t *evidence;
  size_t n_evidence;
  char *source;      /* copied from the raw event */
  uint64_t seq;      /* position in the source: Redis <ms>, NATS stream sequence */
  uint64_t seq_minor; /* Redis <seq> part of the entry id; 0 for NATS */
} st_tl_event_t;

/* One event as a transport delivered it. */
typedef struct st_tl_raw_s {
  const char *source; /* "redis:<stream>" or "nats:<stream>", 1..ST_TL_SOURCE_MAX bytes */
  uint64_t seq, seq_minor;
  const void *body; /* the envelope: JSON object, or a msgpack map */
  size_t body_len;
  /* Routing fields carried beside the body (stream fields or headers), NULL when absent;
   * when present each must equal the envelope's value. */
  const char *event_id, *tenant, *type;
} st_tl_raw_t;

void st_tl_event_init(st_tl_event_t *ev);
void st_tl_event_release(st_tl_event_t *ev);

/* Decode and validate raw into ev (initialised, empty). On failure ev is left empty. The body
 * is msgpack when its first byte is a msgpack map marker, else JSON. */
int st_tl_event_decode(const st_tl_raw_t *raw, st_tl_event_t *ev, st_error_t *err)
    ST_MUST_CHECK;

/* Parse a Redis stream entry id "<ms>-<seq>" (each 0..INT64_MAX, the range the sequence
 * columns hold). ST_EINVAL otherwise. */
int st_tl_stream_id_parse(const char *id, uint64_t *seq, uint64_t *seq_minor) ST_MUST_CHECK;

/* Whether s is an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)) with
 * valid field ranges. */
int st_tl_rfc3339_valid(const char *s);

#endif
