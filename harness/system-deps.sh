#!/usr/bin/env bash
# Installs the Debian packages pgtally needs, once: PostgreSQL 15 (server, client, contrib modules
# such as dblink and pgbench) and pg_cron for it. Does nothing when they are already there.
set -euo pipefail

missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
[ -x /usr/lib/postgresql/15/bin/pgbench ] || missing+=(postgresql-contrib)
[ -f /usr/share/postgresql/15/extension/pg_cron.control ] || missing+=(postgresql-15-cron)
command -v pg_config >/dev/null || missing+=(libpq-dev)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "pgtally needs: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
