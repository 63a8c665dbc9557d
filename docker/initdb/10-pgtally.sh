#!/usr/bin/env bash
# Runs once, on the first start of an empty data directory (official image's init hook): installs
# pg_cron, applies pgtally's migrations and definitions in order with the harness's own runner
# (which records their checksums, so a later `tally migrate --dsn ...` continues where this left off),
# then schedules the jobs (as the superuser, so pg_cron runs them as the least-privileged tally_job).
set -euo pipefail

dsn="host=/var/run/postgresql user=${POSTGRES_USER:-postgres} dbname=${POSTGRES_DB:-tally}"

psql -v ON_ERROR_STOP=1 "$dsn" -c "CREATE EXTENSION IF NOT EXISTS pg_cron"
cd /opt/pgtally
python3 -m harness.migrate --dsn "$dsn"
psql -v ON_ERROR_STOP=1 "$dsn" -c "SELECT * FROM tally.schedule_jobs()"
