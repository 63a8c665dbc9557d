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
    -- waits on until commit; the backend pid modulo 16 spreads it over 16 rows.
    INSERT INTO tally.discards AS d (day, target_type, kind, reason, shard, count)
    VALUES (
        (p_at AT TIME ZONE 'UTC')::date, left(p_target_type, 64), left(p_kind, 64), p_reason,
        pg_backend_pid() % 16, 1
    )
    ON CONFLICT (day, target_type, kind, reason, shard) DO UPDATE SET count = d.count + 1;
END
$$;

COMMENT ON FUNCTION tally.count_discard(timestamptz, text, text, tally.outcome) IS
'Adds one to the per-day tally of calls that logged nothing, by reason.';
