# ops/demo.d/75-evidence-ops.sh: the Evidence Locker's operator side (sourced by
# ops/demo.sh, after 70-evidence): incident mode on and off from the CLI (its events reach
# stella:notify through the outbox relay of a running stellad), the tenant's retention
# windows, a pruner run as stella_maint, and the custody chain verified.
step "Evidence Locker: incident mode, retention, pruner, custody verify"
EVO_TMP=$(mktemp -d)
EVO_T=demo-ops-$(date +%s) # a fresh tenant: its chain is checked against this run's key
stella key generate --type ed25519 -o "$EVO_TMP/sign.pem" >/dev/null
export STELLA_SIGNING_KEY=$EVO_TMP/sign.pem STELLA_DATA_DIR=$EVO_TMP/data
stella incident on --tenant "$EVO_T" --reason "demo drill" --extension-days 14
stella incident status --tenant "$EVO_T"
stella evidence retention set --tenant "$EVO_T" --kind job --days 30
stella evidence retention get --tenant "$EVO_T"
stella incident off --tenant "$EVO_T"
stella evidence prune
stella evidence custody verify --tenant "$EVO_T"
unset STELLA_SIGNING_KEY STELLA_DATA_DIR EVO_T
rm -rf "$EVO_TMP"
