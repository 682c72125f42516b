/* supervisor.h: the worker role of stellad.
 *
 * One libuv loop that never blocks (it moves Redis messages and timers only) and a
 * private pool of worker threads (pthreads + a FIFO; completions come back through
 * uv_async_send; the libuv threadpool is left to fs and DNS). Per job: decode the
 * envelope, validate the payload, run the worker, classify the outcome, record the
 * transition in the state sink, then settle the stream entry (see transport.h and
 * retry.h). Each type runs at most its max_concurrency jobs; the transport never claims
 * more than the free slots. A job past job_timeout_ms gets its cancel flag set and, when
 * it returns, is classified as a timeout. In-flight entries are re-leased every lease/3.
 *
 * SIGTERM/SIGINT (uv_signal_t): stop claiming, wait for in-flight jobs and their settle
 * operations up to drain_timeout_ms, then cancel what still runs (released: not
 * acknowledged, so another process reclaims it), and return.
 *
 * Ownership: workers and the sink are borrowed for the call (the sink's free is called
 * at the end). Thread rules: call from the main thread; it returns after shutdown.
 */
#ifndef STELLA_QUEUE_SUPERVISOR_H
#define STELLA_QUEUE_SUPERVISOR_H

#include "sink.h"
#include "stella/config.h"
#include "stella/err.h"
#include "worker.h"

/* Run until a termination signal has been handled. workers: NULL-terminated. db (may be
 * NULL) is borrowed: handed to workers in st_job_ctx_t and used by the cancel poller, a
 * thread of its own that every job_cancel_poll_ms reads the cancel requests of the
 * in-flight jobs (off the loop) and sets their cancel flag (ST_CANCEL_USER). Config keys:
 * redis_url, worker_threads, job_lease_ms, job_max_attempts, job_timeout_ms,
 * drain_timeout_ms, max_envelope_bytes, job_backoff_base_ms, job_backoff_cap_ms,
 * job_max_deliveries (crash-loop guard: a reclaimed entry delivered more often is
 * dead-lettered, "poison: crashed N times", without running), job_cancel_poll_ms. */
int st_supervisor_run(const st_config_t *cfg, const st_worker_t *const *workers,
                      st_state_sink_t *sink, st_db_pool_t *db, st_error_t *err) ST_MUST_CHECK;

#endif
