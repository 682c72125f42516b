-- 0003_outbox.sql: the transactional outbox of lifecycle events.
--
-- A state change and its event commit together (same tenant transaction). The relay then
-- publishes unpublished rows to Redis/NATS. event_id is stable and unique per tenant, the
-- key consumers deduplicate on; scoping it to the tenant keeps a colliding insert from
-- revealing another tenant's event.
--
-- Why SECURITY DEFINER functions: the relay serves every tenant, but stella_app sees only
-- the tenant of its transaction (and nothing without one), and giving it BYPASSRLS would
-- void the isolation of every table. These two functions are the only cross-tenant path:
-- owned by the admin role (superuser or BYPASSRLS), search_path pinned so a caller cannot
-- substitute objects, EXECUTE revoked from PUBLIC and granted to stella_app only. They
-- expose only what relaying needs: claim a batch, mark it published.

CREATE TABLE outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 128),
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  type text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz,
  UNIQUE (tenant_id, event_id)
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
SELECT stella_protect_tenant_table('outbox');
SELECT stella_allow_retention('outbox', 'published_at IS NOT NULL');
GRANT SELECT, INSERT ON outbox TO stella_app;

-- Lock and return up to p_limit (1..1000) unpublished rows, oldest first. The row locks
-- last until the caller's transaction ends, so concurrent relays skip each other's batches;
-- the caller publishes, then calls stella_outbox_mark_published in the same transaction.
CREATE FUNCTION stella_outbox_claim(p_limit int) RETURNS SETOF public.outbox
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT o.* FROM public.outbox o
  WHERE o.published_at IS NULL
  ORDER BY o.id
  LIMIT least(greatest(p_limit, 1), 1000)
  FOR UPDATE SKIP LOCKED
$$;

-- Mark rows published; returns how many changed (already published ones are left alone).
CREATE FUNCTION stella_outbox_mark_published(p_ids bigint[]) RETURNS int
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH done AS (
    UPDATE public.outbox SET published_at = now()
    WHERE id = ANY (p_ids) AND published_at IS NULL
    RETURNING 1)
  SELECT count(*)::int FROM done
$$;

REVOKE ALL ON FUNCTION stella_outbox_claim(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION stella_outbox_mark_published(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stella_outbox_claim(int) TO stella_app;
GRANT EXECUTE ON FUNCTION stella_outbox_mark_published(bigint[]) TO stella_app;
