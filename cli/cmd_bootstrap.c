/* cmd_bootstrap.c: `stella export bootstrap`: container images (OCI layouts, oci-archives,
 * docker archives) and Helm charts (.tgz) packed into one OCI image layout, sealed as a
 * bundle of kind `bootstrap` (payload/oci/: oci-layout, index.json, blobs/sha256/<hex>)
 * so the pack is signed, optionally timestamped and verifiable offline
 * (docs/bootstrap.md). Every image and chart is listed in index.json under a ref.name
 * `REPO:TAG`, which `stella bootstrap load` pushes as REGISTRY[/prefix]/REPO:TAG. */
#define _GNU_SOURCE /* mkdtemp */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_bootstrap.h"
#include "cli_oci.h"
#include "stella/bundle.h"
#include "stella/keys.h"
#include "stella/mem.h"
#include "stella/sha256.h"

#define MAX_SOURCES 256

typedef struct pack_s {
  st_oci_layout_t *l;
  st_cli_layout_t srcs[MAX_SOURCES]; /* kept open: their blobs are streamed at write time */
  size_t nsrcs;
  char *tmps[MAX_SOURCES]; /* unpacked docker archives */
  size_t ntmps;
} pack_t;

static int is_manifest(const char *mt) {
  return !strcmp(mt, ST_OCI_MT_MANIFEST) || !strcmp(mt, ST_OCI_MT_INDEX) ||
         !strcmp(mt, ST_OCI_MT_DOCKER_MANIFEST) || !strcmp(mt, ST_OCI_MT_DOCKER_LIST);
}

/* Add desc and everything it references (not its subject) from lay to l. */
static int copy_desc(st_oci_layout_t *l, const st_cli_layout_t *lay, const st_oci_desc_t *desc,
                     int depth, st_error_t *err) {
  st_buf_t path = ST_BUF_INIT, json = ST_BUF_INIT;
  st_oci_desc_t *kids = NULL;
  size_t nk = 0;
  int rc;

  if (depth > 8)
    return st_fail(err, ST_EDEPTH, "image indexes nested deeper than 8");
  if ((rc = st_oci_dir_blob_path(lay->dir, desc, lay->path, &path, err)) ||
      (rc = st_oci_layout_add_known(l, path.data, desc, err)))
    goto done;
  if (!is_manifest(desc->media_type))
    goto done;
  if ((rc = st_oci_dir_read_blob(lay->dir, desc, 0, &json, err)) ||
      (rc = st_oci_children(json.data, json.len, desc->media_type, NULL, &kids, &nk, NULL, err)))
    goto done;
  for (size_t i = 0; i < nk && !rc; i++)
    rc = copy_desc(l, lay, &kids[i], depth + 1, err);
done:
  for (size_t i = 0; i < nk; i++)
    st_oci_desc_release(&kids[i]);
  st_free(kids);
  st_buf_release(&path);
  st_buf_release(&json);
  return rc;
}

/* "REPO:TAG" for an image: its ref.name when that is already one, else <base>:<ref|latest>
 * where base is the source's file name without .tar, lower-cased. */
static int image_name(const char *src, const char *ref, st_buf_t *out, st_error_t *err) {
  const char *base = strrchr(src, '/');
  const char *colon = ref ? strrchr(ref, ':') : NULL;
  size_t n;
  st_buf_reset(out);
  if (colon)
    return st_buf_adds(out, ref) ? st_fail(err, ST_ENOMEM, "out of memory") : 0;
  base = base && base[1] ? base + 1 : src;
  n = strlen(base);
  if (n > 4 && !strcmp(base + n - 4, ".tar"))
    n -= 4;
  for (size_t i = 0; i < n; i++) {
    char c = base[i] >= 'A' && base[i] <= 'Z' ? (char)(base[i] - 'A' + 'a') : base[i];
    if (st_buf_addf(out, "%c", strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", c) ? c : '-'))
      return st_fail(err, ST_ENOMEM, "out of memory");
  }
  return st_buf_addf(out, ":%s", ref ? ref : "latest") ? st_fail(err, ST_ENOMEM, "out of memory")
                                                       : 0;
}

/* --image SRC[:REF]: one entry of SRC (REF given) or all of them. */
static int add_image(pack_t *p, const char *arg, st_error_t *err) {
  struct stat st;
  char *src = st_strdup(arg), *ref = NULL;
  st_cli_layout_t *lay;
  st_oci_desc_t d = {0};
  st_buf_t name = ST_BUF_INIT;
  int rc = 0;

  if (!src)
    return st_fail(err, ST_ENOMEM, "out of memory");
  if (stat(src, &st) != 0 && (ref = strrchr(src, ':')))
    *ref++ = '\0';
  if (p->nsrcs == MAX_SOURCES) {
    rc = st_fail(err, ST_ETOOBIG, "at most %d image sources", MAX_SOURCES);
    goto done;
  }
  lay = &p->srcs[p->nsrcs];
  if ((rc = st_cli_oci_open(src, lay, err))) {
    st_cli_oci_close(lay);
    st_error_wrap(err, "--image %s", arg);
    goto done;
  }
  p->nsrcs++;
  for (size_t i = 0, n = ref ? 1 : st_oci_dir_count(lay->dir); i < n && !rc; i++) {
    const char *rn;
    st_oci_desc_release(&d);
    if ((rc = ref ? st_oci_dir_resolve(lay->dir, ref, &d, err)
                  : st_oci_dir_entry(lay->dir, i, &d, err)))
      break;
    rn = ref ? ref : json_string_value(json_object_get(d.annotations, ST_OCI_ANN_REF_NAME));
    if (!(rc = image_name(src, rn, &name, err)) && !(rc = copy_desc(p->l, lay, &d, 0, err))) {
      if (d.annotations) /* the pack's index carries only its own ref.name */
        json_object_del(d.annotations, ST_OCI_ANN_REF_NAME);
      rc = st_oci_layout_tag(p->l, &d, name.data, err);
    }
  }
  if (rc)
    st_error_wrap(err, "--image %s", arg);
done:
  st_oci_desc_release(&d);
  st_buf_release(&name);
  st_free(src);
  return rc;
}

static int add_docker(pack_t *p, const char *tar, st_error_t *err) {
  const char *tmpdir = getenv("TMPDIR");
  char *dir;
  int rc;
  if (p->ntmps == MAX_SOURCES)
    return st_fail(err, ST_ETOOBIG, "at most %d docker archives", MAX_SOURCES);
  if (!(dir = st_malloc(strlen(tmpdir ? tmpdir : "/tmp") + 32)))
    return st_fail(err, ST_ENOMEM, "out of memory");
  sprintf(dir, "%s/stella-docker.XXXXXX", tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(dir)) {
    st_free(dir);
    return st_fail(err, ST_EIO, "cannot create a temporary directory");
  }
  p->tmps[p->ntmps++] = dir;
  if ((rc = st_oci_archive_extract(tar, dir, NULL, err)) ||
      (rc = st_oci_docker_archive_import(p->l, dir, NULL, err)))
    st_error_wrap(err, "--docker-archive %s", tar);
  return rc;
}

static int add_chart(pack_t *p, const char *tgz, st_error_t *err) {
  st_cli_chart_t ch;
  st_oci_desc_t config = {0}, layer = {0}, man = {0};
  json_t *ann = NULL;
  st_buf_t name = ST_BUF_INIT;
  int rc;

  memset(&ch, 0, sizeof(ch));
  if ((rc = st_cli_chart_read(tgz, &ch, err)))
    goto done;
  if (!(ann = json_pack("{s:s, s:s}", ST_OCI_ANN_TITLE, ch.name.data,
                        "org.opencontainers.image.version", ch.version.data)) ||
      st_buf_addf(&name, "charts/%s:%s", ch.name.data, ch.tag.data)) {
    rc = st_fail(err, ST_ENOMEM, "out of memory");
    goto done;
  }
  {
    st_oci_manifest_t m = {.config = &config, .layers = &layer, .nlayers = 1,
                           .annotations = ann};
    if ((rc = st_oci_layout_add_mem(p->l, ch.config.data, ch.config.len, ST_CLI_HELM_CONFIG,
                                    &config, err)) ||
        (rc = st_oci_layout_add_file(p->l, tgz, ST_CLI_HELM_CONTENT, &layer, err)) ||
        (rc = st_oci_layout_add_manifest(p->l, &m, &man, err)) ||
        (rc = st_oci_layout_tag(p->l, &man, name.data, err)))
      goto done;
  }
done:
  if (rc)
    st_error_wrap(err, "--chart %s", tgz);
  st_cli_chart_release(&ch);
  st_oci_desc_release(&config);
  st_oci_desc_release(&layer);
  st_oci_desc_release(&man);
  st_buf_release(&name);
  json_decref(ann);
  return rc;
}

/* Metadata refs from the written layout: every index.json entry, typed by its config. */
static int refs_of(const char *dir, json_t *refs, st_error_t *err) {
  st_oci_dir_t *d = NULL;
  st_oci_desc_t e = {0};
  st_buf_t json = ST_BUF_INIT;
  json_t *m = NULL;
  int rc;

  if ((rc = st_oci_dir_open(dir, NULL, &d, err)) || (rc = st_oci_dir_verify(d, NULL, err)))
    goto done;
  for (size_t i = 0; i < st_oci_dir_count(d) && !rc; i++) {
    const char *rn, *ct;
    st_oci_desc_release(&e);
    json_decref(m);
    m = NULL;
    if ((rc = st_oci_dir_entry(d, i, &e, err)) ||
        (rc = st_oci_dir_read_blob(d, &e, 0, &json, err)))
      break;
    rn = json_string_value(json_object_get(e.annotations, ST_OCI_ANN_REF_NAME));
    if (!rn || !st_cli_ref_split(rn, NULL, NULL)) {
      rc = st_fail(err, ST_EINVAL, "image %s has no REPO:TAG name (give the docker archive a "
                   "RepoTag, or --image SRC:REF)", e.digest);
      break;
    }
    m = json_loadb(json.data, json.len, 0, NULL);
    ct = json_string_value(json_object_get(json_object_get(m, "config"), "mediaType"));
    if (json_array_append_new(refs, json_pack("{s:s, s:s, s:s}", "ref", rn, "digest", e.digest,
                                              "type", ct && !strcmp(ct, ST_CLI_HELM_CONFIG)
                                                          ? "chart" : "image")))
      rc = st_fail(err, ST_ENOMEM, "out of memory");
  }
done:
  json_decref(m);
  st_oci_desc_release(&e);
  st_buf_release(&json);
  st_oci_dir_free(d);
  return rc;
}

static int grow(st_bundle_input_t **in, st_buf_t **paths, size_t *cap, st_error_t *err) {
  st_bundle_input_t *ni = st_realloc(*in, *cap * 2 * sizeof(**in));
  st_buf_t *np;
  if (!ni)
    return st_fail(err, ST_ENOMEM, "out of memory");
  *in = ni;
  if (!(np = st_realloc(*paths, *cap * 2 * sizeof(**paths))))
    return st_fail(err, ST_ENOMEM, "out of memory");
  *paths = np;
  for (size_t i = *cap; i < *cap * 2; i++)
    st_buf_init(&np[i], 0);
  memset(ni + *cap, 0, *cap * sizeof(*ni));
  *cap *= 2;
  return 0;
}

/* Seal the layout in dir as payload/oci/. */
static int seal(const char *dir, const char *key, const char *tsa_url, const char *out,
                st_error_t *err) {
  st_bundle_input_t *in = NULL;
  st_buf_t *paths = NULL, blobs = ST_BUF_INIT;
  json_t *meta = NULL, *refs = json_array();
  st_signer_t *signer = NULL;
  st_tsa_opts_t tsa = {.url = tsa_url};
  uint8_t d[ST_SHA256_LEN];
  char hex[ST_SHA256_HEX_LEN + 1];
  size_t n = 0, cap = 16;
  DIR *dd = NULL;
  struct dirent *de;
  int rc = 0;

  if (!refs || (rc = refs_of(dir, refs, err)))
    goto done;
  if (st_buf_addf(&blobs, "%s/index.json", dir) || (rc = st_sha256_file(blobs.data, d, NULL, err)))
    goto done;
  st_sha256_hex(d, hex);
  meta = json_pack("{s:s, s:s, s:O}", "format", "oci-layout", "index_sha256", hex, "refs", refs);
  in = st_calloc(cap, sizeof(*in));
  paths = st_calloc(cap, sizeof(*paths));
  st_buf_reset(&blobs);
  for (size_t i = 0; paths && i < cap; i++)
    st_buf_init(&paths[i], 0);
  if (!meta || !in || !paths || st_buf_addf(&blobs, "%s/blobs/sha256", dir) ||
      !(dd = opendir(blobs.data))) {
    rc = st_fail(err, ST_EIO, "%s: cannot list the layout", dir);
    goto done;
  }
  while (rc == 0) {
    const char *rel = n == 0 ? "oci-layout" : n == 1 ? "index.json" : NULL;
    char blobrel[13 + 256 + 1];
    if (!rel) {
      do
        de = readdir(dd);
      while (de && de->d_name[0] == '.');
      if (!de)
        break;
      snprintf(blobrel, sizeof(blobrel), "blobs/sha256/%s", de->d_name);
      rel = blobrel;
    }
    if (n == cap && (rc = grow(&in, &paths, &cap, err)))
      goto done;
    if (st_buf_addf(&paths[n], "oci/%s%c%s/%s", rel, '\0', dir, rel)) {
      rc = st_fail(err, ST_ENOMEM, "out of memory");
      goto done;
    }
    in[n].path = paths[n].data;
    in[n].src = ST_BUNDLE_SRC_FILE;
    in[n].fs_path = paths[n].data + strlen(paths[n].data) + 1;
    in[n].media_type = !strcmp(rel, "index.json") ? ST_OCI_MT_INDEX : NULL;
    n++;
  }
  {
    st_bundle_spec_t spec = {.kind = "bootstrap", .metadata = meta, .inputs = in, .ninputs = n};
    if ((rc = st_signer_open(&signer, key, err)) ||
        (rc = st_bundle_seal(&spec, signer, tsa_url ? &tsa : NULL, out, err)))
      goto done;
  }
  printf("sealed %s: %zu images/charts, %zu files\n", out, json_array_size(refs), n);
done:
  if (dd)
    closedir(dd);
  for (size_t i = 0; paths && i < cap; i++)
    st_buf_release(&paths[i]);
  st_free(paths);
  st_free(in);
  st_buf_release(&blobs);
  json_decref(meta);
  json_decref(refs);
  st_signer_free(signer);
  return rc;
}

int st_cli_export_bootstrap(int argc, char **argv) {
  pack_t p;
  const char *key = NULL, *tsa = NULL, *out = NULL, *tmpdir = getenv("TMPDIR");
  char *work = NULL;
  st_buf_t dir = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_USAGE, nsrc = 0;

  memset(&p, 0, sizeof(p));
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--key") && i + 1 < argc)
      key = argv[++i];
    else if (!strcmp(argv[i], "--tsa") && i + 1 < argc)
      tsa = argv[++i];
    else if (!strcmp(argv[i], "-o") && i + 1 < argc)
      out = argv[++i];
    else if ((!strcmp(argv[i], "--image") || !strcmp(argv[i], "--docker-archive") ||
              !strcmp(argv[i], "--chart")) && i + 1 < argc)
      nsrc++, i++;
    else
      return st_cli_usage("export bootstrap: unexpected argument '%s'", argv[i]);
  }
  if (!key || !out || !nsrc)
    return st_cli_usage("usage: stella export bootstrap (--image LAYOUT_DIR|OCI_ARCHIVE[:REF] | "
                        "--docker-archive TAR | --chart CHART.tgz)... --key KEY [--tsa URL] "
                        "-o PACK.tgz");
  if (!(work = st_malloc(strlen(tmpdir ? tmpdir : "/tmp") + 32)))
    return ST_EXIT_USAGE;
  sprintf(work, "%s/stella-pack.XXXXXX", tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(work)) {
    st_free(work);
    return st_cli_usage("export bootstrap: cannot create a temporary directory");
  }
  if (st_oci_layout_new(&p.l, &err))
    goto fail;
  for (int i = 1; i < argc; i++) {
    int r = 0;
    if (!strcmp(argv[i], "--image"))
      r = add_image(&p, argv[++i], &err);
    else if (!strcmp(argv[i], "--docker-archive"))
      r = add_docker(&p, argv[++i], &err);
    else if (!strcmp(argv[i], "--chart"))
      r = add_chart(&p, argv[++i], &err);
    else
      i++; /* -o, --key, --tsa and their values */
    if (r)
      goto fail;
  }
  if (st_buf_addf(&dir, "%s/oci", work)) {
    st_fail(&err, ST_ENOMEM, "out of memory");
    goto fail;
  }
  rc = ST_EXIT_FAIL;
  if (st_oci_layout_write_dir(p.l, dir.data, &err) || seal(dir.data, key, tsa, out, &err))
    goto fail;
  rc = ST_EXIT_OK;
  goto done;
fail:
  fprintf(stderr, "stella: export bootstrap: %s\n", st_error_text(&err));
  if (rc != ST_EXIT_FAIL)
    rc = err.code == ST_ENOENT || err.code == ST_EIO || err.code == ST_EEXIST ? ST_EXIT_USAGE
                                                                             : ST_EXIT_FAIL;
done:
  st_oci_layout_free(p.l);
  for (size_t i = 0; i < p.nsrcs; i++)
    st_cli_oci_close(&p.srcs[i]);
  for (size_t i = 0; i < p.ntmps; i++) {
    st_oci_rmtree(p.tmps[i]);
    st_free(p.tmps[i]);
  }
  st_oci_rmtree(work);
  st_free(work);
  st_buf_release(&dir);
  return rc;
}
