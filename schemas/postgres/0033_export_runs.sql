-- 0033_export_runs.sql: the lifecycle of export runs: a per-run event log (what
-- GET /exports/runs/{id}/events streams), the artifact columns the JSON adapters fill,
-- and the export.* lifecycle events in the outbox.
--
-- Every change of a run's state or progress gets the next number of its own sequence
-- (export_runs.event_seq, bumped under the row lock the UPDATE holds, so numbers never
-- repeat or skip) and one export_run_events row, written by triggers: no code path can
-- change a run without its event. An SSE client resumes with Last-Event-ID = the last seq
-- it saw and reads every row after it, so it sees every change in order without gaps.
--
-- Transitions to requested (the insert), built, distributed, failed and cancelled also
-- insert an outbox row `export.<state>` whose event_id is `export:<run_id>:<state>`:
-- stable, so a repeated transaction inserts nothing new (ON CONFLICT DO NOTHING) and
-- consumers dedupe on (tenant, event_id); the relay retries publishing until it succeeds.
-- The row is a stella.event/v1 envelope (schemas/json/event-v1.schema.json), subject
-- export/<run_id>; once the bundle exists its `evidence` names it (sha256 digest, bundle
-- id, the detached DSSE's key as manifest_ref). Evidence Locker snapshots come later.

ALTER TABLE export_runs
  ADD COLUMN event_seq bigint NOT NULL DEFAULT 1 CHECK (event_seq >= 1),
  ADD COLUMN progress_note text CHECK (length(progress_note) <= 256),
  ADD COLUMN bundle_id text,
  ADD COLUMN artifact_sha256 text CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
  ADD COLUMN artifact_size bigint CHECK (artifact_size >= 0),
  ADD COLUMN counts jsonb NOT NULL DEFAULT '{}';

CREATE TABLE export_run_events (
  tenant_id text NOT NULL,
  run_id uuid NOT NULL,
  seq bigint NOT NULL CHECK (seq >= 1),
  type text NOT NULL DEFAULT 'state' CHECK (type IN ('state', 'progress')),
  state export_run_state NOT NULL DEFAULT 'requested',
  progress real NOT NULL DEFAULT 0,
  data jsonb NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, run_id, seq),
  FOREIGN KEY (tenant_id, run_id) REFERENCES export_runs ON DELETE CASCADE
);
SELECT stella_protect_tenant_table('export_run_events');
SELECT stella_allow_retention('export_run_events', 'true');
GRANT SELECT, INSERT ON export_run_events TO stella_app;

CREATE FUNCTION stella_export_run_seq() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state OR NEW.progress IS DISTINCT FROM OLD.progress THEN
    NEW.event_seq := OLD.event_seq + 1;
  ELSE
    NEW.event_seq := OLD.event_seq;
  END IF;
  RETURN NEW;
END $$;
-- after export_runs_transition (triggers of one timing fire in name order)
CREATE TRIGGER export_runs_zseq BEFORE UPDATE ON export_runs
  FOR EACH ROW EXECUTE FUNCTION stella_export_run_seq();

CREATE FUNCTION stella_export_run_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  changed boolean := TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state;
  data jsonb;
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.event_seq = OLD.event_seq THEN
    RETURN NULL;
  END IF;
  data := jsonb_strip_nulls(jsonb_build_object(
    'seq', NEW.event_seq, 'run_id', NEW.run_id, 'profile', NEW.profile_name,
    'kind', NEW.kind, 'state', NEW.state, 'progress', NEW.progress,
    'note', NEW.progress_note, 'error', NEW.error, 'plan_digest', NEW.plan_digest,
    'manifest_digest', NEW.manifest_digest, 'artifact_sha256', NEW.artifact_sha256,
    'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
  INSERT INTO public.export_run_events (tenant_id, run_id, seq, type, state, progress, data)
  VALUES (NEW.tenant_id, NEW.run_id, NEW.event_seq,
          CASE WHEN changed THEN 'state' ELSE 'progress' END, NEW.state, NEW.progress, data)
  ON CONFLICT DO NOTHING;
  IF changed AND NEW.state IN ('requested', 'built', 'distributed', 'failed', 'cancelled') THEN
    INSERT INTO public.outbox (event_id, tenant_id, type, payload)
    VALUES ('export:' || NEW.run_id || ':' || NEW.state, NEW.tenant_id,
            'export.' || NEW.state,
            jsonb_strip_nulls(jsonb_build_object(
              'schema', 'stella.event/v1',
              'event_id', 'export:' || NEW.run_id || ':' || NEW.state,
              'tenant', NEW.tenant_id, 'type', 'export.' || NEW.state,
              'occurred_at', to_char(now() AT TIME ZONE 'UTC',
                                     'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
              'subject', 'export/' || NEW.run_id,
              'payload', jsonb_build_object(
                'run_id', NEW.run_id, 'profile', NEW.profile_name, 'project', NEW.project,
                'kind', NEW.kind, 'state', NEW.state, 'plan_digest', NEW.plan_digest,
                'manifest_digest', NEW.manifest_digest, 'bundle_id', NEW.bundle_id,
                'artifact', CASE WHEN NEW.artifact_key IS NULL THEN NULL
                  ELSE jsonb_build_object('key', NEW.artifact_key,
                    'sha256', NEW.artifact_sha256, 'size', NEW.artifact_size) END,
                'counts', NEW.counts, 'error', NEW.error),
              'evidence', CASE WHEN NEW.artifact_sha256 IS NULL THEN NULL
                ELSE jsonb_build_array(jsonb_build_object(
                  'digest', 'sha256:' || NEW.artifact_sha256, 'bundle_id', NEW.bundle_id,
                  'manifest_ref', NEW.manifest_key)) END)))
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER export_runs_event AFTER INSERT OR UPDATE ON export_runs
  FOR EACH ROW EXECUTE FUNCTION stella_export_run_event();

-- Per-tenant concurrency: the create path counts the tenant's active runs under this
-- index while holding a transaction advisory lock on the tenant.
CREATE INDEX export_runs_active ON export_runs (tenant_id)
  WHERE state IN ('requested', 'planning', 'running');
