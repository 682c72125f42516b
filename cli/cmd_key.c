/* cmd_key.c: `stella key generate` and `stella key id`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stella/keys.h"
#include "stella/mem.h"

static int key_generate(int argc, char **argv) {
  const char *type_s = NULL, *out = NULL;
  char *pub = NULL;
  st_key_type type;
  st_error_t err = ST_ERROR_INIT;
  size_t n;
  int rc, i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
      type_s = argv[++i];
    else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
      out = argv[++i];
    else
      return st_cli_usage("key generate: unexpected argument '%s'", argv[i]);
  }
  if (!type_s || !out)
    return st_cli_usage("usage: stella key generate --type ed25519|p256 -o KEY.pem");
  if (st_key_type_parse(type_s, &type))
    return st_cli_usage("key generate: --type must be ed25519 or p256, not '%s'", type_s);
  /* KEY.pem -> KEY.pub.pem; any other name gets .pub.pem appended. */
  n = strlen(out);
  if (n > 4 && strcmp(out + n - 4, ".pem") == 0)
    n -= 4;
  if (!(pub = st_malloc(n + sizeof(".pub.pem")))) {
    fprintf(stderr, "stella: out of memory\n");
    return ST_EXIT_USAGE;
  }
  memcpy(pub, out, n);
  memcpy(pub + n, ".pub.pem", sizeof(".pub.pem"));
  rc = st_key_generate(type, out, pub, &err);
  if (rc)
    fprintf(stderr, "stella: key generate: %s\n", st_error_text(&err));
  else
    printf("private key: %s\npublic key:  %s\n", out, pub);
  st_free(pub);
  return rc ? ST_EXIT_USAGE : ST_EXIT_OK;
}

static int key_id(int argc, char **argv) {
  st_pubkey_t *k = NULL;
  st_error_t err = ST_ERROR_INIT;

  if (argc != 2)
    return st_cli_usage("usage: stella key id PUB.pem");
  if (st_pubkey_load(&k, argv[1], &err)) {
    fprintf(stderr, "stella: key id: %s\n", st_error_text(&err));
    return ST_EXIT_USAGE;
  }
  printf("%s\n", st_pubkey_keyid(k));
  st_pubkey_free(k);
  return ST_EXIT_OK;
}

int st_cmd_key(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "generate") == 0)
    return key_generate(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "id") == 0)
    return key_id(argc - 1, argv + 1);
  return st_cli_usage("usage: stella key generate --type ed25519|p256 -o KEY.pem | "
                      "stella key id PUB.pem");
}
