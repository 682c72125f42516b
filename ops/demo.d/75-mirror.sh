# ops/demo.d/75-mirror.sh: a full mirror bundle and a delta from the ledger fixtures,
# imported into a tree on the "air-gapped" side, checked by stella and by a TUF client
# (tuf-js), and a delta refused on the wrong base (sourced by ops/demo.sh: PATH, ROOT).
mir=$(mktemp -d)
stella key generate --type ed25519 -o "$mir/k.pem" >/dev/null
mkdir -p "$mir/t0" && cp "$ROOT"/tests/fixtures/ledger/osv/STELLA-{NPM,PYPI,MVN,GO}-000*.json \
  "$ROOT/tests/fixtures/ledger/vex/"*.json "$mir/t0/"
cp -r "$mir/t0" "$mir/t1" && cp "$ROOT/tests/fixtures/ledger/osv/STELLA-GO-0010.json" "$mir/t1/"
step "stella mirror build: full(T0), then a delta T0->T1 against T0's state (one advisory added)"
stella mirror build --from "$mir/t0" -o "$mir/full0.tgz" --key "$mir/k.pem" \
  --issued "$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)" --state-out "$mir/state0"
stella mirror build --from "$mir/t1" -o "$mir/delta01.tgz" --key "$mir/k.pem" --base "$mir/state0"
ls -l "$mir"/*.tgz | awk '{ print $5, $9 }'
step "stella mirror import: full, then the delta (built beside the tree, swapped in)"
stella mirror import "$mir/full0.tgz" --into "$mir/mirror" --key "$mir/k.pub.pem"
stella mirror import "$mir/delta01.tgz" --into "$mir/mirror" --key "$mir/k.pub.pem"
find "$mir/mirror" -maxdepth 2 -not -path '*/blobs/*' | sed "s|$mir/||" | sort
step "stella mirror verify, and a TUF client (tuf-js) refreshing from the tree"
stella mirror verify "$mir/mirror" --key "$mir/k.pub.pem"
if [ -d "$ROOT/tests/e2e/node_modules/tuf-js" ]; then
  mkdir "$mir/client" && cp "$mir/mirror/tuf/root.json" "$mir/client/"
  node "$ROOT/tests/e2e/mirror_tuf.mjs" update "$mir/mirror" "$mir/client"
fi
step "the same delta again: refused (wrong base), the tree unchanged"
stella mirror import "$mir/delta01.tgz" --into "$mir/mirror" --key "$mir/k.pub.pem" || true
rm -rf "$mir"
