CREATE OR REPLACE FUNCTION tally.mark_running(snapshot pg_snapshot, xid xid8)
RETURNS pg_snapshot
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The snapshot, with transaction xid in progress in it. pg_current_snapshot() never lists the
    -- calling transaction as in progress: once a later transaction has ended, it shows the caller as
    -- visible. (pg_snapshot's text form: xmin:xmax:the in-progress ids, ascending, within [xmin, xmax).)
    SELECT CASE
        WHEN xid IS NULL OR NOT pg_visible_in_snapshot(xid, snapshot) THEN snapshot
        ELSE format(
            '%s:%s:%s',
            least(pg_snapshot_xmin(snapshot), xid),
            pg_snapshot_xmax(snapshot),
            (
                SELECT string_agg(r.xid::text, ',' ORDER BY r.xid)
                FROM (SELECT pg_snapshot_xip(snapshot) UNION ALL SELECT xid) AS r (xid)
            )
        )::pg_snapshot
    END
$$;

COMMENT ON FUNCTION tally.mark_running(pg_snapshot, xid8) IS
'The snapshot with transaction xid listed as in progress (the rollup marks its own transaction so; NULL: unchanged).';
