CREATE OR REPLACE PROCEDURE tally.rollup_job()
LANGUAGE plpgsql
AS $$
/*
 * What the pg_cron rollup job runs: rollup, COMMIT, then refresh trending. A procedure so the
 * counters are committed (and notified) before the slower refresh. It has no SET search_path
 * because a procedure with SET clauses may not COMMIT; every name in it is schema-qualified.
 * A failed rollup (recorded in tally.rollup_runs) is raised again after the commit so that pg_cron
 * reports the run as failed too; a skipped one is not an error.
 */
DECLARE
    v_run tally.rollup_runs;
BEGIN
    v_run := tally.rollup();
    COMMIT;
    IF v_run.status = 'failed' THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'tally.rollup failed: ' || v_run.error;
    END IF;
    IF v_run.status = 'ok' THEN
        PERFORM tally.refresh_trending();
    END IF;
END
$$;

COMMENT ON PROCEDURE tally.rollup_job () IS
'pg_cron rollup job: tally.rollup(), commit, then tally.refresh_trending(); fails the job run when the rollup failed.';
