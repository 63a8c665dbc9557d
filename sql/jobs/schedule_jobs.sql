CREATE OR REPLACE FUNCTION tally.schedule_jobs(
    rollup text DEFAULT '*/5 * * * *',
    housekeeping text DEFAULT '17 3 * * *'
)
RETURNS SETOF text
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
/*
 * Installs (or replaces) this database's pg_cron jobs and returns their names:
 *   tally_rollup@<db>        CALL tally.rollup_job()  - rollup, then refresh trending
 *   tally_housekeeping@<db>  tally.housekeeping() and tally.prune_job_runs()
 * Idempotent: an existing job of the same name (scheduled by this role) is altered in place. Uses
 * cron.schedule_in_database, here or through dblink when pg_cron lives in another database.
 * Schedules are pg_cron's (minute granularity, GMT). Runs as the caller: pg_cron runs each job as the
 * role that scheduled it, so call it as a role allowed to run rollup and prune the job history.
 * 55000 without pg_cron.
 */
DECLARE
    v_job record;
BEGIN
    FOR v_job IN
        SELECT *
        FROM (VALUES
            ('tally_rollup@' || current_database(), rollup, 'CALL tally.rollup_job()'),
            ('tally_housekeeping@' || current_database(), housekeeping,
                'SELECT tally.housekeeping(); SELECT tally.prune_job_runs()')
        ) AS j (name, schedule, command)
    LOOP
        -- An existing job is altered in place, so that its id and run history (job_status) survive.
        PERFORM tally.cron_exec(format(
            $cmd$DO $job$ BEGIN
                IF EXISTS (SELECT 1 FROM cron.job AS j WHERE j.jobname = %1$L AND j.username = current_user) THEN
                    PERFORM cron.alter_job(j.jobid, schedule => %2$L, command => %3$L, database => %4$L)
                    FROM cron.job AS j WHERE j.jobname = %1$L AND j.username = current_user;
                ELSE
                    PERFORM cron.schedule_in_database(%1$L, %2$L, %3$L, %4$L);
                END IF;
            END $job$ $cmd$,
            v_job.name, v_job.schedule, v_job.command, current_database()
        ));
        RETURN NEXT v_job.name;
    END LOOP;
END
$fn$;

COMMENT ON FUNCTION tally.schedule_jobs(text, text) IS
'Installs or replaces the pg_cron jobs tally_rollup@<db> (default every 5 minutes) and tally_housekeeping@<db> (daily); '
'55000 without pg_cron.';

CREATE OR REPLACE FUNCTION tally.unschedule_jobs()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tally.cron_exec(format(
        'SELECT cron.unschedule(j.jobid) FROM cron.job AS j'
        ' WHERE j.database = %L AND j.jobname LIKE %L AND j.username = current_user',
        current_database(), 'tally\_%'
    ));
END
$$;

COMMENT ON FUNCTION tally.unschedule_jobs() IS
'Removes this database''s tally pg_cron jobs scheduled by the current role; 55000 without pg_cron.';
