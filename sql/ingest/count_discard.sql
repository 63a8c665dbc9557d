CREATE OR REPLACE FUNCTION tally.count_discard(
    p_at timestamptz, p_target_type text, p_kind text, p_reason tally.outcome
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One row per (UTC day, type, kind, reason) would be one row lock that every concurrent discard
    -- waits on until commit, and two open transactions could wait on each other's. Each backend
    -- counts in a row of its own (shard = its pid), so no discard ever waits; housekeeping folds
    -- the rows of past days into shard 0 (no backend has pid 0).
    INSERT INTO tally.discards AS d (day, target_type, kind, reason, shard, count)
    VALUES (
        (p_at AT TIME ZONE 'UTC')::date, left(p_target_type, 64), left(p_kind, 64), p_reason,
        pg_backend_pid(), 1
    )
    ON CONFLICT (day, target_type, kind, reason, shard) DO UPDATE SET count = d.count + 1;
END
$$;

COMMENT ON FUNCTION tally.count_discard(timestamptz, text, text, tally.outcome) IS
'Adds one to the per-day tally of calls that logged nothing, by reason.';
