#!/usr/bin/env bash
# ops/tsa/gen-test-pki.sh DIR [LABEL]: a throw-away test CA and TSA signing certificate for
# stella-test-tsa and `openssl ts -reply`, made with the openssl CLI (once: existing files
# are kept). Writes DIR/ca.pem ca.key tsa.pem tsa.key (P-256). The TSA leaf carries what
# OpenSSL and sigstore demand of a timestamping certificate: extendedKeyUsage critical with
# timeStamping alone, keyUsage critical digitalSignature, basicConstraints critical CA:FALSE.
set -euo pipefail
dir=${1:?usage: gen-test-pki.sh DIR [LABEL]}
label=${2:-Stella Test}
mkdir -p "$dir"
[ -s "$dir/ca.pem" ] && [ -s "$dir/tsa.pem" ] && [ -s "$dir/tsa.key" ] && exit 0
cd "$dir"
umask 077
cat >ext.cnf <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[tsa]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
  -out ca.pem -days 3650 -subj "/O=$label/CN=$label TSA Root" \
  -config ext.cnf -extensions ca
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tsa.key \
  -out tsa.csr -subj "/O=$label/CN=$label TSA" -config ext.cnf
openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
  -days 825 -extfile ext.cnf -extensions tsa -out tsa.pem 2>/dev/null
rm -f tsa.csr ext.cnf
chmod 644 ca.pem tsa.pem
