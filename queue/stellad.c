/* stellad.c: the supervisor's entry point: parse flags, load config, run roles.
 * The worker role runs the job supervisor (supervisor.h) with the workers of
 * workers/registry.c and the logging state sink, plus the ops listener (ops_http.h).
 * The api role runs the HTTP front (api.h) beside it, or alone until SIGINT/SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "ops_http.h"
#include "registry.h"
#include "sink.h"
#include "stella/config.h"
#include "stella/log.h"
#include "stella/version.h"
#include "supervisor.h"

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

static int run_worker(const st_config_t *cfg) {
  st_error_t err = ST_ERROR_INIT;
  st_ops_http_t *ops = NULL;
  st_state_sink_t sink;
  int rc;

  if ((rc = st_ops_http_start(&ops, st_config_str(cfg, "ops_listen"), &err))) {
    st_error("stellad: %s", st_error_text(&err));
    return 2;
  }
  st_state_sink_log(&sink);
  rc = st_supervisor_run(cfg, st_workers_all(), &sink, &err);
  if (rc)
    st_error("stellad: %s", st_error_text(&err));
  st_ops_http_stop(ops);
  return rc ? 1 : 0;
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
    st_api_t *api = NULL;
    sigset_t stop;
    int sig;

    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    /* api alone: blocked before the server threads exist, so only sigwait sees them
     * (the worker role has its own signal watchers) */
    if (api_role && !worker_role)
      pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (api_role && st_api_start(cfg, &api, &err)) {
      st_error("stellad: %s", st_error_text(&err));
      st_config_free(cfg);
      return 1;
    }
    if (worker_role)
      rc = run_worker(cfg);
    else if (api_role && sigwait(&stop, &sig) == 0)
      st_info("stellad stopping on signal %d", sig);
    else if (!api_role)
      st_warn("stellad: only the worker and api roles are implemented in this build");
    st_api_stop(api);
  }
  st_config_free(cfg);
  return rc;
}
