-- 0001_base.sql: roles, the row-level security helpers, tenants and the audit log.
--
-- Runs as the admin role (pg_admin_url), which owns every table and function; it must be a
-- superuser or have BYPASSRLS (the runner checks). Two login roles are used at run time:
--   stella_app    the service role: DML only, never BYPASSRLS; every tenant-scoped statement
--                 runs inside st_db_tenant_tx, which sets stella.tenant for the transaction.
--   stella_maint  the retention pruner only: may SELECT and DELETE rows of the tables that
--                 opt in with stella_allow_retention(); every DELETE it makes writes audit_log
--                 rows (one per tenant and statement) through a trigger, so its use is audited.
-- Passwords are not set here: local development uses trust auth; production sets them (or
-- certificate auth) out of band.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stella_app') THEN
    CREATE ROLE stella_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stella_maint') THEN
    CREATE ROLE stella_maint LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  -- Roles are cluster-wide and may predate this database: refuse ones that bypass RLS.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('stella_app', 'stella_maint')
             AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'stella_app and stella_maint must not be superusers or have BYPASSRLS';
  END IF;
END $$;

-- Every table with a tenant_id calls this right after CREATE TABLE: RLS enabled and forced
-- (the owner too), one policy for every command comparing tenant_id with the transaction's
-- stella.tenant. NULLIF: after a transaction that set it locally the setting reads '' (not
-- NULL), which must match no row. tests/integration/test_rls_invariant.c checks every such
-- table, including future ones.
CREATE FUNCTION stella_protect_tenant_table(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format('CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC '
                 'USING (tenant_id = NULLIF(current_setting(''stella.tenant'', true), '''')) '
                 'WITH CHECK (tenant_id = NULLIF(current_setting(''stella.tenant'', true), ''''))',
                 tbl);
END $$;
REVOKE ALL ON FUNCTION stella_protect_tenant_table(regclass) FROM PUBLIC;

CREATE TABLE tenants (
  tenant_id text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  display_name text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
SELECT stella_protect_tenant_table('tenants');
GRANT SELECT, INSERT, UPDATE ON tenants TO stella_app;

-- Append-only: stella_app may insert and read, never update or delete. outcome is one of
-- ok, denied, error; detail never holds secrets.
CREATE TABLE audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  actor text NOT NULL,
  action text NOT NULL,
  resource text NOT NULL,
  outcome text NOT NULL,
  request_id text,
  detail jsonb NOT NULL DEFAULT '{}',
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);
SELECT stella_protect_tenant_table('audit_log');
GRANT SELECT, INSERT ON audit_log TO stella_app;

-- The audit trail of the retention pruner: a statement-level trigger on every table
-- stella_maint may prune. SECURITY DEFINER because stella_maint has no INSERT on audit_log
-- and the rows span tenants; session_user (the login role) tells a pruner run apart.
CREATE FUNCTION stella_audit_maint_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF session_user::text = 'stella_maint' THEN
    INSERT INTO public.audit_log (tenant_id, actor, action, resource, outcome, detail)
    SELECT g.tenant_id, 'stella_maint', 'retention.prune', TG_TABLE_NAME, 'ok',
           jsonb_build_object('rows', count(*))
    FROM gone g GROUP BY g.tenant_id;
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION stella_audit_maint_delete() FROM PUBLIC;

-- Let the pruner delete rows of tbl matching `prunable` (an SQL condition), audited.
CREATE FUNCTION stella_allow_retention(tbl regclass, prunable text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE POLICY maint_select ON %s FOR SELECT TO stella_maint USING (%s)',
                 tbl, prunable);
  EXECUTE format('CREATE POLICY maint_delete ON %s FOR DELETE TO stella_maint USING (%s)',
                 tbl, prunable);
  EXECUTE format('GRANT SELECT, DELETE ON %s TO stella_maint', tbl);
  EXECUTE format('CREATE TRIGGER audit_maint_delete AFTER DELETE ON %s '
                 'REFERENCING OLD TABLE AS gone FOR EACH STATEMENT '
                 'EXECUTE FUNCTION public.stella_audit_maint_delete()', tbl);
END $$;
REVOKE ALL ON FUNCTION stella_allow_retention(regclass, text) FROM PUBLIC;
