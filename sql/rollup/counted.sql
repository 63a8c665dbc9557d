CREATE OR REPLACE FUNCTION tally.counted(txid bigint, snapshot pg_snapshot)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    -- True when an event of transaction txid has been counted by the rollup whose snapshot this is:
    -- its transaction was visible (committed) in it. No SET clause so that it inlines (see clean_text);
    -- it names only pg_catalog objects, qualified.
    SELECT txid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmin(snapshot)::pg_catalog.text::pg_catalog.int8
        OR (
            txid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmax(snapshot)::pg_catalog.text::pg_catalog.int8
            AND pg_catalog.pg_visible_in_snapshot(txid::pg_catalog.text::pg_catalog.xid8, snapshot)
        )
$$;

COMMENT ON FUNCTION tally.counted(bigint, pg_snapshot) IS
'Whether an event of transaction txid is counted by the rollup that stored this snapshot (tally.rollup_state).';
