/* db_internal.h: pieces shared by the db_*.c files (not a public header). */
#ifndef STELLA_DB_INTERNAL_H
#define STELLA_DB_INTERNAL_H

#include <pthread.h>

#include "stella/db.h"

/* Open one connection (connect_timeout 10 s unless conninfo says otherwise). NULL and
 * ST_EDBRETRY/ST_ENOMEM in err on failure. */
PGconn *st__db_connect(const char *conninfo, st_error_t *err);
/* Take a connection from the pool, opening one if a slot is free, else wait. */
int st__db_checkout(st_db_pool_t *pool, PGconn **out, st_error_t *err);
/* Give a connection back; a broken one or one stuck in a transaction is closed. */
void st__db_checkin(st_db_pool_t *pool, PGconn *c);
/* Reset a connection whose status is bad; 0 if it is usable afterwards. */
int st__db_revive(PGconn *c, st_error_t *err);

#endif
