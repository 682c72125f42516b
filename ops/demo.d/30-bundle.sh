# ops/demo.d/30-bundle.sh: seal, verify, tamper (sourced by ops/demo.sh).
DEMO_B=$(mktemp -d)
step "bundle: seal three files with an Ed25519 key and the local TSA"
stella key generate --type ed25519 -o "$DEMO_B/signer.pem" >/dev/null
mkdir -p "$DEMO_B/case-42/logs"
printf 'incident notes\n' >"$DEMO_B/case-42/notes.txt"
printf '{"finding":"CVE-2024-0001","severity":"high"}\n' >"$DEMO_B/case-42/finding.json"
printf 'login failed for root\n' >"$DEMO_B/case-42/logs/auth.log"
tsa_args=()
[ -n "${STELLA_TSA_URL:-}" ] && tsa_args=(--tsa "$STELLA_TSA_URL" --tsa-ca "$STELLA_TSA_CA")
stella bundle seal --kind evidence --key "$DEMO_B/signer.pem" "${tsa_args[@]}" \
  --meta case=42 -o "$DEMO_B/case-42.tgz" "$DEMO_B/case-42"
tar -tzf "$DEMO_B/case-42.tgz"

step "bundle: stella verify (trusted key from outside the bundle, TSA CA)"
ca_args=()
[ -n "${STELLA_TSA_CA:-}" ] && ca_args=(--tsa-ca "$STELLA_TSA_CA")
stella verify "$DEMO_B/case-42.tgz" --key "$DEMO_B/signer.pub.pem" "${ca_args[@]}"

step "bundle: without stella: sha256sum -c and the bundled verify.sh (sha256sum + openssl)"
mkdir "$DEMO_B/x" && tar -xzf "$DEMO_B/case-42.tgz" -C "$DEMO_B/x"
(cd "$DEMO_B/x" && sha256sum -c SHA256SUMS)
sh "$DEMO_B/x/verify.sh" "$DEMO_B/signer.pub.pem" "${STELLA_TSA_CA:-}"

step "bundle: prove one file to an auditor, verify the proof"
stella bundle prove "$DEMO_B/case-42.tgz" case-42/finding.json -o "$DEMO_B/proof.json"
stella verify "$DEMO_B/proof.json" --key "$DEMO_B/signer.pub.pem" "${ca_args[@]}"

step "bundle: tamper one byte of a copy and watch verification fail"
cp "$DEMO_B/case-42.tgz" "$DEMO_B/bad.tgz"
printf '\x01' | dd of="$DEMO_B/bad.tgz" bs=1 seek=4 conv=notrunc 2>/dev/null
if stella verify "$DEMO_B/bad.tgz" --key "$DEMO_B/signer.pub.pem"; then
  echo "tampered bundle accepted" >&2
  exit 1
fi
printf 'tampered' >>"$DEMO_B/x/payload/case-42/notes.txt"
if sh "$DEMO_B/x/verify.sh" "$DEMO_B/signer.pub.pem"; then
  echo "verify.sh accepted a tampered file" >&2
  exit 1
fi
rm -rf "$DEMO_B"
