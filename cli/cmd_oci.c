/* cmd_oci.c: `stella oci artifact|push|referrers|verify`: build an OCI artifact layout
 * from files, push a layout or oci-archive to a registry, list referrers, verify a
 * layout's blobs. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_oci.h"
#include "stella/mem.h"

#define MAX_FILES 64

static int oci_artifact(int argc, char **argv) {
  const char *files[MAX_FILES], *atype = NULL, *ltype = "application/octet-stream";
  const char *ctype = NULL, *tag = NULL, *out_dir = NULL, *out_tar = NULL, *subj = NULL;
  unsigned long long subj_size = 0;
  st_oci_layout_t *l = NULL;
  st_oci_desc_t config = {0}, layers[MAX_FILES], man = {0};
  json_t *ann = NULL;
  st_error_t err = ST_ERROR_INIT;
  size_t nf = 0, nl = 0;
  long long mtime = 0;
  int rc = ST_EXIT_USAGE;

  memset(layers, 0, sizeof(layers));
  if (!(ann = json_object()))
    return ST_EXIT_USAGE;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--artifact-type") && i + 1 < argc) {
      atype = argv[++i];
    } else if (!strcmp(a, "--layer-type") && i + 1 < argc) {
      ltype = argv[++i];
    } else if (!strcmp(a, "--config-type") && i + 1 < argc) {
      ctype = argv[++i];
    } else if (!strcmp(a, "--tag") && i + 1 < argc) {
      tag = argv[++i];
    } else if (!strcmp(a, "--subject") && i + 1 < argc) {
      subj = argv[++i];
    } else if (!strcmp(a, "--subject-size") && i + 1 < argc) {
      subj_size = strtoull(argv[++i], NULL, 10);
    } else if (!strcmp(a, "--mtime") && i + 1 < argc) {
      mtime = strtoll(argv[++i], NULL, 10);
    } else if (!strcmp(a, "-o") && i + 1 < argc) {
      out_dir = argv[++i];
    } else if (!strcmp(a, "--archive") && i + 1 < argc) {
      out_tar = argv[++i];
    } else if (!strcmp(a, "--annotation") && i + 1 < argc) {
      char *kv = argv[++i], *eq = strchr(kv, '=');
      if (!eq || eq == kv) {
        rc = st_cli_usage("oci artifact: --annotation wants KEY=VALUE");
        goto done;
      }
      *eq = '\0';
      json_object_set_new(ann, kv, json_string(eq + 1));
      *eq = '=';
    } else if (a[0] == '-') {
      rc = st_cli_usage("oci artifact: unknown flag '%s'", a);
      goto done;
    } else if (nf < MAX_FILES) {
      files[nf++] = a;
    } else {
      rc = st_cli_usage("oci artifact: at most %d files", MAX_FILES);
      goto done;
    }
  }
  if (!nf || !atype || (!out_dir == !out_tar) || (subj && !st_oci_digest_valid(subj))) {
    rc = st_cli_usage("usage: stella oci artifact FILE... --artifact-type T [--layer-type T] "
                      "[--config-type T] [--annotation K=V]... [--tag NAME] [--mtime S] "
                      "[--subject sha256:HEX --subject-size N] (-o DIR | --archive TAR)");
    goto done;
  }
  rc = ST_EXIT_FAIL;
  if (st_oci_layout_new(&l, &err))
    goto fail;
  if (ctype ? st_oci_layout_add_mem(l, "{}", 2, ctype, &config, &err)
            : st_oci_layout_add_empty(l, &config, &err))
    goto fail;
  for (; nl < nf; nl++) {
    char *copy = st_strdup(files[nl]);
    int r = !copy || st_oci_layout_add_file(l, files[nl], ltype, &layers[nl], &err) ||
            st_oci_desc_annotate(&layers[nl], ST_OCI_ANN_TITLE, basename(copy), &err);
    st_free(copy);
    if (r)
      goto fail;
  }
  {
    st_oci_desc_t sd = {.media_type = (char *)ST_OCI_MT_MANIFEST, .size = subj_size};
    st_oci_manifest_t m = {.artifact_type = atype, .config = &config, .layers = layers,
                           .nlayers = nl, .annotations = json_object_size(ann) ? ann : NULL,
                           .subject = subj ? &sd : NULL};
    if (subj)
      memcpy(sd.digest, subj, ST_OCI_DIGEST_LEN + 1);
    if (st_oci_layout_add_manifest(l, &m, &man, &err) || st_oci_layout_tag(l, &man, tag, &err))
      goto fail;
  }
  if (out_dir ? st_oci_layout_write_dir(l, out_dir, &err)
              : st_oci_layout_write_tar(l, out_tar, mtime, &err))
    goto fail;
  printf("%s\n", man.digest);
  rc = ST_EXIT_OK;
  goto done;
fail:
  fprintf(stderr, "stella: oci artifact: %s\n", st_error_text(&err));
  if (err.code == ST_ENOENT || err.code == ST_EIO || err.code == ST_EEXIST)
    rc = ST_EXIT_USAGE;
done:
  for (size_t i = 0; i < nl; i++)
    st_oci_desc_release(&layers[i]);
  st_oci_desc_release(&config);
  st_oci_desc_release(&man);
  st_oci_layout_free(l);
  json_decref(ann);
  return rc;
}

static int oci_push(int argc, char **argv) {
  st_cli_oci_t o = {0};
  st_cli_layout_t lay = {0};
  st_oci_client_t *c = NULL;
  st_buf_t reg = ST_BUF_INIT, repo = ST_BUF_INIT, tag = ST_BUF_INIT;
  st_oci_desc_t root = {0};
  const char *src = NULL, *dst = NULL, *ref = NULL, *from = NULL;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_USAGE, f;

  for (int i = 1; i < argc; i++) {
    if ((f = st_cli_oci_flag(&o, argc, argv, &i)) < 0) {
      rc = st_cli_usage("oci push: bad value for %s", argv[i - 1]);
      goto done;
    } else if (f) {
      continue;
    } else if (!strcmp(argv[i], "--ref") && i + 1 < argc) {
      ref = argv[++i];
    } else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
      from = argv[++i];
    } else if (argv[i][0] == '-') {
      rc = st_cli_usage("oci push: unknown flag '%s'", argv[i]);
      goto done;
    } else if (!src) {
      src = argv[i];
    } else if (!dst) {
      dst = argv[i];
    } else {
      rc = st_cli_usage("oci push: unexpected argument '%s'", argv[i]);
      goto done;
    }
  }
  if (!src || !dst) {
    rc = st_cli_usage("usage: stella oci push LAYOUT_DIR|OCI_ARCHIVE HOST[:PORT]/REPO[:TAG] "
                      "[--ref NAME] [--from REPO] [--creds U:P | --authfile F] [--ca PEM] "
                      "[--chunk-size N] [--retries N] [--backoff-ms N]");
    goto done;
  }
  if (st_oci_ref_parse(dst, &reg, &repo, &tag, &err))
    goto fail_usage;
  if (st_cli_oci_open(src, &lay, &err))
    goto fail_usage;
  if (st_oci_dir_resolve(lay.dir, ref, &root, &err))
    goto fail_usage;
  rc = ST_EXIT_FAIL;
  if (st_cli_oci_client(&o, reg.data, &c, &err) ||
      st_oci_push_dir(c, lay.dir, &root, repo.data,
                      tag.len && !st_oci_digest_valid(tag.data) ? tag.data : NULL, from, &err)) {
    fprintf(stderr, "stella: oci push: %s\n", st_error_text(&err));
    if (c)
      st_cli_oci_print_stats(c);
    goto done;
  }
  printf("pushed %s to %s/%s%s%s\n", root.digest, reg.data, repo.data, tag.len ? ":" : "",
         tag.len ? tag.data : "");
  st_cli_oci_print_stats(c);
  rc = ST_EXIT_OK;
  goto done;
fail_usage:
  fprintf(stderr, "stella: oci push: %s\n", st_error_text(&err));
  rc = ST_EXIT_USAGE;
done:
  st_oci_client_free(c);
  st_oci_desc_release(&root);
  st_cli_oci_close(&lay);
  st_cli_oci_release(&o);
  st_buf_release(&reg);
  st_buf_release(&repo);
  st_buf_release(&tag);
  return rc;
}

static int oci_referrers(int argc, char **argv) {
  st_cli_oci_t o = {0};
  st_oci_client_t *c = NULL;
  st_buf_t reg = ST_BUF_INIT, repo = ST_BUF_INIT, dg = ST_BUF_INIT, out = ST_BUF_INIT;
  const char *ref = NULL, *atype = NULL;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_USAGE, f;

  for (int i = 1; i < argc; i++) {
    if ((f = st_cli_oci_flag(&o, argc, argv, &i)) < 0)
      goto done;
    else if (f)
      continue;
    else if (!strcmp(argv[i], "--artifact-type") && i + 1 < argc)
      atype = argv[++i];
    else if (!ref)
      ref = argv[i];
    else
      goto done;
  }
  if (!ref || st_oci_ref_parse(ref, &reg, &repo, &dg, &err) || !st_oci_digest_valid(dg.data)) {
    rc = st_cli_usage("usage: stella oci referrers HOST/REPO@sha256:HEX [--artifact-type T] "
                      "[registry flags]%s%s", err.code ? ": " : "", err.code ? err.msg : "");
    goto done;
  }
  if (st_cli_oci_client(&o, reg.data, &c, &err) ||
      st_oci_referrers(c, repo.data, dg.data, atype, &out, &err)) {
    fprintf(stderr, "stella: oci referrers: %s\n", st_error_text(&err));
    rc = ST_EXIT_FAIL;
    goto done;
  }
  printf("%s\n", out.data);
  rc = ST_EXIT_OK;
done:
  st_oci_client_free(c);
  st_cli_oci_release(&o);
  st_buf_release(&reg);
  st_buf_release(&repo);
  st_buf_release(&dg);
  st_buf_release(&out);
  return rc;
}

static int oci_verify(int argc, char **argv) {
  st_cli_layout_t lay = {0};
  st_error_t err = ST_ERROR_INIT;
  size_t n = 0;
  int rc;
  if (argc != 2)
    return st_cli_usage("usage: stella oci verify LAYOUT_DIR|OCI_ARCHIVE");
  if (st_cli_oci_open(argv[1], &lay, &err)) {
    rc = err.code == ST_EVERIFY || err.code == ST_EUNSAFE ? ST_EXIT_FAIL : ST_EXIT_USAGE;
  } else if (st_oci_dir_verify(lay.dir, &n, &err)) {
    rc = ST_EXIT_FAIL;
  } else {
    printf("ok: %zu descriptors verified from %zu index entries\n", n,
           st_oci_dir_count(lay.dir));
    rc = ST_EXIT_OK;
  }
  if (rc)
    fprintf(stderr, "stella: oci verify: %s\n", st_error_text(&err));
  st_cli_oci_close(&lay);
  return rc;
}

int st_cmd_oci(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "artifact"))
    return oci_artifact(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "push"))
    return oci_push(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "referrers"))
    return oci_referrers(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "verify"))
    return oci_verify(argc - 1, argv + 1);
  return st_cli_usage("usage: stella oci artifact|push|referrers|verify ...");
}
