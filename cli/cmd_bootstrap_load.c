/* cmd_bootstrap_load.c: `stella bootstrap verify|load` on the receiving side of an air gap.
 * verify: the bundle checks (signature by a trusted key, manifest, entries, timestamp,
 * kind rules) and then every OCI blob reachable from the pack's index.json, by digest.
 * load: the same verification first (a pack that fails it is never pushed), then every
 * index.json entry `REPO:TAG` pushed as REGISTRY[/prefix]/REPO:TAG. */
#define _GNU_SOURCE /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_bootstrap.h"
#include "cli_oci.h"
#include "stella/mem.h"

#define MAX_ARGS 64

/* Bundle verification (as `stella verify` with the kind pinned), then the pack's layout
 * unpacked into a temporary directory and walked. On success *lay is open. */
static int verify_pack(int argc, char **argv, const char *pack, st_cli_layout_t *lay) {
  const char *tmpdir = getenv("TMPDIR");
  st_error_t err = ST_ERROR_INIT;
  size_t n = 0;
  int rc = st_cli_verify_kind(argc, argv, "bootstrap");

  memset(lay, 0, sizeof(*lay));
  if (rc)
    return rc;
  if (!(lay->tmp = st_malloc(strlen(tmpdir ? tmpdir : "/tmp") + 32)))
    return ST_EXIT_USAGE;
  sprintf(lay->tmp, "%s/stella-boot.XXXXXX", tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(lay->tmp)) {
    st_free(lay->tmp);
    lay->tmp = NULL;
    return st_cli_usage("bootstrap: cannot create a temporary directory");
  }
  if (!(lay->path = st_strdup(lay->tmp)))
    return ST_EXIT_USAGE;
  if (st_cli_pack_extract(pack, lay->tmp, &err) ||
      st_oci_dir_open(lay->tmp, NULL, &lay->dir, &err) ||
      st_oci_dir_verify(lay->dir, &n, &err)) {
    fprintf(stderr, "stella: bootstrap: %s: OCI layout: %s\n", pack, st_error_text(&err));
    return ST_EXIT_FAIL;
  }
  printf("oci layout: %zu images/charts, %zu blobs verified by digest\n",
         st_oci_dir_count(lay->dir), n);
  return ST_EXIT_OK;
}

static int boot_verify(int argc, char **argv) {
  st_cli_layout_t lay;
  const char *pack = NULL;
  int rc;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--key") || !strcmp(argv[i], "--tsa-ca"))
      i++;
    else if (argv[i][0] != '-' && !pack)
      pack = argv[i];
  }
  if (!pack)
    return st_cli_usage("usage: stella bootstrap verify PACK.tgz --key PUB.pem [--tsa-ca CA.pem]");
  rc = verify_pack(argc, argv, pack, &lay);
  st_cli_oci_close(&lay);
  return rc;
}

/* --to REGISTRY[/prefix] into registry and prefix (may be empty). */
static int split_to(const char *to, st_buf_t *reg, st_buf_t *prefix) {
  const char *host = strstr(to, "://"), *slash;
  host = host ? host + 3 : to;
  slash = strchr(host, '/');
  if (st_buf_add(reg, to, slash ? (size_t)(slash - to) : strlen(to)) ||
      st_buf_adds(prefix, slash ? slash + 1 : ""))
    return -1;
  while (prefix->len && prefix->data[prefix->len - 1] == '/')
    prefix->data[--prefix->len] = '\0';
  return reg->len && (!prefix->len || st_oci_repo_valid(prefix->data)) ? 0 : -1;
}

static int boot_load(int argc, char **argv) {
  st_cli_oci_t o = {0};
  st_cli_layout_t lay = {0};
  st_oci_client_t *c = NULL;
  st_oci_desc_t d = {0};
  st_buf_t reg = ST_BUF_INIT, prefix = ST_BUF_INIT, repo = ST_BUF_INIT, tag = ST_BUF_INIT,
           full = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  char *vargv[MAX_ARGS];
  const char *pack = NULL, *to = NULL;
  int vargc = 1, rc = ST_EXIT_USAGE, f;

  vargv[0] = "verify";
  for (int i = 1; i < argc; i++) {
    if ((f = st_cli_oci_flag(&o, argc, argv, &i)) < 0) {
      rc = st_cli_usage("bootstrap load: bad value for %s", argv[i - 1]);
      goto done;
    } else if (f) {
      continue;
    } else if (!strcmp(argv[i], "--to") && i + 1 < argc) {
      to = argv[++i];
    } else if ((!strcmp(argv[i], "--key") || !strcmp(argv[i], "--tsa-ca")) && i + 1 < argc &&
               vargc + 2 < MAX_ARGS) {
      vargv[vargc++] = argv[i];
      vargv[vargc++] = argv[++i];
    } else if (argv[i][0] != '-' && !pack) {
      pack = vargv[vargc++] = argv[i];
    } else {
      rc = st_cli_usage("bootstrap load: unexpected argument '%s'", argv[i]);
      goto done;
    }
  }
  if (!pack || !to || split_to(to, &reg, &prefix)) {
    rc = st_cli_usage("usage: stella bootstrap load PACK.tgz --to REGISTRY[/prefix] --key PUB.pem "
                      "[--tsa-ca CA.pem] [--creds U:P | --authfile F] [--ca PEM] [--chunk-size N] "
                      "[--retries N]");
    goto done;
  }
  vargv[vargc] = NULL;
  if ((rc = verify_pack(vargc, vargv, pack, &lay))) {
    fprintf(stderr, "stella: bootstrap load: %s does not verify; nothing pushed\n", pack);
    goto done;
  }
  rc = ST_EXIT_FAIL;
  if (st_cli_oci_client(&o, reg.data, &c, &err))
    goto fail;
  for (size_t i = 0; i < st_oci_dir_count(lay.dir); i++) {
    const char *rn;
    st_oci_desc_release(&d);
    if (st_oci_dir_entry(lay.dir, i, &d, &err))
      goto fail;
    rn = json_string_value(json_object_get(d.annotations, ST_OCI_ANN_REF_NAME));
    st_buf_reset(&full);
    if (!rn || !st_cli_ref_split(rn, &repo, &tag) ||
        st_buf_addf(&full, "%s%s%s", prefix.data, prefix.len ? "/" : "", repo.data) ||
        !st_oci_repo_valid(full.data)) {
      st_fail(&err, ST_EINVAL, "index entry %zu: ref.name '%.255s' is not REPO:TAG", i,
              rn ? rn : "");
      goto fail;
    }
    if (st_oci_push_dir(c, lay.dir, &d, full.data, tag.data, NULL, &err))
      goto fail;
    printf("pushed %s/%s:%s %s\n", reg.data, full.data, tag.data, d.digest);
  }
  st_cli_oci_print_stats(c);
  rc = ST_EXIT_OK;
  goto done;
fail:
  fprintf(stderr, "stella: bootstrap load: %s\n", st_error_text(&err));
  if (c)
    st_cli_oci_print_stats(c);
done:
  st_oci_client_free(c);
  st_oci_desc_release(&d);
  st_cli_oci_close(&lay);
  st_cli_oci_release(&o);
  st_buf_release(&reg);
  st_buf_release(&prefix);
  st_buf_release(&repo);
  st_buf_release(&tag);
  st_buf_release(&full);
  return rc;
}

int st_cmd_bootstrap(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "verify"))
    return boot_verify(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "load"))
    return boot_load(argc - 1, argv + 1);
  return st_cli_usage("usage: stella bootstrap verify|load PACK.tgz ...");
}
