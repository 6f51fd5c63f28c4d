#!/usr/bin/env bash
# Regenerate a service's single initial migration from its models (pre-release only: nothing
# deployed depends on the revision history yet). Serialized with flock so that two people
# changing the same service's models cannot produce two heads.
#   scripts/regen_migration.sh members
set -euo pipefail
svc="$1"
cd "$(dirname "$0")/.."
exec 9>"/tmp/hearth-regen-$svc.lock"
flock 9
versions="services/$svc/src/hearth_$svc/migrations/versions"
tmp=$(mktemp -d)
rm -f "$versions"/*.py
upper=$(echo "$svc" | tr '[:lower:]' '[:upper:]')
env "HEARTH_${upper}_DATABASE_URL=sqlite:///$tmp/regen.db" ".venv/bin/hearth-$svc" makemigrations "initial schema" >/dev/null
rm -rf "$tmp"
ls "$versions"
