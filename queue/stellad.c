/* stellad.c: the supervisor's entry point: parse flags, load config, run roles.
 *
 * worker     the job supervisor (supervisor.h) with the workers of workers/registry.c.
 *            Its state sink is Postgres (sink_pg.c) when pg_url is set, else the logging
 *            sink: Postgres stays optional for the worker role so a Redis-only process
 *            (development, the transport's own tests) still runs, but without pg_url job
 *            state is only logged, and a warning says so.
 * scheduler  cron schedules and event triggers (scheduler.h), and the Evidence Locker's
 *            pruner and custody checkpoints (evidence_maint.h); needs pg_url.
 * With pg_url, either role also runs the outbox relay (outbox_relay.h; config
 * outbox_relay), of which one process at a time is the leader; the worker role with pg_url
 * also runs the timeline ingester (timeline_ingest.h; config timeline_ingest) and, with
 * nats_url, the JetStream one (timeline_nats.h). The ops listener (ops_http.h) runs for
 * both. api        the HTTP front (api.h), beside the others or alone.
 * Without the worker role (whose loop handles SIGTERM and SIGINT) the main thread blocks
 * those signals before any thread starts and waits for them with sigwait. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "evidence_maint.h"
#include "ops_http.h"
#include "outbox_relay.h"
#include "registry.h"
#include "scheduler.h"
#include "sink.h"
#include "stella/config.h"
#include "stella/db.h"
#include "stella/log.h"
#include "stella/metrics.h"
#include "stella/version.h"
#include "supervisor.h"
#include "timeline/timeline_ingest.h"
#include "timeline/timeline_nats.h"

/* Whether the comma-separated list has `role`. */
static int has_role(const char *roles, const char *role) {
  size_t n = strlen(role);
  for (const char *p = roles; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, role, n))
      return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

/* The timeline ingesters: Redis always, NATS JetStream when nats_url is set. */
static int timeline_start(const st_config_t *cfg, st_tl_ingester_t **tl,
                          st_tl_nats_ingester_t **tln, st_error_t *err) {
  st_tl_ingest_opts_t ro = {.pg_url = st_config_str(cfg, "pg_url"),
                            .redis_url = st_config_str(cfg, "redis_url"),
                            .claim_idle_ms = st_config_int(cfg, "timeline_claim_idle_ms")};
  st_nats_source_opts_t no = {.url = st_config_str(cfg, "nats_url"),
                              .stream = st_config_str(cfg, "nats_stream"),
                              .subject = st_config_str(cfg, "nats_subject"),
                              .durable = st_config_str(cfg, "nats_durable"),
                              .dlq_subject = st_config_str(cfg, "nats_dlq_subject"),
                              .ack_wait_ms = st_config_int(cfg, "nats_ack_wait_ms"),
                              .max_ack_pending = st_config_int(cfg, "nats_max_ack_pending"),
                              .create_stream = 1};
  int rc = st_tl_ingester_start(&ro, tl, err);
  if (!rc && no.url)
    rc = st_tl_nats_ingester_start(ro.pg_url, &no, tln, err);
  return rc;
}

/* The worker and/or scheduler roles; without the worker, until SIGTERM/SIGINT (which the
 * caller has blocked). */
static int run_roles(const st_config_t *cfg, int worker, int sched) {
  st_error_t err = ST_ERROR_INIT;
  st_ops_http_t *ops = NULL;
  st_db_pool_t *db = NULL;
  st_outbox_relay_t *relay = NULL;
  st_tl_ingester_t *tl = NULL;
  st_tl_nats_ingester_t *tln = NULL;
  st_scheduler_t *sc = NULL;
  st_evidence_maint_t *em = NULL;
  st_state_sink_t sink;
  const char *pg = st_config_str(cfg, "pg_url");
  sigset_t sigs;
  int rc = 2, sig;

  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  if (sched && !pg) {
    st_error("stellad: the scheduler role needs pg_url");
    return 2;
  }
  if (st_ops_http_start(&ops, st_config_str(cfg, "ops_listen"), &err) ||
      (pg && st_db_pool_new(pg, (int)st_config_int(cfg, "pg_pool_size"), &db, &err)) ||
      (pg && st_config_bool(cfg, "outbox_relay") &&
       st_outbox_relay_start(pg, st_config_str(cfg, "redis_url"),
                             (uint64_t)st_config_int(cfg, "outbox_poll_ms"), &relay, &err)) ||
      (worker && pg && st_config_bool(cfg, "timeline_ingest") &&
       timeline_start(cfg, &tl, &tln, &err)) ||
      (sched && st_scheduler_start(cfg, db, &sc, &err)) ||
      (sched && st_evidence_maint_start(cfg, &em, &err))) {
    st_error("stellad: %s", st_error_text(&err));
    goto done;
  }
  if (worker) {
    if (db) {
      st_state_sink_pg(&sink, db);
    } else {
      st_warn("stellad: no pg_url: job state is only logged (not durable)");
      st_state_sink_log(&sink);
    }
    rc = st_supervisor_run(cfg, st_workers_all(), &sink, db, &err) ? 1 : 0;
    if (rc)
      st_error("stellad: %s", st_error_text(&err));
  } else {
    st_health_set_ready(1, "ok");
    if (sigwait(&sigs, &sig) == 0)
      st_info("stellad: signal %d: stopping", sig);
    rc = 0;
  }
done:
  st_evidence_maint_stop(em);
  st_scheduler_stop(sc);
  if (tln) {
    st_tl_nats_ingester_stop(tln);
    st_nats_shutdown();
  }
  st_tl_ingester_stop(tl);
  st_outbox_relay_stop(relay);
  st_db_pool_free(db);
  st_ops_http_stop(ops);
  return rc;
}

static int usage(void) {
  fprintf(stderr, "usage: stellad [--config FILE] [--roles api,worker,scheduler] [--version]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *config_path = NULL, *roles = NULL;
  st_config_t *cfg = NULL;
  st_error_t err = ST_ERROR_INIT;
  int rc;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("stellad %s (commit %s)\n", st_version(), st_git_commit());
      return 0;
    } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (strcmp(argv[i], "--roles") == 0 && i + 1 < argc) {
      roles = argv[++i];
    } else {
      return usage();
    }
  }
  if ((rc = st_config_load(&cfg, config_path, &err)) ||
      (roles && (rc = st_config_set(cfg, "roles", roles, &err)))) {
    fprintf(stderr, "stellad: %s\n", st_error_text(&err));
    st_config_free(cfg);
    return 2;
  }
  {
    st_log_level level;
    if (st_log_level_parse(st_config_str(cfg, "log_level"), &level) == 0)
      st_log_set_level(level);
  }
  st_info("stellad %s starting with roles %s", st_version(), st_config_str(cfg, "roles"));
  rc = 0;
  {
    int api_role = has_role(st_config_str(cfg, "roles"), "api");
    int worker_role = has_role(st_config_str(cfg, "roles"), "worker");
    int sched_role = has_role(st_config_str(cfg, "roles"), "scheduler");
    st_api_t *api = NULL;
    sigset_t stop;
    int sig;

    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    /* no worker role: blocked before any thread exists, so only sigwait sees them (the
     * worker role has its own signal watchers) */
    if (!worker_role)
      pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (api_role && st_api_start(cfg, &api, &err)) {
      st_error("stellad: %s", st_error_text(&err));
      st_config_free(cfg);
      return 1;
    }
    if (worker_role || sched_role)
      rc = run_roles(cfg, worker_role, sched_role);
    else if (api_role && sigwait(&stop, &sig) == 0)
      st_info("stellad stopping on signal %d", sig);
    else if (!api_role)
      st_warn("stellad: no api, worker or scheduler role");
    st_api_stop(api);
  }
  st_config_free(cfg);
  return rc;
}
