-- 0050_evidence.sql: the Evidence Locker: sealed evidence bundles, their entries, uploaded
-- artifacts, legal holds, retention windows, the hash-chained custody log with signed
-- checkpoints, and disposition records left by the pruner. The SQL lives in
-- core/src/evidence_*.c (core/include/stella/evidence.h).
--
-- Immutability: once a bundle row is sealed, its content columns never change (trigger);
-- retention_until may only grow. Custody records, checkpoints and dispositions are
-- append-only for stella_app (no UPDATE/DELETE granted) and refuse UPDATE/DELETE from
-- anyone by trigger, so the chain can be checked end to end (stella evidence custody
-- verify).
--
-- Retention: stella_maint (the pruner) may read and delete sealed bundle rows whose
-- retention passed and that no active hold covers. Holds live behind forced RLS which
-- stella_maint cannot see through, so the policy asks stella_evidence_held(), a SECURITY
-- DEFINER function answering for one bundle.

CREATE TABLE evidence_bundles (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  bundle_id text COLLATE "C" NOT NULL CHECK (bundle_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  kind text NOT NULL CHECK (kind IN ('evaluation', 'job', 'export')),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sealed', 'failed')),
  job_id text,
  run_id text,
  actor text,
  merkle_root text CHECK (merkle_root ~ '^[0-9a-f]{64}$'),
  manifest_sha256 text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
  object_key text CHECK (object_key LIKE 'tenants/' || tenant_id || '/%'),
  object_sha256 text CHECK (object_sha256 ~ '^[0-9a-f]{64}$'),
  object_size bigint CHECK (object_size >= 0),
  keyid text,
  tsa_gen_time timestamptz,
  tsa_serial text,
  created timestamptz,                 -- the bundle's own created time (from the payload)
  sealed_at timestamptz,
  retention_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, bundle_id),
  CHECK (status <> 'sealed' OR (merkle_root IS NOT NULL AND manifest_sha256 IS NOT NULL AND
         object_key IS NOT NULL AND object_sha256 IS NOT NULL AND object_size IS NOT NULL AND
         keyid IS NOT NULL AND sealed_at IS NOT NULL AND retention_until IS NOT NULL))
);
CREATE INDEX evidence_bundles_retention ON evidence_bundles (retention_until)
  WHERE status = 'sealed';
SELECT stella_protect_tenant_table('evidence_bundles');
GRANT SELECT, INSERT, UPDATE ON evidence_bundles TO stella_app;

CREATE FUNCTION stella_evidence_bundle_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF OLD.status = 'sealed' THEN
    IF (NEW.tenant_id, NEW.bundle_id, NEW.kind, NEW.status, NEW.job_id, NEW.run_id, NEW.actor,
        NEW.merkle_root, NEW.manifest_sha256, NEW.object_key, NEW.object_sha256,
        NEW.object_size, NEW.keyid, NEW.tsa_gen_time, NEW.tsa_serial, NEW.created,
        NEW.sealed_at, NEW.created_at)
       IS DISTINCT FROM
       (OLD.tenant_id, OLD.bundle_id, OLD.kind, OLD.status, OLD.job_id, OLD.run_id, OLD.actor,
        OLD.merkle_root, OLD.manifest_sha256, OLD.object_key, OLD.object_sha256,
        OLD.object_size, OLD.keyid, OLD.tsa_gen_time, OLD.tsa_serial, OLD.created,
        OLD.sealed_at, OLD.created_at) THEN
      RAISE EXCEPTION 'evidence bundle % is sealed: its content cannot change', OLD.bundle_id
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.retention_until < OLD.retention_until THEN
      RAISE EXCEPTION 'evidence bundle %: retention can be extended, never shortened',
        OLD.bundle_id USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER evidence_bundles_guard BEFORE UPDATE ON evidence_bundles
  FOR EACH ROW EXECUTE FUNCTION stella_evidence_bundle_guard();

-- The files a sealed bundle holds (its manifest entries), for queries and holds by digest.
CREATE TABLE evidence_artifacts (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  bundle_id text COLLATE "C" NOT NULL,
  path text COLLATE "C" NOT NULL CHECK (length(path) BETWEEN 1 AND 1000),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size bigint NOT NULL CHECK (size >= 0),
  media_type text NOT NULL,
  PRIMARY KEY (tenant_id, bundle_id, path),
  FOREIGN KEY (tenant_id, bundle_id) REFERENCES evidence_bundles ON DELETE CASCADE
);
CREATE INDEX evidence_artifacts_sha256 ON evidence_artifacts (tenant_id, sha256);
SELECT stella_protect_tenant_table('evidence_artifacts');
GRANT SELECT, INSERT ON evidence_artifacts TO stella_app;
-- Cascaded from the pruner's bundle deletes (the FK action runs as the table owner).

-- Artifacts uploaded with PUT /evidence/artifacts (content-addressed objects).
CREATE TABLE evidence_uploads (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size bigint NOT NULL CHECK (size >= 0),
  uploaded_by text NOT NULL,
  uploaded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, sha256)
);
SELECT stella_protect_tenant_table('evidence_uploads');
GRANT SELECT, INSERT ON evidence_uploads TO stella_app;

-- Legal holds. A case holds the bundles listed in evidence_hold_items (named by id, or
-- matched by the filter when the hold was placed); released_at set = no longer active.
CREATE TABLE evidence_holds (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  case_id text COLLATE "C" NOT NULL CHECK (case_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
  reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
  filter jsonb,
  placed_by text NOT NULL,
  placed_at timestamptz NOT NULL DEFAULT now(),
  released_by text,
  released_at timestamptz,
  PRIMARY KEY (tenant_id, case_id)
);
SELECT stella_protect_tenant_table('evidence_holds');
GRANT SELECT, INSERT, UPDATE ON evidence_holds TO stella_app;

CREATE TABLE evidence_hold_items (
  tenant_id text NOT NULL,
  case_id text COLLATE "C" NOT NULL,
  bundle_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (tenant_id, case_id, bundle_id),
  FOREIGN KEY (tenant_id, case_id) REFERENCES evidence_holds
);
CREATE INDEX evidence_hold_items_bundle ON evidence_hold_items (tenant_id, bundle_id);
SELECT stella_protect_tenant_table('evidence_hold_items');
GRANT SELECT, INSERT ON evidence_hold_items TO stella_app;

-- Whether an active hold covers the bundle (for the pruner's policy; see the top).
CREATE FUNCTION stella_evidence_held(p_tenant text, p_bundle text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM public.evidence_hold_items i
    JOIN public.evidence_holds h USING (tenant_id, case_id)
    WHERE i.tenant_id = p_tenant AND i.bundle_id = p_bundle AND h.released_at IS NULL)
$$;
REVOKE ALL ON FUNCTION stella_evidence_held(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stella_evidence_held(text, text) TO stella_app, stella_maint;

SELECT stella_allow_retention('evidence_bundles',
  'status = ''sealed'' AND retention_until < now() AND '
  'NOT public.stella_evidence_held(tenant_id, bundle_id)');
-- The cascade from a pruned bundle to its entries needs the pruner to see them.
SELECT stella_allow_retention('evidence_artifacts', 'true');

-- Retention windows in days per tenant and kind ('*' = every kind of the tenant); absent:
-- the evidence_retention_days config key.
CREATE TABLE evidence_retention (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  kind text NOT NULL CHECK (kind IN ('*', 'evaluation', 'job', 'export')),
  days integer NOT NULL CHECK (days BETWEEN 0 AND 36500),
  PRIMARY KEY (tenant_id, kind)
);
SELECT stella_protect_tenant_table('evidence_retention');
GRANT SELECT, INSERT, UPDATE, DELETE ON evidence_retention TO stella_app;

-- The custody log: per tenant, seq 1, 2, ... each record carrying the hash of the one
-- before (prev_hash; 64 zeros for seq 1) and its own hash over prev_hash and the record's
-- canonical JSON (evidence_custody.c says exactly). The head row serialises appends.
CREATE TABLE evidence_custody (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  seq bigint NOT NULL CHECK (seq >= 1),
  event text NOT NULL CHECK (event ~ '^evidence\.[a-z]+$|^incident\.[a-z]+$'),
  bundle_id text,
  bundle_sha256 text,
  actor text NOT NULL,
  request_id text,
  at timestamptz NOT NULL,
  record jsonb NOT NULL,               -- the exact canonical JSON hashed, as jsonb
  record_text text NOT NULL,           -- ... and as the bytes hashed
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX evidence_custody_bundle ON evidence_custody (tenant_id, bundle_id);
SELECT stella_protect_tenant_table('evidence_custody');
GRANT SELECT, INSERT ON evidence_custody TO stella_app;

CREATE TABLE evidence_custody_head (
  tenant_id text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  seq bigint NOT NULL DEFAULT 0,
  hash text NOT NULL DEFAULT repeat('0', 64)
);
SELECT stella_protect_tenant_table('evidence_custody_head');
GRANT SELECT, INSERT, UPDATE ON evidence_custody_head TO stella_app;

-- Signed checkpoints: the signer's signature over
-- "stella.custody-checkpoint/v1\n<tenant>\n<seq>\n<hash>\n".
CREATE TABLE evidence_custody_checkpoints (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  seq bigint NOT NULL,
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  keyid text NOT NULL,
  signature text NOT NULL,             -- base64
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq)
);
SELECT stella_protect_tenant_table('evidence_custody_checkpoints');
GRANT SELECT, INSERT ON evidence_custody_checkpoints TO stella_app;

-- What the pruner deleted, when and under which rule, signed like a checkpoint over the
-- canonical JSON in record_text.
CREATE TABLE evidence_dispositions (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  bundle_id text COLLATE "C" NOT NULL,
  record_text text NOT NULL,
  keyid text NOT NULL,
  signature text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, bundle_id)
);
SELECT stella_protect_tenant_table('evidence_dispositions');
GRANT SELECT, INSERT ON evidence_dispositions TO stella_app;

CREATE FUNCTION stella_evidence_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION '%: append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER evidence_custody_append_only BEFORE UPDATE OR DELETE ON evidence_custody
  FOR EACH ROW EXECUTE FUNCTION stella_evidence_append_only();
CREATE TRIGGER evidence_checkpoints_append_only BEFORE UPDATE OR DELETE
  ON evidence_custody_checkpoints FOR EACH ROW EXECUTE FUNCTION stella_evidence_append_only();
CREATE TRIGGER evidence_dispositions_append_only BEFORE UPDATE OR DELETE
  ON evidence_dispositions FOR EACH ROW EXECUTE FUNCTION stella_evidence_append_only();
