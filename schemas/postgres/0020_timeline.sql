-- 0020_timeline.sql: the Timeline Indexer's tables (0020-0029 are the timeline's).
--
-- timeline_events holds one row per (tenant, event_id): the dedupe key is the primary key,
-- so a redelivered or republished event is dropped by ON CONFLICT DO NOTHING. Order is
-- never arrival order: every row keeps where it came from (source, e.g. "redis:stella:events"
-- or "nats:STELLA_EVENTS") and its position there (source_seq, source_seq_minor: a Redis
-- stream id <ms>-<seq> as (ms, seq), a NATS stream sequence as (seq, 0)). Queries sort by
-- (occurred_at, source, source_seq, source_seq_minor, event_id), a total order (event_id is
-- unique per tenant), which is also the keyset cursor; per-source order is the index on
-- (tenant_id, source, source_seq, source_seq_minor).
--
-- Indexes are led by tenant_id (every query runs under RLS with one tenant) and then the
-- filter column. Optional columns are indexed partially (NOT NULL), so absent values cost
-- nothing. Scale plan (time partitioning, and why dedupe then moves to its own table):
-- docs/timeline.md.

CREATE TABLE timeline_events (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  event_id text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 128),
  source text NOT NULL CHECK (length(source) BETWEEN 1 AND 128),
  source_seq bigint NOT NULL CHECK (source_seq >= 0),
  source_seq_minor bigint NOT NULL DEFAULT 0 CHECK (source_seq_minor >= 0),
  type text NOT NULL CHECK (length(type) BETWEEN 1 AND 128),
  occurred_at timestamptz NOT NULL,
  subject text CHECK (length(subject) <= 512),
  actor text CHECK (length(actor) <= 256),
  trace_id text CHECK (length(trace_id) <= 128),
  correlation_id text CHECK (length(correlation_id) <= 128),
  ingested_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX timeline_events_time ON timeline_events
  (tenant_id, occurred_at, source, source_seq, source_seq_minor, event_id);
CREATE INDEX timeline_events_type ON timeline_events
  (tenant_id, type, occurred_at, source, source_seq, source_seq_minor, event_id);
CREATE INDEX timeline_events_source ON timeline_events
  (tenant_id, source, source_seq, source_seq_minor);
CREATE INDEX timeline_events_subject ON timeline_events (tenant_id, subject, occurred_at)
  WHERE subject IS NOT NULL;
CREATE INDEX timeline_events_trace ON timeline_events (tenant_id, trace_id, occurred_at)
  WHERE trace_id IS NOT NULL;
CREATE INDEX timeline_events_actor ON timeline_events (tenant_id, actor, occurred_at)
  WHERE actor IS NOT NULL;
CREATE INDEX timeline_events_correlation ON timeline_events
  (tenant_id, correlation_id, occurred_at) WHERE correlation_id IS NOT NULL;
SELECT stella_protect_tenant_table('timeline_events');
GRANT SELECT, INSERT ON timeline_events TO stella_app;

-- The event's payload, kept apart so list queries never read it. No foreign key to
-- timeline_events: rows here are written only by the ingester's one statement, joined to
-- the event rows that statement inserted, so they cannot dangle; an FK would add a lookup
-- per row (its cached plan degenerates to a sequential scan on a young table) and would
-- have to span partitions later (docs/timeline.md). Retention deletes from all three.
CREATE TABLE timeline_event_details (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  event_id text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  PRIMARY KEY (tenant_id, event_id)
);
SELECT stella_protect_tenant_table('timeline_event_details');
GRANT SELECT, INSERT ON timeline_event_details TO stella_app;

-- Evidence linked to an event: an artifact digest ("sha256:<hex>") and, when known, the
-- evidence bundle it is sealed in and that bundle's signed manifest reference. The digest's
-- exact form is checked by the ingester (timeline_event.c); the column only bounds it.
CREATE TABLE timeline_event_digests (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  event_id text NOT NULL,
  digest text NOT NULL CHECK (length(digest) BETWEEN 1 AND 135),
  bundle_id text CHECK (length(bundle_id) BETWEEN 1 AND 128),
  manifest_ref text CHECK (length(manifest_ref) BETWEEN 1 AND 512),
  PRIMARY KEY (tenant_id, event_id, digest)
);
CREATE INDEX timeline_event_digests_digest ON timeline_event_digests (tenant_id, digest);
SELECT stella_protect_tenant_table('timeline_event_digests');
GRANT SELECT, INSERT ON timeline_event_digests TO stella_app;
