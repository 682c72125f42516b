# ops/demo.d/50-trivy.sh: build the Trivy DB and Java DB from the fixtures, offline, and
# show what Trivy will read (sourced by ops/demo.sh, which sets PATH and ROOT).
trivy_out=$(mktemp -d)
step "stella trivy build: OSV fixtures + a Maven index -> trivy.db, trivy-java.db, OCI layouts"
stella trivy build --input "$ROOT/tests/fixtures/ledger/osv" -o "$trivy_out/db" \
  --java-index "$ROOT/tests/fixtures/trivy/maven-index.csv" --oci 2>&1 || true
cat "$trivy_out/db/metadata.json"
step "the buckets Trivy reads (bbolt itself, via tests/bbolt/check.go)"
if command -v go >/dev/null && [ -d /usr/share/gocode/src/go.etcd.io/bbolt ]; then
  GO111MODULE=off GOPATH="$trivy_out/gopath:/usr/share/gocode" GOPROXY=off GOFLAGS= \
    GOCACHE="$ROOT/build/go-cache" GOTOOLCHAIN=local \
    go build -o "$trivy_out/bboltcheck" "$ROOT/tests/bbolt/check.go"
  "$trivy_out/bboltcheck" trivy "$trivy_out/db/trivy.db" | cut -c1-150 | head -24
else
  tar -tzvf "$trivy_out/db/db.tar.gz"
fi
step "the Java DB answers trivy-java-db's lookup by sha1"
sqlite3 "$trivy_out/db/java-db/trivy-java.db" "SELECT a.group_id, a.artifact_id, i.version,
  i.archive_type FROM indices i JOIN artifacts a ON a.id = i.artifact_id
  WHERE i.sha1 = X'1111111111111111111111111111111111111111'"
rm -rf "$trivy_out"
