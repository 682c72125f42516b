/* evidence_maint.h: the scheduler role's Evidence Locker maintenance: every
 * evidence_maint_interval_s (first run at start) the retention pruner as stella_maint
 * (pg_maint_url; st_evidence_prune: dispositions, custody, audited deletes, one pruner at
 * a time across processes) and the periodic custody checkpoints
 * (st_evidence_checkpoint_all).
 *
 * One dedicated thread (bgthread.h) with its own locker opened from cfg (pool, store,
 * signer). Without signing_key there is nothing to sign dispositions or checkpoints
 * with: start then logs why and starts nothing (*out = NULL); without pg_maint_url only
 * the checkpoints run. Failures of a run are logged and retried at the next interval.
 *
 * Ownership: start copies what it needs; stop joins and frees (NULL is a no-op).
 * Thread rules: start/stop from stellad's main thread.
 */
#ifndef STELLA_QUEUE_EVIDENCE_MAINT_H
#define STELLA_QUEUE_EVIDENCE_MAINT_H

#include "stella/config.h"
#include "stella/err.h"

typedef struct st_evidence_maint_s st_evidence_maint_t;

int st_evidence_maint_start(const st_config_t *cfg, st_evidence_maint_t **out,
                            st_error_t *err) ST_MUST_CHECK;
void st_evidence_maint_stop(st_evidence_maint_t *m);

#endif
