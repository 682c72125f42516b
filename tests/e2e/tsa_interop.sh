#!/usr/bin/env bash
# tsa_interop.sh: RFC 3161 interop between stella and the openssl CLI.
#  1. `stella tsa stamp` gets a token from the running stella-test-tsa ($STELLA_TSA_URL,
#     started by ops/services.sh); `openssl ts -verify` accepts it with the TSA CA and the
#     certificates `stella tsa certs` extracted; `openssl ts -reply -text` shows our nonce.
#  2. `stella tsa verify` accepts it, and refuses other data and a foreign CA.
#  3. A response made by `openssl ts -reply -config` (a TSA nobody here wrote) is accepted by
#     `stella tsa verify`, and a truncated copy is refused.
set -euo pipefail

if [ -z "${STELLA_TSA_URL:-}" ] || [ -z "${STELLA_TSA_CA:-}" ]; then
  if [ "${CI:-}" = true ] || [ "${STELLA_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
    echo "STELLA_TSA_URL/STELLA_TSA_CA not set" >&2; exit 1; fi
  echo "skipping: STELLA_TSA_URL not set (run through ops/test.sh)" >&2; exit 77
fi
STELLA="${STELLA_BIN_DIR:?}/bin/stella"
SRC="${STELLA_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

head -c 64 /dev/urandom >sig.bin # stands in for raw DSSE signature bytes
printf 'not the signature' >other.bin

# 1. stella client -> stella-test-tsa -> openssl verifier
"$STELLA" tsa stamp --tsa "$STELLA_TSA_URL" sig.bin -o out.tsr >stamp.txt
nonce=$(sed -n 's/^nonce: //p' stamp.txt)
[ -n "$nonce" ] || fail "stamp printed no nonce"
"$STELLA" tsa certs out.tsr >token-certs.pem
[ "$(grep -c 'BEGIN CERTIFICATE' token-certs.pem)" -ge 1 ] || fail "no certificates extracted"
openssl x509 -in token-certs.pem -noout -ext extendedKeyUsage | grep -q 'Time Stamping' ||
  fail "first extracted certificate is not the TSA signer"
openssl ts -verify -data sig.bin -in out.tsr -CAfile "$STELLA_TSA_CA" -untrusted token-certs.pem \
  2>/dev/null | grep -q 'Verification: OK' || fail "openssl ts -verify refused our token"
openssl ts -reply -in out.tsr -text 2>/dev/null >reply.txt
want=$(echo "$nonce" | tr a-f A-F | sed 's/^0*//')
grep -Eq "^Nonce: 0x0*$want\$" reply.txt || fail "openssl shows another nonce than $nonce"
grep -q '^Hash Algorithm: sha256' reply.txt || fail "imprint is not sha256"
if openssl ts -verify -data other.bin -in out.tsr -CAfile "$STELLA_TSA_CA" >/dev/null 2>&1; then
  fail "openssl accepted the token for other data"
fi

# 2. stella verifier on the same token
"$STELLA" tsa verify --tsa-ca "$STELLA_TSA_CA" --data sig.bin out.tsr | grep -q '^timestamp: ok' ||
  fail "stella tsa verify refused a good token"
set +e
"$STELLA" tsa verify --tsa-ca "$STELLA_TSA_CA" --data other.bin out.tsr >v.txt; rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'imprint mismatch' v.txt || fail "other data: rc=$rc $(cat v.txt)"

# 3. openssl TSA -> stella verifier
bash "$SRC/ops/tsa/gen-test-pki.sh" "$tmp/pki" "Interop" >/dev/null
cat >tsa.cnf <<CNF
[tsa]
default_tsa = tsa_config1
[tsa_config1]
serial = $tmp/pki/serial
signer_cert = $tmp/pki/tsa.pem
certs = $tmp/pki/ca.pem
signer_key = $tmp/pki/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
CNF
echo 01 >"$tmp/pki/serial"
openssl ts -query -data sig.bin -sha256 -cert -out q.tsq 2>/dev/null
openssl ts -reply -config tsa.cnf -queryfile q.tsq -out ossl.tsr 2>/dev/null
"$STELLA" tsa verify --tsa-ca pki/ca.pem --data sig.bin ossl.tsr >v.txt || fail "$(cat v.txt)"
oserial=$(openssl ts -reply -in ossl.tsr -text 2>/dev/null | sed -n 's/^Serial number: 0x//p')
grep -qi "^serial: $oserial\$" v.txt || fail "serial $oserial not read: $(cat v.txt)"
set +e
"$STELLA" tsa verify --tsa-ca "$STELLA_TSA_CA" --data sig.bin ossl.tsr >v.txt; rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'untrusted signer' v.txt || fail "foreign CA: rc=$rc $(cat v.txt)"
head -c 200 ossl.tsr >trunc.tsr
set +e
"$STELLA" tsa verify --tsa-ca pki/ca.pem --data sig.bin trunc.tsr >v.txt; rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'malformed' v.txt || fail "truncated: rc=$rc $(cat v.txt)"
echo "tsa interop: ok"
