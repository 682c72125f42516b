/* stellad.c: the supervisor's entry point: parse flags, load config, run roles. */
#include <stdio.h>
#include <string.h>

#include "stella/config.h"
#include "stella/log.h"
#include "stella/version.h"

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
  st_info("stellad %s starting with roles %s", st_version(), st_config_str(cfg, "roles"));
  st_config_free(cfg);
  return 0;
}
