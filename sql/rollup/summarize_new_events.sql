CREATE OR REPLACE FUNCTION tally.summarize_new_events()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Summarizes the page ranges of the events' txid BRIN index that are not summarized yet, and returns
 * how many it summarized. A BRIN scan must read every unsummarized range, so without this a rollup
 * would re-read all pages written since autovacuum last summarized them (autosummarize runs
 * asynchronously); the rollup calls it once its batch is read, keeping the next batch's scan to the
 * new pages. It needs the lock VACUUM takes: a partition being vacuumed is skipped (waiting at most
 * 50 ms) and summarized by that vacuum or by the next rollup.
 */
DECLARE
    v_index regclass;
    v_ranges integer := 0;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    FOR v_index IN
        SELECT i.inhrelid::regclass FROM pg_inherits AS i
        WHERE i.inhparent = 'tally.events_txid_brin'::regclass
    LOOP
        BEGIN
            PERFORM set_config('lock_timeout', '50ms', true);
            v_ranges := v_ranges + brin_summarize_new_values(v_index);
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    RETURN v_ranges;
END
$$;

COMMENT ON FUNCTION tally.summarize_new_events() IS
'Summarizes unsummarized ranges of the events'' txid BRIN index so that rollups read only new pages; returns the ranges summarized.';
