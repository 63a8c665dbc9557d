-- The earlier name of tally.debounced(), replaced below.
DROP FUNCTION IF EXISTS tally.claim_debounce(text, text, text, uuid, timestamptz, interval);

CREATE OR REPLACE FUNCTION tally.debounced(
    p_target_type text, p_target_id text, p_kind text, p_visitor uuid, p_at timestamptz
)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * True when this visitor already counted for this target and kind within the kind's debounce window
 * (tally.kinds.debounce) before p_at; otherwise claims the slot and returns false. Kinds without a
 * window are never debounced.
 *
 * One statement, no SELECT-then-INSERT: concurrent claims of the same key queue on the unique index,
 * and each re-evaluates the ON CONFLICT condition against the winner's committed row, so exactly one
 * of them is admitted. An admission does not extend the window; debounced calls leave last_at alone.
 */
DECLARE
    v_debounced boolean;
BEGIN
    WITH k AS (
        SELECT k.debounce FROM tally.kinds AS k WHERE k.kind = p_kind AND k.debounce > interval '0'
    ),
    claimed AS (
        INSERT INTO tally.debounce AS d (key, last_at)
        SELECT md5(row(p_target_type, p_target_id, p_kind, p_visitor)::text)::uuid, p_at FROM k
        ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
        WHERE d.last_at <= excluded.last_at - (SELECT k.debounce FROM k)
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM k) AND NOT EXISTS (SELECT 1 FROM claimed) INTO v_debounced;
    RETURN v_debounced;
END
$$;

COMMENT ON FUNCTION tally.debounced(text, text, text, uuid, timestamptz) IS
'True when the visitor counted for this target and kind within the kind''s debounce window; otherwise claims the window.';
