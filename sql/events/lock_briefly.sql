CREATE OR REPLACE FUNCTION tally.lock_briefly(relations regclass[], modes text[])
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Takes locks that stop writers (partition upkeep: creating, attaching and dropping partitions of
 * tally.events), each relation alone (LOCK TABLE ONLY) in its mode, in the order given, without
 * ever holding up ingestion for long. A lock request waits in a queue, and every later request that
 * conflicts with it waits behind it: one transaction left open after a log_event call (it holds
 * ROW EXCLUSIVE on events to its end) stalled every new call for as long as it stayed open. So each
 * attempt waits at most 50 ms (lock_timeout) for all of them and gives back what it got if it fails;
 * 10 attempts, 0.5 s apart. Returns whether it holds them all (to the end of the transaction);
 * false means the caller leaves its step to its next run.
 * Modes: those of LOCK TABLE, upper case. Runs as its caller.
 */
DECLARE
    v_saved text := current_setting('lock_timeout');
BEGIN
    IF EXISTS (
        SELECT FROM unnest(modes) AS m (mode)
        WHERE m.mode IS NULL OR m.mode NOT IN (
            'ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE',
            'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE'
        )
    ) OR cardinality(relations) IS DISTINCT FROM cardinality(modes) THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'one LOCK TABLE mode per relation';
    END IF;
    FOR v_attempt IN 1 .. 10 LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '50ms', true);
            FOR v_i IN 1 .. cardinality(relations) LOOP
                EXECUTE format('LOCK TABLE ONLY %s IN %s MODE', relations[v_i], modes[v_i]);
            END LOOP;
            PERFORM set_config('lock_timeout', v_saved, true);
            RETURN true;
        EXCEPTION WHEN lock_not_available THEN
            -- The subtransaction gave back the locks it got and restored lock_timeout.
            IF v_attempt < 10 THEN
                PERFORM pg_sleep(0.5);
            END IF;
        END;
    END LOOP;
    RETURN false;
END
$$;

COMMENT ON FUNCTION tally.lock_briefly(regclass[], text[]) IS
'Takes the given LOCK TABLE ONLY locks for partition upkeep, waiting at most 50 ms at a time (10 tries): '
'returns false rather than queue behind an open transaction, which would stall every writer behind it.';
