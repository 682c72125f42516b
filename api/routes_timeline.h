/* routes_timeline.h: GET /timeline, /timeline/{id}, /timeline/{id}/evidence
 * (routes_timeline.c). State: the cursor HMAC key (owned, wiped on free). The routes use
 * the API's pool (st_api_db), which must outlive the state. */
#ifndef STELLA_API_ROUTES_TIMELINE_H
#define STELLA_API_ROUTES_TIMELINE_H

#include "api.h"

typedef struct st__timeline_api_s st__timeline_api_t;

int st__timeline_routes(st_api_t *api, const st_config_t *cfg, st__timeline_api_t **out,
                        st_error_t *err) ST_MUST_CHECK;
/* NULL ok. */
void st__timeline_routes_free(st__timeline_api_t *tl);

#endif
