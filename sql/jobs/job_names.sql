CREATE OR REPLACE FUNCTION tally.job_names()
RETURNS text[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The pg_cron job names of this database; the database in the name keeps databases apart.
    SELECT ARRAY[
        'tally_rollup@' || current_database(),
        'tally_housekeeping@' || current_database(),
        'tally_prune_runs@' || current_database()
    ]
$$;

COMMENT ON FUNCTION tally.job_names() IS 'The names of this database''s pg_cron jobs.';
