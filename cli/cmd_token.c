/* cmd_token.c: `stella token mint`: an API token signed with the configured key, for
 * operators and tests. ES256 when jwt_es256_private_key is set, else HS256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "stella/config.h"
#include "stella/jwt.h"
#include "stella/mem.h"

#define TTL_MAX (366LL * 86400)

static int parse_ttl(const char *s, long long *out) {
  char *end;
  long long n = strtoll(s, &end, 10), mul = 1;
  if (end == s || n <= 0)
    return -1;
  if (*end == 's')
    end++;
  else if (*end == 'm')
    mul = 60, end++;
  else if (*end == 'h')
    mul = 3600, end++;
  else if (*end == 'd')
    mul = 86400, end++;
  if (*end || n > TTL_MAX / mul)
    return -1;
  *out = n * mul;
  return 0;
}

static int mint(int argc, char **argv) {
  const char *tenant = NULL, *scope = "", *sub = NULL, *alg_name = NULL, *config = NULL;
  long long ttl = 3600, now = (long long)time(NULL);
  st_config_t *cfg = NULL;
  st_jwt_keys_t *keys = NULL;
  st_jwt_claims_t c = ST_JWT_CLAIMS_INIT;
  st_error_t err = ST_ERROR_INIT;
  st_jwt_alg alg;
  char *token = NULL;
  int rc = ST_EXIT_USAGE;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      return st_cli_usage("token mint: %s needs a value", a);
    if (strcmp(a, "--tenant") == 0)
      tenant = v;
    else if (strcmp(a, "--scope") == 0)
      scope = v;
    else if (strcmp(a, "--sub") == 0)
      sub = v;
    else if (strcmp(a, "--alg") == 0)
      alg_name = v;
    else if (strcmp(a, "--config") == 0)
      config = v;
    else if (strcmp(a, "--ttl") == 0) {
      if (parse_ttl(v, &ttl))
        return st_cli_usage("token mint: --ttl: expected N[s|m|h|d] up to 366d, got \"%s\"", v);
    } else
      return st_cli_usage("token mint: unknown option %s", a);
    i++;
  }
  if (!tenant)
    return st_cli_usage("usage: stella token mint --tenant T [--scope \"a b\"] [--ttl 1h] "
                        "[--sub actor] [--alg HS256|ES256] [--config FILE]");
  if (!st_jwt_tenant_valid(tenant))
    return st_cli_usage("token mint: --tenant: expected [A-Za-z0-9._-]{1,64}");
  if (st_config_load(&cfg, config, &err) || st_jwt_keys_from_config(&keys, cfg, &err)) {
    fprintf(stderr, "stella: token mint: %s\n", st_error_text(&err));
    goto done;
  }
  if (alg_name && strcmp(alg_name, "HS256") != 0 && strcmp(alg_name, "ES256") != 0) {
    rc = st_cli_usage("token mint: --alg: expected HS256 or ES256");
    goto done;
  }
  alg = alg_name ? (strcmp(alg_name, "ES256") == 0 ? ST_JWT_ES256 : ST_JWT_HS256)
                 : (st_jwt_keys_can_sign(keys, ST_JWT_ES256) ? ST_JWT_ES256 : ST_JWT_HS256);
  c.tenant = (char *)tenant;
  c.scope = (char *)scope;
  c.sub = (char *)sub;
  c.iat = now;
  c.exp = now + ttl;
  if (st_jwt_sign(keys, alg, &c, &token, &err)) {
    fprintf(stderr, "stella: token mint: %s\n", st_error_text(&err));
    rc = err.code == ST_EINVAL ? ST_EXIT_USAGE : ST_EXIT_FAIL;
    goto done;
  }
  printf("%s\n", token);
  rc = ST_EXIT_OK;
done:
  st_free(token);
  st_jwt_keys_free(keys);
  st_config_free(cfg);
  return rc;
}

int st_cmd_token(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "mint") == 0)
    return mint(argc - 1, argv + 1);
  return st_cli_usage("usage: stella token mint --tenant T [--scope \"...\"] [--ttl 1h] "
                      "[--sub actor]");
}
