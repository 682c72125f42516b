/* registry.h: the table of every typed worker (workers/registry.c). Each worker folder
 * exports exactly one `const st_worker_t st_worker_<name>` declared here. Static data;
 * any thread. */
#ifndef STELLA_WORKERS_REGISTRY_H
#define STELLA_WORKERS_REGISTRY_H

#include "worker.h"

extern const st_worker_t st_worker_probe;
extern const st_worker_t st_worker_snapshot;
extern const st_worker_t st_worker_export_json;
extern const st_worker_t st_worker_mirror;
extern const st_worker_t st_worker_oci_distribute;
extern const st_worker_t st_worker_trivy_db;      /* workers/trivy: trivy:db runs */
extern const st_worker_t st_worker_trivy_java_db; /* workers/trivy: trivy:java-db runs */

/* NULL-terminated list of all workers. */
const st_worker_t *const *st_workers_all(void);
/* The worker for a job type, or NULL. */
const st_worker_t *st_worker_find(const char *type);

#endif
