-- 0010_schedules.sql: cron schedules, event triggers and the firing log of the scheduler
-- role (queue/scheduler.c).
--
-- Exactly one firing per tick, across any number of stellad processes and leader changes:
-- a firing is the row (schedule_id, tick) of schedule_firings, inserted with ON CONFLICT DO
-- NOTHING in the same transaction that XADDs the job (whose job_id is derived from the
-- schedule id and the tick, so even a commit lost after the XADD dedupes in jobs).
--
-- The scheduler serves every tenant, so, like the outbox relay (0003), it reads and fires
-- through SECURITY DEFINER functions granted to stella_app only; every other access is
-- tenant-scoped by row-level security.

CREATE TABLE schedules (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  cron text NOT NULL CHECK (length(cron) BETWEEN 1 AND 256),
  job_type text NOT NULL CHECK (length(job_type) BETWEEN 1 AND 64),
  payload jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  enabled boolean NOT NULL DEFAULT true,
  last_fired_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name)
);
SELECT stella_protect_tenant_table('schedules');
GRANT SELECT, INSERT, UPDATE, DELETE ON schedules TO stella_app;

-- One row per fired tick. The primary key is the exactly-once guarantee (a schedule has
-- one tenant, so it is unique on (schedule_id, tick)).
CREATE TABLE schedule_firings (
  schedule_id bigint NOT NULL REFERENCES schedules ON DELETE CASCADE,
  tick timestamptz NOT NULL,
  tenant_id text NOT NULL,
  job_id text NOT NULL,
  fired_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, schedule_id, tick) -- schedule_id alone is unique; tenant first as everywhere
);
SELECT stella_protect_tenant_table('schedule_firings');
SELECT stella_allow_retention('schedule_firings', 'true');
GRANT SELECT ON schedule_firings TO stella_app;

-- An event of event_type on stella:events for the tenant starts a job of job_type.
CREATE TABLE event_triggers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL CHECK (tenant_id ~ '^[A-Za-z0-9._-]{1,64}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  event_type text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 128),
  job_type text NOT NULL CHECK (length(job_type) BETWEEN 1 AND 64),
  payload jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name)
);
CREATE INDEX event_triggers_type ON event_triggers (event_type) WHERE enabled;
SELECT stella_protect_tenant_table('event_triggers');
GRANT SELECT, INSERT, UPDATE, DELETE ON event_triggers TO stella_app;

-- Every enabled schedule of every tenant (the scheduler evaluates the cron expressions).
CREATE FUNCTION stella_schedules_enabled()
RETURNS TABLE (id bigint, tenant_id text, name text, cron text, job_type text, payload jsonb,
               last_fired_at timestamptz, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.id, s.tenant_id, s.name, s.cron, s.job_type, s.payload, s.last_fired_at,
         s.created_at
  FROM public.schedules s WHERE s.enabled ORDER BY s.id
$$;

-- Claim the firing of (schedule, tick): true for exactly one caller per pair, ever. The
-- row stays locked until the caller's transaction ends, so a concurrent caller waits and
-- then sees it (false); if the caller rolls back (its XADD failed), another may fire.
CREATE FUNCTION stella_schedule_fire(p_id bigint, p_tick timestamptz, p_job_id text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_tenant text;
BEGIN
  SELECT s.tenant_id INTO v_tenant FROM public.schedules s WHERE s.id = p_id AND s.enabled;
  IF v_tenant IS NULL THEN
    RETURN false;
  END IF;
  INSERT INTO public.schedule_firings (schedule_id, tick, tenant_id, job_id)
  VALUES (p_id, p_tick, v_tenant, p_job_id) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  UPDATE public.schedules SET last_fired_at = greatest(last_fired_at, p_tick)
  WHERE id = p_id;
  UPDATE public.schedules SET last_fired_at = p_tick WHERE id = p_id AND last_fired_at IS NULL;
  RETURN true;
END $$;

-- The enabled triggers of one tenant for one event type.
CREATE FUNCTION stella_triggers_for(p_tenant text, p_event_type text)
RETURNS TABLE (id bigint, job_type text, payload jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT t.id, t.job_type, t.payload FROM public.event_triggers t
  WHERE t.tenant_id = p_tenant AND t.event_type = p_event_type AND t.enabled ORDER BY t.id
$$;

REVOKE ALL ON FUNCTION stella_schedules_enabled() FROM PUBLIC;
REVOKE ALL ON FUNCTION stella_schedule_fire(bigint, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION stella_triggers_for(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stella_schedules_enabled() TO stella_app;
GRANT EXECUTE ON FUNCTION stella_schedule_fire(bigint, timestamptz, text) TO stella_app;
GRANT EXECUTE ON FUNCTION stella_triggers_for(text, text) TO stella_app;
