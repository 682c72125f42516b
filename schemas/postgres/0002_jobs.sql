-- 0002_jobs.sql: jobs and their transition log.
--
-- A job is unique per tenant by job_id (orchestrators that XADD directly are deduplicated on
-- pickup) and by (type, idempotency_key) when a key is given (API submissions). Every state
-- or attempt change is recorded in job_events by a trigger, so no code path can skip it; the
-- log's key makes re-recording the same transition (a re-run job) a no-op.

CREATE TABLE jobs (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  job_id text NOT NULL CHECK (length(job_id) BETWEEN 1 AND 128),
  type text NOT NULL,
  state text NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'dead')),
  attempt int NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 256),
  payload jsonb NOT NULL DEFAULT '{}',
  result jsonb,
  error text,
  error_class text CHECK (error_class IN ('transient', 'permanent', 'cancelled', 'timeout')),
  output_digests jsonb NOT NULL DEFAULT '[]', -- [{"path", "sha256", "size"}] of the outputs
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  heartbeat_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (tenant_id, job_id)
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, type, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_state_updated ON jobs (state, updated_at);
SELECT stella_protect_tenant_table('jobs');
SELECT stella_allow_retention('jobs', 'state IN (''succeeded'', ''failed'', ''cancelled'', ''dead'')');
GRANT SELECT, INSERT, UPDATE ON jobs TO stella_app;

CREATE TABLE job_events (
  tenant_id text NOT NULL,
  job_id text NOT NULL,
  attempt int NOT NULL,
  from_state text,
  to_state text NOT NULL,
  detail jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, job_id, attempt, to_state),
  FOREIGN KEY (tenant_id, job_id) REFERENCES jobs ON DELETE CASCADE
);
SELECT stella_protect_tenant_table('job_events');
SELECT stella_allow_retention('job_events', 'true');
GRANT SELECT, INSERT ON job_events TO stella_app;

-- Runs as the caller (stella_app inside its tenant transaction), so RLS applies as usual.
CREATE FUNCTION stella_jobs_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state
     OR NEW.attempt IS DISTINCT FROM OLD.attempt THEN
    INSERT INTO public.job_events (tenant_id, job_id, attempt, from_state, to_state)
    VALUES (NEW.tenant_id, NEW.job_id, NEW.attempt,
            CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state)
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_transition AFTER INSERT OR UPDATE OF state, attempt ON jobs
  FOR EACH ROW EXECUTE FUNCTION stella_jobs_transition();

CREATE FUNCTION stella_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER jobs_updated_at BEFORE UPDATE ON jobs
  FOR EACH ROW EXECUTE FUNCTION stella_touch_updated_at();
