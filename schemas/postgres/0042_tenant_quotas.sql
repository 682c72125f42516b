-- 0042_tenant_quotas.sql: per-tenant storage quota and usage (st_api_storage_charge).
-- storage_bytes_max NULL means the configured default (api_storage_quota_bytes). Usage
-- changes in the same transaction as the upload or delete it accounts for, so a refused
-- upload leaves no trace. The row is created on a tenant's first charge.
CREATE TABLE tenant_quotas (
  tenant_id text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  storage_bytes_max bigint CHECK (storage_bytes_max >= 0),
  storage_bytes_used bigint NOT NULL DEFAULT 0 CHECK (storage_bytes_used >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT stella_protect_tenant_table('tenant_quotas');
-- stella_app may account usage but not raise its own limit: storage_bytes_max is set by
-- the admin role.
GRANT SELECT, INSERT (tenant_id, storage_bytes_used), UPDATE (storage_bytes_used, updated_at)
  ON tenant_quotas TO stella_app;
