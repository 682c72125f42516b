/* trivy_pack.c: the OCI image layout Trivy pulls its databases from (what aquasecurity's
 * own publishing does with `oras push --artifact-type application/vnd.aquasec.trivy.
 * config.v1+json db.tar.gz:<layer media type>`): one manifest, the empty config, one
 * layer titled with the tarball's name. */
#include <libgen.h>
#include <string.h>

#include "stella/mem.h"
#include "stella/oci.h"
#include "trivy.h"

int st_trivy_oci_layout(const char *tarball, const char *layer_media_type, const char *tag,
                        const char *out_dir, char digest[72], st_error_t *err) {
  return st_trivy_oci_write(tarball, layer_media_type, tag, out_dir, NULL, 0, digest, err);
}

int st_trivy_oci_write(const char *tarball, const char *layer_media_type, const char *tag,
                       const char *out_dir, const char *archive, int64_t mtime,
                       char digest[72], st_error_t *err) {
  st_oci_layout_t *l = NULL;
  st_oci_desc_t config = {0}, layer = {0}, man = {0};
  char *copy = st_strdup(tarball);
  int rc;

  if (!copy) {
    rc = st_fail(err, ST_ENOMEM, "trivy oci");
    goto done;
  }
  if ((rc = st_oci_layout_new(&l, err)) || (rc = st_oci_layout_add_empty(l, &config, err)) ||
      (rc = st_oci_layout_add_file(l, tarball, layer_media_type, &layer, err)) ||
      (rc = st_oci_desc_annotate(&layer, ST_OCI_ANN_TITLE, basename(copy), err)))
    goto done;
  {
    st_oci_manifest_t m = {.artifact_type = ST_TRIVY_ARTIFACT_TYPE, .config = &config,
                           .layers = &layer, .nlayers = 1};
    if ((rc = st_oci_layout_add_manifest(l, &m, &man, err)) ||
        (rc = st_oci_layout_tag(l, &man, tag, err)) ||
        (out_dir && (rc = st_oci_layout_write_dir(l, out_dir, err))) ||
        (archive && (rc = st_oci_layout_write_tar(l, archive, mtime, err))))
      goto done;
  }
  memcpy(digest, man.digest, ST_OCI_DIGEST_LEN + 1);
done:
  st_oci_desc_release(&config);
  st_oci_desc_release(&layer);
  st_oci_desc_release(&man);
  st_oci_layout_free(l);
  st_free(copy);
  return rc;
}
