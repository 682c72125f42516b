/* registry.c: the descriptor table of all typed workers (nginx's ngx_modules[]). */
#include "registry.h"

#include <string.h>

static const st_worker_t *const all[] = {
    &st_worker_probe,
    &st_worker_snapshot,
    &st_worker_export_json,
    &st_worker_mirror,
    &st_worker_oci_distribute,
    &st_worker_trivy_db,
    &st_worker_trivy_java_db,
    NULL,
};

const st_worker_t *const *st_workers_all(void) { return all; }

const st_worker_t *st_worker_find(const char *type) {
  for (const st_worker_t *const *w = all; *w; w++)
    if (!strcmp((*w)->name, type))
      return *w;
  return NULL;
}
