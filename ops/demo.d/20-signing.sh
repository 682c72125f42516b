# ops/demo.d/20-signing.sh: keys and DSSE envelopes (sourced by ops/demo.sh).
DEMO_SIGN=$(mktemp -d)
step "signing: generate an Ed25519 key, print its keyid (= ssh-keygen -l)"
stella key generate --type ed25519 -o "$DEMO_SIGN/demo.pem"
stella key id "$DEMO_SIGN/demo.pub.pem"

step "signing: DSSE-sign an in-toto statement, verify it, then tamper and watch it fail"
printf '{"_type":"https://in-toto.io/Statement/v1"}' >"$DEMO_SIGN/stmt.json"
stella dsse sign --key "$DEMO_SIGN/demo.pem" -o "$DEMO_SIGN/stmt.dsse.json" "$DEMO_SIGN/stmt.json"
cat "$DEMO_SIGN/stmt.dsse.json"
stella dsse verify --key "$DEMO_SIGN/demo.pub.pem" --type application/vnd.in-toto+json \
  "$DEMO_SIGN/stmt.dsse.json"
sed 's/"payload":"eyJf/"payload":"eyJm/' "$DEMO_SIGN/stmt.dsse.json" >"$DEMO_SIGN/bad.json"
if stella dsse verify --key "$DEMO_SIGN/demo.pub.pem" "$DEMO_SIGN/bad.json"; then
  echo "tampered envelope accepted" >&2
  exit 1
fi
rm -rf "$DEMO_SIGN"
