-- 0060_ledger_maven.sql: the Maven artifact index of the source ledger, what the Trivy
-- Java DB export (profile kind trivy:java-db) reads: one row per artifact file (group,
-- artifact, version, SHA-1 of the jar/aar). Written only by `stella ledger import` from a
-- Maven index file (docs/trivy.md, "Maven index file"; core/src/ledger_maven.c owns the
-- SQL). Tenant-scoped with forced row-level security like every ledger table.
--
-- Idempotence: row_sha256 is the SHA-256 of the RFC 8785 form of the row {group_id,
-- artifact_id, version, sha1, packaging[, modified]}; re-importing the same row changes
-- nothing; another packaging or a later `modified` for the same key replaces it.

CREATE TYPE ledger_maven_packaging AS ENUM ('jar', 'aar');
ALTER TYPE export_source_kind ADD VALUE IF NOT EXISTS 'maven_artifact';

CREATE TABLE ledger_maven_artifacts (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  -- [A-Za-z0-9._-]{1,256}: Postgres caps regex repetition counts at 255
  group_id text COLLATE "C" NOT NULL
    CHECK (group_id ~ '^[A-Za-z0-9._-]+$' AND length(group_id) <= 256),
  artifact_id text COLLATE "C" NOT NULL
    CHECK (artifact_id ~ '^[A-Za-z0-9._-]+$' AND length(artifact_id) <= 256),
  version text COLLATE "C" NOT NULL CHECK (length(version) BETWEEN 1 AND 128),
  sha1 text COLLATE "C" NOT NULL CHECK (sha1 ~ '^[0-9a-f]{40}$'),
  packaging ledger_maven_packaging NOT NULL,
  modified timestamptz,
  row_sha256 text NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, group_id, artifact_id, version, sha1)
);
CREATE INDEX ledger_maven_artifacts_modified ON ledger_maven_artifacts (tenant_id, modified);
SELECT stella_protect_tenant_table('ledger_maven_artifacts');
GRANT SELECT, INSERT, UPDATE ON ledger_maven_artifacts TO stella_app;
