/* scheduler.h: the scheduler role of stellad: cron schedules and event triggers
 * (0010_schedules.sql) turned into jobs on `stella:jobs:<type>`.
 *
 * One dedicated thread with a synchronous hiredis connection, using the shared Postgres
 * pool (the libuv loop is not involved). Every scheduler_tick_ms it:
 *   1. reads every tenant's enabled schedules (stella_schedules_enabled, SECURITY
 *      DEFINER), and for each computes the latest cron tick T <= now (UTC, cron.h). T fires
 *      when it is after last_fired_at and not before the schedule was created. Missed ticks
 *      (no scheduler ran over them) follow scheduler_catch_up: "one" fires once, for the
 *      latest missed tick only; "none" fires a tick only while it is at most two scheduler
 *      ticks old, so after an outage the next regular tick is the first to fire.
 *      Firing is one system transaction: stella_schedule_fire(id, T, job_id) inserts the
 *      (schedule_id, tick) row (ON CONFLICT DO NOTHING: true for exactly one caller, ever,
 *      across any number of processes and leader changes; a concurrent caller waits on
 *      the row and gets false), then the job is XADDed, then COMMIT. The job_id is
 *      "sch-<schedule id>-<T>", so if the commit is lost after the XADD and the tick fires
 *      again, both entries are one job in `jobs` (tenant, job_id).
 *   2. reads new events of `stella:events` in the consumer group "stella-scheduler" (one
 *      consumer per process; entries pending over a minute on a dead consumer are
 *      reclaimed) and for each enabled trigger of (tenant, event type) XADDs a job with
 *      job_id "trg-<trigger id>-<event_id>", then XACKs. An event of a job that the same
 *      trigger started is skipped (no trigger fires itself in a loop; longer cycles are
 *      the tenant's to avoid).
 * Jobs are submitted the orchestrator way (XADD); the supervisor records them on pickup.
 *
 * Ownership: start copies what it needs from cfg; db is borrowed and must outlive stop.
 * Thread rules: start/stop from stellad's main thread.
 */
#ifndef STELLA_QUEUE_SCHEDULER_H
#define STELLA_QUEUE_SCHEDULER_H

#include "stella/config.h"
#include "stella/db.h"
#include "stella/err.h"

#define ST_SCHEDULER_GROUP "stella-scheduler"

typedef struct st_scheduler_s st_scheduler_t;

/* Config keys: redis_url, scheduler_tick_ms, scheduler_catch_up (none|one, else
 * ST_ECONFIG), scheduler_test_seconds, max_envelope_bytes. */
int st_scheduler_start(const st_config_t *cfg, st_db_pool_t *db, st_scheduler_t **out,
                       st_error_t *err) ST_MUST_CHECK;
void st_scheduler_stop(st_scheduler_t *s);

#endif
