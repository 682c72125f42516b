# ops/demo.d/55-trivy-export.sh: the Trivy DB and Java DB as Export Center runs (sourced by
# ops/demo.sh after 40-ledger imported the OSV fixtures into tenant demo): the Maven index
# fixture into the ledger (its bad rows rejected by line), stellad (api + worker), profiles
# trivy:db and trivy:java-db, `stella export run --wait`, download, offline verify, and the
# OCI layout inside the bundle (one layer of Trivy's media type).
step "Trivy exports: the Maven index into the ledger (3 bad rows rejected by line)"
TRV_TMP=$(mktemp -d)
stella ledger import --tenant demo "$ROOT/tests/fixtures/trivy/maven-index.csv" || true
TRV_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TRV_SECRET=$(openssl rand -hex 32)
stella key generate --type ed25519 -o "$TRV_TMP/sign.pem" >/dev/null
openssl pkey -in "$TRV_TMP/sign.pem" -pubout -out "$TRV_TMP/sign.pub" 2>/dev/null
STELLA_API_LISTEN=127.0.0.1:$TRV_PORT STELLA_JWT_HS256_SECRET=$TRV_SECRET STELLA_OPS_LISTEN=127.0.0.1:0 \
  STELLA_SIGNING_KEY=$TRV_TMP/sign.pem STELLA_DATA_DIR=$TRV_TMP/data STELLA_EXPORT_TMP_DIR=$TRV_TMP \
  STELLA_SOURCE_DIR=$ROOT stellad --roles api,worker 2>"$TRV_TMP/stellad.log" &
TRV_PID=$!
export STELLA_API_URL=http://127.0.0.1:$TRV_PORT
for _ in $(seq 100); do curl -sf "$STELLA_API_URL/healthz" >/dev/null && break; sleep 0.1; done
export STELLA_TOKEN
STELLA_TOKEN=$(STELLA_JWT_HS256_SECRET=$TRV_SECRET stella token mint --alg HS256 --tenant demo \
  --scope "export:viewer export:operator" --ttl 10m --sub demo)
for kind in trivy:db:trivy_db trivy:java-db:trivy_java_db; do
  job=${kind##*:}
  kind=${kind%:*}
  prof=demo-${kind#trivy:}
  curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $STELLA_TOKEN" "$STELLA_API_URL/exports/profiles/$prof"
  curl -sf -H "Authorization: Bearer $STELLA_TOKEN" -H 'Content-Type: application/json' \
    --data "{\"name\":\"$prof\",\"kind\":\"$kind\"}" "$STELLA_API_URL/exports/profiles"; echo
  step "Trivy exports: stella export run $prof --wait (job type $job), download, verify"
  stella export run "$prof" --tenant demo --wait | tee "$TRV_TMP/run.out"
  TRV_RUN=$(awk '/^run /{print $2}' "$TRV_TMP/run.out")
  stella export download "$TRV_RUN" --tenant demo -o "$TRV_TMP/$prof.tgz"
  stella export verify "$TRV_TMP/$prof.tgz" --key "$TRV_TMP/sign.pub"
  tar -tzf "$TRV_TMP/$prof.tgz" | grep '^payload/'
  echo "stored beside the bundle:"
  find "$TRV_TMP/data" -path "*exports/$TRV_RUN/*" -not -name '.*' -printf '  %f\n' | sort
done
kill "$TRV_PID"
wait "$TRV_PID" 2>/dev/null || true
unset STELLA_API_URL STELLA_TOKEN
rm -rf "$TRV_TMP"
