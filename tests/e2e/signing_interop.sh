#!/usr/bin/env bash
# signing_interop.sh: keys and DSSE envelopes made by stella, checked by tools nobody here
# wrote: ssh-keygen (keyids), openssl pkeyutl (signatures over the PAE bytes built here
# with printf from the spec), Debian's securesystemslib (whole envelopes), and a SoftHSM2
# token driven by pkcs11-tool/softhsm2-util (PKCS#11 signing, verified by openssl).
set -euo pipefail

BIN=${STELLA_BIN_DIR:?}/bin/stella
SRC=${STELLA_SOURCE_DIR:?}
MODULE=/usr/lib/softhsm/libsofthsm2.so
for tool in openssl ssh-keygen softhsm2-util pkcs11-tool xxd; do
  command -v "$tool" >/dev/null || { echo "missing $tool (ops/deps.sh)"; exit 77; }
done
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
# SoftHSM 2.6.1 leaks inside its EdDSA C_SignInit; nothing of ours is suppressed.
echo "leak:libsofthsm2.so" >lsan.supp
export LSAN_OPTIONS="suppressions=$T/lsan.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:fast_unwind_on_malloc=0"

fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
TYPE=application/vnd.in-toto+json

# PAE per the DSSE spec, from the envelope, with printf (no stella code involved).
pae_of() { # envelope -> pae file, sig file
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["payload"]); print(e["signatures"][0]["sig"])' \
    "$1" >fields
  sed -n 1p fields | base64 -d >body
  sed -n 2p fields | base64 -d >"$3"
  local type
  type=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["payloadType"])' "$1")
  { printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(stat -c %s body)"; cat body; } >"$2"
}

# openssl verification of envelope $1 with public key $2 (ed25519|p256 in $3).
openssl_verify() {
  local digest=()
  [ "$3" = p256 ] && digest=(-digest sha256)
  pae_of "$1" pae.bin sig.bin
  openssl pkeyutl -verify -pubin -inkey "$2" -rawin "${digest[@]}" -in pae.bin -sigfile sig.bin \
    >/dev/null || fail "openssl rejects $3 signature in $1"
  printf 'x' >>pae.bin
  if openssl pkeyutl -verify -pubin -inkey "$2" -rawin "${digest[@]}" -in pae.bin \
    -sigfile sig.bin >/dev/null 2>&1; then fail "openssl accepts a tampered PAE"; fi
}

ssh_fingerprint() { # SPKI PEM -> SHA256:... as ssh-keygen computes it
  if [ "$2" = p256 ]; then
    ssh-keygen -i -m PKCS8 -f "$1" >key.ssh
  else
    # ssh-keygen 9.2 cannot import Ed25519 PKCS#8: write the ssh-ed25519 line from the raw key.
    openssl pkey -pubin -in "$1" -outform DER | tail -c 32 >raw
    { printf '\0\0\0\013ssh-ed25519\0\0\0\040'; cat raw; } | base64 -w0 | sed 's/^/ssh-ed25519 /' >key.ssh
  fi
  ssh-keygen -l -f key.ssh | awk '{print $2}'
}

printf '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"%064d"}}]}' 0 >stmt.json

for kt in ed25519 p256; do
  "$BIN" key generate --type $kt -o $kt.pem >/dev/null
  [ "$(stat -c %a $kt.pem)" = 600 ] || fail "$kt.pem mode is not 0600"
  grep -q 'BEGIN PRIVATE KEY' $kt.pem || fail "$kt.pem is not PKCS#8"
  openssl pkey -in $kt.pem -pubout | cmp -s - $kt.pub.pem || fail "$kt.pub.pem is not the public half"
  sum=$(sha256sum $kt.pem)
  if "$BIN" key generate --type $kt -o $kt.pem 2>err; then fail "overwrote $kt.pem"; fi
  grep -q "already exists" err || fail "no reason given for refusing to overwrite"
  [ "$(sha256sum $kt.pem)" = "$sum" ] || fail "$kt.pem changed"
  ok "$kt: key generate (PKCS#8 0600, SPKI public, refuses overwrite)"

  [ "$("$BIN" key id $kt.pub.pem)" = "$(ssh_fingerprint $kt.pub.pem $kt)" ] || fail "$kt keyid != ssh-keygen"
  ok "$kt: keyid equals ssh-keygen -l"

  "$BIN" dsse sign --key $kt.pem --type $TYPE -o $kt.env.json stmt.json
  openssl_verify $kt.env.json $kt.pub.pem $kt
  ok "$kt: openssl pkeyutl verifies the DSSE signature over the PAE"

  /usr/bin/python3 "$SRC/tests/e2e/dsse_verify_sslib.py" $kt.env.json $kt.pub.pem >/dev/null ||
    fail "securesystemslib rejects the $kt envelope"
  sed 's/"payload":"eyJf/"payload":"eyJm/' $kt.env.json >$kt.bad.json
  cmp -s $kt.env.json $kt.bad.json && fail "tamper edit did nothing"
  if /usr/bin/python3 "$SRC/tests/e2e/dsse_verify_sslib.py" $kt.bad.json $kt.pub.pem >/dev/null; then
    fail "securesystemslib accepts a tampered $kt envelope"
  fi
  "$BIN" dsse verify --key $kt.pub.pem --type $TYPE -o out.json $kt.env.json 2>/dev/null
  cmp -s out.json stmt.json || fail "stella dsse verify returned a different payload"
  if "$BIN" dsse verify --key $kt.pub.pem $kt.bad.json 2>err; then fail "stella accepts tampering"; fi
  grep -q "bad signature" err || fail "tamper reason: $(cat err)"
  ok "$kt: securesystemslib and stella verify, both reject a tampered payload"
done
if "$BIN" dsse verify --key p256.pub.pem ed25519.env.json 2>err; then fail "wrong key accepted"; fi
grep -q "unknown key" err || fail "wrong-key reason: $(cat err)"
ok "wrong key rejected: $(sed 's/.*FAILED: //' err | cut -c1-40)..."

# --- PKCS#11 on a SoftHSM2 token in this temp dir ---
mkdir tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >softhsm2.conf
export SOFTHSM2_CONF=$T/softhsm2.conf
softhsm2-util --init-token --free --label e2e --so-pin 5678 --pin 1234 >/dev/null
P11=(pkcs11-tool --module $MODULE --token-label e2e --login --pin 1234)
"${P11[@]}" --keypairgen --key-type EC:prime256v1 --label gen-p256 --id 01 >/dev/null 2>&1
"${P11[@]}" --keypairgen --key-type EC:edwards25519 --label gen-ed --id 02 >/dev/null 2>&1
# An imported key: its public half is the openssl-written p256.pub.pem from above.
softhsm2-util --import p256.pem --token e2e --label imp-p256 --id 03 --pin 1234 >/dev/null

for case in gen-p256:p256 gen-ed:ed25519 imp-p256:p256; do
  label=${case%%:*} kt=${case##*:}
  if [ $label = imp-p256 ]; then
    cp p256.pub.pem tok.pub.pem
  else
    "${P11[@]}" --read-object --type pubkey --label $label -o tok.pub >/dev/null 2>&1
    openssl pkey -pubin -inform DER -in tok.pub -out tok.pub.pem 2>/dev/null ||
      openssl pkey -pubin -in tok.pub -out tok.pub.pem
  fi
  STELLA_PKCS11_PIN=1234 "$BIN" dsse sign --type $TYPE -o tok.env.json \
    --key "pkcs11:token=e2e;object=$label?module-path=$MODULE" stmt.json
  openssl_verify tok.env.json tok.pub.pem $kt
  /usr/bin/python3 "$SRC/tests/e2e/dsse_verify_sslib.py" tok.env.json tok.pub.pem >/dev/null ||
    fail "securesystemslib rejects the PKCS#11 $label envelope"
  grep -q "\"keyid\":\"$(ssh_fingerprint tok.pub.pem $kt)\"" tok.env.json ||
    fail "PKCS#11 $label envelope keyid is not the ssh-keygen fingerprint"
  ok "pkcs11 $label: signed on the token, verified by openssl and securesystemslib"
done
if "$BIN" dsse sign --key "pkcs11:token=e2e;object=gen-ed?module-path=$MODULE&pin-value=0000" \
  stmt.json >/dev/null 2>err; then fail "wrong PIN accepted"; fi
grep -q "login failed" err || fail "wrong-PIN reason: $(cat err)"
ok "pkcs11: wrong PIN refused"
echo "signing_interop: all passed"
