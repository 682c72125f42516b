#!/usr/bin/env bash
# bundle_interop.sh: sealed bundles checked by tools nobody here wrote.
#  - sha256sum -c SHA256SUMS; openssl pkeyutl -verify over the PAE rebuilt with printf;
#    Debian's securesystemslib over manifest.dsse.json; openssl ts -verify of manifest.tsr
#    against the services' TSA CA; @sigstore/verify over manifest.sigstore.json (key by hint,
#    TSA in a TrustedRoot; a tampered copy is rejected); the bundled verify.sh (passes, then
#    fails on a tampered copy, a foreign key and a foreign TSA CA).
#  - stella verify: foreign TSA CA, expired TSA (a second stella-test-tsa whose certificate
#    expired in 2021), wrong key, tampered .tgz, each failing with the check named; proofs.
#  - determinism: same inputs sealed twice (and from a copy with other mtimes) -> same sha256.
set -euo pipefail

if [ -z "${STELLA_TSA_URL:-}" ] || [ -z "${STELLA_TSA_CA:-}" ]; then
  if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    echo "STELLA_TSA_URL/STELLA_TSA_CA not set" >&2; exit 1; fi
  echo "skipping: STELLA_TSA_URL not set (run through ops/test.sh)" >&2; exit 77
fi
BIN=${STELLA_BIN_DIR:?}/bin
STELLA=$BIN/stella
SRC=${STELLA_SOURCE_DIR:?}
NODE_DIR=$SRC/tests/e2e
if [ ! -d "$NODE_DIR/node_modules/@sigstore/verify" ]; then
  bash "$SRC/ops/test-clients.sh" || { echo "npm clients missing (ops/test-clients.sh)"; exit 77; }
fi
T=$(mktemp -d)
TSA_PID=
cleanup() { [ -n "$TSA_PID" ] && kill "$TSA_PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
TSA_DIR=$(dirname "$STELLA_TSA_CA")

# expect_fail CHECK CMD...: stella verify exits 1 and names CHECK as failed.
expect_fail() {
  local check=$1 rc=0
  shift
  "$@" >out.txt 2>err.txt || rc=$?
  [ $rc = 1 ] || fail "$* exited $rc, want 1: $(cat err.txt)"
  grep -Eq "^fail +$check " out.txt || fail "$*: check $check not failed: $(cat out.txt)"
  grep -q "FAILED: .*$check check failed" err.txt || fail "$*: stderr does not name $check"
}

mkdir -p in/evidence/logs
printf 'alpha\n' >in/evidence/a.txt
printf '{"scanner":"x","findings":[1,2,3]}\n' >in/evidence/report.json
head -c 200000 /dev/urandom >in/evidence/logs/big.bin
printf 'spaces in the name\n' >"in/evidence/logs/with space.txt"
"$STELLA" key generate --type ed25519 -o signer.pem >/dev/null
"$STELLA" key generate --type p256 -o other.pem >/dev/null

# --- determinism ---
"$STELLA" bundle seal --kind evidence --key signer.pem --created 2025-01-02T03:04:05Z \
  --meta case=INC-7 -o d1.tgz in/evidence >/dev/null
cp -r in copy && touch -d '2001-02-03' copy/evidence/a.txt copy/evidence/logs/*
SOURCE_DATE_EPOCH=1735787045 "$STELLA" bundle seal --kind evidence --key signer.pem \
  --meta case=INC-7 -o d2.tgz copy/evidence >/dev/null
[ "$(sha256sum <d1.tgz)" = "$(sha256sum <d2.tgz)" ] || fail "same inputs, different bytes"
ok "determinism: same inputs (other mtimes, SOURCE_DATE_EPOCH) -> identical .tgz"

# --- a timestamped bundle, checked by outside tools ---
"$STELLA" bundle seal --kind evidence --key signer.pem --tsa "$STELLA_TSA_URL" \
  --tsa-ca "$STELLA_TSA_CA" --meta case=INC-7 -o b.tgz in/evidence >seal.txt
grep -q timestamped seal.txt || fail "seal did not timestamp: $(cat seal.txt)"
gzip -t b.tgz && tar -tzf b.tgz >list.txt || fail "gzip/tar reject the bundle"
mkdir x && tar -xzf b.tgz -C x
(cd x && sha256sum --strict -c SHA256SUMS >/dev/null) || fail "sha256sum -c SHA256SUMS"
[ "$(grep -c . x/SHA256SUMS)" = "$(find x -type f ! -name SHA256SUMS | wc -l)" ] ||
  fail "SHA256SUMS does not list every other file"
ok "gzip -t, tar -t and sha256sum -c SHA256SUMS accept the bundle"

python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(e["payload"]); print(e["signatures"][0]["sig"])' \
  x/manifest.dsse.json >fields
sed -n 1p fields | base64 -d >stmt.json
sed -n 2p fields | base64 -d >sig.bin
{ printf 'DSSEv1 %d %s %d ' 28 application/vnd.in-toto+json "$(stat -c %s stmt.json)"; cat stmt.json; } >pae.bin
openssl pkeyutl -verify -pubin -inkey x/keys/signer.pub.pem -rawin -in pae.bin -sigfile sig.bin \
  >/dev/null || fail "openssl pkeyutl rejects the DSSE signature"
cmp -s x/keys/signer.pub.pem signer.pub.pem || fail "keys/signer.pub.pem is not the signer's key"
ok "openssl pkeyutl verifies the signature over the PAE"

python3 - x stmt.json <<'PY' || fail "statement does not bind manifest.json and the entries"
import hashlib, json, sys
d, st = sys.argv[1], json.load(open(sys.argv[2]))
man = open(d + "/manifest.json", "rb").read()
m = json.loads(man)
subj = {s["name"]: s["digest"]["sha256"] for s in st["subject"]}
assert st["predicateType"] == "https://stella.dev/bundle/v1"
assert subj.pop("manifest.json") == hashlib.sha256(man).hexdigest()
for e in m["entries"]:
    assert subj.pop(e["path"]) == e["sha256"] == hashlib.sha256(open(d + "/" + e["path"], "rb").read()).hexdigest()
assert not subj
assert st["predicate"]["merkleRoot"] == m["merkle"]["root"]
assert json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == man
PY
ok "python: statement subjects = manifest.json + every entry (sha256), manifest is sorted compact JSON"

/usr/bin/python3 "$SRC/tests/e2e/dsse_verify_sslib.py" x/manifest.dsse.json signer.pub.pem >/dev/null ||
  fail "securesystemslib rejects manifest.dsse.json"
ok "securesystemslib verifies manifest.dsse.json"

openssl ts -verify -data sig.bin -in x/manifest.tsr -CAfile "$STELLA_TSA_CA" \
  -untrusted x/keys/tsa-chain.pem 2>/dev/null | grep -q 'Verification: OK' ||
  fail "openssl ts -verify rejects manifest.tsr"
ok "openssl ts -verify accepts manifest.tsr (imprint = raw signature) against the TSA CA"

node "$NODE_DIR/bundle_sigstore_verify.mjs" x/manifest.sigstore.json signer.pub.pem \
  "$TSA_DIR/tsa.pem" "$STELLA_TSA_CA" >/dev/null || fail "@sigstore/verify rejects the bundle"
sed 's/"payload":"eyJf/"payload":"eyJm/' x/manifest.sigstore.json >bad.sigstore.json
cmp -s bad.sigstore.json x/manifest.sigstore.json && fail "sigstore tamper edit did nothing"
if node "$NODE_DIR/bundle_sigstore_verify.mjs" bad.sigstore.json signer.pub.pem \
  "$TSA_DIR/tsa.pem" "$STELLA_TSA_CA" >node.txt; then fail "@sigstore/verify accepts tampering"; fi
grep -q SIGNATURE_ERROR node.txt || fail "sigstore tamper reason: $(cat node.txt)"
ok "@sigstore/verify verifies manifest.sigstore.json and rejects a tampered copy"

# --- verify.sh ---
sh x/verify.sh signer.pub.pem "$STELLA_TSA_CA" >vsh.txt || fail "verify.sh: $(cat vsh.txt)"
[ "$(grep -c '^PASS' vsh.txt)" = 6 ] || fail "verify.sh ran fewer checks: $(cat vsh.txt)"
sh x/verify.sh >vsh.txt || fail "verify.sh without a key: $(cat vsh.txt)"
grep -q 'NOT who signed them' vsh.txt || fail "verify.sh does not warn about the bundled key"
if sh x/verify.sh other.pub.pem >vsh.txt; then fail "verify.sh accepts a foreign key"; fi
grep -q '^FAIL  signature' vsh.txt || fail "verify.sh foreign key: $(cat vsh.txt)"
bash "$SRC/ops/tsa/gen-test-pki.sh" foreign "Foreign" >/dev/null 2>&1
if sh x/verify.sh signer.pub.pem foreign/ca.pem >vsh.txt; then fail "verify.sh accepts a foreign TSA CA"; fi
grep -q '^FAIL  timestamp' vsh.txt || fail "verify.sh foreign TSA: $(cat vsh.txt)"
for victim in payload/evidence/a.txt manifest.json SHA256SUMS; do
  rm -rf y && cp -r x y
  printf 'X' >>"y/$victim"
  if sh y/verify.sh signer.pub.pem >vsh.txt; then fail "verify.sh accepts tampered $victim"; fi
done
rm -rf y && cp -r x y && printf 'x' >y/payload/evidence/extra.txt
(cd y && sha256sum payload/evidence/extra.txt >>SHA256SUMS)
if sh y/verify.sh signer.pub.pem >vsh.txt; then fail "verify.sh accepts an extra payload file"; fi
grep -q '^FAIL  entries' vsh.txt || fail "verify.sh extra file: $(cat vsh.txt)"
"$STELLA" bundle seal --kind export --key other.pem -o p256.tgz in/evidence >/dev/null
mkdir p && tar -xzf p256.tgz -C p
sh p/verify.sh other.pub.pem >vsh.txt || fail "verify.sh on a P-256 bundle: $(cat vsh.txt)"
"$STELLA" verify p256.tgz --key other.pub.pem >/dev/null || fail "stella verify P-256"
ok "verify.sh passes (Ed25519, P-256); fails on tampering, an extra file, a foreign key or TSA; warns without a key"

# --- stella verify ---
"$STELLA" verify b.tgz --key signer.pub.pem --tsa-ca "$STELLA_TSA_CA" >out.txt || fail "stella verify"
grep -Eq '^pass +timestamp ' out.txt || fail "timestamp not passed: $(cat out.txt)"
"$STELLA" verify b.tgz --key signer.pub.pem --json | python3 -c \
  'import json,sys; r=json.load(sys.stdin); assert r["ok"] and {c["name"]: c["status"] for c in r["checks"]}["timestamp"] == "untrusted"' ||
  fail "--json without --tsa-ca"
expect_fail timestamp "$STELLA" verify b.tgz --key signer.pub.pem --tsa-ca foreign/ca.pem
expect_fail timestamp "$STELLA" verify d1.tgz --key signer.pub.pem --tsa-ca "$STELLA_TSA_CA"
expect_fail signature "$STELLA" verify b.tgz --key other.pub.pem
expect_fail signature "$STELLA" verify b.tgz
cp b.tgz t.tgz && printf '\x01' | dd of=t.tgz bs=1 seek=6 conv=notrunc 2>/dev/null
expect_fail archive "$STELLA" verify t.tgz --key signer.pub.pem
rc=0; "$STELLA" verify missing.tgz --key signer.pub.pem >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "missing file exit $rc, want 2"
ok "stella verify: foreign TSA CA, no timestamp, wrong key, no key, tampered gzip header -> 1 naming the check; I/O -> 2"

# --- an expired TSA: a second stella-test-tsa whose certificate expired in 2021 ---
mkdir -p old/db && touch old/db/index.txt && echo 01 >old/db/serial
cat >old/ca.cnf <<'CNF'
[ca]
default_ca = d
[d]
database = old/db/index.txt
serial = old/db/serial
new_certs_dir = old/db
default_md = sha256
policy = p
x509_extensions = tsa
[p]
commonName = supplied
[tsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
[req]
distinguished_name = dn
[dn]
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout old/tsa.key \
  -out old/tsa.csr -subj "/CN=Expired TSA" -config old/ca.cnf 2>/dev/null
openssl ca -batch -config old/ca.cnf -cert foreign/ca.pem -keyfile foreign/ca.key -in old/tsa.csr \
  -out old/tsa.pem -startdate 20200101000000Z -enddate 20210101000000Z -notext >/dev/null 2>&1
port=$((20000 + RANDOM % 20000))
"$BIN/stella-test-tsa" --port $port --cert old/tsa.pem --key old/tsa.key --chain foreign/ca.pem \
  >old/log 2>&1 &
TSA_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$STELLA" bundle seal --kind evidence --key signer.pem --tsa "http://127.0.0.1:$port/" \
  -o old.tgz in/evidence >/dev/null || fail "seal with the expired TSA: $(cat old/log)"
expect_fail timestamp "$STELLA" verify old.tgz --key signer.pub.pem --tsa-ca foreign/ca.pem
grep -q 'untrusted signer' out.txt || fail "expired TSA reason: $(grep timestamp out.txt)"
ok "stella verify: a token from an expired TSA certificate fails the timestamp check"

# --- proofs ---
"$STELLA" bundle prove b.tgz evidence/report.json -o proof.json
grep -q '"path":"payload/evidence/report.json"' proof.json || fail "proof entry"
grep -q 'a.txt' proof.json && fail "proof discloses another entry's name in clear"
"$STELLA" verify proof.json --key signer.pub.pem --tsa-ca "$STELLA_TSA_CA" >out.txt ||
  fail "proof verify: $(cat out.txt)"
python3 -c 'import json,sys; p=json.load(open("proof.json")); p["content"]="eHh4"; json.dump(p,open("bad.json","w"))'
expect_fail content "$STELLA" verify bad.json --key signer.pub.pem
expect_fail signature "$STELLA" verify proof.json --key other.pub.pem
"$STELLA" bundle seal --kind evidence --key signer.pem --private -o priv.tgz in/evidence >/dev/null
"$STELLA" bundle prove priv.tgz evidence/report.json -o pproof.json
python3 -c 'import json,sys,base64; p=json.load(open("pproof.json")); s=base64.b64decode(p["envelope"]["payload"]); assert b"a.txt" not in s and b"report.json" not in s' ||
  fail "private statement names entries"
"$STELLA" verify pproof.json --key signer.pub.pem >/dev/null || fail "private proof"
ok "proofs: verify with the TSA CA; tampered content / wrong key fail; private subjects disclose no names"
