-- 0040_api_idempotency.sql: Idempotency-Key records of the API (api/api_store_pg.c).
--
-- One row per (tenant, key, route): the SHA-256 of the request that claimed the key, its
-- state (in_flight while the first request runs, done once its reply is stored) and the
-- reply to replay. expires_at bounds both states: a done record is replayed until then,
-- an in-flight one whose server crashed frees its key then. An expired row counts as
-- absent (the next claim overwrites it) and the retention pruner deletes it.
CREATE TABLE api_idempotency (
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  idem_key text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
  route text NOT NULL CHECK (length(route) BETWEEN 1 AND 300),
  request_sha256 bytea NOT NULL, -- 32 bytes as written by the API
  state text NOT NULL DEFAULT 'in_flight' CHECK (state IN ('in_flight', 'done')),
  status int CHECK (status BETWEEN 100 AND 599),
  content_type text,
  headers jsonb,
  body bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, idem_key, route),
  CHECK (state = 'in_flight' OR (status IS NOT NULL AND body IS NOT NULL))
);
CREATE INDEX api_idempotency_expires ON api_idempotency (expires_at);
SELECT stella_protect_tenant_table('api_idempotency');
SELECT stella_allow_retention('api_idempotency', 'expires_at < now()');
GRANT SELECT, INSERT, UPDATE, DELETE ON api_idempotency TO stella_app;
