/* oci_internal.h: pieces shared by the OCI layout writer, reader and registry client. */
#ifndef STELLA_OCI_INTERNAL_H
#define STELLA_OCI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "stella/oci.h"
#include "stella/sha256.h"

#define ST__OCI_CHUNK ((size_t)64 * 1024)

/* "sha256:<hex>" of a raw digest. */
void st__oci_digest_str(const uint8_t d[ST_SHA256_LEN], char out[ST_OCI_DIGEST_LEN + 1]);

/* Whether mt is an OCI or Docker manifest or index media type. */
int st__oci_is_manifest_type(const char *mt);

/* NULL if p[0..len) is a clean relative path over [A-Za-z0-9._-/] (no empty, "." or
 * ".." component, at most 1024 bytes), else a static reason. */
const char *st__oci_path_problem(const char *p, size_t len);

/* Read a whole regular file (not a link) of at most max bytes into *out (NUL-terminated,
 * st_free it). */
int st__oci_read_file(const char *path, size_t max, char **out, size_t *len, st_error_t *err)
    ST_MUST_CHECK;

#endif
