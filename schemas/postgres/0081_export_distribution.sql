-- 0081_export_distribution.sql: a profile's distribution targets. When a run of a profile
-- with `distribution` is built, the export job queues one oci_distribute job
-- (job id oci-<run_id>, payload {run_id, targets, retain_days?}) that fetches the run's
-- stored bundle, verifies it and pushes it (workers/export/handoff.c, workers/oci).
-- Validated by the profile code with the oci_distribute payload rules; NULL = none.
ALTER TABLE export_profiles
  ADD COLUMN distribution jsonb CHECK (distribution IS NULL OR
    (jsonb_typeof(distribution) = 'object' AND jsonb_typeof(distribution->'targets') = 'array'));
