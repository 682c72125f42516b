# ops/demo.d/40-ledger.sh: import the ledger fixtures (one directory of bad documents shows
# the rejects), create an export profile and print its plan (sourced by ops/demo.sh).
step "importing OSV, OpenVEX and policy fixtures into tenant demo (stella ledger import)"
stella ledger import --tenant demo "$ROOT/tests/fixtures/ledger/osv" \
  "$ROOT/tests/fixtures/ledger/vex" "$ROOT/tests/fixtures/ledger/policy"
step "importing a bad document: rejected with its reason, exit 1"
stella ledger import --tenant demo "$ROOT/tests/fixtures/ledger/bad/vex-bad-status.json" || true
step "creating export profile high-and-critical (stella export profile create)"
stella export profile delete high-and-critical --tenant demo >/dev/null 2>&1 || true
stella export profile create --tenant demo --name high-and-critical --kind json:raw \
  --filters '{"sources":["advisories","vex"],"severities":["high","critical"]}'
step "planning it (stella export plan --inputs): same ledger, same digest"
stella export plan high-and-critical --tenant demo --inputs
step "a filter error names its field"
stella export profile create --tenant demo --name broken --kind json:raw \
  --filters '{"severities":["huge"]}' || true
