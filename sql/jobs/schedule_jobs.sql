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
 *   tally_rollup@<db>        CALL tally.rollup_job()  - counters, daily counts, trending scores
 *   tally_housekeeping@<db>  SELECT tally.housekeeping()
 *   tally_prune_runs@<db>    deletes this database's tally job runs older than settings.run_retention
 *                            from cron.job_run_details (pg_cron never does); runs in pg_cron's
 *                            database, where the job role may delete its own runs
 * No job runs as a superuser: called by a superuser, the jobs run as tally_job (pg_cron's username),
 * which may call the job functions and nothing else; called by another role, pg_cron runs them as
 * that role. Jobs of the same name scheduled for another role (an earlier release scheduled them as
 * the caller) are replaced; an existing job of the job role is altered in place, keeping its id and
 * run history. Schedules are pg_cron's (minute granularity, GMT). 55000 without pg_cron.
 */
DECLARE
    v_username text := CASE WHEN current_setting('is_superuser')::boolean THEN 'tally_job' ELSE current_user END;
    v_names text [] := tally.job_names();
    v_cron_database text;
    v_retention interval;
    v_job record;
BEGIN
    v_cron_database := CASE tally.cron_location()
        WHEN 'local' THEN current_database()
        ELSE current_setting('cron.database_name', true)
    END;
    SELECT s.run_retention INTO v_retention FROM tally.settings AS s;
    FOR v_job IN
        SELECT *
        FROM (VALUES
            (1, v_names[1], rollup, 'CALL tally.rollup_job()', current_database()),
            (2, v_names[2], housekeeping, 'SELECT tally.housekeeping()', current_database()),
            (3, v_names[3], housekeeping, format(
                'DELETE FROM cron.job_run_details AS d USING cron.job AS j'
                ' WHERE d.jobid = j.jobid AND j.jobname = ANY (%L::text []) AND d.end_time < now() - %L::interval',
                v_names, v_retention
            ), v_cron_database)
        ) AS j (ord, name, schedule, command, database)
        ORDER BY j.ord
    LOOP
        PERFORM tally.cron_exec(format(
            $cmd$DO $job$ BEGIN
                PERFORM cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname = %1$L AND j.username <> %5$L;
                IF EXISTS (SELECT 1 FROM cron.job AS j WHERE j.jobname = %1$L AND j.username = %5$L) THEN
                    PERFORM cron.alter_job(j.jobid, schedule => %2$L, command => %3$L, database => %4$L)
                    FROM cron.job AS j WHERE j.jobname = %1$L AND j.username = %5$L;
                ELSE
                    PERFORM cron.schedule_in_database(%1$L, %2$L, %3$L, %4$L, %5$L);
                END IF;
            END $job$ $cmd$,
            v_job.name, v_job.schedule, v_job.command, v_job.database, v_username
        ));
        RETURN NEXT v_job.name;
    END LOOP;
END
$fn$;

COMMENT ON FUNCTION tally.schedule_jobs(text, text) IS
'Installs or replaces the pg_cron jobs tally_rollup@<db> (default every 5 minutes), tally_housekeeping@<db> and '
'tally_prune_runs@<db> (daily), run as tally_job when a superuser schedules them; 55000 without pg_cron.';

CREATE OR REPLACE FUNCTION tally.unschedule_jobs()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- pg_cron's row security limits a non-superuser to the jobs it scheduled.
    PERFORM tally.cron_exec(format(
        'SELECT cron.unschedule(j.jobid) FROM cron.job AS j WHERE j.jobname = ANY (%L::text [])', tally.job_names()
    ));
END
$$;

COMMENT ON FUNCTION tally.unschedule_jobs() IS
'Removes this database''s tally pg_cron jobs (a non-superuser: those it scheduled); 55000 without pg_cron.';
