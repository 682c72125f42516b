/* st_test_db.h: shared set-up of the Postgres integration tests: service URLs, the
 * schema migrated to the current source, and per-process tenant ids (so parallel runs
 * never see each other's rows). */
#ifndef STELLA_TEST_DB_H
#define STELLA_TEST_DB_H

#include <unistd.h>

#include "st_test.h"
#include "stella/db.h"

/* Sets *app and *admin from STELLA_PG_URL / STELLA_PG_ADMIN_URL (skips if unset), applies
 * schemas/postgres, and writes "<prefix>A-<pid>" / "<prefix>B-<pid>" into a and b. */
static inline void st_test_db_setup(const char **app, const char **admin, const char *prefix,
                                    char *a, char *b, size_t cap) {
  char dir[4096];
  st_error_t err = ST_ERROR_INIT;
  const char *src = getenv("STELLA_SOURCE_DIR");

  *app = st_test_env("STELLA_PG_URL");
  *admin = st_test_env("STELLA_PG_ADMIN_URL");
  snprintf(dir, sizeof(dir), "%s/schemas/postgres", src ? src : "../..");
  if (st_db_migrate(*admin, dir, NULL, NULL, &err))
    fail_msg("migrate: %s", st_error_text(&err));
  snprintf(a, cap, "%sA-%d", prefix, (int)getpid());
  snprintf(b, cap, "%sB-%d", prefix, (int)getpid());
}

#endif
