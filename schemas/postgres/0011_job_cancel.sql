-- 0011_job_cancel.sql: cancel requests. `stella job cancel` sets cancel_requested_at on a
-- job not yet final; the supervisor running it polls its in-flight jobs' requests and
-- sets their cancel flag, and one that picks the job up later does not run it. A
-- cancelled job ends in state 'cancelled' and is never retried.
ALTER TABLE jobs ADD COLUMN cancel_requested_at timestamptz;
CREATE INDEX jobs_cancel_requested ON jobs (tenant_id, job_id) WHERE cancel_requested_at IS NOT NULL;
