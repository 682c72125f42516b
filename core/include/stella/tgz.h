/* tgz.h: the byte-level container of every sealed bundle: a deterministic .tgz writer
 * and a safe, bounded .tgz reader.
 *
 * Writer. Entries are collected first (path + source, never contents) and written at
 * st_tgz_writer_finish, sorted by path bytes, so the output depends only on the set of
 * (path, content) and the options, never on insertion order, source mtimes or owners.
 * Parent directories are emitted explicitly, once, before their children. Every header
 * is fixed: mtime = options.mtime, uid/gid 0, uname/gname empty (numeric owner, as
 * reproducible-builds.org recommends: nothing to look up on extraction), mode 0644 for
 * files and 0755 for directories. Format: POSIX pax "restricted" (libarchive): plain
 * ustar headers unless an entry needs more (a path over ustar's 100+155 split, a
 * non-ASCII path, a file over 8 GiB), then a pax extended header for that entry only,
 * so long paths work and ordinary bundles stay readable by any ustar reader. Gzip is
 * done with zlib directly (libarchive produces the tar stream): one member, header
 * MTIME 0, no name, OS 255, fixed level. Bytes are identical for identical inputs on a
 * given zlib version (deflate output may change across zlib releases).
 * Path files are opened at finish, streamed in 64 KiB chunks, and must still have the
 * size, mtime and ctime seen when they were added (else ST_ECONFLICT).
 * Output to a path goes to a temporary file in the same directory, renamed over the
 * path by finish (atomic publish); abort or a failed finish removes it.
 *
 * Reader. Gzip (multi-member allowed) is inflated here with zlib, counting decompressed
 * bytes, and only the tar format is given to libarchive. Bundles hold regular files and
 * directories only: every link (symbolic or hard), device node, FIFO, sparse file,
 * absolute or non-normalised path (`./a`, `a//b`, `a/../b`, trailing slash on a file,
 * control characters, invalid UTF-8), duplicate path or file/directory clash is refused
 * with ST_EUNSAFE and a message naming the entry. Limits (st_tgz_limits_t) give
 * ST_ETOOBIG; a corrupt, truncated or non-gzip stream gives ST_EPARSE. After the tar
 * end marker the rest of the stream must be zero padding up to a clean gzip end, so a
 * truncated file or a zero-filled gzip bomb cannot pass.
 *
 * Ownership: new/open allocate, free releases (writer_free aborts an unfinished
 * writer). Entry views returned by st_tgz_reader_next live until the next call.
 * Thread rules: one writer or reader per thread at a time; distinct objects are
 * independent.
 */
#ifndef STELLA_TGZ_H
#define STELLA_TGZ_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"

typedef struct st_tgz_writer_s st_tgz_writer_t;
typedef struct st_tgz_reader_s st_tgz_reader_t;

#define ST_TGZ_LEVEL_DEFAULT 6
#define ST_TGZ_LEVEL_FAST 1 /* ~2.2x less CPU than 6, ~11% larger (docs/benchmarks.md) */
#define ST_TGZ_PATH_MAX 4096

typedef struct st_tgz_options_s {
  int64_t mtime; /* seconds since the epoch for every entry: the bundle's created time */
  int level;     /* gzip level 1..9; 0 = ST_TGZ_LEVEL_DEFAULT */
} st_tgz_options_t;

/* Produce up to cap bytes into buf and set *got; *got = 0 only at the end. Called
 * during st_tgz_writer_finish. A negative return aborts the write (err is the
 * writer's error, fill it). */
typedef int (*st_tgz_read_cb)(void *ud, void *buf, size_t cap, size_t *got,
                              st_error_t *err);

/* Write to out_path atomically (temp file `<out_path>.tmp.XXXXXX`, renamed at finish).
 * opt may be NULL (mtime 0, default level). ST_EINVAL bad level, ST_EIO. */
int st_tgz_writer_new(const char *out_path, const st_tgz_options_t *opt,
                      st_tgz_writer_t **out, st_error_t *err) ST_MUST_CHECK;
/* Write to an open fd the caller owns (not closed, no rename, abort cannot undo). */
int st_tgz_writer_new_fd(int fd, const st_tgz_options_t *opt, st_tgz_writer_t **out,
                         st_error_t *err) ST_MUST_CHECK;

/* Entry paths: relative, '/'-separated, no empty, "." or ".." component, no control
 * character, valid UTF-8, at most ST_TGZ_PATH_MAX bytes (ST_EUNSAFE otherwise). A path
 * added twice, or used as both file and directory, is ST_EEXIST (at add time for an
 * exact repeat, at finish for a file/directory clash). */

/* Contents copied now; data may be freed after the call. */
int st_tgz_add_mem(st_tgz_writer_t *w, const char *path, const void *data, size_t len,
                   st_error_t *err) ST_MUST_CHECK;
/* A regular file (symlinks not followed: ST_EUNSAFE), stat now, streamed at finish. */
int st_tgz_add_file(st_tgz_writer_t *w, const char *path, const char *fs_path,
                    st_error_t *err) ST_MUST_CHECK;
/* Exactly size bytes from cb at finish (more or fewer: ST_EIO). ud must live until
 * finish or abort; the writer never frees it. */
int st_tgz_add_cb(st_tgz_writer_t *w, const char *path, uint64_t size,
                  st_tgz_read_cb cb, void *ud, st_error_t *err) ST_MUST_CHECK;
/* An explicit (possibly empty) directory; parents of entries need no call. */
int st_tgz_add_dir(st_tgz_writer_t *w, const char *path, st_error_t *err) ST_MUST_CHECK;

/* Write everything, flush, fsync and publish. On failure the partial output is removed
 * (path mode). Either way the writer is then spent: only st_tgz_writer_free remains. */
int st_tgz_writer_finish(st_tgz_writer_t *w, st_error_t *err) ST_MUST_CHECK;
/* Remove the partial output (path mode) and free. NULL is a no-op. */
void st_tgz_writer_abort(st_tgz_writer_t *w);
/* Free; an unfinished writer is aborted. NULL is a no-op. */
void st_tgz_writer_free(st_tgz_writer_t *w);

/* ---- reader ---- */

typedef struct st_tgz_limits_s {
  uint64_t max_entries;     /* files + directories */
  uint64_t max_total_bytes; /* decompressed tar stream, headers included */
  uint64_t max_entry_bytes; /* one file's size */
  size_t max_path_len;      /* bytes, <= ST_TGZ_PATH_MAX */
} st_tgz_limits_t;

/* 100,000 entries, 8 GiB decompressed, 4 GiB per file, ST_TGZ_PATH_MAX-byte paths.
 * The writer enforces none of these: a bundle writer must stay within what its
 * verifiers accept. */
void st_tgz_limits_default(st_tgz_limits_t *lim);

typedef enum st_tgz_type {
  ST_TGZ_FILE = 1,
  ST_TGZ_DIR = 2,
} st_tgz_type;

typedef struct st_tgz_entry_s {
  const char *path; /* normalised: directories without the trailing slash */
  st_tgz_type type;
  uint64_t size; /* 0 for directories */
} st_tgz_entry_t;

/* One chunk of the current entry's data; a negative return stops the read with that
 * code (fill err). */
typedef int (*st_tgz_data_cb)(void *ud, const void *data, size_t len, st_error_t *err);

/* Open a file (lim NULL = defaults). ST_EIO if it cannot be opened. */
int st_tgz_reader_open(const char *path, const st_tgz_limits_t *lim,
                       st_tgz_reader_t **out, st_error_t *err) ST_MUST_CHECK;
/* Read from memory the caller keeps alive until st_tgz_reader_free. */
int st_tgz_reader_open_mem(const void *data, size_t len, const st_tgz_limits_t *lim,
                           st_tgz_reader_t **out, st_error_t *err) ST_MUST_CHECK;

/* Next entry: 1 and *entry set, 0 at a clean end (stream checked to its last byte),
 * negative on error (ST_EUNSAFE, ST_ETOOBIG, ST_EPARSE, ST_EIO). Data not read is
 * skipped (still decompressed and counted). After an error the reader is spent. */
int st_tgz_reader_next(st_tgz_reader_t *r, const st_tgz_entry_t **entry,
                       st_error_t *err) ST_MUST_CHECK;
/* Stream the current file's data to cb in chunks (at most 64 KiB each); exactly
 * entry->size bytes are delivered or an error is returned. Once per entry. */
int st_tgz_reader_data(st_tgz_reader_t *r, st_tgz_data_cb cb, void *ud,
                       st_error_t *err) ST_MUST_CHECK;
/* Extract every remaining entry under dir (which must exist): directories 0755, files
 * 0644 created with O_EXCL|O_NOFOLLOW relative to a directory fd, never following a
 * link, never writing outside dir, never applying archive owners or modes. Existing
 * files are not overwritten (ST_EEXIST). On failure what was extracted stays: the
 * caller removes dir. */
int st_tgz_reader_extract(st_tgz_reader_t *r, const char *dir, st_error_t *err)
    ST_MUST_CHECK;
void st_tgz_reader_free(st_tgz_reader_t *r);

#endif
