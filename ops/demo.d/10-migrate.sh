# ops/demo.d/10-migrate.sh: apply the Postgres migrations as the admin role, then list them
# (sourced by ops/demo.sh, which sets PATH and the STELLA_* service variables).
step "applying Postgres migrations (stella migrate)"
STELLA_SOURCE_DIR="$ROOT" stella migrate
step "migration status (stella migrate --status)"
STELLA_SOURCE_DIR="$ROOT" stella migrate --status
