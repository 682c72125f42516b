/* metrics.h: process-wide Prometheus metrics and health state.
 *
 * A small registry of counters, gauges and histograms. Each series has a fixed label
 * set of at most two labels, `type` (job type) and `outcome`; either may be NULL
 * (omitted). There is deliberately no tenant label: tenants are unbounded (DESIGN §5).
 * Names follow `stella_<area>_<what>_<unit>` ([a-z_:][a-z0-9_:]*).
 *
 * Register once, update often: st_metric_counter/gauge/histogram return the series for
 * (name, type, outcome), creating it on first use, and the same pointer afterwards; the
 * caller keeps it. A name registered with another kind or help returns NULL, as does an
 * allocation failure. Every update function accepts NULL and then does nothing, so a
 * metric can never break the code it measures. Histograms use fixed buckets in seconds
 * (5 ms .. 10 min).
 *
 * Health: liveness is "the event loop beat within max_age_ms" (st_health_beat from a
 * loop timer); readiness is a flag with a reason, set by the supervisor (Redis reachable
 * and consumer groups present, not draining).
 *
 * Ownership: series live until process exit (never freed; leak-checkers see them as
 * reachable). Thread rules: every function is safe from any thread; updates are lock-free
 * atomics, registration and rendering take one mutex.
 */
#ifndef STELLA_METRICS_H
#define STELLA_METRICS_H

#include <stdint.h>

#include "stella/buf.h"
#include "stella/err.h"

typedef struct st_metric_s st_metric_t;

st_metric_t *st_metric_counter(const char *name, const char *help, const char *type,
                               const char *outcome);
st_metric_t *st_metric_gauge(const char *name, const char *help, const char *type,
                             const char *outcome);
st_metric_t *st_metric_histogram(const char *name, const char *help, const char *type,
                                 const char *outcome);

/* Counters only go up (negative v is ignored); gauges go either way. */
void st_metric_inc(st_metric_t *m);
void st_metric_add(st_metric_t *m, double v);
/* Gauges only. */
void st_metric_set(st_metric_t *m, double v);
/* Histograms only: one observation (seconds). */
void st_metric_observe(st_metric_t *m, double v);
/* Current value of a counter or gauge, or the count of a histogram (tests, health). */
double st_metric_value(const st_metric_t *m);

/* Append every series in Prometheus text exposition format 0.0.4. ST_ENOMEM/ST_ETOOBIG. */
int st_metrics_render(st_buf_t *out) ST_MUST_CHECK;

void st_health_beat(void);
/* 1 when st_health_beat was called within max_age_ms. */
int st_health_live(uint64_t max_age_ms);
/* reason: copied; shown by /readyz when not ready. */
void st_health_set_ready(int ready, const char *reason);
/* 1 if ready; the current reason is appended to reason_out (may be NULL). */
int st_health_ready(st_buf_t *reason_out);

#endif
