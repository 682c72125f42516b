#!/usr/bin/env bash
# oci_bootstrap.sh: air-gap bootstrap packs checked with tools nobody here wrote (skopeo,
# umoci, GNU tar, sha256sum) against ops/services.sh's registry:
#  1. Fixtures made here without docker or helm: a docker-archive built by hand
#     (manifest.json + config + a real layer tar), the same image as an OCI layout via
#     `skopeo copy docker-archive: oci:`, a Helm chart .tgz (Chart.yaml + templates/).
#  2. `stella export bootstrap` packs them; `stella bootstrap verify` passes; the layout
#     inside the pack (plain tar) is read by umoci, which unpacks the image rootless and
#     finds the layer's file; skopeo reads the same layout.
#  3. `stella bootstrap load` pushes every image and chart with its tags; `skopeo inspect
#     --raw docker://…` returns manifests with the digests in the pack; the chart has
#     Helm's config and content media types; a second load uploads nothing.
#  4. Tampering is refused and nothing is pushed: a changed blob, a changed index.json,
#     an added payload file (each re-packed with GNU tar), the wrong key; bad charts
#     (no Chart.yaml, apiVersion v1, a name with '/') are refused at pack time.
set -euo pipefail

if [ -z "${STELLA_REGISTRY_URL:-}" ]; then
  if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    echo "STELLA_REGISTRY_URL not set" >&2; exit 1; fi
  echo "skipping: STELLA_REGISTRY_URL not set (run through ops/test.sh)" >&2; exit 77
fi
for t in skopeo umoci jq; do
  command -v "$t" >/dev/null || { echo "skipping: $t missing (ops/deps.sh)" >&2; exit 77; }
done
STELLA="${STELLA_BIN_DIR:?}/bin/stella"
REG="$STELLA_REGISTRY_URL"
HOSTPORT=${REG#http://}
CREDS="$STELLA_REGISTRY_USER:$STELLA_REGISTRY_PASS"
unset STELLA_REGISTRY_USER STELLA_REGISTRY_PASS STELLA_TSA_URL
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
prefix="air-$(date +%s%N)"

# 1. fixtures
mkdir -p rootfs/etc && echo "hello from a bootstrap pack" >rootfs/etc/motd
tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -C rootfs -cf layer.tar etc
diff_id=$(sha256sum layer.tar | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"oci_bootstrap.sh"}]}' \
  "$diff_id" >config.json
cfg=$(sha256sum config.json | cut -d' ' -f1)
mkdir -p da/"$diff_id" && cp config.json "da/$cfg.json" && cp layer.tar "da/$diff_id/layer.tar"
printf '[{"Config":"%s.json","RepoTags":["stella/app:1.0"],"Layers":["%s/layer.tar"]}]' "$cfg" "$diff_id" >da/manifest.json
tar --format=ustar -C da -cf app.tar manifest.json "$cfg.json" "$diff_id"
skopeo copy -q docker-archive:app.tar oci:tools:2.0 || fail "skopeo cannot read the hand-made docker-archive"
mkchart() { # DIR NAME VERSION APIVERSION
  mkdir -p "$1/templates"
  printf 'apiVersion: %s\nname: %s\nversion: "%s"\ndescription: e2e chart\n' "$4" "$2" "$3" >"$1/Chart.yaml"
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n' >"$1/templates/cm.yaml"
}
mkchart c1/web web 0.3.1+build.7 v2
tar --format=ustar -C c1 -czf web-0.3.1.tgz web
"$STELLA" key generate --type ed25519 -o k.pem >/dev/null
"$STELLA" key generate --type ed25519 -o other.pem >/dev/null

# 2. pack, verify, umoci
"$STELLA" export bootstrap --image tools --docker-archive app.tar --chart web-0.3.1.tgz \
  --key k.pem -o pack.tgz >pack.txt || fail "pack failed"
grep -q '3 images/charts' pack.txt || fail "pack: $(cat pack.txt)"
"$STELLA" bootstrap verify pack.tgz --key k.pub.pem >verify.txt || fail "verify: $(cat verify.txt)"
grep -q 'pass      kind       kind bootstrap' verify.txt || fail "kind rule did not run: $(cat verify.txt)"
grep -q '3 images/charts, 9 blobs verified' verify.txt || fail "layout walk: $(cat verify.txt)"
mkdir x && tar -xzf pack.tgz -C x
layout=x/payload/oci
umoci ls --layout "$layout" | sort >tags.txt
printf 'charts/web:0.3.1_build.7\nstella/app:1.0\ntools:2.0\n' | cmp -s - tags.txt || fail "umoci tags: $(cat tags.txt)"
umoci unpack --rootless --image "$layout:stella/app:1.0" unpacked >/dev/null || fail "umoci unpack"
grep -qx "hello from a bootstrap pack" unpacked/rootfs/etc/motd || fail "unpacked rootfs lacks the layer's file"
skopeo inspect "oci:$layout:tools:2.0" | jq -e '.Os == "linux" and (.Layers | length) == 1' >/dev/null ||
  fail "skopeo cannot read the image in the pack"
digest_of() { jq -r --arg r "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' "$layout/index.json"; }

# 3. load into the registry
"$STELLA" bootstrap load pack.tgz --key k.pub.pem --to "$REG/$prefix" --creds "$CREDS" >load.txt ||
  fail "load: $(cat load.txt)"
for r in tools:2.0 stella/app:1.0 charts/web:0.3.1_build.7; do
  skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HOSTPORT/$prefix/$r" >got.json ||
    fail "registry lacks $r"
  [ "sha256:$(sha256sum <got.json | cut -d' ' -f1)" = "$(digest_of "$r")" ] || fail "$r: another digest"
done
jq -e '.config.mediaType == "application/vnd.cncf.helm.config.v1+json" and
       .layers[0].mediaType == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"' got.json >/dev/null ||
  fail "chart media types"
skopeo copy -q --src-tls-verify=false --src-creds "$CREDS" "docker://$HOSTPORT/$prefix/charts/web:0.3.1_build.7" \
  oci:chartback:1 && cmp -s "chartback/blobs/sha256/$(jq -r '.layers[0].digest' got.json | cut -d: -f2)" web-0.3.1.tgz ||
  fail "the chart layer is not the chart .tgz"
"$STELLA" bootstrap load pack.tgz --key k.pub.pem --to "$REG/$prefix" --creds "$CREDS" >load2.txt
grep -q 'blobs: 0 uploaded' load2.txt || fail "second load uploaded: $(cat load2.txt)"

# 4. tampering and bad input
repack() { (cd "$1" && tar --format=ustar -czf ../"$2" *); }
refused() { # PACK WHAT
  if "$STELLA" bootstrap load "$1" --key k.pub.pem --to "$REG/$prefix-bad" --creds "$CREDS" >bad.txt 2>&1; then
    fail "$2 was accepted"
  fi
  grep -q 'nothing pushed' bad.txt || fail "$2: $(cat bad.txt)"
  if skopeo inspect --raw --tls-verify=false --creds "$CREDS" "docker://$HOSTPORT/$prefix-bad/tools:2.0" >/dev/null 2>&1; then
    fail "$2: something was pushed"
  fi
}
cp -r x t1 && blob=$(jq -r '.layers[0].digest' got.json | cut -d: -f2)
printf 'X' | dd of="t1/payload/oci/blobs/sha256/$blob" bs=1 seek=10 conv=notrunc 2>/dev/null
repack t1 t1.tgz && refused t1.tgz "a changed blob"
cp -r x t2 && jq -c '.manifests |= reverse' "$layout/index.json" >t2/payload/oci/index.json
repack t2 t2.tgz && refused t2.tgz "a changed index.json"
cp -r x t3 && echo extra >"t3/payload/oci/blobs/sha256/$(printf extra | sha256sum | cut -d' ' -f1)"
repack t3 t3.tgz && refused t3.tgz "an added blob"
if "$STELLA" bootstrap verify pack.tgz --key other.pub.pem >/dev/null 2>&1; then fail "wrong key accepted"; fi
mkchart c2/old old 1.0.0 v1 && tar -C c2 -czf old.tgz old
mkchart c3/ok ok 1.0.0 v2 && sed -i 's/^name: ok/name: a\/b/' c3/ok/Chart.yaml && tar -C c3 -czf slash.tgz ok
mkdir -p c4/none/templates && echo x >c4/none/templates/a.yaml && tar -C c4 -czf none.tgz none
for c in old.tgz:apiVersion slash.tgz:name none.tgz:Chart.yaml; do
  if "$STELLA" export bootstrap --chart "${c%%:*}" --key k.pem -o bad.tgz 2>err.txt; then fail "chart ${c%%:*} accepted"; fi
  grep -q "${c#*:}" err.txt || fail "chart ${c%%:*}: $(cat err.txt)"
done
[ ! -e bad.tgz ] || fail "a refused pack left a file"
echo "ok: bootstrap packs: docker-archive/layout/chart, verify, umoci, load, tamper refused"
