CREATE OR REPLACE FUNCTION tally.lock_rollup(wait boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * The rollup's lock: an advisory lock held to the end of the transaction, so that the writers of
 * counters and trending scores take turns (tally.rollup(), advance_trending(), rebuild_trending(),
 * rebuild_counters(), after_restore(), and housekeeping's daily trending step). Waits for it, or with
 * wait => false takes it only if it is free; returns whether it is held.
 * The rollup itself never waits (a second run is 'skipped'), nor does housekeeping: a rollup holding the
 * lock may wait for rows housekeeping wrote (see tally.housekeeping).
 * Keys of pgtally's advisory locks: 7301887001 tally migrate (harness/migrate.py), 7301887002 this
 * one, 7301887003 the target registry (tally.lock_registry).
 */
DECLARE
    v_lock constant bigint := 7301887002;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(v_lock);
        RETURN true;
    END IF;
    RETURN pg_try_advisory_xact_lock(v_lock);
END
$$;

COMMENT ON FUNCTION tally.lock_rollup(boolean) IS
'Takes the rollup''s lock to the end of the transaction (waiting, or with wait => false only if free); returns '
'whether it is held.';
