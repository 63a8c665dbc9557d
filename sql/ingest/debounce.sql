-- Earlier names and signatures of tally.claim_visit(), replaced below.
DROP FUNCTION IF EXISTS tally.claim_debounce(text, text, text, uuid, timestamptz, interval);
DROP FUNCTION IF EXISTS tally.debounced(text, text, text, uuid, timestamptz);
DROP FUNCTION IF EXISTS tally.debounced(text, text, text, uuid, timestamptz, uuid);

CREATE OR REPLACE FUNCTION tally.claim_visit(
    p_target_type text,
    p_target_id text,
    p_kind text,
    p_visitor uuid,
    p_at timestamptz,
    p_previous uuid,
    OUT debounced boolean,
    OUT first_visit boolean
)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * debounced: this visitor already counted for this target and kind within the kind's debounce window
 * (tally.kinds.debounce) before p_at; otherwise the slot is claimed. first_visit: the claim created
 * the slot, so this is the visitor's first counted event of this target and kind this UTC day (the
 * visitor key changes with the day's salt, and housekeeping keeps the day's slots until the day is
 * over): what daily_counts.viewers counts. Kinds without a window are never debounced and mark no
 * first visit.
 *
 * One statement per slot, no SELECT-then-INSERT: concurrent claims of the same key queue on the
 * unique index, and each re-evaluates the ON CONFLICT condition against the winner's committed row,
 * so exactly one of them is admitted, and exactly one creates the slot. An admission does not extend
 * the window; debounced calls leave last_at alone.
 *
 * The admit_event trigger calls this for a row inserted directly into tally.events; log_event,
 * claim_visits (log_events) make the same claims by the same rule inside their own statements.
 *
 * Visitor keys change at UTC midnight (a new salt). p_previous, the same identity's key under the
 * previous day's salt, is given (the row's previous_visitor) while a window that began yesterday can
 * still be open; its slot is claimed first, by the same rule, so a call shortly after midnight is
 * debounced by an admission shortly before it, and concurrent calls either side of midnight still
 * admit one. Every call takes the slots in the same order (previous, then current): no lock cycle
 * between them.
 */
#variable_conflict use_column
DECLARE
    v_window interval;
BEGIN
    debounced := false;
    first_visit := false;
    IF p_previous IS NOT NULL THEN
        SELECT k.debounce INTO v_window FROM tally.kinds AS k WHERE k.kind = p_kind AND k.debounce > interval '0';
        IF v_window IS NULL THEN
            RETURN;
        END IF;
        INSERT INTO tally.debounce AS d (key, last_at)
        VALUES (tally.debounce_key(p_target_type, p_target_id, p_kind, p_previous), p_at)
        ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
        WHERE d.last_at <= excluded.last_at - v_window;
        IF NOT FOUND THEN
            debounced := true;
            RETURN;
        END IF;
    END IF;
    -- The common case in one statement: the kind's window, and the claim of the current slot. A row
    -- that was inserted, not updated, has no xmax.
    WITH k AS (
        SELECT k.debounce FROM tally.kinds AS k WHERE k.kind = p_kind AND k.debounce > interval '0'
    ),
    claimed AS (
        INSERT INTO tally.debounce AS d (key, last_at)
        SELECT tally.debounce_key(p_target_type, p_target_id, p_kind, p_visitor), p_at FROM k
        ON CONFLICT (key) DO UPDATE SET last_at = excluded.last_at
        WHERE d.last_at <= excluded.last_at - (SELECT k.debounce FROM k)
        RETURNING d.xmax = 0 AS created
    )
    SELECT
        EXISTS (SELECT 1 FROM k) AND NOT EXISTS (SELECT 1 FROM claimed),
        coalesce((SELECT c.created FROM claimed AS c), false)
    INTO debounced, first_visit;
END
$$;

COMMENT ON FUNCTION tally.claim_visit(text, text, text, uuid, timestamptz, uuid) IS
'Debounce claim of a visitor''s event: debounced when it counted within the kind''s window (under today''s or, '
'given, yesterday''s visitor key); first_visit when the claim created today''s slot.';
