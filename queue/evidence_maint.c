/* evidence_maint.c: the periodic evidence maintenance thread (evidence_maint.h). */
#include "evidence_maint.h"

#include <stdint.h>

#include "bgthread.h"
#include "stella/evidence.h"
#include "stella/log.h"
#include "stella/mem.h"

struct st_evidence_maint_s {
  st__bg_t bg;
  st_evidence_t *ev;
  char *maint_url; /* NULL: checkpoints only */
  uint64_t interval_ms;
};

static void run_once(st_evidence_maint_t *m) {
  st_error_t err = ST_ERROR_INIT, err2 = ST_ERROR_INIT;
  st_evidence_prune_stats_t st = {0, 0, 0};
  long long made = 0;

  if (m->maint_url) {
    if (st_evidence_prune(m->ev, m->maint_url, &st, &err))
      st_error("evidence maintenance: prune: %s", st_error_text(&err));
    else if (st.busy)
      st_info("evidence maintenance: another pruner is running");
    else
      st_info("evidence maintenance: pruned %lld, skipped %lld (held or retained in the store)",
              st.pruned, st.skipped);
  }
  if (st_evidence_checkpoint_all(m->ev, &made, &err2))
    st_error("evidence maintenance: checkpoints: %s", st_error_text(&err2));
  else if (made)
    st_info("evidence maintenance: %lld custody checkpoint(s) signed", made);
}

static void *thread_main(void *arg) {
  st_evidence_maint_t *m = arg;
  do
    run_once(m);
  while (!st__bg_wait(&m->bg, m->interval_ms));
  return NULL;
}

int st_evidence_maint_start(const st_config_t *cfg, st_evidence_maint_t **out,
                            st_error_t *err) {
  st_evidence_maint_t *m = NULL;
  const char *url = st_config_str(cfg, "pg_maint_url");
  int rc;

  *out = NULL;
  if (st_config_int(cfg, "evidence_maint_interval_s") <= 0)
    return 0;
  if (!st_config_str(cfg, "signing_key")) {
    st_warn("evidence maintenance: no signing_key: no pruning, no custody checkpoints");
    return 0;
  }
  if (!url)
    st_warn("evidence maintenance: no pg_maint_url: custody checkpoints only, no pruning");
  if (!(m = st_calloc(1, sizeof(*m))) || (url && !(m->maint_url = st_strdup(url)))) {
    rc = st_fail(err, ST_ENOMEM, "evidence maintenance: out of memory");
    goto fail;
  }
  m->interval_ms = (uint64_t)st_config_int(cfg, "evidence_maint_interval_s") * 1000;
  if ((rc = st_evidence_open(&m->ev, cfg, err)) ||
      (rc = st__bg_start(&m->bg, thread_main, m, err)))
    goto fail;
  *out = m;
  return 0;
fail:
  st_evidence_maint_stop(m);
  return rc;
}

void st_evidence_maint_stop(st_evidence_maint_t *m) {
  if (!m)
    return;
  st__bg_stop(&m->bg);
  st_evidence_free(m->ev);
  st_free(m->maint_url);
  st_free(m);
}
