/* bench_tgz.c: pack a directory tree into a .tgz, for tests/bench/bench_tgz.sh.
 *
 *   bench_tgz stella <src-dir> <out.tgz> <level>      st_tgz writer (zlib, ours)
 *   bench_tgz libarchive <src-dir> <out.tgz> <level>  libarchive's own gzip filter
 *
 * Both walk the tree the same way, write the same sorted pax-restricted entries and
 * stream file data in 64 KiB chunks; only the gzip stage differs, which is what the
 * writer's choice of zlib-direct rests on. Prints nothing; exit 0 on success.
 */
#define _GNU_SOURCE /* nftw flags */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stella/mem.h"
#include "stella/tgz.h"

static char **g_paths;
static size_t g_n, g_cap, g_root_len;

static int visit(const char *fpath, const struct stat *sb, int flag, struct FTW *ftw) {
  if (flag != FTW_F || !S_ISREG(sb->st_mode))
    return 0;
  if (g_n == g_cap) {
    g_cap = g_cap ? g_cap * 2 : 1024;
    g_paths = st_realloc(g_paths, g_cap * sizeof(*g_paths));
    if (!g_paths)
      return 1;
  }
  return (g_paths[g_n++] = st_strdup(fpath)) == NULL;
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int pack_stella(const char *out, int level) {
  st_tgz_writer_t *w = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_tgz_options_t opt = {1700000000, level};
  size_t i;
  int rc;

  if ((rc = st_tgz_writer_new(out, &opt, &w, &err)) < 0)
    goto done;
  for (i = 0; i < g_n; i++)
    if ((rc = st_tgz_add_file(w, g_paths[i] + g_root_len, g_paths[i], &err)) < 0)
      goto done;
  rc = st_tgz_writer_finish(w, &err);
done:
  if (rc < 0)
    fprintf(stderr, "bench_tgz: %s\n", err.msg);
  st_tgz_writer_free(w);
  return rc < 0;
}

/* The same entries through libarchive's gzip filter. Parent directories are left out:
 * a handful of headers, irrelevant to the timing. */
static int pack_libarchive(const char *out, int level) {
  struct archive *a = archive_write_new();
  struct archive_entry *ae = archive_entry_new();
  char opt[64], *buf = st_malloc(65536);
  size_t i;
  int ok = 1;

  snprintf(opt, sizeof(opt), "gzip:!timestamp,gzip:compression-level=%d", level);
  if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
      archive_write_set_options(a, opt) != ARCHIVE_OK ||
      archive_write_open_filename(a, out) != ARCHIVE_OK)
    ok = 0;
  for (i = 0; ok && i < g_n; i++) {
    struct stat st;
    int fd = open(g_paths[i], O_RDONLY);
    ssize_t k;
    if (fd < 0 || fstat(fd, &st) < 0) {
      ok = 0;
      break;
    }
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, g_paths[i] + g_root_len);
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, st.st_size);
    archive_entry_set_mtime(ae, 1700000000, 0);
    ok = archive_write_header(a, ae) == ARCHIVE_OK;
    while (ok && (k = read(fd, buf, 65536)) > 0)
      ok = archive_write_data(a, buf, (size_t)k) == k;
    close(fd);
  }
  if (archive_write_close(a) != ARCHIVE_OK)
    ok = 0;
  if (!ok)
    fprintf(stderr, "bench_tgz: %s\n", archive_error_string(a));
  archive_write_free(a);
  archive_entry_free(ae);
  st_free(buf);
  return !ok;
}

int main(int argc, char **argv) {
  int rc, level;
  size_t i;

  if (argc != 5 || (strcmp(argv[1], "stella") && strcmp(argv[1], "libarchive"))) {
    fprintf(stderr, "usage: bench_tgz stella|libarchive <src-dir> <out.tgz> <level>\n");
    return 2;
  }
  level = atoi(argv[4]);
  g_root_len = strlen(argv[2]) + 1;
  if (nftw(argv[2], visit, 64, FTW_PHYS) != 0) {
    fprintf(stderr, "bench_tgz: cannot walk %s\n", argv[2]);
    return 2;
  }
  qsort(g_paths, g_n, sizeof(*g_paths), cmp);
  rc = strcmp(argv[1], "stella") == 0 ? pack_stella(argv[3], level)
                                      : pack_libarchive(argv[3], level);
  for (i = 0; i < g_n; i++)
    st_free(g_paths[i]);
  st_free(g_paths);
  return rc;
}
