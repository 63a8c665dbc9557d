-- dblink lets tally.schedule_jobs() reach pg_cron when pg_cron lives in another database of the
-- cluster (cron.database_name). Optional: without it scheduling works only where pg_cron is local.
-- Its functions are revoked from PUBLIC with the rest of the schema (sql/surface/grants.sql).
DO $dblink$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions AS a WHERE a.name = 'dblink')
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension AS e WHERE e.extname = 'dblink') THEN
        CREATE EXTENSION dblink SCHEMA tally;
    END IF;
END
$dblink$;
