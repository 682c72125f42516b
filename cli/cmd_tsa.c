/* cmd_tsa.c: `stella tsa stamp|verify|certs`: RFC 3161 timestamps by hand (stella/tsa.h).
 *
 *   stella tsa stamp --tsa URL [--ca-file PEM] [--policy OID] FILE -o OUT.tsr
 *   stella tsa verify --tsa-ca CA.pem [--chain PEM] --data FILE IN.tsr
 *   stella tsa certs IN.tsr            (PEM of the certificates in the token, signer first)
 *
 * stamp and verify print what the response says (genTime, serial, policy, TSA name, nonce);
 * verify exits 1 with the reason when a check fails. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stella/buf.h"
#include "stella/tsa.h"

#define FILE_MAX ((size_t)64 * 1024 * 1024) /* data to stamp: bundles stamp 64-byte signatures */

static void print_info(const st_tsa_info_t *info) {
  printf("genTime: %s (%lld)\nserial: %s\npolicy: %s\ntsa: %s\nnonce: %s\n",
         info->gen_time_text.data, (long long)info->gen_time, info->serial_hex.data,
         info->policy_oid.data, info->tsa_name.len ? info->tsa_name.data : "(none)",
         info->nonce_hex.len ? info->nonce_hex.data : "(none)");
}

static int tsa_stamp(int argc, char **argv) {
  st_tsa_opts_t opts = {0};
  const char *file = NULL, *out = NULL;
  st_buf_t data = ST_BUF_INIT, resp = ST_BUF_INIT;
  st_tsa_info_t info;
  st_error_t err = ST_ERROR_INIT;
  int rc;

  st_tsa_info_init(&info);
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--tsa") == 0 && v)
      opts.url = v, i++;
    else if (strcmp(argv[i], "--ca-file") == 0 && v)
      opts.ca_file = v, i++;
    else if (strcmp(argv[i], "--policy") == 0 && v)
      opts.policy_oid = v, i++;
    else if (strcmp(argv[i], "-o") == 0 && v)
      out = v, i++;
    else if (argv[i][0] != '-' && !file)
      file = argv[i];
    else {
      rc = st_cli_usage("tsa stamp: unexpected '%s'", argv[i]);
      goto done;
    }
  }
  if (!opts.url || !file || !out) {
    rc = st_cli_usage("usage: stella tsa stamp --tsa URL [--ca-file PEM] [--policy OID] "
                      "FILE -o OUT.tsr");
    goto done;
  }
  if ((rc = st_cli_read_file(file, FILE_MAX, &data)))
    goto done;
  if (st_tsa_stamp(&opts, data.data, data.len, &resp, &info, &err)) {
    fprintf(stderr, "stella: tsa stamp: %s\n", st_error_text(&err));
    rc = err.code == ST_EVERIFY ? ST_EXIT_FAIL : ST_EXIT_USAGE;
    goto done;
  }
  if ((rc = st_cli_write_file(out, resp.data, resp.len)))
    goto done;
  print_info(&info);
done:
  st_tsa_info_release(&info);
  st_buf_release(&resp);
  st_buf_release(&data);
  return rc;
}

static int tsa_verify(int argc, char **argv) {
  const char *ca = NULL, *chain = NULL, *file = NULL, *tsr = NULL;
  st_buf_t ca_pem = ST_BUF_INIT, chain_pem = ST_BUF_INIT, data = ST_BUF_INIT,
           resp = ST_BUF_INIT;
  st_tsa_info_t info;
  st_error_t err = ST_ERROR_INIT;
  int rc;

  st_tsa_info_init(&info);
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--tsa-ca") == 0 && v)
      ca = v, i++;
    else if (strcmp(argv[i], "--chain") == 0 && v)
      chain = v, i++;
    else if (strcmp(argv[i], "--data") == 0 && v)
      file = v, i++;
    else if (argv[i][0] != '-' && !tsr)
      tsr = argv[i];
    else {
      rc = st_cli_usage("tsa verify: unexpected '%s'", argv[i]);
      goto done;
    }
  }
  if (!ca || !file || !tsr) {
    rc = st_cli_usage("usage: stella tsa verify --tsa-ca CA.pem [--chain PEM] --data FILE "
                      "IN.tsr");
    goto done;
  }
  if ((rc = st_cli_read_file(ca, 1024 * 1024, &ca_pem)) ||
      (chain && (rc = st_cli_read_file(chain, 1024 * 1024, &chain_pem))) ||
      (rc = st_cli_read_file(file, FILE_MAX, &data)) ||
      (rc = st_cli_read_file(tsr, ST_TSA_MAX_RESPONSE, &resp)))
    goto done;
  if (st_tsa_verify(resp.data, resp.len, data.data, data.len, ca_pem.data, ca_pem.len,
                    chain_pem.data, chain_pem.len, &info, &err)) {
    printf("timestamp: fail (%s): %s\n", st_tsa_reason_text(info.reason),
           st_error_text(&err));
    rc = err.code == ST_EVERIFY || err.code == ST_EPARSE || err.code == ST_ETOOBIG
             ? ST_EXIT_FAIL
             : ST_EXIT_USAGE;
    goto done;
  }
  printf("timestamp: ok\n");
  print_info(&info);
done:
  st_tsa_info_release(&info);
  st_buf_release(&resp);
  st_buf_release(&data);
  st_buf_release(&chain_pem);
  st_buf_release(&ca_pem);
  return rc;
}

static int tsa_certs(int argc, char **argv) {
  st_buf_t resp = ST_BUF_INIT, pem = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  size_t count = 0;
  int rc;

  if (argc != 2)
    return st_cli_usage("usage: stella tsa certs IN.tsr");
  if ((rc = st_cli_read_file(argv[1], ST_TSA_MAX_RESPONSE, &resp)))
    goto done;
  if (st_tsa_certs_pem(resp.data, resp.len, &pem, &count, &err)) {
    fprintf(stderr, "stella: tsa certs: %s\n", st_error_text(&err));
    rc = ST_EXIT_FAIL;
    goto done;
  }
  if (count == 0)
    fprintf(stderr, "stella: tsa certs: the token carries no certificates\n");
  fwrite(pem.data, 1, pem.len, stdout);
done:
  st_buf_release(&pem);
  st_buf_release(&resp);
  return rc;
}

int st_cmd_tsa(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "stamp") == 0)
    return tsa_stamp(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "verify") == 0)
    return tsa_verify(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "certs") == 0)
    return tsa_certs(argc - 1, argv + 1);
  return st_cli_usage("usage: stella tsa stamp|verify|certs ... (RFC 3161 timestamps)");
}
