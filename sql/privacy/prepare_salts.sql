CREATE OR REPLACE FUNCTION tally.prepare_salts()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Creates the salts of today and the next two UTC days, if missing, and returns how many it created.
 * Run by every rollup, by housekeeping and on every migrate, each in a short transaction of its own:
 * log_event then never creates a salt itself (it would do so inside the caller's transaction, and
 * every other first call of that day would wait for that transaction to end), unless no job has run
 * for two days.
 */
DECLARE
    v_today date := (tally.now() AT TIME ZONE 'UTC')::date;
    v_before bigint;
    v_after bigint;
BEGIN
    SELECT count(*) INTO v_before FROM tally.visitor_salts AS s WHERE s.day BETWEEN v_today AND v_today + 2;
    IF v_before = 3 THEN
        RETURN 0;
    END IF;
    PERFORM tally.visitor_salt(v_today + d) FROM generate_series(0, 2) AS d;
    SELECT count(*) INTO v_after FROM tally.visitor_salts AS s WHERE s.day BETWEEN v_today AND v_today + 2;
    RETURN v_after - v_before;
END
$$;

COMMENT ON FUNCTION tally.prepare_salts() IS
'Creates the visitor salts of today and the next two UTC days ahead of use; returns how many it created.';
