-- 0041_api_audit.sql: what GET /audit needs from audit_log (0001_base.sql): keyset pages
-- newest first within a tenant, and the request id filter. The trace id of an API request
-- is kept in detail->>'trace_id'.
CREATE INDEX audit_log_tenant_id ON audit_log (tenant_id, id);
CREATE INDEX audit_log_tenant_request ON audit_log (tenant_id, request_id)
  WHERE request_id IS NOT NULL;
