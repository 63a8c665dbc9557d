CREATE OR REPLACE FUNCTION tally.lock_registry()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Makes changes to the target registry take turns: an advisory lock held to the end of the
 * transaction, taken before anything reads tally.target_types (register_target_type(), and
 * build_host_access(), which every rebuild of the registry's code starts with). Two registrations at
 * once (say, instances of an application migrating as they start) otherwise both replaced the same
 * generated functions, and one failed with XX000 'tuple concurrently updated'; and each could miss a
 * table the other was registering.
 * The registry must be read as of the lock, not of an earlier snapshot, or a type registered
 * meanwhile would be left out of the code: outside READ COMMITTED this raises 0A000.
 */
DECLARE
    v_lock constant bigint := 7301887003;  -- the others: see tally.lock_rollup
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING
            ERRCODE = '0A000',
            MESSAGE = format('the target registry is changed only under READ COMMITTED, not %s',
                upper(current_setting('transaction_isolation'))),
            DETAIL = 'A snapshot older than the registry lock would leave out a type registered concurrently.',
            HINT = 'run it in a READ COMMITTED transaction: BEGIN ISOLATION LEVEL READ COMMITTED';
    END IF;
    PERFORM pg_advisory_xact_lock(v_lock);
END
$$;

COMMENT ON FUNCTION tally.lock_registry() IS
'Takes the target registry''s lock to the end of the transaction (READ COMMITTED only); registrations take turns.';
