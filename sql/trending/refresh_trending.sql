CREATE OR REPLACE FUNCTION tally.refresh_trending()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- JIT compilation costs seconds here for a plan that runs once and is mostly I/O and hashing.
SET jit = off
-- The window's daily rows are grouped in memory instead of spilling to disk.
SET work_mem = '256MB'
AS $$
/*
 * Refreshes the trending materialized views CONCURRENTLY (readers of trending() are never blocked;
 * each view has the unique index this needs). They read tally.daily_counts, never raw events, so the
 * cost follows the number of (target, day, kind) rows in the window, not the number of events.
 * SECURITY DEFINER because only the owner of a materialized view may refresh it.
 */
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY tally.trending_7d;
    REFRESH MATERIALIZED VIEW CONCURRENTLY tally.trending_30d;
END
$$;

COMMENT ON FUNCTION tally.refresh_trending() IS
'Refreshes tally.trending_7d and tally.trending_30d concurrently. The rollup job calls it after each rollup.';
