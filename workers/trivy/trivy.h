/* trivy.h: the Trivy adapters (export kinds trivy:db and trivy:java-db): build the files
 * stock Trivy reads from a cache directory or pulls from a registry.
 *
 * Trivy DB v2 (st_trivy_db_*): OSV advisories in, `trivy.db` (bbolt, stella/bbolt.h),
 * `metadata.json` and `db.tar.gz` out. Mapping (docs/trivy.md has the full table):
 *   - language ecosystems go to "<eco>::<source name> <OSV ecosystem>" buckets (Trivy's
 *     ecosystem slugs: npm, pip, maven, go, cargo, rubygems, nuget, composer, julia,
 *     erlang, pub, swift, bitnami, k8s), package names normalised as trivy-db does, one
 *     {VendorIDs, VulnerableVersions, PatchedVersions} advisory per vulnerability id;
 *   - Debian:N, Alpine:vX.Y and Ubuntu:X.Y[:LTS] go to "debian N", "alpine X.Y" and
 *     "ubuntu X.Y" with {VendorIDs, FixedVersion} or, unfixed, {Status: 2 (affected)};
 *   - vulnerability ids as trivy-db's OSV sources choose them: the CVE aliases when there
 *     are any (the OSV id then joins VendorIDs), else the OSV id;
 *   - "vulnerability" holds {Title, Description, Severity, CweIDs, VendorSeverity,
 *     CVSS, References, PublishedDate, LastModifiedDate} per id, "data-source" one
 *     {ID, Name, URL} row per advisory bucket.
 * Two documents producing the same key: the one with the greater id wins (the order in
 * which trivy-db's own build would overwrite). Withdrawn advisories are left out.
 *
 * Passes: st_trivy_db_add validates and maps one document completely, then appends its
 * records (bucket path, key, value) to a sort buffer; a full buffer is sorted and spilled
 * to a run file in the scratch directory. st_trivy_db_finish merges the runs and streams
 * the records, in key order, into the bbolt writer. Memory: the sort buffer plus one
 * record per run, whatever the number of advisories.
 *
 * Trivy Java DB v1 (st_trivy_java_db_*): Maven artifact index rows in, `trivy-java.db`
 * (SQLite, trivy-java-db's tables and indexes), `metadata.json`, `javadb.tar.gz` out.
 *
 * Determinism: no wall clock. UpdatedAt is the option given, else the latest `modified`
 * among the documents added (1970-01-01T00:00:00Z when there are none); NextUpdate is
 * UpdatedAt + next_update_s; DownloadedAt = UpdatedAt; tar mtimes = UpdatedAt. Same
 * documents and options => byte-identical trivy.db, trivy-java.db and tarballs.
 *
 * Ownership: builders come from *_new and go back through *_free (which removes partial
 * output). Document and row texts are only read during the call.
 * Thread rules: one builder per thread at a time; distinct builders are independent.
 * Errors: a rejected document or row (ST_EINVAL, ST_EPARSE, ST_EUTF8, ST_EDEPTH,
 * ST_ERANGE, ST_ETOOBIG, ST_EUNSUPPORTED for an ecosystem Trivy has no bucket for) leaves
 * the builder as it was: the caller reports it and goes on. ST_EUNSUPPORTED from *_new
 * is an unknown schema version. ST_EIO / ST_ENOMEM leave the builder failed.
 */
#ifndef STELLA_WORKERS_TRIVY_H
#define STELLA_WORKERS_TRIVY_H

#include <stddef.h>
#include <stdint.h>

#include "stella/err.h"

#define ST_TRIVY_DB_SCHEMA 2
#define ST_TRIVY_JAVA_DB_SCHEMA 1
#define ST_TRIVY_DB_MEDIA_TYPE "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
#define ST_TRIVY_JAVA_DB_MEDIA_TYPE "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"
#define ST_TRIVY_ARTIFACT_TYPE "application/vnd.aquasec.trivy.config.v1+json"
#define ST_TRIVY_SORT_MEM_DEFAULT ((size_t)32 << 20)

typedef struct st_trivy_opts_s {
  int schema_version;        /* 0 = the format's current one; any other value is refused */
  const char *updated_at;    /* RFC 3339; NULL = derived (see top) */
  int64_t next_update_s;     /* 0 = 86400 */
  const char *source_id;     /* data-source ID and VendorSeverity/CVSS key; NULL = "stella" */
  const char *source_name;   /* data-source Name prefix; NULL = "Stella Ledger" */
  const char *source_url;    /* data-source URL; NULL = none */
  const char *scratch_dir;   /* sort runs; NULL = the output directory */
  size_t sort_mem;           /* 0 = ST_TRIVY_SORT_MEM_DEFAULT; at least 64 KiB */
  int tgz_level;             /* 0 = ST_TGZ_LEVEL_DEFAULT */
} st_trivy_opts_t;

typedef struct st_trivy_result_s {
  uint64_t documents;   /* added (mapped) documents */
  uint64_t withdrawn;   /* skipped as withdrawn */
  uint64_t records;     /* keys written (duplicates resolved) */
  uint64_t duplicates;  /* records that lost to a greater document id */
  uint64_t runs;        /* sort runs spilled */
  char updated_at[32];  /* as written to metadata.json */
} st_trivy_result_t;

/* ---- Trivy DB v2 ---- */

typedef struct st_trivy_db_s st_trivy_db_t;

/* A builder writing into out_dir (created if missing). ST_EUNSUPPORTED for a schema
 * version other than 2, ST_EINVAL for a bad option (naming it), ST_EIO. */
int st_trivy_db_new(const char *out_dir, const st_trivy_opts_t *opts, st_trivy_db_t **out,
                    st_error_t *err) ST_MUST_CHECK;
/* Validate and map one OSV document (JSON text). Each id should be added once. A
 * withdrawn advisory returns 0 and is counted, not mapped. */
int st_trivy_db_add(st_trivy_db_t *b, const char *json, size_t len, st_error_t *err)
    ST_MUST_CHECK;
/* Write trivy.db, metadata.json and db.tar.gz (each published atomically). res may be
 * NULL. The builder is spent afterwards either way. */
int st_trivy_db_finish(st_trivy_db_t *b, st_trivy_result_t *res, st_error_t *err)
    ST_MUST_CHECK;
void st_trivy_db_free(st_trivy_db_t *b);

/* ---- Trivy Java DB v1 ---- */

typedef struct st_trivy_java_db_s st_trivy_java_db_t;

/* One Maven index row. archive_type is "jar" or "aar"; sha1 40 hex digits. */
typedef struct st_trivy_maven_row_s {
  const char *group_id, *artifact_id, *version, *sha1, *archive_type;
} st_trivy_maven_row_t;

/* Check a row (each field named in the error); 0 if Trivy's index can hold it. */
int st_trivy_maven_row_check(const st_trivy_maven_row_t *r, st_error_t *err) ST_MUST_CHECK;

int st_trivy_java_db_new(const char *out_dir, const st_trivy_opts_t *opts,
                         st_trivy_java_db_t **out, st_error_t *err) ST_MUST_CHECK;
/* Add one row (checked first; a reject changes nothing). `modified` (RFC 3339, may be
 * NULL) feeds the derived UpdatedAt. */
int st_trivy_java_db_add(st_trivy_java_db_t *b, const st_trivy_maven_row_t *r,
                         const char *modified, st_error_t *err) ST_MUST_CHECK;
/* Rows are inserted in (group, artifact, version, sha1) order whatever the add order; a
 * sha1 seen twice keeps its first row in that order (trivy-java-db's ON CONFLICT DO
 * NOTHING); res->duplicates counts the others. Then VACUUM, metadata.json, javadb.tar.gz. */
int st_trivy_java_db_finish(st_trivy_java_db_t *b, st_trivy_result_t *res, st_error_t *err)
    ST_MUST_CHECK;
void st_trivy_java_db_free(st_trivy_java_db_t *b);

/* Parse a Maven index CSV line set (docs/trivy.md: header
 * "group_id,artifact_id,version,sha1,archive_type", then one row per line) and add every
 * row; rejected rows are passed to on_reject (line number, error) and skipped. Returns 0,
 * or ST_EPARSE for a missing header, ST_EIO. *added / *rejected count rows. */
int st_trivy_java_db_add_csv(st_trivy_java_db_t *b, const char *path,
                             void (*on_reject)(void *ud, size_t line, const st_error_t *e),
                             void *ud, uint64_t *added, uint64_t *rejected, st_error_t *err)
    ST_MUST_CHECK;

/* ---- Packaging ---- */

/* An OCI image layout at out_dir with one manifest: artifactType
 * ST_TRIVY_ARTIFACT_TYPE, the empty config (application/vnd.oci.empty.v1+json), one layer
 * `tarball` of `layer_media_type` annotated org.opencontainers.image.title = its base
 * name; index.json lists it under `tag` (Trivy pulls "2" and the Java DB "1"). digest
 * gets the manifest's "sha256:<hex>". */
int st_trivy_oci_layout(const char *tarball, const char *layer_media_type, const char *tag,
                        const char *out_dir, char digest[72], st_error_t *err) ST_MUST_CHECK;

/* The same layout written as a directory (out_dir, may be NULL) and/or as an oci-archive
 * tar (archive, may be NULL; every header's mtime = mtime), e.g. for the OCI distributor
 * (`oci_distribute` with "layout"). */
int st_trivy_oci_write(const char *tarball, const char *layer_media_type, const char *tag,
                       const char *out_dir, const char *archive, int64_t mtime,
                       char digest[72], st_error_t *err) ST_MUST_CHECK;

/* ---- Export Center runs (trivy_export.c; job types trivy_db, trivy_java_db) ---- */

struct st_export_env_s;
/* Build export run run_id of tenant (profile kind trivy:db or trivy:java-db; docs/trivy.md,
 * "Export profiles"): plan (or check the recorded plan), feed the ledger's advisories or
 * Maven rows to the builder (a rejected document is logged, listed in the bundle's
 * rejects.ndjson and skipped), write the OCI layout, seal it as an export bundle, publish
 * export.tgz with its detached signature files and the oci-archive `<db|java-db>.oci.tar`,
 * and move the run to built and distributed. A re-delivered job of a built run only
 * distributes. Errors: ST_ECANCELED, ST_ECONFLICT (the ledger changed since planning),
 * ST_EUNSUPPORTED (another profile kind), export.h's, bundle.h's, the builders'. */
int st_trivy_export_run(const struct st_export_env_s *env, const char *tenant,
                        const char *run_id, st_error_t *err) ST_MUST_CHECK;

#endif
