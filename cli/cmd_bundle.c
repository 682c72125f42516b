/* cmd_bundle.c: `stella bundle seal` (files and directories into a sealed bundle, offline)
 * and `stella bundle prove` (PROOF.json for one entry).
 *
 * Paths: each PATH lands under payload/ relative to its parent: `seal dir/sub` gives
 * payload/sub/..., `seal a.txt` gives payload/a.txt. Directories are walked recursively;
 * only regular files and directories are accepted (a symlink, device or FIFO is an error,
 * not silently skipped). With --tsa-ca the new bundle is verified before the command
 * succeeds (the timestamp must chain to that CA); on failure it is removed. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "stella/bundle.h"
#include "stella/mem.h"

typedef struct inputs_s {
  st_bundle_input_t *v;
  size_t n, cap;
} inputs_t;

static void inputs_release(inputs_t *in) {
  for (size_t i = 0; i < in->n; i++) {
    st_free((char *)in->v[i].path);
    st_free((char *)in->v[i].fs_path);
  }
  st_free(in->v);
  memset(in, 0, sizeof(*in));
}

static int push(inputs_t *in, const char *rel, const char *fs) {
  if (in->n == in->cap) {
    size_t cap = in->cap ? in->cap * 2 : 64;
    st_bundle_input_t *v = st_realloc(in->v, cap * sizeof(*v));
    if (!v)
      return st_cli_usage("out of memory");
    in->v = v;
    in->cap = cap;
  }
  if (in->n >= ST_BUNDLE_MAX_ENTRIES)
    return st_cli_usage("bundle seal: more than %d files", ST_BUNDLE_MAX_ENTRIES);
  memset(&in->v[in->n], 0, sizeof(in->v[0]));
  in->v[in->n].src = ST_BUNDLE_SRC_FILE;
  in->v[in->n].path = st_strdup(rel);
  in->v[in->n].fs_path = st_strdup(fs);
  in->n++;
  if (!in->v[in->n - 1].path || !in->v[in->n - 1].fs_path)
    return st_cli_usage("out of memory");
  return 0;
}

static int walk(inputs_t *in, const char *rel, const char *fs, int depth) {
  struct stat st;
  DIR *d;
  struct dirent *de;
  int rc = 0;

  if (lstat(fs, &st))
    return st_cli_usage("%s: cannot stat", fs);
  if (S_ISREG(st.st_mode))
    return push(in, rel, fs);
  if (!S_ISDIR(st.st_mode))
    return st_cli_usage("%s: not a regular file or directory (links, devices and FIFOs are "
                        "refused)", fs);
  if (depth > 64)
    return st_cli_usage("%s: directories nested deeper than 64", fs);
  if (!(d = opendir(fs)))
    return st_cli_usage("%s: cannot open directory", fs);
  while (!rc && (de = readdir(d))) {
    st_buf_t r = ST_BUF_INIT, f = ST_BUF_INIT;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (st_buf_addf(&r, "%s/%s", rel, de->d_name) || st_buf_addf(&f, "%s/%s", fs, de->d_name))
      rc = st_cli_usage("out of memory");
    else
      rc = walk(in, r.data, f.data, depth + 1);
    st_buf_release(&r);
    st_buf_release(&f);
  }
  closedir(d);
  return rc;
}

/* The name PATH gets under payload/: its last component (of the resolved path for "." or
 * ".."). */
static int add_path(inputs_t *in, const char *path) {
  char *real = realpath(path, NULL);
  const char *base;
  int rc;
  if (!real)
    return st_cli_usage("%s: not found", path);
  base = strrchr(real, '/');
  base = base ? base + 1 : real;
  rc = *base ? walk(in, base, path, 0) : st_cli_usage("%s: cannot seal the root directory", path);
  free(real);
  return rc;
}

static int add_meta(json_t *meta, const char *kv) {
  const char *eq = strchr(kv, '=');
  char *k;
  int rc = 0;
  if (!eq || eq == kv)
    return st_cli_usage("bundle seal: --meta wants KEY=VALUE, got '%s'", kv);
  if (!(k = st_strndup(kv, (size_t)(eq - kv))))
    return st_cli_usage("out of memory");
  if (json_object_get(meta, k))
    rc = st_cli_usage("bundle seal: --meta %s given twice", k);
  else if (json_object_set_new(meta, k, json_string(eq + 1)))
    rc = st_cli_usage("bundle seal: --meta %s: value is not UTF-8", k);
  st_free(k);
  return rc;
}

static int self_check(const char *out, st_signer_t *s, const char *tsa_ca) {
  st_bundle_report_t rep;
  st_buf_t ca = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  const st_pubkey_t *key = st_signer_pubkey(s);
  st_bundle_trust_t trust = {&key, 1, NULL, 0, NULL};
  int rc;

  if (st_cli_read_file(tsa_ca, 1 << 20, &ca))
    return ST_EXIT_USAGE;
  trust.tsa_ca_pem = ca.data;
  trust.tsa_ca_len = ca.len;
  st_bundle_report_init(&rep);
  rc = st_bundle_verify(out, &trust, &rep, &err) ? ST_EXIT_FAIL : ST_EXIT_OK;
  if (rc) {
    fprintf(stderr, "stella: bundle seal: the new bundle does not verify: %s\n",
            st_error_text(&err));
    unlink(out);
  }
  st_bundle_report_release(&rep);
  st_buf_release(&ca);
  return rc;
}

static int bundle_seal(int argc, char **argv) {
  const char *key = NULL, *out = NULL, *tsa_url = NULL, *tsa_ca = NULL;
  st_bundle_spec_t spec;
  st_bundle_sealed_t sealed;
  st_tsa_opts_t tsa;
  st_signer_t *s = NULL;
  st_error_t err = ST_ERROR_INIT;
  inputs_t in = {0};
  json_t *meta = json_object();
  int rc = ST_EXIT_USAGE, npaths = 0;

  memset(&spec, 0, sizeof(spec));
  memset(&tsa, 0, sizeof(tsa));
  if (!meta)
    return st_cli_usage("out of memory");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--private") == 0) {
      spec.private_subjects = 1;
      continue;
    }
    if (a[0] == '-' && a[1] && !v) {
      st_cli_usage("bundle seal: %s needs a value", a);
      goto done;
    }
    if (strcmp(a, "--kind") == 0)
      spec.kind = argv[++i];
    else if (strcmp(a, "--key") == 0)
      key = argv[++i];
    else if (strcmp(a, "--tsa") == 0)
      tsa_url = argv[++i];
    else if (strcmp(a, "--tsa-ca") == 0)
      tsa_ca = argv[++i];
    else if (strcmp(a, "--id") == 0)
      spec.id = argv[++i];
    else if (strcmp(a, "--tenant") == 0)
      spec.tenant = argv[++i];
    else if (strcmp(a, "--created") == 0)
      spec.created = argv[++i];
    else if (strcmp(a, "-o") == 0)
      out = argv[++i];
    else if (strcmp(a, "--meta") == 0) {
      if (add_meta(meta, argv[++i]))
        goto done;
    } else if (a[0] == '-' && a[1]) {
      st_cli_usage("bundle seal: unknown option %s", a);
      goto done;
    } else {
      npaths++;
      if (add_path(&in, a))
        goto done;
    }
  }
  if (!spec.kind || !key || !out || !npaths) {
    st_cli_usage("usage: stella bundle seal --kind KIND --key KEY.pem|pkcs11:URI [--tsa URL] "
                 "[--tsa-ca CA.pem] [--meta K=V ...] [--id ID] [--tenant T] [--created "
                 "YYYY-MM-DDTHH:MM:SSZ] [--private] -o OUT.tgz PATH...");
    goto done;
  }
  spec.metadata = meta;
  spec.inputs = in.v;
  spec.ninputs = in.n;
  spec.result = &sealed;
  tsa.url = tsa_url;
  if (st_signer_open(&s, key, &err) ||
      st_bundle_seal(&spec, s, tsa_url ? &tsa : NULL, out, &err)) {
    fprintf(stderr, "stella: bundle seal: %s\n", st_error_text(&err));
    rc = err.code == ST_EVERIFY ? ST_EXIT_FAIL : ST_EXIT_USAGE;
    goto done;
  }
  if (tsa_ca && (rc = self_check(out, s, tsa_ca)))
    goto done;
  printf("sealed %s: kind %s, id %s, %llu entries, merkle root %s%s\n", out, spec.kind,
         sealed.id, (unsigned long long)sealed.entries, sealed.merkle_root,
         sealed.timestamped ? ", timestamped" : "");
  rc = ST_EXIT_OK;
done:
  st_signer_free(s);
  inputs_release(&in);
  json_decref(meta);
  return rc;
}

static int bundle_prove(int argc, char **argv) {
  const char *bundle = NULL, *path = NULL, *out = NULL;
  st_buf_t proof = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  int rc;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
      out = argv[++i];
    else if (!bundle)
      bundle = argv[i];
    else if (!path)
      path = argv[i];
    else
      return st_cli_usage("bundle prove: unexpected argument '%s'", argv[i]);
  }
  if (!bundle || !path)
    return st_cli_usage("usage: stella bundle prove BUNDLE.tgz PATH [-o PROOF.json]");
  proof.max = ST_BUNDLE_PROOF_CONTENT_MAX * 2;
  if (st_bundle_prove(bundle, path, &proof, &err)) {
    fprintf(stderr, "stella: bundle prove: %s\n", st_error_text(&err));
    rc = err.code == ST_EVERIFY ? ST_EXIT_FAIL : ST_EXIT_USAGE;
  } else if (!(rc = st_buf_addc(&proof, '\n') ? st_cli_usage("out of memory") : 0)) {
    rc = st_cli_write_file(out, proof.data, proof.len);
  }
  st_buf_release(&proof);
  return rc;
}

int st_cmd_bundle(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "seal") == 0)
    return bundle_seal(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "prove") == 0)
    return bundle_prove(argc - 1, argv + 1);
  return st_cli_usage("usage: stella bundle seal|prove ... (see docs/bundle-format.md)");
}
