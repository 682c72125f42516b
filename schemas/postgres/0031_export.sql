-- 0031_export.sql: Export Center: profiles, runs, their planned inputs and distributions,
-- and the operator's cross-tenant allowlist. Profiles CRUD and planning live in
-- workers/export/ (profile.c, planner.c); see docs/export-center.md.
--
-- Keys: every row is tenant-scoped (forced RLS). A profile belongs to a project; a run's
-- artifact and manifest object keys must sit under tenants/<tenant>/projects/<project>/
-- (CHECK), so no run can name another tenant's object.
--
-- Cross-tenant export: a profile may list source_tenants other than its own. The service
-- role cannot read them (RLS) unless the planner opens a transaction as that tenant, which
-- it does only when export_cross_tenant_grants holds a live grant from the source to the
-- exporting tenant. That table has no tenant_id (it is the operator's, not a tenant's):
-- stella_app has no privilege on it and reads it only through the SECURITY DEFINER function
-- stella_export_grant(source, target), which answers for one pair. Operators manage grants as
-- the admin role; the grant id used is written into the run's provenance and export_inputs.

CREATE TYPE export_kind AS ENUM
  ('json:raw', 'json:policy', 'mirror:full', 'mirror:delta', 'trivy:db', 'trivy:java-db');
CREATE TYPE export_compression AS ENUM ('none', 'gzip', 'zstd');
CREATE TYPE export_run_state AS ENUM
  ('requested', 'planning', 'running', 'built', 'distributed', 'failed', 'cancelled');
CREATE TYPE export_source_kind AS ENUM ('advisory', 'vex', 'policy_pack', 'policy_result');
CREATE TYPE export_dist_state AS ENUM ('pending', 'pushing', 'pushed', 'failed', 'expired');

CREATE TABLE export_profiles (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  name text COLLATE "C" NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
  project text NOT NULL DEFAULT 'default' CHECK (project ~ '^[A-Za-z0-9._-]{1,64}$'),
  kind export_kind NOT NULL,
  filters jsonb NOT NULL DEFAULT '{}',      -- validated by the planner (planner.c)
  redaction jsonb NOT NULL DEFAULT '[]',    -- allowlist of document fields kept
  compression export_compression NOT NULL DEFAULT 'gzip',
  single_flight boolean NOT NULL DEFAULT true,
  schedule text,                            -- scheduler reference (cron), NULL = manual
  source_tenants text[] NOT NULL DEFAULT '{}', -- other tenants to read (need grants)
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);
SELECT stella_protect_tenant_table('export_profiles');
GRANT SELECT, INSERT, UPDATE, DELETE ON export_profiles TO stella_app;
CREATE TRIGGER export_profiles_updated_at BEFORE UPDATE ON export_profiles
  FOR EACH ROW EXECUTE FUNCTION stella_touch_updated_at();

-- State machine (enforced by trigger): requested -> planning -> running -> built ->
-- distributed; any non-terminal state -> failed | cancelled. plan_digest is the SHA-256 of
-- the ordered input list (planner.c); once set it never changes.
CREATE TABLE export_runs (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  run_id uuid NOT NULL DEFAULT gen_random_uuid(),
  profile_name text COLLATE "C" NOT NULL,
  project text NOT NULL DEFAULT 'default',
  kind export_kind NOT NULL,
  single_flight boolean NOT NULL DEFAULT true,
  state export_run_state NOT NULL DEFAULT 'requested',
  progress real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
  profile jsonb NOT NULL DEFAULT '{}',     -- the profile as planned (snapshot)
  plan_digest text,
  input_count bigint,
  manifest_digest text,
  artifact_key text,
  manifest_key text,
  provenance jsonb NOT NULL DEFAULT '{}',  -- source tenants, grants used, plan digest
  error text,
  idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 256),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (tenant_id, run_id),
  CHECK (artifact_key IS NULL OR
         starts_with(artifact_key, 'tenants/' || tenant_id || '/projects/' || project || '/')),
  CHECK (manifest_key IS NULL OR
         starts_with(manifest_key, 'tenants/' || tenant_id || '/projects/' || project || '/'))
);
-- One active run per single-flight profile: a second one fails with a unique violation.
CREATE UNIQUE INDEX export_runs_single_flight ON export_runs (tenant_id, profile_name)
  WHERE single_flight AND state IN ('requested', 'planning', 'running');
CREATE UNIQUE INDEX export_runs_idempotency ON export_runs (tenant_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX export_runs_profile ON export_runs (tenant_id, profile_name, created_at);
SELECT stella_protect_tenant_table('export_runs');
SELECT stella_allow_retention('export_runs', 'state IN (''distributed'', ''failed'', ''cancelled'')');
GRANT SELECT, INSERT, UPDATE ON export_runs TO stella_app;

CREATE FUNCTION stella_export_run_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state AND NOT (
       (OLD.state = 'requested' AND NEW.state IN ('planning', 'failed', 'cancelled')) OR
       (OLD.state = 'planning' AND NEW.state IN ('running', 'failed', 'cancelled')) OR
       (OLD.state = 'running' AND NEW.state IN ('built', 'failed', 'cancelled')) OR
       (OLD.state = 'built' AND NEW.state IN ('distributed', 'failed'))) THEN
    RAISE EXCEPTION 'export run %: illegal transition % -> %', OLD.run_id, OLD.state, NEW.state
      USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.plan_digest IS NOT NULL AND NEW.plan_digest IS DISTINCT FROM OLD.plan_digest THEN
    RAISE EXCEPTION 'export run %: plan_digest is set once', OLD.run_id
      USING ERRCODE = 'check_violation';
  END IF;
  NEW.updated_at := now();
  IF NEW.state IN ('built', 'distributed', 'failed', 'cancelled') AND NEW.finished_at IS NULL
  THEN
    NEW.finished_at := now();
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER export_runs_transition BEFORE UPDATE ON export_runs
  FOR EACH ROW EXECUTE FUNCTION stella_export_run_transition();

-- The planned inputs of a run, in plan order (ord). Written once per run by the planner;
-- a re-plan of the same run writes nothing (ON CONFLICT DO NOTHING) and must match.
CREATE TABLE export_inputs (
  tenant_id text NOT NULL,
  run_id uuid NOT NULL,
  ord bigint NOT NULL CHECK (ord >= 0),
  source_kind export_source_kind NOT NULL,
  source_tenant text NOT NULL CHECK (source_tenant ~ '^[A-Za-z0-9._-]{1,64}$'),
  source_id text COLLATE "C" NOT NULL,
  digest text NOT NULL,
  grant_id bigint, -- export_cross_tenant_grants.id when source_tenant is not tenant_id
  PRIMARY KEY (tenant_id, run_id, ord),
  UNIQUE (tenant_id, run_id, source_kind, source_tenant, source_id),
  FOREIGN KEY (tenant_id, run_id) REFERENCES export_runs ON DELETE CASCADE
);
SELECT stella_protect_tenant_table('export_inputs');
SELECT stella_allow_retention('export_inputs', 'true');
GRANT SELECT, INSERT ON export_inputs TO stella_app;

CREATE TABLE export_distributions (
  tenant_id text NOT NULL,
  run_id uuid NOT NULL,
  target text NOT NULL CHECK (length(target) BETWEEN 1 AND 1024), -- e.g. oci://..., s3://...
  digest text,
  state export_dist_state NOT NULL DEFAULT 'pending',
  attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  retain_until timestamptz,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, run_id, target),
  FOREIGN KEY (tenant_id, run_id) REFERENCES export_runs ON DELETE CASCADE
);
SELECT stella_protect_tenant_table('export_distributions');
SELECT stella_allow_retention('export_distributions', 'true');
GRANT SELECT, INSERT, UPDATE ON export_distributions TO stella_app;
CREATE TRIGGER export_distributions_updated_at BEFORE UPDATE ON export_distributions
  FOR EACH ROW EXECUTE FUNCTION stella_touch_updated_at();

-- Operator-owned: which tenant's ledger another tenant may export. No tenant_id column on
-- purpose (it spans tenants); no privileges for stella_app; revoked grants stay for audit.
CREATE TABLE export_cross_tenant_grants (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source_tenant text NOT NULL CHECK (source_tenant ~ '^[A-Za-z0-9._-]{1,64}$'),
  target_tenant text NOT NULL CHECK (target_tenant ~ '^[A-Za-z0-9._-]{1,64}$'),
  granted_by text NOT NULL,
  reason text NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  CHECK (source_tenant <> target_tenant)
);
CREATE INDEX export_cross_tenant_grants_pair
  ON export_cross_tenant_grants (source_tenant, target_tenant);
REVOKE ALL ON export_cross_tenant_grants FROM PUBLIC;

-- The live grant letting p_target export p_source's ledger, or no row. Callable only from a
-- transaction whose tenant is p_target, so a tenant can ask only about its own exports.
CREATE FUNCTION stella_export_grant(p_source text, p_target text)
RETURNS TABLE (id bigint, granted_by text, reason text, granted_at timestamptz,
               expires_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT g.id, g.granted_by, g.reason, g.granted_at, g.expires_at
  FROM public.export_cross_tenant_grants g
  WHERE g.source_tenant = p_source AND g.target_tenant = p_target
    AND p_target = NULLIF(current_setting('stella.tenant', true), '')
    AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > now())
  ORDER BY g.id DESC LIMIT 1
$$;
REVOKE ALL ON FUNCTION stella_export_grant(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stella_export_grant(text, text) TO stella_app;
