/* cmd_migrate.c: `stella migrate [--dir DIR] [--status] [--config FILE]`.
 *
 * Applies the Postgres migrations as the admin role (config key pg_admin_url, env
 * STELLA_PG_ADMIN_URL), or with --status lists each file as applied/pending/CHANGED.
 * The directory defaults to $STELLA_SOURCE_DIR/schemas/postgres, else the installed
 * share/stella/schemas/postgres next to the binary's prefix, else ./schemas/postgres.
 */
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "stella/buf.h"
#include "stella/config.h"
#include "stella/db.h"

static int is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Fill out with the default migrations directory; ST_ENOMEM only. */
static int default_dir(st_buf_t *out) {
  const char *src = getenv("STELLA_SOURCE_DIR");
  char exe[PATH_MAX];
  ssize_t n;

  if (src && *src) {
    if (st_buf_addf(out, "%s/schemas/postgres", src))
      return ST_ENOMEM;
    if (is_dir(out->data))
      return 0;
    st_buf_reset(out);
  }
  /* <prefix>/bin/stella -> <prefix>/share/stella/schemas/postgres */
  n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    char *slash;
    exe[n] = '\0';
    for (int up = 0; up < 2 && (slash = strrchr(exe, '/')); up++)
      *slash = '\0';
    if (st_buf_addf(out, "%s/share/stella/schemas/postgres", exe))
      return ST_ENOMEM;
    if (is_dir(out->data))
      return 0;
    st_buf_reset(out);
  }
  return st_buf_adds(out, "schemas/postgres");
}

static void print_applied(const st_db_migration_t *m, void *arg) {
  int *count = arg;
  (*count)++;
  printf("applied  %s  sha256:%s\n", m->file, m->checksum);
}

static void print_status(const st_db_migration_t *m, void *arg) {
  int *changed = arg;
  const char *state = !m->applied_at ? "pending" : m->changed ? "CHANGED" : "applied";

  *changed += m->changed;
  printf("%-8s %s  sha256:%.16s  %s\n", state, m->file, m->checksum,
         m->applied_at ? m->applied_at : "");
}

int st_cmd_migrate(int argc, char **argv) {
  const char *dir = NULL, *config_path = NULL, *url;
  st_buf_t dirbuf = ST_BUF_INIT;
  st_config_t *cfg = NULL;
  st_error_t err = ST_ERROR_INIT;
  int status = 0, count = 0, rc = ST_EXIT_OK;

  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config_path = argv[++i];
    else if (!strcmp(argv[i], "--status"))
      status = 1;
    else
      return st_cli_usage("usage: stella migrate [--dir DIR] [--status] [--config FILE]");
  }
  if (st_config_load(&cfg, config_path, &err)) {
    rc = st_cli_usage("%s", st_error_text(&err));
    goto done;
  }
  url = st_config_str(cfg, "pg_admin_url");
  if (!url || !*url) {
    rc = st_cli_usage("migrate: pg_admin_url is not set (config file or STELLA_PG_ADMIN_URL)");
    goto done;
  }
  if (!dir) {
    if (default_dir(&dirbuf)) {
      rc = st_cli_usage("migrate: out of memory");
      goto done;
    }
    dir = dirbuf.data;
  }
  if (status) {
    if (st_db_migrate_status(url, dir, print_status, &count, &err) == 0) {
      if (count)
        fprintf(stderr, "stella: %d applied migration(s) changed since they were applied\n",
                count);
      rc = count ? ST_EXIT_FAIL : ST_EXIT_OK;
      goto done;
    }
  } else if (st_db_migrate(url, dir, print_applied, &count, &err) == 0) {
    printf("database is up to date (%d migration(s) applied now) from %s\n", count, dir);
    goto done;
  }
  fprintf(stderr, "stella: migrate: %s\n", st_error_text(&err));
  rc = (err.code == ST_EIO || err.code == ST_EINVAL) ? ST_EXIT_USAGE : ST_EXIT_FAIL;
done:
  st_config_free(cfg);
  st_buf_release(&dirbuf);
  return rc;
}
