-- 0051_evidence_incident.sql: incident mode per tenant, retention that follows it, and the
-- cross-tenant questions the scheduled locker maintenance asks. The SQL lives in
-- core/src/evidence_incident.c and core/src/evidence_maint.c (core/include/stella/evidence.h).
--
-- Incident mode: at most one active incident per tenant (deactivated_at NULL); the rows
-- stay as the tenant's incident history. While one is active, every sealed bundle of the
-- tenant is kept extension_days past its retention_until: the pruner's policy on
-- evidence_bundles asks stella_evidence_retention_extension() (SECURITY DEFINER, because
-- stella_maint cannot see through the incidents' forced RLS, as with holds). Snapshots
-- sealed during the incident also get the extension written into their own window.

CREATE TABLE evidence_incidents (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  incident_id bigint GENERATED ALWAYS AS IDENTITY,
  reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
  extension_days integer NOT NULL CHECK (extension_days BETWEEN 0 AND 36500),
  activated_by text NOT NULL,
  activated_at timestamptz NOT NULL DEFAULT now(),
  deactivated_by text,
  deactivated_at timestamptz,
  PRIMARY KEY (tenant_id, incident_id)
);
CREATE UNIQUE INDEX evidence_incidents_active ON evidence_incidents (tenant_id)
  WHERE deactivated_at IS NULL;
SELECT stella_protect_tenant_table('evidence_incidents');
GRANT SELECT, INSERT, UPDATE ON evidence_incidents TO stella_app;

-- The active incident's extension of the tenant's retention windows (0 when none).
CREATE FUNCTION stella_evidence_retention_extension(p_tenant text) RETURNS interval
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce((SELECT make_interval(days => i.extension_days)
                   FROM public.evidence_incidents i
                   WHERE i.tenant_id = p_tenant AND i.deactivated_at IS NULL), interval '0')
$$;
REVOKE ALL ON FUNCTION stella_evidence_retention_extension(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stella_evidence_retention_extension(text) TO stella_app, stella_maint;

-- The pruner's view of evidence_bundles (0050) gains the incident extension.
DROP POLICY maint_select ON evidence_bundles;
DROP POLICY maint_delete ON evidence_bundles;
CREATE POLICY maint_select ON evidence_bundles FOR SELECT TO stella_maint USING (
  status = 'sealed' AND retention_until + public.stella_evidence_retention_extension(tenant_id)
  < now() AND NOT public.stella_evidence_held(tenant_id, bundle_id));
CREATE POLICY maint_delete ON evidence_bundles FOR DELETE TO stella_maint USING (
  status = 'sealed' AND retention_until + public.stella_evidence_retention_extension(tenant_id)
  < now() AND NOT public.stella_evidence_held(tenant_id, bundle_id));

-- Tenants whose custody log grew past its last signed checkpoint: the periodic checkpoint
-- signs their heads. Tenant ids only; the caller then works inside each tenant's own
-- transaction.
CREATE FUNCTION stella_evidence_checkpoint_due() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT h.tenant_id FROM public.evidence_custody_head h
  WHERE h.seq > coalesce((SELECT max(k.seq) FROM public.evidence_custody_checkpoints k
                          WHERE k.tenant_id = h.tenant_id), 0)
  ORDER BY h.tenant_id
$$;
REVOKE ALL ON FUNCTION stella_evidence_checkpoint_due() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stella_evidence_checkpoint_due() TO stella_app;
