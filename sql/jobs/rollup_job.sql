CREATE OR REPLACE PROCEDURE tally.rollup_job()
LANGUAGE plpgsql
AS $$
/*
 * What the pg_cron rollup job runs: tally.rollup() (counters, daily counts and trending scores in
 * one transaction), COMMIT, then a failed rollup (recorded in tally.rollup_runs) is raised again so
 * that pg_cron reports the run as failed too; a skipped one is not an error. A procedure so that the
 * failed run's record is committed before the job fails. It has no SET search_path because a
 * procedure with SET clauses may not COMMIT; every name in it is schema-qualified.
 */
DECLARE
    v_run tally.rollup_runs;
BEGIN
    v_run := tally.rollup();
    COMMIT;
    IF v_run.status = 'failed' THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'tally.rollup failed: ' || v_run.error;
    END IF;
END
$$;

COMMENT ON PROCEDURE tally.rollup_job () IS
'pg_cron rollup job: tally.rollup(), commit; fails the job run when the rollup failed.';
