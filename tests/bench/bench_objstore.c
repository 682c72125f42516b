/* bench_objstore.c: one filesystem object store put or get, timed, with peak RSS.
 *
 *   bench_objstore put ROOT FILE SHA256   stream FILE in (digest checked, fsync, publish)
 *   bench_objstore get ROOT SHA256 OUT    stream the object out to OUT (fsync'd)
 *
 * Prints one line: "<op> <bytes> <seconds> <peak RSS KiB>". tests/bench/objstore.sh
 * runs it beside cp of the same file and prints the ratios. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "stella/objstore.h"

static int write_out(void *ctx, const void *buf, size_t len) {
  int fd = *(int *)ctx;
  const char *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n <= 0)
      return ST_EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  st_objstore_t *s = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_buf_t key = ST_BUF_INIT;
  st_objstore_stat_t st;
  struct rusage ru;
  double t0;
  int rc, fd = -1;

  if (argc != 5 || (strcmp(argv[1], "put") && strcmp(argv[1], "get"))) {
    fprintf(stderr, "usage: bench_objstore put ROOT FILE SHA256 | get ROOT SHA256 OUT\n");
    return 2;
  }
  if ((rc = st_objstore_fs_new(&s, argv[2], &err)) ||
      (rc = st_objstore_key(&key, "bench", argv[1][0] == 'p' ? argv[4] : argv[3], &err)))
    goto done;
  t0 = now();
  if (argv[1][0] == 'p') {
    rc = st_objstore_put_file(s, "bench", key.data, argv[4], argv[3], NULL, &err);
  } else {
    fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = fd < 0 ? st_fail(&err, ST_EIO, "%s: cannot create", argv[4])
                : st_objstore_get(s, "bench", key.data, 0, ST_OBJSTORE_TO_END, write_out, &fd,
                                  &err);
    if (!rc && fsync(fd))
      rc = st_fail(&err, ST_EIO, "%s: fsync", argv[4]);
  }
  if (!rc)
    rc = st_objstore_stat(s, "bench", key.data, &st, &err);
  if (!rc) {
    getrusage(RUSAGE_SELF, &ru);
    printf("%s %llu %.3f %ld\n", argv[1], (unsigned long long)st.size, now() - t0, ru.ru_maxrss);
  }
done:
  if (fd >= 0)
    close(fd);
  if (rc)
    fprintf(stderr, "bench_objstore: %s\n", st_error_text(&err));
  st_buf_release(&key);
  st_objstore_free(s);
  return rc ? 1 : 0;
}
