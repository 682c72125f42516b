/* cli_oci.c: pieces the OCI commands share (cmd_oci.c, cmd_bootstrap.c): registry options
 * from flags, and opening a layout given as a directory or an oci-archive tar (unpacked,
 * verified, into a temporary directory). */
#define _GNU_SOURCE /* mkdtemp */
#include "cli_oci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stella/mem.h"

int st_cli_oci_flag(st_cli_oci_t *o, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  if (*i + 1 >= argc)
    return 0;
  if (!strcmp(a, "--creds")) {
    char *colon;
    st_free(o->user);
    if (!(o->user = st_strdup(argv[++*i])) || !(colon = strchr(o->user, ':')))
      return -1;
    *colon = '\0';
    o->pass = colon + 1;
  } else if (!strcmp(a, "--authfile")) {
    o->opts.docker_config = argv[++*i];
  } else if (!strcmp(a, "--ca")) {
    o->opts.ca_file = argv[++*i];
  } else if (!strcmp(a, "--chunk-size")) {
    char *end;
    unsigned long long v = strtoull(argv[++*i], &end, 10);
    if (*end || v == 0)
      return -1;
    o->opts.chunk_size = v;
  } else if (!strcmp(a, "--retries")) {
    char *end;
    long v = strtol(argv[++*i], &end, 10);
    if (*end || v < 1 || v > 100)
      return -1;
    o->opts.max_attempts = (int)v;
  } else if (!strcmp(a, "--backoff-ms")) {
    char *end;
    long v = strtol(argv[++*i], &end, 10);
    if (*end || v < 1 || v > 60000)
      return -1;
    o->opts.backoff_base_ms = v;
    o->opts.backoff_cap_ms = v * 16;
  } else {
    return 0;
  }
  return 1;
}

int st_cli_oci_client(st_cli_oci_t *o, const char *registry, st_oci_client_t **out,
                      st_error_t *err) {
  const char *env_user = getenv("STELLA_REGISTRY_USER"), *env_pass = getenv("STELLA_REGISTRY_PASS");
  o->opts.registry = registry;
  o->opts.username = o->user;
  o->opts.password = o->pass;
  if (!o->user && !o->opts.docker_config && env_user && env_pass) {
    o->opts.username = env_user;
    o->opts.password = env_pass;
  }
  return st_oci_client_new(&o->opts, out, err);
}

void st_cli_oci_release(st_cli_oci_t *o) {
  if (o->user) {
    st_memzero(o->user, strlen(o->user) + (o->pass ? strlen(o->pass) + 1 : 0));
    st_free(o->user);
  }
  memset(o, 0, sizeof(*o));
}

void st_cli_oci_print_stats(const st_oci_client_t *c) {
  const st_oci_stats_t *s = st_oci_client_stats(c);
  printf("blobs: %llu uploaded (%llu bytes), %llu already present, %llu mounted; "
         "manifests: %llu pushed, %llu already present; requests %llu, retries %llu, "
         "resumed %llu, restarted %llu\n",
         (unsigned long long)s->blobs_uploaded, (unsigned long long)s->bytes_uploaded,
         (unsigned long long)s->blobs_present, (unsigned long long)s->blobs_mounted,
         (unsigned long long)s->manifests_pushed, (unsigned long long)s->manifests_present,
         (unsigned long long)s->requests, (unsigned long long)s->retries,
         (unsigned long long)s->uploads_resumed, (unsigned long long)s->uploads_restarted);
}

int st_cli_oci_open(const char *src, st_cli_layout_t *l, st_error_t *err) {
  struct stat st;
  const char *tmpdir = getenv("TMPDIR");
  int rc;
  memset(l, 0, sizeof(*l));
  if (stat(src, &st) != 0)
    return st_fail(err, ST_ENOENT, "%s: no such file or directory", src);
  if (S_ISDIR(st.st_mode)) {
    if (!(l->path = st_strdup(src)))
      return st_fail(err, ST_ENOMEM, "out of memory");
    return st_oci_dir_open(src, NULL, &l->dir, err);
  }
  if (!(l->tmp = st_malloc(strlen(tmpdir ? tmpdir : "/tmp") + 24)))
    return st_fail(err, ST_ENOMEM, "out of memory");
  sprintf(l->tmp, "%s/stella-oci.XXXXXX", tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(l->tmp)) {
    st_free(l->tmp);
    l->tmp = NULL;
    return st_fail(err, ST_EIO, "cannot create a temporary directory");
  }
  if ((rc = st_oci_archive_extract(src, l->tmp, NULL, err)))
    return rc;
  if (!(l->path = st_strdup(l->tmp)))
    return st_fail(err, ST_ENOMEM, "out of memory");
  return st_oci_dir_open(l->tmp, NULL, &l->dir, err);
}

void st_cli_oci_close(st_cli_layout_t *l) {
  st_oci_dir_free(l->dir);
  if (l->tmp) {
    st_oci_rmtree(l->tmp);
    st_free(l->tmp);
  }
  st_free(l->path);
  memset(l, 0, sizeof(*l));
}
