-- 0030_ledger.sql: the source ledger, what exports read: OSV advisories, OpenVEX documents
-- and their statements, policy packs and policy evaluation results. Written only by
-- `stella ledger import` (core/src/ledger_*.c owns these tables); read by the export
-- planner and adapters. Every table is tenant-scoped with forced row-level security.
--
-- Idempotence: each document carries doc_sha256, the SHA-256 of its RFC 8785 canonical
-- form. Re-importing the same bytes changes nothing; an advisory (or VEX document) with a
-- later `modified` (`last_updated`, else `timestamp`) replaces the stored one; an older or
-- equally old but different one is kept out. Policy packs are immutable per name@version.
--
-- Closed vocabularies are enum types, so a bad value fails in the database as well. Keys are
-- COLLATE "C": iterators page in byte order, the same on every database.

CREATE TYPE ledger_severity AS ENUM ('none', 'low', 'medium', 'high', 'critical');
CREATE TYPE ledger_vex_status AS ENUM
  ('not_affected', 'affected', 'fixed', 'under_investigation');
CREATE TYPE ledger_verdict AS ENUM ('pass', 'warn', 'fail', 'waived');

CREATE TABLE ledger_advisories (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  id text COLLATE "C" NOT NULL CHECK (length(id) BETWEEN 1 AND 256),
  modified timestamptz NOT NULL,
  published timestamptz,
  withdrawn timestamptz,
  -- OSV ecosystem names as given ("Debian:12") and their base names ("Debian"), sorted.
  ecosystems text[] NOT NULL DEFAULT '{}',
  aliases text[] NOT NULL DEFAULT '{}',
  -- Qualitative severity: database_specific.severity, else the CVSS v3 base score, else
  -- NULL (unknown; a severity filter never selects it).
  severity ledger_severity,
  doc jsonb NOT NULL,
  doc_sha256 text NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ledger_advisories_modified ON ledger_advisories (tenant_id, modified);
SELECT stella_protect_tenant_table('ledger_advisories');
GRANT SELECT, INSERT, UPDATE ON ledger_advisories TO stella_app;

CREATE TABLE ledger_vex_documents (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  doc_id text COLLATE "C" NOT NULL CHECK (length(doc_id) BETWEEN 1 AND 1024), -- @id
  author text NOT NULL,
  issued timestamptz NOT NULL,  -- `timestamp`
  updated timestamptz NOT NULL, -- `last_updated`, else `timestamp`
  version int,
  doc jsonb NOT NULL,
  doc_sha256 text NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, doc_id)
);
SELECT stella_protect_tenant_table('ledger_vex_documents');
GRANT SELECT, INSERT, UPDATE ON ledger_vex_documents TO stella_app;

-- One row per statement of a document, replaced with it (ord = position in `statements`).
CREATE TABLE ledger_vex_statements (
  tenant_id text NOT NULL,
  doc_id text NOT NULL,
  ord int NOT NULL CHECK (ord >= 0),
  vuln_id text NOT NULL,
  products text[] NOT NULL DEFAULT '{}',
  status ledger_vex_status NOT NULL,
  justification text,
  impact_statement text,
  action_statement text,
  PRIMARY KEY (tenant_id, doc_id, ord),
  FOREIGN KEY (tenant_id, doc_id) REFERENCES ledger_vex_documents ON DELETE CASCADE
);
CREATE INDEX ledger_vex_statements_vuln ON ledger_vex_statements (tenant_id, vuln_id);
SELECT stella_protect_tenant_table('ledger_vex_statements');
GRANT SELECT, INSERT, DELETE ON ledger_vex_statements TO stella_app;

CREATE TABLE ledger_policy_packs (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  name text COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  version text COLLATE "C" NOT NULL CHECK (length(version) BETWEEN 1 AND 64),
  doc jsonb NOT NULL,
  doc_sha256 text NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name, version)
);
SELECT stella_protect_tenant_table('ledger_policy_packs');
GRANT SELECT, INSERT ON ledger_policy_packs TO stella_app;

-- A finding (vulnerability x component purl) judged by one policy pack version. A later
-- evaluated_at replaces the verdict. row_sha256 covers the canonical result object with
-- its pack reference and evaluation time (what an export proves it read).
CREATE TABLE ledger_policy_results (
  tenant_id text NOT NULL,
  pack_name text COLLATE "C" NOT NULL,
  pack_version text COLLATE "C" NOT NULL,
  vuln_id text COLLATE "C" NOT NULL CHECK (length(vuln_id) BETWEEN 1 AND 256),
  purl text COLLATE "C" NOT NULL CHECK (length(purl) BETWEEN 1 AND 2048),
  verdict ledger_verdict NOT NULL,
  rationale text NOT NULL DEFAULT '',
  evaluated_at timestamptz NOT NULL DEFAULT now(),
  row_sha256 text NOT NULL,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, pack_name, pack_version, vuln_id, purl),
  FOREIGN KEY (tenant_id, pack_name, pack_version) REFERENCES ledger_policy_packs
);
SELECT stella_protect_tenant_table('ledger_policy_results');
GRANT SELECT, INSERT, UPDATE ON ledger_policy_results TO stella_app;
