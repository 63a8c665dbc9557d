CREATE OR REPLACE FUNCTION tally.claim_debounce(
    p_target_type text, p_target_id text, p_kind text, p_visitor uuid, p_at timestamptz, p_window interval
)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * True when this visitor may count for this target and kind at p_at: no admitted event of theirs
 * within p_window before it. One statement, no SELECT-then-INSERT: concurrent claims of the same key
 * queue on the unique index, and each re-evaluates the WHERE against the winner's committed row, so
 * exactly one of them is admitted. An admission does not extend the window; debounced calls leave
 * last_at alone.
 */
BEGIN
    INSERT INTO tally.debounce AS d (key, last_at)
    VALUES (md5(row(p_target_type, p_target_id, p_kind, p_visitor)::text)::uuid, p_at)
    ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
    WHERE d.last_at <= excluded.last_at - p_window;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION tally.claim_debounce(text, text, text, uuid, timestamptz, interval) IS
'Claims the debounce slot of (target, kind, visitor) at a time; false when one was claimed within the window.';
