/* fuzz_tgz_read.c: libFuzzer target for the .tgz reader.
 *
 * The first byte picks the mode: even = the rest is fed as is (gzip layer fuzzed);
 * odd = the rest is a raw tar stream that the harness gzips first, so mutations reach
 * the tar headers and the entry checks instead of dying in inflate. Every entry's data
 * is streamed and dropped. Small limits keep runs fast; errors are expected results,
 * crashes, leaks and sanitizer reports are findings. Seeds: corpus/fuzz_tgz_read/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

#include "stella/tgz.h"

static int drop(void *ud, const void *data, size_t len, st_error_t *err) {
  (void)ud, (void)data, (void)len, (void)err;
  return 0;
}

static unsigned char *gzip_wrap(const uint8_t *data, size_t size, size_t *out_len) {
  z_stream z = {0};
  unsigned char *out = NULL;
  size_t cap;

  if (deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return NULL;
  cap = deflateBound(&z, size);
  if ((out = malloc(cap)) != NULL) {
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
      *out_len = cap - z.avail_out;
    } else {
      free(out);
      out = NULL;
    }
  }
  deflateEnd(&z);
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_tgz_limits_t lim = {.max_entries = 256,
                         .max_total_bytes = (uint64_t)16 << 20,
                         .max_entry_bytes = (uint64_t)8 << 20,
                         .max_path_len = 512};
  st_tgz_reader_t *r;
  const st_tgz_entry_t *e;
  st_error_t err = ST_ERROR_INIT;
  unsigned char *wrapped = NULL;
  int rc, mode;

  if (size < 1)
    return 0;
  mode = data[0];
  data++, size--;
  if (mode & 1) {
    if (!(wrapped = gzip_wrap(data, size, &size)))
      return 0;
    data = wrapped;
  }
  if (st_tgz_reader_open_mem(data, size, &lim, &r, &err) == 0) {
    while ((rc = st_tgz_reader_next(r, &e, &err)) == 1)
      if (e->type == ST_TGZ_FILE && (mode & 2) && st_tgz_reader_data(r, drop, NULL, &err) < 0)
        break;
    st_tgz_reader_free(r);
  }
  free(wrapped);
  return 0;
}
