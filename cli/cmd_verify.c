/* cmd_verify.c: `stella verify BUNDLE.tgz|PROOF.json [--key PUB.pem ...] [--tsa-ca CA.pem]
 * [--json]`: every check of a sealed bundle or a single-entry proof (told apart by the
 * first byte: gzip magic or '{'). Exit 0 when no check failed, 1 when one did (named on
 * stderr), 2 on usage or I/O errors. Keys inside a bundle are never trusted: without
 * --key the signature check fails. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stella/bundle.h"
#include "stella/mem.h"

#define MAX_TRUSTED 16

static void print_text(const st_bundle_report_t *r, const char *path) {
  printf("%s %s: kind %s, id %s, tenant %s, created %s\n", r->is_proof ? "proof" : "bundle",
         path, r->kind.len ? r->kind.data : "?", r->id.len ? r->id.data : "?",
         r->tenant.len ? r->tenant.data : "?", r->created.len ? r->created.data : "?");
  if (r->is_proof)
    printf("entry %s\n", r->entry.len ? r->entry.data : "?");
  for (size_t i = 0; i < r->nchecks; i++) {
    const char *st = st_bundle_status_text(r->checks[i].status);
    printf("%-9s %-10s %s\n", st, r->checks[i].name, r->checks[i].reason.data);
  }
}

int st_cmd_verify(int argc, char **argv) { return st_cli_verify_kind(argc, argv, NULL); }

int st_cli_verify_kind(int argc, char **argv, const char *want_kind) {
  const char *path = NULL, *tsa_ca = NULL;
  st_pubkey_t *keys[MAX_TRUSTED] = {0};
  const st_pubkey_t *ckeys[MAX_TRUSTED];
  st_buf_t ca = ST_BUF_INIT, proof = ST_BUF_INIT, js = ST_BUF_INIT;
  st_bundle_trust_t trust = {ckeys, 0, NULL, 0, NULL};
  st_bundle_report_t rep;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_USAGE, json = 0, vrc;
  unsigned char first = 0;
  FILE *f;

  st_bundle_report_init(&rep);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
      if (trust.nkeys == MAX_TRUSTED) {
        st_cli_usage("verify: at most %d --key", MAX_TRUSTED);
        goto done;
      }
      if (st_pubkey_load(&keys[trust.nkeys], argv[++i], &err)) {
        st_cli_usage("verify: %s", st_error_text(&err));
        goto done;
      }
      ckeys[trust.nkeys] = keys[trust.nkeys];
      trust.nkeys++;
    } else if (strcmp(argv[i], "--tsa-ca") == 0 && i + 1 < argc) {
      tsa_ca = argv[++i];
    } else if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      st_cli_usage("verify: unknown option %s", argv[i]);
      goto done;
    } else if (!path) {
      path = argv[i];
    } else {
      st_cli_usage("verify: unexpected argument '%s'", argv[i]);
      goto done;
    }
  }
  if (!path) {
    st_cli_usage("usage: stella verify BUNDLE.tgz|PROOF.json [--key PUB.pem ...] "
                 "[--tsa-ca CA.pem] [--json]");
    goto done;
  }
  if (tsa_ca) {
    if (st_cli_read_file(tsa_ca, 1 << 20, &ca))
      goto done;
    trust.tsa_ca_pem = ca.data;
    trust.tsa_ca_len = ca.len;
  }
  if (!(f = fopen(path, "rb"))) {
    st_cli_usage("verify: %s: cannot open", path);
    goto done;
  }
  if (fread(&first, 1, 1, f) != 1)
    first = 0;
  fclose(f);
  if (first == '{') {
    if (st_cli_read_file(path, ST_BUNDLE_PROOF_CONTENT_MAX * 2, &proof))
      goto done;
    vrc = st_bundle_proof_verify(proof.data, proof.len, &trust, &rep, &err);
  } else {
    vrc = st_bundle_verify(path, &trust, &rep, &err);
  }
  if (vrc && vrc != ST_EVERIFY) {
    st_cli_usage("verify: %s", st_error_text(&err));
    goto done;
  }
  if (json) {
    if (st_bundle_report_json(&rep, &js) || st_buf_addc(&js, '\n')) {
      st_cli_usage("verify: out of memory");
      goto done;
    }
    fputs(js.data, stdout);
  } else {
    print_text(&rep, path);
  }
  if (!vrc && want_kind && strcmp(rep.kind.data, want_kind)) {
    fprintf(stderr, "stella: verify: FAILED: kind %s, expected %s\n", rep.kind.data, want_kind);
    rc = ST_EXIT_FAIL;
  } else if (vrc) {
    fprintf(stderr, "stella: verify: FAILED: %s\n", st_error_text(&err));
    rc = ST_EXIT_FAIL;
  } else {
    rc = ST_EXIT_OK;
  }
done:
  for (size_t i = 0; i < trust.nkeys; i++)
    st_pubkey_free(keys[i]);
  st_bundle_report_release(&rep);
  st_buf_release(&ca);
  st_buf_release(&proof);
  st_buf_release(&js);
  return rc;
}
