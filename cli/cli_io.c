/* cli_io.c: whole-file read and write for commands, with the CLI's error reporting
 * (a message on stderr and ST_EXIT_USAGE, as an I/O failure). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int st_cli_read_file(const char *path, size_t max, st_buf_t *out) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  char chunk[65536];
  size_t n;
  int rc = ST_EXIT_OK;

  st_buf_init(out, max);
  if (!f)
    return st_cli_usage("%s: %s", path, strerror(errno));
  while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    if (st_buf_add(out, chunk, n))
      rc = st_cli_usage("%s: larger than %zu bytes", path, max);
  if (!rc && ferror(f))
    rc = st_cli_usage("%s: read error", path);
  if (f != stdin)
    fclose(f);
  return rc;
}

int st_cli_write_file(const char *path, const void *data, size_t len) {
  FILE *f = path ? fopen(path, "wb") : stdout;
  int ok;

  if (!f)
    return st_cli_usage("%s: %s", path, strerror(errno));
  ok = fwrite(data, 1, len, f) == len;
  ok = (f == stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
  return ok ? ST_EXIT_OK : st_cli_usage("%s: write error", path ? path : "stdout");
}
