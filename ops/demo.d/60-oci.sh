# ops/demo.d/60-oci.sh: OCI distribution (sourced by ops/demo.sh; PATH and the services'
# STELLA_* are set there): a small sealed bundle built into an OCI artifact and pushed to
# the local registry, its DSSE envelope attached as a referrer and listed; then an
# air-gap bootstrap pack (an image made by hand as a docker-archive, plus a Helm chart)
# built, verified offline and loaded into the registry.
step "OCI: seal a small bundle, push it as an artifact with its DSSE envelope as a referrer"
OCI_TMP=$(mktemp -d)
OCI_HOST=${STELLA_REGISTRY_URL#http://}
OCI_REPO="demo/bundle-$(date +%s)"
stella key generate --type ed25519 -o "$OCI_TMP/k.pem" >/dev/null
mkdir "$OCI_TMP/in" && echo '{"finding":"CVE-2026-0001","status":"fixed"}' >"$OCI_TMP/in/finding.json"
stella bundle seal --kind evidence --key "$OCI_TMP/k.pem" -o "$OCI_TMP/evidence.tgz" "$OCI_TMP/in" >/dev/null
subject=$(stella oci artifact "$OCI_TMP/evidence.tgz" --artifact-type application/vnd.stella.bundle.v1+tar+gzip \
  --layer-type application/vnd.stella.bundle.v1+tar+gzip --tag v1 -o "$OCI_TMP/art")
stella oci push "$OCI_TMP/art" "$STELLA_REGISTRY_URL/$OCI_REPO:v1"
tar -xzOf "$OCI_TMP/evidence.tgz" manifest.dsse.json >"$OCI_TMP/manifest.dsse.json"
stella oci artifact "$OCI_TMP/manifest.dsse.json" --artifact-type application/vnd.dsse.envelope.v1+json \
  --layer-type application/vnd.dsse.envelope.v1+json --subject "$subject" \
  --subject-size "$(stat -c %s "$OCI_TMP/art/blobs/sha256/${subject#sha256:}")" -o "$OCI_TMP/att" >/dev/null
stella oci push "$OCI_TMP/att" "$STELLA_REGISTRY_URL/$OCI_REPO" | head -1

step "OCI: stella oci referrers (the DSSE envelope is found through the tag-schema fallback)"
stella oci referrers "$STELLA_REGISTRY_URL/$OCI_REPO@$subject" | jq -c '.manifests[] | {digest, artifactType}'

step "OCI: a bootstrap pack (hand-made docker-archive image + Helm chart), verified offline, loaded"
(
  cd "$OCI_TMP"
  mkdir -p rootfs/etc da chart/demo/templates && echo "hello" >rootfs/etc/motd
  tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -C rootfs -cf layer.tar etc
  diff_id=$(sha256sum layer.tar | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_id" >cfg.json
  cfg=$(sha256sum cfg.json | cut -d' ' -f1)
  mkdir "da/$diff_id" && cp layer.tar "da/$diff_id/" && cp cfg.json "da/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["demo/app:1.0"],"Layers":["%s/layer.tar"]}]' "$cfg" "$diff_id" >da/manifest.json
  tar -C da -cf app.tar manifest.json "$cfg.json" "$diff_id"
  printf 'apiVersion: v2\nname: demo\nversion: 0.1.0\n' >chart/demo/Chart.yaml
  echo 'kind: ConfigMap' >chart/demo/templates/cm.yaml
  tar -C chart -czf demo-0.1.0.tgz demo
)
stella export bootstrap --docker-archive "$OCI_TMP/app.tar" --chart "$OCI_TMP/demo-0.1.0.tgz" \
  --key "$OCI_TMP/k.pem" -o "$OCI_TMP/pack.tgz"
stella bootstrap verify "$OCI_TMP/pack.tgz" --key "$OCI_TMP/k.pub.pem" | tail -3
stella bootstrap load "$OCI_TMP/pack.tgz" --key "$OCI_TMP/k.pub.pem" --to "$STELLA_REGISTRY_URL/demo-air" | grep '^pushed'
skopeo inspect --raw --tls-verify=false --creds "$STELLA_REGISTRY_USER:$STELLA_REGISTRY_PASS" \
  "docker://$OCI_HOST/demo-air/charts/demo:0.1.0" | jq -c '{config: .config.mediaType, layer: .layers[0].mediaType}'
rm -rf "$OCI_TMP"
