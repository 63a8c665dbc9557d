CREATE OR REPLACE FUNCTION tally.execute_briefly(statements text[])
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Runs statements that take strong locks (partition upkeep, replacing a view) without ever holding
 * up the tables' other users for long. A lock request waits in a queue, and every later request
 * that conflicts with it waits behind it: one transaction left open after a log_event call stalled
 * every new call for as long as it stayed open, and one long query on a view every new reader. So
 * each attempt runs them all, in the order given, waiting at most 50 ms (lock_timeout) for any lock,
 * and gives back what it got if it fails; 10 attempts, 0.5 s apart (about 5 s in all). Returns
 * whether they all ran (their locks held to the end of the transaction); false means nothing of
 * them is left. Runs as its caller; the statements are the callers' own (never user input).
 */
DECLARE
    v_saved text := current_setting('lock_timeout');
BEGIN
    FOR v_attempt IN 1 .. 10 LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '50ms', true);
            FOR v_i IN 1 .. cardinality(statements) LOOP
                EXECUTE statements[v_i];
            END LOOP;
            PERFORM set_config('lock_timeout', v_saved, true);
            RETURN true;
        EXCEPTION WHEN lock_not_available THEN
            -- The subtransaction gave back the locks it got, undid the statements and restored lock_timeout.
            IF v_attempt < 10 THEN
                PERFORM pg_sleep(0.5);
            END IF;
        END;
    END LOOP;
    RETURN false;
END
$$;

COMMENT ON FUNCTION tally.execute_briefly(text[]) IS
'Runs the given statements waiting at most 50 ms at a time for their locks (10 tries, 0.5 s apart); returns false, '
'with nothing done, rather than queue behind a long transaction, which would stall everyone behind it.';
