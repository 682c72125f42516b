/* routes_evidence_export.h: POST /evidence/{id}/export (routes_evidence_export.c),
 * registered by routes_evidence.c with the locker it opened. */
#ifndef STELLA_ROUTES_EVIDENCE_EXPORT_H
#define STELLA_ROUTES_EVIDENCE_EXPORT_H

#include "api.h"
#include "stella/evidence.h"

/* Add the route; ev is borrowed and must outlive the server. */
int st__evidence_export_routes(st_api_t *api, st_evidence_t *ev, st_error_t *err);

#endif
