CREATE OR REPLACE FUNCTION tally.refresh_trending()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Kept for callers of earlier releases, which refreshed materialized views after each rollup. The
 * rollup now keeps the scores itself; this only brings the windows to today (the daily step, which
 * the rollup and housekeeping also take). SECURITY DEFINER: tally_admin may call it.
 */
BEGIN
    PERFORM tally.advance_trending();
END
$$;

COMMENT ON FUNCTION tally.refresh_trending() IS
'No longer needed after a rollup (which keeps the scores): moves the trending windows to today, like the rollup does.';
