/* cmd_dsse.c: `stella dsse sign` and `stella dsse verify`: DSSE envelopes over a file,
 * with a key file or a pkcs11: URI (sign) and trusted public key PEMs (verify). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stella/dsse.h"
#include "stella/keys.h"
#include "stella/mem.h"

#define MAX_TRUSTED 16

static int dsse_sign(int argc, char **argv) {
  const char *key = NULL, *type = "application/vnd.in-toto+json", *out = NULL, *in = NULL;
  st_signer_t *s = NULL;
  st_buf_t payload = ST_BUF_INIT, env = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  int rc = ST_EXIT_USAGE, i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
      key = argv[++i];
    else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
      type = argv[++i];
    else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
      out = argv[++i];
    else if (!in)
      in = argv[i];
    else
      return st_cli_usage("dsse sign: unexpected argument '%s'", argv[i]);
  }
  if (!key || !in)
    return st_cli_usage("usage: stella dsse sign --key KEY.pem|pkcs11:URI [--type T] "
                        "[-o OUT] FILE");
  if (st_cli_read_file(in, ST_DSSE_ENVELOPE_MAX / 2, &payload))
    goto done;
  if (st_signer_open(&s, key, &err) ||
      st_dsse_sign(s, type, payload.data, payload.len, &env, &err)) {
    fprintf(stderr, "stella: dsse sign: %s\n", st_error_text(&err));
    goto done;
  }
  if (st_buf_addc(&env, '\n') == 0)
    rc = st_cli_write_file(out, env.data, env.len);
done:
  st_signer_free(s);
  st_buf_release(&payload);
  st_buf_release(&env);
  return rc;
}

static int dsse_verify(int argc, char **argv) {
  const char *type = NULL, *out = NULL, *in = NULL;
  st_pubkey_t *keys[MAX_TRUSTED] = {0};
  st_buf_t env = ST_BUF_INIT, ptype = ST_BUF_INIT, payload = ST_BUF_INIT;
  st_error_t err = ST_ERROR_INIT;
  size_t nkeys = 0, which = 0, k;
  int rc = ST_EXIT_USAGE, i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
      if (nkeys == MAX_TRUSTED) {
        rc = st_cli_usage("dsse verify: at most %d --key", MAX_TRUSTED);
        goto done;
      }
      if (st_pubkey_load(&keys[nkeys], argv[++i], &err)) {
        fprintf(stderr, "stella: dsse verify: %s\n", st_error_text(&err));
        goto done;
      }
      nkeys++;
    } else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
      type = argv[++i];
    } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      out = argv[++i];
    } else if (!in) {
      in = argv[i];
    } else {
      rc = st_cli_usage("dsse verify: unexpected argument '%s'", argv[i]);
      goto done;
    }
  }
  if (!nkeys || !in) {
    rc = st_cli_usage("usage: stella dsse verify --key PUB.pem [--key ...] [--type T] "
                      "[-o PAYLOAD] ENVELOPE");
    goto done;
  }
  if (st_cli_read_file(in, ST_DSSE_ENVELOPE_MAX, &env))
    goto done;
  if (st_dsse_verify(env.data, env.len, (const st_pubkey_t *const *)keys, nkeys, type,
                     &ptype, &payload, &which, &err)) {
    fprintf(stderr, "stella: dsse verify: FAILED: %s\n", st_error_text(&err));
    rc = ST_EXIT_FAIL;
    goto done;
  }
  fprintf(stderr, "verified: payloadType %s, signed by %s\n", ptype.data,
          st_pubkey_keyid(keys[which]));
  rc = out ? st_cli_write_file(out, payload.data, payload.len) : ST_EXIT_OK;
done:
  for (k = 0; k < nkeys; k++)
    st_pubkey_free(keys[k]);
  st_buf_release(&env);
  st_buf_release(&ptype);
  st_buf_release(&payload);
  return rc;
}

int st_cmd_dsse(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "sign") == 0)
    return dsse_sign(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "verify") == 0)
    return dsse_verify(argc - 1, argv + 1);
  return st_cli_usage("usage: stella dsse sign|verify ... (see stella dsse sign)");
}
