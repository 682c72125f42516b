/* config.c: the table of configuration keys, file parsing, environment overrides and
 * validation. Add a key here and to docs/config.md; nothing else needs to change. */
#include "stella/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stella/mem.h"

#define LL_MAX 9223372036854775807LL

static const st_config_key_t keys[] = {
    {"pg_url", ST_CONFIG_STRING, NULL, 0, 0, "libpq connection string of the service role"},
    {"pg_maint_url", ST_CONFIG_STRING, NULL, 0, 0, "libpq connection string of stella_maint"},
    {"pg_admin_url", ST_CONFIG_STRING, NULL, 0, 0, "libpq connection string for migrations"},
    {"pg_pool_size", ST_CONFIG_INT, "4", 1, 256, "Postgres connections in the pool"},
    {"redis_url", ST_CONFIG_STRING, "redis://127.0.0.1:6379", 0, 0, "redis://host:port"},
    {"nats_url", ST_CONFIG_STRING, NULL, 0, 0, "nats://host:port (timeline ingest)"},
    {"timeline_cursor_key", ST_CONFIG_STRING, NULL, 0, 0, "HMAC key of timeline cursors"},
    {"roles", ST_CONFIG_STRING, "api,worker,scheduler", 0, 0, "stellad roles"},
    {"api_listen", ST_CONFIG_STRING, "127.0.0.1:8480", 0, 0, "HTTP listen address"},
    {"data_dir", ST_CONFIG_STRING, "var/data", 0, 0, "filesystem object store root"},
    {"objstore", ST_CONFIG_STRING, "fs", 0, 0, "object store backend: fs|s3"},
    {"s3_endpoint", ST_CONFIG_STRING, NULL, 0, 0, "S3 endpoint http(s)://host[:port]"},
    {"s3_region", ST_CONFIG_STRING, "us-east-1", 0, 0, "S3 region (SigV4 scope)"},
    {"s3_bucket", ST_CONFIG_STRING, NULL, 0, 0, "S3 bucket (path-style requests)"},
    {"s3_access_key", ST_CONFIG_STRING, NULL, 0, 0, "S3 access key id"},
    {"s3_secret_key", ST_CONFIG_STRING, NULL, 0, 0, "S3 secret access key"},
    {"s3_worm_mode", ST_CONFIG_STRING, "off", 0, 0, "Object Lock: off|GOVERNANCE|COMPLIANCE"},
    {"s3_ca_file", ST_CONFIG_STRING, NULL, 0, 0, "PEM CA bundle for an https endpoint"},
    {"log_level", ST_CONFIG_STRING, "info", 0, 0, "debug|info|warn|error"},
    {"worker_threads", ST_CONFIG_INT, "4", 1, 256, "worker pool size"},
    {"job_lease_ms", ST_CONFIG_INT, "30000", 100, 86400000, "reclaim idle jobs after"},
    {"job_max_attempts", ST_CONFIG_INT, "5", 1, 100, "attempts before dead-letter"},
    {"job_timeout_ms", ST_CONFIG_INT, "600000", 100, 86400000, "job run time limit"},
    {"job_backoff_base_ms", ST_CONFIG_INT, "1000", 1, 3600000, "first retry backoff ceiling"},
    {"job_backoff_cap_ms", ST_CONFIG_INT, "300000", 1, 86400000, "largest retry backoff"},
    {"ops_listen", ST_CONFIG_STRING, "127.0.0.1:8481", 0, 0, "stellad /healthz /readyz /metrics"},
    {"drain_timeout_ms", ST_CONFIG_INT, "10000", 0, 3600000, "SIGTERM drain limit"},
    {"max_envelope_bytes", ST_CONFIG_INT, "1048576", 256, 67108864, "envelope size cap"},
    {"job_max_deliveries", ST_CONFIG_INT, "10", 1, 1000000, "crash-loop guard: deliveries"},
    {"job_cancel_poll_ms", ST_CONFIG_INT, "1000", 50, 600000, "cancel request poll period"},
    {"outbox_relay", ST_CONFIG_BOOL, "true", 0, 0, "run the outbox relay (with pg_url)"},
    {"timeline_ingest", ST_CONFIG_BOOL, "true", 0, 0, "run the timeline ingester (worker, pg_url)"},
    {"timeline_claim_idle_ms", ST_CONFIG_INT, "60000", 100, 86400000, "take over idle entries after"},
    {"nats_stream", ST_CONFIG_STRING, "STELLA_EVENTS", 0, 0, "JetStream stream of timeline events"},
    {"nats_subject", ST_CONFIG_STRING, "stella.events.>", 0, 0, "subject filter of the consumer"},
    {"nats_durable", ST_CONFIG_STRING, "timeline", 0, 0, "durable pull consumer name"},
    {"nats_dlq_subject", ST_CONFIG_STRING, "stella.dlq.timeline", 0, 0, "poison events go here"},
    {"nats_ack_wait_ms", ST_CONFIG_INT, "30000", 100, 3600000, "redeliver un-acked after"},
    {"nats_max_ack_pending", ST_CONFIG_INT, "10000", 1, 1000000, "un-acked messages in flight"},
    {"outbox_poll_ms", ST_CONFIG_INT, "200", 10, 60000, "outbox relay idle poll period"},
    {"scheduler_tick_ms", ST_CONFIG_INT, "1000", 10, 60000, "scheduler evaluation period"},
    {"scheduler_catch_up", ST_CONFIG_STRING, "one", 0, 0, "missed ticks: none|one"},
    {"scheduler_test_seconds", ST_CONFIG_BOOL, "false", 0, 0, "TESTS ONLY: 6-field cron"},
    {"max_body_bytes", ST_CONFIG_INT, "1073741824", 1024, LL_MAX, "HTTP body cap"},
    {"signing_key", ST_CONFIG_STRING, NULL, 0, 0, "PEM private key or pkcs11: URI"},
    {"tsa_url", ST_CONFIG_STRING, NULL, 0, 0, "RFC 3161 TSA URL"},
    {"tsa_ca", ST_CONFIG_STRING, NULL, 0, 0, "PEM CA bundle trusted for TSA tokens"},
    {"jwt_hs256_secret", ST_CONFIG_STRING, NULL, 0, 0, "HS256 JWT secret"},
    {"jwt_es256_public_key", ST_CONFIG_STRING, NULL, 0, 0, "ES256 JWT public key PEM path"},
    {"jwt_es256_private_key", ST_CONFIG_STRING, NULL, 0, 0, "ES256 key for token mint"},
    {"jwt_leeway_s", ST_CONFIG_INT, "30", 0, 600, "clock skew allowed on exp/nbf/iat"},
    {"api_threads", ST_CONFIG_INT, "2", 1, 256, "HTTP server threads"},
    {"api_max_connections", ST_CONFIG_INT, "1024", 1, 1000000, "open HTTP connections"},
    {"api_max_connections_per_ip", ST_CONFIG_INT, "64", 1, 1000000, "connections per IP"},
    {"api_connection_timeout_s", ST_CONFIG_INT, "30", 1, 3600, "idle HTTP connection limit"},
    {"api_json_body_max", ST_CONFIG_INT, "1048576", 64, 67108864, "JSON request body cap"},
    {"api_rate_per_s", ST_CONFIG_INT, "100", 0, 1000000, "requests/s per tenant (0 = off)"},
    {"api_rate_burst", ST_CONFIG_INT, "200", 1, 1000000, "per-tenant burst"},
    {"api_openapi_spec", ST_CONFIG_STRING, NULL, 0, 0, "OpenAPI document served"},
    {"api_tmp_dir", ST_CONFIG_STRING, NULL, 0, 0, "directory for streamed uploads"},
    {"export_tmp_dir", ST_CONFIG_STRING, NULL, 0, 0, "export adapters' work files (/tmp)"},
    {"oci_source_dir", ST_CONFIG_STRING, NULL, 0, 0, "oci_distribute reads sources only here"},
    {"oci_trusted_key", ST_CONFIG_STRING, NULL, 0, 0, "PEM key bundles are verified under"},
    {"oci_docker_config", ST_CONFIG_STRING, NULL, 0, 0, "registry credentials (config.json)"},
    {"oci_ca_file", ST_CONFIG_STRING, NULL, 0, 0, "PEM CA bundle for https registries"},
    {"oci_chunk_size", ST_CONFIG_INT, "0", 0, LL_MAX, "registry upload chunk (0 = monolithic)"},
    {"export_max_active", ST_CONFIG_INT, "4", 1, 1000, "active export runs per tenant"},
    {"api_idempotency_ttl_s", ST_CONFIG_INT, "86400", 60, 31536000, "keep idempotent replies"},
    {"api_idempotency_inflight_s", ST_CONFIG_INT, "300", 1, 86400, "stale in-flight key expiry"},
    {"api_storage_quota_bytes", ST_CONFIG_INT, "0", 0, LL_MAX, "tenant storage (0 = unlimited)"},
    {"evidence_retention_days", ST_CONFIG_INT, "365", 1, 36500, "evidence kept (days) by default"},
    {"mirror_timestamp_ttl_s", ST_CONFIG_INT, "86400", 60, 31536000, "TUF timestamp expiry"},
    {"mirror_metadata_ttl_s", ST_CONFIG_INT, "2592000", 60, 315360000, "TUF snapshot/targets expiry"},
    {"mirror_root_ttl_s", ST_CONFIG_INT, "31536000", 3600, 3153600000LL, "TUF root expiry"},
    {"evidence_retention_kinds", ST_CONFIG_STRING, NULL, 0, 0,
     "per-kind evidence windows: kind=days[,kind=days]"},
    {"evidence_incident_extension_days", ST_CONFIG_INT, "90", 1, 36500,
     "incident mode: days added to evidence retention while active"},
    {"evidence_maint_interval_s", ST_CONFIG_INT, "3600", 0, 604800,
     "scheduler role: seconds between evidence pruner/checkpoint runs (0 = off)"},
    {NULL, ST_CONFIG_STRING, NULL, 0, 0, NULL},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]) - 1)

struct st_config_s {
  char *values[NKEYS];
};

const st_config_key_t *st_config_keys(void) { return keys; }

static int key_index(const char *name, size_t len) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
      return (int)i;
  return -1;
}

static int parse_bool(const char *v, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(v, yes[i]) == 0)
      return *out = 1, 0;
    if (strcasecmp(v, no[i]) == 0)
      return *out = 0, 0;
  }
  return ST_EINVAL;
}

static int validate(const st_config_key_t *k, const char *v, const char *where,
                    st_error_t *err) {
  if (k->type == ST_CONFIG_INT) {
    char *end;
    long long n;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v || *end)
      return st_fail(err, ST_ECONFIG, "%s: %s: expected an integer, got \"%s\"", where,
                     k->name, v);
    if (n < k->min || n > k->max)
      return st_fail(err, ST_ECONFIG, "%s: %s: %lld is outside [%lld, %lld]", where,
                     k->name, n, k->min, k->max);
  } else if (k->type == ST_CONFIG_BOOL) {
    int b;
    if (parse_bool(v, &b))
      return st_fail(err, ST_ECONFIG, "%s: %s: expected true or false, got \"%s\"", where,
                     k->name, v);
  } else if (strcmp(k->name, "log_level") == 0) {
    if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error"))
      return st_fail(err, ST_ECONFIG, "%s: log_level: expected debug|info|warn|error, got \"%s\"",
                     where, v);
  } else if (strcmp(k->name, "objstore") == 0) {
    if (strcmp(v, "fs") && strcmp(v, "s3"))
      return st_fail(err, ST_ECONFIG, "%s: objstore: expected fs or s3, got \"%s\"", where, v);
  } else if (strcmp(k->name, "s3_worm_mode") == 0) {
    if (strcmp(v, "off") && strcmp(v, "GOVERNANCE") && strcmp(v, "COMPLIANCE"))
      return st_fail(err, ST_ECONFIG,
                     "%s: s3_worm_mode: expected off, GOVERNANCE or COMPLIANCE, got \"%s\"",
                     where, v);
  }
  return 0;
}

static int assign(st_config_t *cfg, int idx, const char *v, const char *where,
                  st_error_t *err) {
  char *copy;
  int rc = validate(&keys[idx], v, where, err);
  if (rc)
    return rc;
  copy = st_strdup(v);
  if (!copy)
    return st_fail(err, ST_ENOMEM, "%s: %s: out of memory", where, keys[idx].name);
  st_free(cfg->values[idx]);
  cfg->values[idx] = copy;
  return 0;
}

static char *trim(char *s) {
  char *e;
  while (isspace((unsigned char)*s))
    s++;
  e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1]))
    *--e = '\0';
  return s;
}

static int load_file(st_config_t *cfg, const char *path, st_error_t *err) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int lineno = 0, rc = 0;

  if (!f)
    return st_fail(err, ST_EIO, "config %s: cannot open: %s", path, strerror(errno));
  while ((n = getline(&line, &cap, f)) >= 0) {
    char where[512], *s, *eq, *key;
    int idx;

    lineno++;
    snprintf(where, sizeof(where), "%s:%d", path, lineno);
    s = trim(line);
    if (*s == '\0' || *s == '#')
      continue;
    eq = strchr(s, '=');
    if (!eq) {
      rc = st_fail(err, ST_ECONFIG, "%s: expected key = value", where);
      break;
    }
    *eq = '\0';
    key = trim(s);
    idx = key_index(key, strlen(key));
    if (idx < 0) {
      rc = st_fail(err, ST_ECONFIG, "%s: %s: unknown key", where, key);
      break;
    }
    if ((rc = assign(cfg, idx, trim(eq + 1), where, err)))
      break;
  }
  free(line);
  fclose(f);
  return rc;
}

static int load_env(st_config_t *cfg, st_error_t *err) {
  for (size_t i = 0; i < NKEYS; i++) {
    char var[64] = "STELLA_";
    size_t j;
    const char *v;
    int rc;

    for (j = 0; keys[i].name[j] && j + 8 < sizeof(var); j++)
      var[7 + j] = (char)toupper((unsigned char)keys[i].name[j]);
    var[7 + j] = '\0';
    v = getenv(var);
    if (v && (rc = assign(cfg, (int)i, v, var, err)))
      return rc;
  }
  return 0;
}

int st_config_load(st_config_t **out, const char *path, st_error_t *err) {
  st_config_t *cfg = st_calloc(1, sizeof(*cfg));
  int rc = 0;

  *out = NULL;
  if (!cfg)
    return st_fail(err, ST_ENOMEM, "config: out of memory");
  for (size_t i = 0; i < NKEYS && !rc; i++)
    if (keys[i].def)
      rc = assign(cfg, (int)i, keys[i].def, "default", err);
  if (!path)
    path = getenv("STELLA_CONFIG");
  if (!rc && path && *path)
    rc = load_file(cfg, path, err);
  if (!rc)
    rc = load_env(cfg, err);
  if (rc) {
    st_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

void st_config_free(st_config_t *cfg) {
  if (!cfg)
    return;
  for (size_t i = 0; i < NKEYS; i++)
    st_free(cfg->values[i]);
  st_free(cfg);
}

const char *st_config_str(const st_config_t *cfg, const char *key) {
  int idx = key_index(key, strlen(key));
  return idx < 0 ? NULL : cfg->values[idx];
}

long long st_config_int(const st_config_t *cfg, const char *key) {
  const char *v = st_config_str(cfg, key);
  return v ? strtoll(v, NULL, 10) : 0;
}

int st_config_bool(const st_config_t *cfg, const char *key) {
  const char *v = st_config_str(cfg, key);
  int b = 0;
  if (v)
    parse_bool(v, &b);
  return b;
}

int st_config_set(st_config_t *cfg, const char *key, const char *value, st_error_t *err) {
  int idx = key_index(key, strlen(key));
  if (idx < 0)
    return st_fail(err, ST_ECONFIG, "%s: unknown key", key);
  return assign(cfg, idx, value, "flag", err);
}
