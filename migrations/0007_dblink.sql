-- dblink lets tally.schedule_jobs() reach pg_cron when pg_cron lives in another database of the
-- cluster (cron.database_name). Optional: without it scheduling works only where pg_cron is local.
-- It gets a schema of its own, closed to PUBLIC, so that none of its functions (dblink_connect_u is
-- SECURITY DEFINER and owned by a superuser) sits among tally's. Where dblink is already installed
-- elsewhere, tally finds it through pg_extension.
DO $dblink$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions AS a WHERE a.name = 'dblink')
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension AS e WHERE e.extname = 'dblink') THEN
        CREATE SCHEMA tally_dblink;
        REVOKE ALL ON SCHEMA tally_dblink FROM public;
        CREATE EXTENSION dblink SCHEMA tally_dblink;
    END IF;
END
$dblink$;
