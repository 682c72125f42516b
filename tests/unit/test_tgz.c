/* test_tgz.c: the deterministic .tgz writer and the safe reader.
 *
 * Writer: byte-identical output across insertion order, source mtimes/owners and
 * processes; round trip; long and non-ASCII paths; empty files and directories; path
 * rules; changing sources; atomic publish; GNU tar and gzip read what we write.
 * Reader: hostile archives crafted here byte by byte (ustar headers + zlib), never
 * committed: traversal, absolute paths, links, devices, FIFOs, duplicates, clashes,
 * non-normalised paths, gzip bombs (10 GiB of zeros, a 10 GiB entry), 1M entries,
 * truncation, corruption, garbage; the bombs and 1M entries run in a child whose peak
 * RSS growth is asserted bounded. Extraction never leaves the target directory.
 */
#include "st_test.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <openssl/evp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "stella/mem.h"
#include "stella/tgz.h"

#define MTIME 1700000000

static char g_dir[64];

static int setup(void **state) {
  strcpy(g_dir, "/tmp/stella-tgz-XXXXXX");
  assert_non_null(mkdtemp(g_dir));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

static char *tmp(const char *name) {
  static char buf[4][512];
  static int i;
  char *p = buf[i++ & 3];
  snprintf(p, 512, "%s/%s", g_dir, name);
  return p;
}

static void put_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *p;
  long n;
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc((size_t)n + 1);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static void sha256_file(const char *path, unsigned char out[32]) {
  size_t n;
  unsigned char *p = slurp(path, &n);
  unsigned int olen = 32;
  assert_int_equal(EVP_Digest(p, n, out, &olen, EVP_sha256(), NULL), 1);
  free(p);
}

/* ---- writer ---- */

typedef struct {
  const char *data;
  size_t len, pos, extra; /* extra: bytes beyond len to claim */
} cbsrc_t;

static int cb_read(void *ud, void *buf, size_t cap, size_t *got, st_error_t *err) {
  cbsrc_t *s = ud;
  size_t left = s->len + s->extra - s->pos, n = left < cap ? left : cap;
  if (n > 7)
    n = 7; /* small, odd chunks */
  memset(buf, 'x', n);
  if (s->pos < s->len)
    memcpy(buf, s->data + s->pos, n < s->len - s->pos ? n : s->len - s->pos);
  s->pos += n;
  *got = n;
  return 0;
}

static char g_long[400];

/* Write the standard test set in the given order into out. */
static void write_set(const char *out, int reverse, int level) {
  st_tgz_writer_t *w;
  st_error_t err = ST_ERROR_INIT;
  st_tgz_options_t opt = {MTIME, level};
  cbsrc_t cb = {"from a callback\n", 16, 0, 0};
  int i;

  assert_int_equal(st_tgz_writer_new(out, &opt, &w, &err), 0);
  for (i = 0; i < 7; i++) {
    switch (reverse ? 6 - i : i) {
    case 0:
      assert_int_equal(st_tgz_add_mem(w, "manifest.json", "{}\n", 3, &err), 0);
      break;
    case 1:
      assert_int_equal(st_tgz_add_file(w, "payload/big.bin", tmp("big.bin"), &err), 0);
      break;
    case 2:
      assert_int_equal(st_tgz_add_mem(w, "payload/empty", "", 0, &err), 0);
      break;
    case 3:
      assert_int_equal(st_tgz_add_cb(w, "payload/cb.txt", 16, cb_read, &cb, &err), 0);
      break;
    case 4:
      assert_int_equal(st_tgz_add_dir(w, "keys", &err), 0);
      break;
    case 5:
      assert_int_equal(st_tgz_add_mem(w, g_long, "long", 4, &err), 0);
      break;
    case 6:
      assert_int_equal(st_tgz_add_mem(w, "payload/d\xc3\xa9j\xc3\xa0.txt", "utf8", 4, &err),
                       0);
      break;
    }
  }
  assert_int_equal(st_tgz_writer_finish(w, &err), 0);
  st_tgz_writer_free(w);
}

static void make_sources(void) {
  size_t i, n = 300000;
  char *big = malloc(n);
  for (i = 0; i < n; i++)
    big[i] = (char)(i * 7 + i / 1000);
  put_file(tmp("big.bin"), big, n);
  free(big);
  memset(g_long, 0, sizeof(g_long));
  strcpy(g_long, "payload/");
  for (i = strlen(g_long); i < 330; i++)
    g_long[i] = (i % 50 == 0) ? '/' : (char)('a' + i % 26);
  strcat(g_long, "/end.txt");
}

static void deterministic(void **state) {
  unsigned char h1[32], h2[32], h3[32];
  struct timespec ts[2] = {{12345, 0}, {12345, 0}};
  pid_t pid;
  int status;

  make_sources();
  write_set(tmp("a.tgz"), 0, 0);
  /* Different source mtime and owner, reverse insertion order. */
  assert_int_equal(utimensat(AT_FDCWD, tmp("big.bin"), ts, 0), 0);
  assert_int_equal(chown(tmp("big.bin"), 4321, 4321), 0);
  write_set(tmp("b.tgz"), 1, 0);
  sha256_file(tmp("a.tgz"), h1);
  sha256_file(tmp("b.tgz"), h2);
  assert_memory_equal(h1, h2, 32);
  /* Another process (libarchive's pax header names must not carry a pid). */
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    write_set(tmp("c.tgz"), 0, 0);
    _exit(0);
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_int_equal(status, 0);
  sha256_file(tmp("c.tgz"), h3);
  assert_memory_equal(h1, h3, 32);
  /* The level is part of the bytes. */
  write_set(tmp("d.tgz"), 0, ST_TGZ_LEVEL_FAST);
  sha256_file(tmp("d.tgz"), h3);
  assert_memory_not_equal(h1, h3, 32);
}

static void gzip_header_and_outside_tools(void **state) {
  size_t n;
  unsigned char *p;
  char cmd[1024];

  make_sources();
  write_set(tmp("a.tgz"), 0, 0);
  p = slurp(tmp("a.tgz"), &n);
  assert_true(n > 18);
  /* magic, deflate, no flags (no name), MTIME 0, XFL, OS 255 */
  assert_int_equal(p[0], 0x1f);
  assert_int_equal(p[1], 0x8b);
  assert_int_equal(p[2], 8);
  assert_int_equal(p[3], 0);
  assert_int_equal(p[4] | p[5] | p[6] | p[7], 0);
  assert_int_equal(p[9], 255);
  free(p);
  snprintf(cmd, sizeof(cmd), "cd '%s' && gzip -t a.tgz && mkdir x && tar -xzf a.tgz -C x && "
           "cmp big.bin x/payload/big.bin && test \"$(cat x/payload/cb.txt)\" = "
           "'from a callback' && test -d x/keys && test -f 'x/%s'", g_dir, g_long);
  assert_int_equal(system(cmd), 0);
  /* GNU tar's listing: numeric owner 0/0, fixed modes and mtime, sorted, dirs first. */
  snprintf(cmd, sizeof(cmd),
           "tar --numeric-owner --full-time -tvzf '%s' | awk '{print $1, $2, $4, $5, $6}' "
           "| sed 's/+00:00//' > '%s' && tar -tzf '%s' > '%s'",
           tmp("a.tgz"), tmp("list"), tmp("a.tgz"), tmp("names"));
  assert_int_equal(system(cmd), 0);
  p = slurp(tmp("names"), &n);
  p[n] = 0;
  assert_non_null(strstr((char *)p, "keys/\nmanifest.json\npayload/\npayload/big.bin\n"
                                    "payload/cb.txt\npayload/d\xc3\xa9j\xc3\xa0.txt\n"));
  free(p);
  p = slurp(tmp("list"), &n);
  p[n] = 0;
  assert_non_null(strstr((char *)p, "drwxr-xr-x 0/0 2023-11-14 22:13:20 keys/\n"));
  assert_non_null(strstr((char *)p, "-rw-r--r-- 0/0 2023-11-14 22:13:20 manifest.json\n"));
  free(p);
}

static void header_fields(void **state) {
  struct archive *a = archive_read_new();
  struct archive_entry *ae;
  int n = 0;

  make_sources();
  write_set(tmp("a.tgz"), 0, 0);
  archive_read_support_format_tar(a);
  archive_read_support_filter_gzip(a);
  assert_int_equal(archive_read_open_filename(a, tmp("a.tgz"), 10240), ARCHIVE_OK);
  /* a UTF-8 locale, else libarchive cannot show the non-ASCII name (WARN) */
  locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0), old = uselocale(utf8);
  while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
    int dir = archive_entry_filetype(ae) == AE_IFDIR;
    assert_int_equal(archive_entry_uid(ae), 0);
    assert_int_equal(archive_entry_gid(ae), 0);
    assert_true(!archive_entry_uname(ae) || !*archive_entry_uname(ae));
    assert_true(!archive_entry_gname(ae) || !*archive_entry_gname(ae));
    assert_int_equal(archive_entry_mtime(ae), MTIME);
    assert_false(archive_entry_atime_is_set(ae));
    assert_false(archive_entry_ctime_is_set(ae));
    assert_int_equal(archive_entry_perm(ae), dir ? 0755 : 0644);
    n++;
  }
  archive_read_free(a);
  uselocale(old);
  freelocale(utf8);
  /* 6 files + keys, payload, and the 7 directories of the long path */
  assert_int_equal(n, 6 + 2 + 7);
}

typedef struct {
  char names[32][400];
  size_t sizes[32];
  int types[32];
  char content[32][64];
  int n;
} listing_t;

static int collect(void *ud, const void *data, size_t len, st_error_t *err) {
  listing_t *l = ud;
  size_t have = strlen(l->content[l->n]);
  if (have + len < sizeof(l->content[0]))
    memcpy(l->content[l->n] + have, data, len);
  return 0;
}

static int read_all(const char *path, const st_tgz_limits_t *lim, listing_t *l,
                    st_error_t *err) {
  st_tgz_reader_t *r;
  const st_tgz_entry_t *e;
  int rc;
  memset(l, 0, sizeof(*l));
  if ((rc = st_tgz_reader_open(path, lim, &r, err)) < 0)
    return rc;
  while ((rc = st_tgz_reader_next(r, &e, err)) == 1) {
    assert_true(l->n < 32);
    snprintf(l->names[l->n], sizeof(l->names[0]), "%s", e->path);
    l->sizes[l->n] = e->size;
    l->types[l->n] = e->type;
    if (e->type == ST_TGZ_FILE && (rc = st_tgz_reader_data(r, collect, l, err)) < 0)
      break;
    l->n++;
  }
  st_tgz_reader_free(r);
  return rc;
}

static void round_trip(void **state) {
  listing_t l;
  st_error_t err = ST_ERROR_INIT;
  int i;

  make_sources();
  write_set(tmp("a.tgz"), 1, 0);
  assert_int_equal(read_all(tmp("a.tgz"), NULL, &l, &err), 0);
  assert_int_equal(l.n, 15);
  assert_string_equal(l.names[0], "keys");
  assert_int_equal(l.types[0], ST_TGZ_DIR);
  assert_string_equal(l.names[1], "manifest.json");
  assert_string_equal(l.content[1], "{}\n");
  assert_string_equal(l.names[2], "payload");
  assert_string_equal(l.names[3], "payload/big.bin");
  assert_int_equal(l.sizes[3], 300000);
  assert_string_equal(l.names[4], "payload/cb.txt");
  assert_string_equal(l.content[4], "from a callback\n");
  assert_string_equal(l.names[5], "payload/d\xc3\xa9j\xc3\xa0.txt");
  assert_string_equal(l.names[6], "payload/empty");
  assert_int_equal(l.sizes[6], 0);
  assert_string_equal(l.names[14], g_long);
  assert_string_equal(l.content[14], "long");
  for (i = 1; i < l.n; i++)
    assert_true(strcmp(l.names[i - 1], l.names[i]) < 0);
}

static void write_path_rules(void **state) {
  static const char *bad[] = {"", "/abs", "a/../b", "..", ".", "./a", "a/.", "a//b", "a/",
                              "a\nb", "a\x7f", "bad\xff.txt", "\xc0\xaf"};
  st_tgz_writer_t *w;
  st_error_t err = ST_ERROR_INIT;
  size_t i;
  struct stat st;

  assert_int_equal(st_tgz_writer_new(tmp("o.tgz"), NULL, &w, &err), 0);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(st_tgz_add_mem(w, bad[i], "x", 1, &err), ST_EUNSAFE);
  assert_int_equal(st_tgz_add_dir(w, "../d", &err), ST_EUNSAFE);
  assert_int_equal(st_tgz_add_mem(w, "a", "x", 1, &err), 0);
  assert_int_equal(st_tgz_add_mem(w, "a", "y", 1, &err), ST_EEXIST);
  assert_non_null(strstr(err.msg, "a added twice"));
  assert_int_equal(st_tgz_add_dir(w, "a", &err), ST_EEXIST);
  /* a file used as a parent clashes at finish, and nothing is published */
  assert_int_equal(st_tgz_add_mem(w, "a/b", "x", 1, &err), 0);
  assert_int_equal(st_tgz_writer_finish(w, &err), ST_EEXIST);
  assert_int_equal(st_tgz_add_mem(w, "c", "x", 1, &err), ST_EINVAL);
  st_tgz_writer_free(w);
  assert_int_equal(stat(tmp("o.tgz"), &st), -1);
  assert_int_equal(system("test -z \"$(ls /tmp/stella-tgz-*/o.tgz.tmp.* 2>/dev/null)\""), 0);

  assert_int_equal(st_tgz_writer_new(tmp("o.tgz"), &(st_tgz_options_t){0, 10}, &w, &err),
                   ST_EINVAL);
  assert_int_equal(st_tgz_writer_new("/nonexistent-dir/o.tgz", NULL, &w, &err), ST_EIO);
  assert_int_equal(st_tgz_writer_new(tmp("o.tgz"), NULL, &w, &err), 0);
  assert_int_equal(st_tgz_add_file(w, "f", tmp("missing"), &err), ST_ENOENT);
  assert_int_equal(symlink("/etc/passwd", tmp("link")), 0);
  assert_int_equal(st_tgz_add_file(w, "f", tmp("link"), &err), ST_EUNSAFE);
  assert_int_equal(st_tgz_add_file(w, "f", g_dir, &err), ST_EUNSAFE);
  assert_int_equal(system("ls /tmp/stella-tgz-*/o.tgz.tmp.* >/dev/null 2>&1"), 0);
  st_tgz_writer_abort(w);
  assert_int_equal(system("test -z \"$(ls /tmp/stella-tgz-*/o.tgz.tmp.* 2>/dev/null)\""), 0);
}

static void changing_sources(void **state) {
  st_tgz_writer_t *w;
  st_error_t err = ST_ERROR_INIT;
  cbsrc_t shortcb = {"abc", 3, 0, 0}, longcb = {"abc", 3, 0, 5};
  struct stat st;

  put_file(tmp("f"), "hello", 5);
  assert_int_equal(st_tgz_writer_new(tmp("o.tgz"), NULL, &w, &err), 0);
  assert_int_equal(st_tgz_add_file(w, "f", tmp("f"), &err), 0);
  put_file(tmp("f"), "hello world", 11);
  assert_int_equal(st_tgz_writer_finish(w, &err), ST_ECONFLICT);
  assert_non_null(strstr(err.msg, "changed"));
  st_tgz_writer_free(w);
  assert_int_equal(stat(tmp("o.tgz"), &st), -1);

  assert_int_equal(st_tgz_writer_new(tmp("o.tgz"), NULL, &w, &err), 0);
  assert_int_equal(st_tgz_add_cb(w, "s", 10, cb_read, &shortcb, &err), 0);
  assert_int_equal(st_tgz_writer_finish(w, &err), ST_EIO);
  assert_non_null(strstr(err.msg, "gave 3 of 10"));
  st_tgz_writer_free(w);

  assert_int_equal(st_tgz_writer_new(tmp("o.tgz"), NULL, &w, &err), 0);
  assert_int_equal(st_tgz_add_cb(w, "l", 3, cb_read, &longcb, &err), 0);
  assert_int_equal(st_tgz_writer_finish(w, &err), ST_EIO);
  assert_non_null(strstr(err.msg, "more than 3"));
  st_tgz_writer_free(w);
  assert_int_equal(stat(tmp("o.tgz"), &st), -1);

  /* fd mode writes to the caller's fd and leaves it open */
  {
    int fd = open(tmp("fd.tgz"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    listing_t l;
    assert_int_equal(st_tgz_writer_new_fd(fd, NULL, &w, &err), 0);
    assert_int_equal(st_tgz_add_mem(w, "x", "1", 1, &err), 0);
    assert_int_equal(st_tgz_writer_finish(w, &err), 0);
    st_tgz_writer_free(w);
    assert_int_equal(close(fd), 0);
    assert_int_equal(read_all(tmp("fd.tgz"), NULL, &l, &err), 0);
    assert_int_equal(l.n, 1);
  }
}

/* ---- crafted archives ---- */

typedef struct {
  unsigned char *p;
  size_t len, cap;
} bytes_t;

static void b_add(bytes_t *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

/* One ustar header (+ data padded to 512). size_override >= 0 writes that size in
 * base-256 without data. */
static void tar_entry(bytes_t *b, const char *name, char type, const char *data,
                      size_t len, const char *link, long long size_override) {
  unsigned char h[512] = {0};
  unsigned sum = 0;
  int i;
  snprintf((char *)h, 100, "%s", name);
  snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
  snprintf((char *)h + 108, 8, "%07o", 0);
  snprintf((char *)h + 116, 8, "%07o", 0);
  if (size_override >= 0) {
    h[124] = 0x80;
    for (i = 0; i < 8; i++)
      h[135 - i] = (unsigned char)(size_override >> (8 * i));
  } else {
    snprintf((char *)h + 124, 12, "%011zo", len);
  }
  snprintf((char *)h + 136, 12, "%011o", 0);
  h[156] = (unsigned char)type;
  if (link)
    snprintf((char *)h + 157, 100, "%s", link);
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  for (i = 0; i < 512; i++)
    sum += h[i];
  snprintf((char *)h + 148, 8, "%06o", sum);
  b_add(b, h, 512);
  if (len) {
    unsigned char pad[512] = {0};
    b_add(b, data, len);
    b_add(b, pad, (512 - len % 512) % 512);
  }
}

static void tar_end(bytes_t *b) {
  unsigned char z[1024] = {0};
  b_add(b, z, sizeof(z));
}

static bytes_t gz(const bytes_t *in) {
  bytes_t out = {0};
  z_stream z = {0};
  out.cap = deflateBound(&z, in->len) + 64;
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  out.cap = deflateBound(&z, in->len);
  out.p = malloc(out.cap);
  z.next_in = in->p;
  z.avail_in = (uInt)in->len;
  z.next_out = out.p;
  z.avail_out = (uInt)out.cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.len = out.cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

/* Read crafted tar bytes (gzipped here) to the end; return the first failure. */
static int read_tar(bytes_t *tar, const st_tgz_limits_t *lim, st_error_t *err) {
  bytes_t g = gz(tar);
  st_tgz_reader_t *r;
  const st_tgz_entry_t *e;
  int rc;
  memset(err, 0, sizeof(*err));
  if ((rc = st_tgz_reader_open_mem(g.p, g.len, lim, &r, err)) == 0) {
    while ((rc = st_tgz_reader_next(r, &e, err)) == 1)
      ;
    st_tgz_reader_free(r);
  }
  free(g.p);
  free(tar->p);
  memset(tar, 0, sizeof(*tar));
  return rc;
}

static void expect_unsafe(const char *name, char type, const char *link, const char *why) {
  bytes_t t = {0};
  st_error_t err;
  int rc;
  tar_entry(&t, "ok.txt", '0', "x", 1, NULL, -1);
  tar_entry(&t, name, type, type == '0' ? "evil" : NULL, type == '0' ? 4 : 0, link, -1);
  tar_end(&t);
  rc = read_tar(&t, NULL, &err);
  if (rc != ST_EUNSAFE || !strstr(err.msg, why))
    fail_msg("%s: rc %d, expected '%s' in '%s'", name, rc, why, err.msg);
}

static void hostile_entries(void **state) {
  static const struct {
    const char *name;
    char type;
    const char *link, *why;
  } cases[] = {
      {"../x", '0', NULL, "'..' path component"},
      {"a/../../x", '0', NULL, "'..' path component"},
      {"/etc/cron.d/x", '0', NULL, "absolute path"},
      {"./a", '0', NULL, "'.' path component"},
      {"a//b", '0', NULL, "empty path component"},
      {"a/", '0', NULL, "trailing slash"},
      {"a\x01", '0', NULL, "control character"},
      {"bad\xff", '0', NULL, "UTF-8"},
      {"esc", '2', "../../etc", "symbolic link"},
      {"hl", '1', "/etc/passwd", "hard link"},
      {"hl2", '1', "ok.txt", "hard link"},
      {"dev", '3', NULL, "device node"},
      {"blk", '4', NULL, "device node"},
      {"fifo", '6', NULL, "FIFO"},
      {"ok.txt", '0', NULL, "duplicate path"},
      {"ok.txt/inner", '0', NULL, "a parent is a file"},
      {"ok.txt", '5', NULL, "duplicate path"},
  };
  size_t i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    expect_unsafe(cases[i].name, cases[i].type, cases[i].link, cases[i].why);
}

static void hostile_structure(void **state) {
  bytes_t t = {0};
  st_error_t err;
  st_tgz_limits_t lim;

  /* a directory implied by a child, then the same path as a file */
  tar_entry(&t, "d/f", '0', "x", 1, NULL, -1);
  tar_entry(&t, "d", '0', "x", 1, NULL, -1);
  tar_end(&t);
  assert_int_equal(read_tar(&t, NULL, &err), ST_EUNSAFE);
  /* ... but an explicit directory after its child is fine, and "d/" is normalised */
  tar_entry(&t, "d/f", '0', "x", 1, NULL, -1);
  tar_entry(&t, "d/", '5', NULL, 0, NULL, -1);
  tar_end(&t);
  assert_int_equal(read_tar(&t, NULL, &err), 0);
  /* limits */
  st_tgz_limits_default(&lim);
  lim.max_path_len = 8;
  tar_entry(&t, "longer-than-8", '0', "x", 1, NULL, -1);
  tar_end(&t);
  assert_int_equal(read_tar(&t, &lim, &err), ST_ETOOBIG);
  st_tgz_limits_default(&lim);
  lim.max_entry_bytes = 3;
  tar_entry(&t, "four", '0', "abcd", 4, NULL, -1);
  tar_end(&t);
  assert_int_equal(read_tar(&t, &lim, &err), ST_ETOOBIG);
  assert_non_null(strstr(err.msg, "four"));
  st_tgz_limits_default(&lim);
  lim.max_entries = 2;
  tar_entry(&t, "1", '0', "x", 1, NULL, -1);
  tar_entry(&t, "2", '0', "x", 1, NULL, -1);
  tar_entry(&t, "3", '0', "x", 1, NULL, -1);
  tar_end(&t);
  assert_int_equal(read_tar(&t, &lim, &err), ST_ETOOBIG);
  /* non-zero data after the end marker, inside the gzip stream */
  tar_entry(&t, "f", '0', "x", 1, NULL, -1);
  tar_end(&t);
  b_add(&t, "trailing", 8);
  assert_int_equal(read_tar(&t, NULL, &err), ST_EPARSE);
  assert_non_null(strstr(err.msg, "after the end"));
  /* zero padding after the end marker is what tar writes: accepted */
  tar_entry(&t, "f", '0', "x", 1, NULL, -1);
  tar_end(&t);
  tar_end(&t);
  assert_int_equal(read_tar(&t, NULL, &err), 0);
  /* a header cut short */
  tar_entry(&t, "f", '0', "x", 1, NULL, -1);
  t.len = 700;
  assert_int_equal(read_tar(&t, NULL, &err), ST_EPARSE);
}

/* Open and walk in-memory bytes; the first failure, or 0. */
static int read_mem_all(const void *p, size_t len, st_error_t *err) {
  st_tgz_reader_t *r;
  const st_tgz_entry_t *e;
  int rc = st_tgz_reader_open_mem(p, len, NULL, &r, err);
  if (rc == 0) {
    while ((rc = st_tgz_reader_next(r, &e, err)) == 1)
      ;
    st_tgz_reader_free(r);
  }
  return rc;
}

static void corrupt_streams(void **state) {
  bytes_t t = {0}, g;
  st_tgz_reader_t *r;
  const st_tgz_entry_t *e;
  st_error_t err = ST_ERROR_INIT;
  unsigned char garbage[4096];
  size_t i, cut;
  int rc;

  tar_entry(&t, "a.txt", '0', "hello", 5, NULL, -1);
  tar_entry(&t, "b.txt", '0', "world", 5, NULL, -1);
  tar_end(&t);
  g = gz(&t);
  assert_int_equal(read_mem_all(g.p, g.len, &err), 0);
  /* every truncation point fails with EPARSE, never passes */
  for (cut = 0; cut < g.len; cut++) {
    rc = read_mem_all(g.p, cut, &err);
    if (rc != ST_EPARSE)
      fail_msg("truncated at %zu/%zu: rc %d (%s)", cut, g.len, rc, err.msg);
  }
  /* a flipped CRC byte */
  g.p[g.len - 6] ^= 1;
  assert_int_equal(read_mem_all(g.p, g.len, &err), ST_EPARSE);
  if (!strstr(err.msg, "corrupt gzip"))
    fail_msg("%s", err.msg);
  g.p[g.len - 6] ^= 1;
  /* non-gzip bytes after the gzip member */
  g.p = realloc(g.p, g.len + 4);
  memcpy(g.p + g.len, "junk", 4);
  assert_int_equal(read_mem_all(g.p, g.len + 4, &err), ST_EPARSE);
  /* two gzip members (what `cat a.gz b.gz` makes) are one valid stream */
  {
    bytes_t h1 = {0}, h2 = {0}, g1, g2;
    b_add(&h1, t.p, 512 + 512);
    b_add(&h2, t.p + 1024, t.len - 1024);
    g1 = gz(&h1);
    g2 = gz(&h2);
    b_add(&g1, g2.p, g2.len);
    assert_int_equal(st_tgz_reader_open_mem(g1.p, g1.len, NULL, &r, &err), 0);
    assert_int_equal(st_tgz_reader_next(r, &e, &err), 1);
    assert_int_equal(st_tgz_reader_next(r, &e, &err), 1);
    assert_string_equal(e->path, "b.txt");
    assert_int_equal(st_tgz_reader_next(r, &e, &err), 0);
    st_tgz_reader_free(r);
    free(h1.p), free(h2.p), free(g1.p), free(g2.p);
  }
  /* random garbage, and a plain (uncompressed) tar */
  srand(7);
  for (i = 0; i < sizeof(garbage); i++)
    garbage[i] = (unsigned char)rand();
  garbage[0] = 0x1f, garbage[1] = 0x8b; /* even with a gzip magic */
  assert_int_equal(read_mem_all(garbage, sizeof(garbage), &err), ST_EPARSE);
  assert_int_equal(read_mem_all(t.p, t.len, &err), ST_EPARSE);
  assert_non_null(strstr(err.msg, "not a gzip stream"));
  assert_int_equal(read_mem_all("", 0, &err), ST_EPARSE);
  /* a gzip of a non-tar */
  {
    bytes_t txt = {0}, gt;
    b_add(&txt, garbage, sizeof(garbage));
    gt = gz(&txt);
    assert_int_equal(read_mem_all(gt.p, gt.len, &err), ST_EPARSE);
    free(txt.p), free(gt.p);
  }
  free(g.p);
  free(t.p);
}

/* ---- bombs, in a child whose RSS growth is measured ---- */

static long maxrss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Write `members` gzip members of `per` decompressed zero bytes each after `prefix`
 * (tar bytes, gzipped as the first member). */
static void write_bomb(const char *path, const bytes_t *prefix, size_t per, int members) {
  bytes_t zeros = {0}, member, pre;
  int fd, i;
  zeros.p = calloc(1, per);
  zeros.len = per;
  member = gz(&zeros);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  if (prefix) {
    pre = gz(prefix);
    assert_int_equal(write(fd, pre.p, pre.len), (ssize_t)pre.len);
    free(pre.p);
  }
  for (i = 0; i < members; i++)
    assert_int_equal(write(fd, member.p, member.len), (ssize_t)member.len);
  close(fd);
  free(zeros.p);
  free(member.p);
}

static int drain(void *ud, const void *data, size_t len, st_error_t *err) { return 0; }

/* Run the reader over path in a child; return its rc; *rss_kib = peak RSS growth. */
static int read_in_child(const char *path, const st_tgz_limits_t *lim, long *rss_kib,
                         char *msg, size_t msgcap) {
  int pfd[2], status;
  pid_t pid;
  struct {
    int rc;
    long rss;
    char msg[256];
  } res = {0};

  assert_int_equal(pipe(pfd), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    st_tgz_reader_t *r;
    const st_tgz_entry_t *e;
    st_error_t err = ST_ERROR_INIT;
    long before = maxrss_kib();
    int rc = st_tgz_reader_open(path, lim, &r, &err);
    if (rc == 0)
      while ((rc = st_tgz_reader_next(r, &e, &err)) == 1)
        if (e->type == ST_TGZ_FILE && (rc = st_tgz_reader_data(r, drain, NULL, &err)) < 0)
          break;
    st_tgz_reader_free(r);
    res.rc = rc;
    res.rss = maxrss_kib() - before;
    snprintf(res.msg, sizeof(res.msg), "%.200s", err.msg);
    if (write(pfd[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
      _exit(1);
    _exit(0);
  }
  close(pfd[1]);
  assert_int_equal(read(pfd[0], &res, sizeof(res)), (ssize_t)sizeof(res));
  close(pfd[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_int_equal(status, 0);
  *rss_kib = res.rss;
  snprintf(msg, msgcap, "%s", res.msg);
  return res.rc;
}

#define RSS_BOUND_KIB (64 * 1024)

/* ASan keeps freed blocks in a quarantine (256 MiB by default) that would show up as
 * RSS growth here and hide what the reader itself holds: keep it small. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=4"; }

/* Reading path in a child is refused with ST_ETOOBIG naming `why`, within the RSS bound. */
static void expect_too_big(const char *path, const st_tgz_limits_t *lim, const char *why) {
  long rss;
  char msg[256];
  int rc = read_in_child(path, lim, &rss, msg, sizeof(msg));
  if (rc != ST_ETOOBIG || !strstr(msg, why))
    fail_msg("rc %d, expected '%s' in '%s'", rc, why, msg);
  if (rss >= RSS_BOUND_KIB)
    fail_msg("peak RSS grew by %ld KiB", rss);
}

static void gzip_bomb_zeros(void **state) {
  st_tgz_limits_t lim;
  /* 160 members x 64 MiB = 10 GiB of zeros in ~10 MB: an empty tar plus padding */
  write_bomb(tmp("bomb.tgz"), NULL, (size_t)64 << 20, 160);
  st_tgz_limits_default(&lim);
  lim.max_total_bytes = (uint64_t)256 << 20;
  expect_too_big(tmp("bomb.tgz"), &lim, "decompressed size exceeds");
}

static void gzip_bomb_entry(void **state) {
  bytes_t hdr = {0};
  st_tgz_limits_t lim;
  /* one entry declaring 10 GiB, then 10 GiB of zeros */
  tar_entry(&hdr, "payload/zeros", '0', NULL, 0, NULL, (long long)10 << 30);
  write_bomb(tmp("bomb2.tgz"), &hdr, (size_t)64 << 20, 160);
  free(hdr.p);
  /* the default per-entry limit refuses it at the header */
  expect_too_big(tmp("bomb2.tgz"), NULL, "payload/zeros");
  /* with no per-entry limit, the decompressed total stops the data stream */
  st_tgz_limits_default(&lim);
  lim.max_entry_bytes = UINT64_MAX;
  lim.max_total_bytes = (uint64_t)256 << 20;
  expect_too_big(tmp("bomb2.tgz"), &lim, "decompressed size exceeds");
}

static void million_entries(void **state) {
  z_stream z = {0};
  unsigned char *out = malloc(1 << 20);
  bytes_t t = {0};
  int fd, i;
  char name[32];

  /* 1M empty files, deflated as they are made (512 MiB of headers, a few MB on disk) */
  fd = open(tmp("many.tgz"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  for (i = 0; i <= 1000000; i++) {
    int flush = i == 1000000 ? Z_FINISH : Z_NO_FLUSH;
    t.len = 0;
    if (i < 1000000) {
      snprintf(name, sizeof(name), "d/f%07d", i);
      tar_entry(&t, name, '0', NULL, 0, NULL, -1);
    } else {
      tar_end(&t);
    }
    z.next_in = t.p;
    z.avail_in = (uInt)t.len;
    do {
      z.next_out = out;
      z.avail_out = 1 << 20;
      deflate(&z, flush);
      assert_int_equal(write(fd, out, (1 << 20) - z.avail_out),
                       (ssize_t)((1 << 20) - z.avail_out));
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  close(fd);
  free(out);
  free(t.p);
  expect_too_big(tmp("many.tgz"), NULL, "more than 100000 entries");
}

/* ---- extraction ---- */

/* Gzip crafted tar bytes, extract them into dir, free them; the extractor's rc. */
static int extract_tar(bytes_t *t, const char *dir) {
  bytes_t g = gz(t);
  st_tgz_reader_t *r;
  st_error_t err = ST_ERROR_INIT;
  int rc = st_tgz_reader_open_mem(g.p, g.len, NULL, &r, &err);
  if (rc == 0) {
    rc = st_tgz_reader_extract(r, dir, &err);
    st_tgz_reader_free(r);
  }
  free(g.p);
  free(t->p);
  memset(t, 0, sizeof(*t));
  return rc;
}

static void extract_safely(void **state) {
  st_tgz_reader_t *r;
  st_error_t err = ST_ERROR_INIT;
  struct stat st;
  bytes_t t = {0};
  char cmd[512];

  make_sources();
  write_set(tmp("a.tgz"), 0, 0);
  assert_int_equal(mkdir(tmp("out"), 0700), 0);
  umask(077); /* modes are fixed, whatever the umask */
  assert_int_equal(st_tgz_reader_open(tmp("a.tgz"), NULL, &r, &err), 0);
  assert_int_equal(st_tgz_reader_extract(r, tmp("out"), &err), 0);
  st_tgz_reader_free(r);
  umask(022);
  snprintf(cmd, sizeof(cmd), "cmp '%s' '%s/payload/big.bin'", tmp("big.bin"), tmp("out"));
  assert_int_equal(system(cmd), 0);
  assert_int_equal(stat(tmp("out/payload/big.bin"), &st), 0);
  assert_int_equal(st.st_mode & 07777, 0644);
  assert_int_equal(stat(tmp("out/keys"), &st), 0);
  assert_int_equal(st.st_mode & 07777, 0755);
  /* a second extraction into the same place never overwrites */
  assert_int_equal(st_tgz_reader_open(tmp("a.tgz"), NULL, &r, &err), 0);
  assert_int_equal(st_tgz_reader_extract(r, tmp("out"), &err), ST_EEXIST);
  st_tgz_reader_free(r);

  /* setuid/world-writable modes and owners in the archive are not applied */
  tar_entry(&t, "m", '0', "x", 1, NULL, -1);
  tar_end(&t);
  t.p[100 + 3] = '4'; /* mode 0004644 -> setuid bit */
  {
    unsigned sum = 0;
    int i;
    memset(t.p + 148, ' ', 8);
    for (i = 0; i < 512; i++)
      sum += t.p[i];
    snprintf((char *)t.p + 148, 8, "%06o", sum);
  }
  assert_int_equal(mkdir(tmp("out2"), 0700), 0);
  assert_int_equal(extract_tar(&t, tmp("out2")), 0);
  assert_int_equal(stat(tmp("out2/m"), &st), 0);
  assert_int_equal(st.st_mode & 07777, 0644);

  /* a symlink planted in the target is never followed */
  assert_int_equal(mkdir(tmp("out3"), 0700), 0);
  assert_int_equal(mkdir(tmp("outside"), 0700), 0);
  assert_int_equal(symlink(tmp("outside"), tmp("out3/a")), 0);
  tar_entry(&t, "a/pwned", '0', "x", 1, NULL, -1);
  tar_end(&t);
  assert_int_equal(extract_tar(&t, tmp("out3")), ST_EUNSAFE);
  assert_int_equal(stat(tmp("outside/pwned"), &st), -1);
  /* ... nor as the file itself */
  assert_int_equal(symlink(tmp("outside/f"), tmp("out3/f")), 0);
  tar_entry(&t, "f", '0', "x", 1, NULL, -1);
  tar_end(&t);
  assert_int_equal(extract_tar(&t, tmp("out3")), ST_EEXIST);
  assert_int_equal(lstat(tmp("outside/f"), &st), -1);
  /* a symlink entry followed by a file through it: refused at the link */
  assert_int_equal(mkdir(tmp("out4"), 0700), 0);
  tar_entry(&t, "l", '2', NULL, 0, tmp("outside"), -1);
  tar_entry(&t, "l/x", '0', "x", 1, NULL, -1);
  tar_end(&t);
  assert_int_equal(extract_tar(&t, tmp("out4")), ST_EUNSAFE);
  assert_int_equal(lstat(tmp("out4/l"), &st), -1);
  assert_int_equal(lstat(tmp("outside/x"), &st), -1);
}

static void reads_gnu_tar(void **state) {
  listing_t l;
  st_error_t err = ST_ERROR_INIT;
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "cd '%s' && mkdir -p src/sub && printf abc > src/sub/x && printf '' > src/e && "
           "tar --sort=name --owner=0 --group=0 --numeric-owner -czf gnu.tgz -C src . && "
           "tar --format=pax -czf pax.tgz -C src sub",
           g_dir);
  assert_int_equal(system(cmd), 0);
  /* GNU tar stores "./" and "./e": not normalised, refused */
  assert_int_equal(read_all(tmp("gnu.tgz"), NULL, &l, &err), ST_EUNSAFE);
  assert_int_equal(read_all(tmp("pax.tgz"), NULL, &l, &err), 0);
  assert_int_equal(l.n, 2);
  assert_string_equal(l.names[0], "sub");
  assert_string_equal(l.names[1], "sub/x");
  assert_string_equal(l.content[1], "abc");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(deterministic, setup, teardown),
      cmocka_unit_test_setup_teardown(gzip_header_and_outside_tools, setup, teardown),
      cmocka_unit_test_setup_teardown(header_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(write_path_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(changing_sources, setup, teardown),
      cmocka_unit_test(hostile_entries),
      cmocka_unit_test(hostile_structure),
      cmocka_unit_test(corrupt_streams),
      cmocka_unit_test_setup_teardown(gzip_bomb_zeros, setup, teardown),
      cmocka_unit_test_setup_teardown(gzip_bomb_entry, setup, teardown),
      cmocka_unit_test_setup_teardown(million_entries, setup, teardown),
      cmocka_unit_test_setup_teardown(extract_safely, setup, teardown),
      cmocka_unit_test_setup_teardown(reads_gnu_tar, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
