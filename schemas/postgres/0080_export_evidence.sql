-- 0080_export_evidence.sql: every export run's manifest and distribution transcript goes
-- into the Evidence Locker (0050) as an `export` snapshot before the run is distributed
-- (workers/export/locker.c). The run records the export bundle's Merkle root (from its
-- signed Statement) and the evidence bundle that holds it; the lifecycle events from then
-- on carry both: the event log's data has merkle_root and evidence_bundle_id, and the
-- outbox envelope's `evidence` array names the evidence bundle after the export bundle
-- (digest = the evidence .tgz, manifest_ref = its object key), its payload
-- merkle_root and evidence {bundle_id, sha256, merkle_root, key}. Recording the evidence
-- changes neither state nor progress, so it writes no event of its own.

ALTER TABLE export_runs
  ADD COLUMN merkle_root text CHECK (merkle_root ~ '^[0-9a-f]{64}$'),
  ADD COLUMN evidence_bundle_id text CHECK (evidence_bundle_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  ADD COLUMN evidence_sha256 text CHECK (evidence_sha256 ~ '^[0-9a-f]{64}$'),
  ADD COLUMN evidence_merkle_root text CHECK (evidence_merkle_root ~ '^[0-9a-f]{64}$'),
  ADD COLUMN evidence_key text CHECK (length(evidence_key) BETWEEN 1 AND 512),
  ADD CONSTRAINT export_runs_evidence_whole CHECK (
    (evidence_bundle_id IS NULL) = (evidence_sha256 IS NULL) AND
    (evidence_bundle_id IS NULL) = (evidence_merkle_root IS NULL) AND
    (evidence_bundle_id IS NULL) = (evidence_key IS NULL) AND
    (evidence_bundle_id IS NULL OR merkle_root IS NOT NULL));

CREATE OR REPLACE FUNCTION stella_export_run_event() RETURNS trigger
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
    'merkle_root', NEW.merkle_root, 'evidence_bundle_id', NEW.evidence_bundle_id,
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
                'counts', NEW.counts, 'error', NEW.error, 'merkle_root', NEW.merkle_root,
                'evidence', CASE WHEN NEW.evidence_bundle_id IS NULL THEN NULL
                  ELSE jsonb_build_object('bundle_id', NEW.evidence_bundle_id,
                    'sha256', NEW.evidence_sha256, 'merkle_root', NEW.evidence_merkle_root,
                    'key', NEW.evidence_key) END),
              'evidence', CASE WHEN NEW.artifact_sha256 IS NULL THEN NULL
                ELSE jsonb_build_array(jsonb_build_object(
                  'digest', 'sha256:' || NEW.artifact_sha256, 'bundle_id', NEW.bundle_id,
                  'manifest_ref', NEW.manifest_key)) ||
                  CASE WHEN NEW.evidence_bundle_id IS NULL THEN '[]'::jsonb
                  ELSE jsonb_build_array(jsonb_build_object(
                    'digest', 'sha256:' || NEW.evidence_sha256,
                    'bundle_id', NEW.evidence_bundle_id,
                    'manifest_ref', NEW.evidence_key)) END END)))
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
