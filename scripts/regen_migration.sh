#!/usr/bin/env bash
# Regenerate a service's single initial migration from its models (pre-release only: nothing
# deployed depends on the revision history yet). Serialized with flock so that two people
# changing the same service's models cannot produce two heads.
#   scripts/regen_migration.sh members
#   scripts/regen_migration.sh gateway    # the gateway's own database, the same way
set -euo pipefail
svc="$1"
cd "$(dirname "$0")/.."
exec 9>"/tmp/hearth-regen-$svc.lock"
flock 9
if [ "$svc" = gateway ]; then
  versions="gateway/src/hearth_gateway/migrations/versions"
else
  versions="services/$svc/src/hearth_$svc/migrations/versions"
fi
tmp=$(mktemp -d)
rm -f "$versions"/*.py
upper=$(echo "$svc" | tr '[:lower:]' '[:upper:]')
env "HEARTH_${upper}_DATABASE_URL=sqlite:///$tmp/regen.db" ".venv/bin/hearth-$svc" makemigrations "initial schema" >/dev/null
rm -rf "$tmp"
ls "$versions"
