/* config.h: configuration from a file and the environment.
 *
 * Keys are declared once in a table in config.c (name, type, default, bounds, help);
 * docs/config.md lists them. A value comes from, in rising precedence: the default,
 * the file (`key = value` lines, `#` comments), then the environment variable
 * STELLA_<KEY in upper case>. Every value is validated at load; an error names the
 * key and where the bad value came from ("config.conf:3: worker_threads: ...").
 * Unknown keys in a file are errors (a typo must not silently fall back to a default).
 *
 * Ownership: st_config_load allocates; st_config_free frees. Strings returned by the
 * getters live as long as the config. A loaded config is read-only and may be shared
 * by threads.
 */
#ifndef STELLA_CONFIG_H
#define STELLA_CONFIG_H

#include "stella/err.h"

typedef struct st_config_s st_config_t;

typedef enum st_config_type {
  ST_CONFIG_STRING,
  ST_CONFIG_INT,
  ST_CONFIG_BOOL,
} st_config_type;

typedef struct st_config_key_s {
  const char *name;
  st_config_type type;
  const char *def; /* default as text, NULL = unset */
  long long min, max; /* bounds for ST_CONFIG_INT */
  const char *help;
} st_config_key_t;

/* Load from path (NULL: the file named by $STELLA_CONFIG, or none) and the environment.
 * Errors: ST_ECONFIG with the key named, ST_EIO if the file cannot be read. */
int st_config_load(st_config_t **out, const char *path, st_error_t *err) ST_MUST_CHECK;
void st_config_free(st_config_t *cfg);

/* Value of a declared key, or NULL if unset. Asking for an undeclared key is a bug
 * and returns NULL. */
const char *st_config_str(const st_config_t *cfg, const char *key);
/* Integer value (validated at load); 0 if unset. */
long long st_config_int(const st_config_t *cfg, const char *key);
/* Boolean value (true/false/1/0/yes/no/on/off at load). */
int st_config_bool(const st_config_t *cfg, const char *key);
/* Set a value after load (CLI flags), validated like a loaded one. */
int st_config_set(st_config_t *cfg, const char *key, const char *value, st_error_t *err)
    ST_MUST_CHECK;

/* The declared keys, terminated by an entry with name NULL. */
const st_config_key_t *st_config_keys(void);

#endif
