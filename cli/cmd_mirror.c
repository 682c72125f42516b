/* cmd_mirror.c: `stella mirror` (docs/mirror.md):
 *   build  --from FILE|DIR... -o BUNDLE --key KEY [--base STATE|DIR] [--state-out FILE]
 *          [--tenant T] [--profile P] [--issued YYYY-MM-DDTHH:MM:SSZ]
 *          [--ttl-timestamp S] [--ttl-metadata S] [--ttl-root S]
 *          a full (or, with --base, delta) mirror bundle from ledger documents on disk
 *          (OSV, OpenVEX, policy packs: the kind is detected as `stella ledger import`
 *          does; policy results are not mirrored); the export run machinery builds the
 *          same bundles from the ledger (mirror:full, mirror:delta profiles).
 *   import BUNDLE --into DIR --key PUB... [--tsa-ca CA] [--at TIME]
 *   verify DIR --key PUB... [--at TIME]
 * Exit 0 ok, 1 a check failed (the reason on stderr), 2 usage or I/O. */
#define _GNU_SOURCE /* strptime, timegm */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "mirror/mirror.h"
#include "stella/jcs.h"
#include "stella/json.h"
#include "stella/ledger.h"
#include "stella/mem.h"

#define MAX_KEYS 8

typedef struct build_s {
  st_mirror_builder_t *b;
  st_buf_t text, canon;
  long long skipped;
} build_t;

static int add_doc(build_t *bd, const char *path, st_error_t *err) {
  st_ledger_doc_t doc = {0};
  json_t *j = NULL;
  const char *mod = NULL;
  st_mirror_dir dir;
  int rc;
  st_buf_reset(&bd->canon);
  st_buf_release(&bd->text);
  if ((rc = st_cli_read_file(path, ST_LEDGER_DOC_MAX_BYTES, &bd->text)))
    return st_fail(err, ST_EIO, "cannot read %s", path);
  if ((rc = st_ledger_doc_parse(bd->text.data, bd->text.len, &doc, err))) {
    st_error_wrap(err, "%s", path);
    goto done;
  }
  if (doc.kind == ST_LEDGER_POLICY_RESULT) {
    bd->skipped++;
    goto done;
  }
  dir = doc.kind == ST_LEDGER_ADVISORY ? ST_MIRROR_ADVISORIES
        : doc.kind == ST_LEDGER_VEX    ? ST_MIRROR_VEX
                                       : ST_MIRROR_POLICY;
  if ((rc = st_jcs_canonicalize(bd->text.data, bd->text.len, NULL, &bd->canon, err)) ||
      (rc = st_json_parse(bd->canon.data, bd->canon.len, NULL, &j, err)))
    goto done;
  mod = json_string_value(json_object_get(j, "modified"));
  if (!mod)
    mod = json_string_value(json_object_get(j, "last_updated"));
  if (!mod)
    mod = json_string_value(json_object_get(j, "timestamp"));
  rc = st_mirror_builder_add(bd->b, dir, doc.key, bd->canon.data, bd->canon.len, mod, err);
done:
  json_decref(j);
  st_ledger_doc_release(&doc);
  return rc;
}

static int add_path(build_t *bd, const char *path, int depth, st_error_t *err) {
  struct stat st;
  struct dirent **names = NULL;
  int n, rc = 0;
  if (stat(path, &st))
    return st_fail(err, ST_ENOENT, "%s: not found", path);
  if (!S_ISDIR(st.st_mode))
    return add_doc(bd, path, err);
  if (depth > 16)
    return st_fail(err, ST_EDEPTH, "%s: directories nested too deep", path);
  if ((n = scandir(path, &names, NULL, alphasort)) < 0)
    return st_fail(err, ST_EIO, "cannot list %s", path);
  for (int i = 0; i < n; i++) {
    st_buf_t p = ST_BUF_INIT;
    if (!rc && names[i]->d_name[0] != '.') {
      if (st_buf_addf(&p, "%s/%s", path, names[i]->d_name))
        rc = st_fail(err, ST_ENOMEM, "out of memory");
      else
        rc = add_path(bd, p.data, depth + 1, err);
    }
    st_buf_release(&p);
    free(names[i]);
  }
  free(names);
  return rc;
}

static int parse_time(const char *s, int64_t *out) {
  struct tm tm;
  const char *end;
  memset(&tm, 0, sizeof(tm));
  if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) || *end)
    return -1;
  *out = (int64_t)timegm(&tm);
  return 0;
}

static int cmd_build(int argc, char **argv) {
  const char *froms[64], *out = NULL, *key = NULL, *base = NULL, *state = NULL;
  size_t nfrom = 0;
  st_mirror_opts_t o = {0};
  st_error_t err = ST_ERROR_INIT;
  st_signer_t *signer = NULL;
  st_mirror_state_t *bs = NULL;
  st_mirror_result_t res;
  build_t bd = {NULL, ST_BUF_INIT, ST_BUF_INIT, 0};
  int rc = ST_EXIT_USAGE;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      return st_cli_usage("mirror build: %s needs a value", a);
    i++;
    if (!strcmp(a, "--from") && nfrom < 64)
      froms[nfrom++] = v;
    else if (!strcmp(a, "-o"))
      out = v;
    else if (!strcmp(a, "--key"))
      key = v;
    else if (!strcmp(a, "--base"))
      base = v;
    else if (!strcmp(a, "--state-out"))
      state = v;
    else if (!strcmp(a, "--tenant"))
      o.tenant = v;
    else if (!strcmp(a, "--profile"))
      o.profile = v;
    else if (!strcmp(a, "--issued")) {
      if (parse_time(v, &o.issued))
        return st_cli_usage("mirror build: --issued: want YYYY-MM-DDTHH:MM:SSZ");
    } else if (!strcmp(a, "--ttl-timestamp") || !strcmp(a, "--ttl-metadata") ||
               !strcmp(a, "--ttl-root")) {
      long long s = atoll(v);
      if (s <= 0)
        return st_cli_usage("mirror build: %s: want seconds > 0", a);
      *(a[6] == 't' ? &o.ttl_timestamp : a[6] == 'm' ? &o.ttl_metadata : &o.ttl_root) = s;
    } else
      return st_cli_usage("mirror build: unknown option %s", a);
  }
  if (!nfrom || !out || !key)
    return st_cli_usage("usage: stella mirror build --from FILE|DIR... -o BUNDLE --key KEY "
                        "[--base STATE|DIR] [--state-out FILE] [--tenant T] [--profile P] "
                        "[--issued TIME] [--ttl-timestamp S] [--ttl-metadata S] [--ttl-root S]");
  if (st_signer_open(&signer, key, &err) || (base && st_mirror_state_load(base, &bs, &err)) ||
      st_mirror_builder_new(getenv("TMPDIR"), &bd.b, &err))
    goto done;
  rc = ST_EXIT_FAIL;
  for (size_t i = 0; i < nfrom; i++)
    if (add_path(&bd, froms[i], 0, &err))
      goto done;
  if (st_mirror_builder_seal(bd.b, &o, bs, signer, NULL, out, state, &res, &err))
    goto done;
  printf("%s mirror %s: %lld advisories, %lld vex, %lld policy packs; +%lld ~%lld -%lld; "
         "%lld blobs shipped; mirror.json sha256 %s\n",
         bs ? "delta" : "full", out, res.docs[0], res.docs[1], res.docs[2], res.added, res.changed,
         res.removed, res.blobs, res.mirror_sha256);
  if (bd.skipped)
    printf("skipped %lld policy results files (not mirrored)\n", bd.skipped);
  rc = ST_EXIT_OK;
done:
  if (rc)
    fprintf(stderr, "stella: mirror build: %s\n", st_error_text(&err));
  st_mirror_builder_free(bd.b);
  st_mirror_state_free(bs);
  st_signer_free(signer);
  st_buf_release(&bd.text);
  st_buf_release(&bd.canon);
  return rc;
}

/* --key (repeatable), --tsa-ca, --at for import and verify; other options to *pos. */
typedef struct trust_args_s {
  st_pubkey_t *keys[MAX_KEYS];
  st_mirror_trust_t t;
  st_buf_t ca;
} trust_args_t;

static int trust_args(int argc, char **argv, trust_args_t *ta, const char **into,
                      const char **pos) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    st_error_t err = ST_ERROR_INIT;
    if (a[0] != '-') {
      if (*pos)
        return st_cli_usage("mirror: one path only (%s)", a);
      *pos = a;
      continue;
    }
    if (!v)
      return st_cli_usage("mirror: %s needs a value", a);
    i++;
    if (!strcmp(a, "--key")) {
      if (ta->t.nkeys == MAX_KEYS)
        return st_cli_usage("mirror: at most %d keys", MAX_KEYS);
      if (st_pubkey_load(&ta->keys[ta->t.nkeys], v, &err)) {
        fprintf(stderr, "stella: mirror: --key %s: %s\n", v, st_error_text(&err));
        return ST_EXIT_USAGE;
      }
      ta->t.nkeys++;
    } else if (!strcmp(a, "--tsa-ca")) {
      if (st_cli_read_file(v, 1 << 20, &ta->ca))
        return ST_EXIT_USAGE;
      ta->t.tsa_ca_pem = ta->ca.data;
      ta->t.tsa_ca_len = ta->ca.len;
    } else if (!strcmp(a, "--at")) {
      if (parse_time(v, &ta->t.now))
        return st_cli_usage("mirror: --at: want YYYY-MM-DDTHH:MM:SSZ");
    } else if (!strcmp(a, "--into") && into)
      *into = v;
    else
      return st_cli_usage("mirror: unknown option %s", a);
  }
  ta->t.keys = (const st_pubkey_t *const *)ta->keys;
  return 0;
}

static void trust_release(trust_args_t *ta) {
  for (size_t i = 0; i < ta->t.nkeys; i++)
    st_pubkey_free(ta->keys[i]);
  st_buf_release(&ta->ca);
}

static int cmd_import(int argc, char **argv) {
  trust_args_t ta;
  const char *into = NULL, *bundle = NULL;
  st_error_t err = ST_ERROR_INIT;
  st_mirror_import_t sum;
  int rc;
  memset(&ta, 0, sizeof(ta));
  ta.ca = (st_buf_t)ST_BUF_INIT;
  if ((rc = trust_args(argc, argv, &ta, &into, &bundle)))
    goto done;
  if (!bundle || !into || !ta.t.nkeys) {
    rc = st_cli_usage("usage: stella mirror import BUNDLE --into DIR --key PUB... "
                      "[--tsa-ca CA] [--at TIME]");
    goto done;
  }
  if (st_mirror_import(bundle, into, &ta.t, &sum, &err)) {
    fprintf(stderr, "stella: mirror import: %s\n", st_error_text(&err));
    rc = err.code == ST_EIO || err.code == ST_ENOENT ? ST_EXIT_USAGE : ST_EXIT_FAIL;
    goto done;
  }
  printf("imported %s bundle into %s: %lld advisories, %lld vex, %lld policy packs; +%lld ~%lld "
         "-%lld; %lld blobs written; mirror.json sha256 %s\n",
         sum.delta ? "delta" : "full", into, sum.docs[0], sum.docs[1], sum.docs[2], sum.added,
         sum.changed, sum.removed, sum.blobs_written, sum.mirror_sha256);
done:
  trust_release(&ta);
  return rc;
}

static int cmd_verify(int argc, char **argv) {
  trust_args_t ta;
  const char *dir = NULL;
  st_error_t err = ST_ERROR_INIT;
  long long docs[ST_MIRROR_NDIRS];
  int rc;
  memset(&ta, 0, sizeof(ta));
  ta.ca = (st_buf_t)ST_BUF_INIT;
  if ((rc = trust_args(argc, argv, &ta, NULL, &dir)))
    goto done;
  if (!dir || !ta.t.nkeys) {
    rc = st_cli_usage("usage: stella mirror verify DIR --key PUB... [--at TIME]");
    goto done;
  }
  if (st_mirror_verify_tree(dir, &ta.t, docs, &err)) {
    fprintf(stderr, "stella: mirror verify: %s\n", st_error_text(&err));
    rc = ST_EXIT_FAIL;
    goto done;
  }
  printf("ok: %s: %lld advisories, %lld vex, %lld policy packs; TUF roles, indexes and blobs "
         "verified\n",
         dir, docs[0], docs[1], docs[2]);
done:
  trust_release(&ta);
  return rc;
}

int st_cmd_mirror(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "build"))
    return cmd_build(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "import"))
    return cmd_import(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "verify"))
    return cmd_verify(argc - 1, argv + 1);
  return st_cli_usage("usage: stella mirror build|import|verify ... (docs/mirror.md)");
}
