CREATE OR REPLACE FUNCTION tally.admit_event()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * BEFORE INSERT on tally.events: the last word on whether a row is stored. The target must exist in
 * its registered host table and be visible to the user (private rows only to their owner), and a
 * debounced kind must not have counted for this visitor within its window. Otherwise the row is
 * dropped and the reason added to tally.discards.
 *
 * The row's target_id becomes the host key's canonical text ('043' -> '43' for a numeric key,
 * lower-case for a uuid) before the debounce claim, so that every count and guard keys on one
 * spelling. The host row is read by tally_host.probe(), as tally_host_access. previous_visitor (the
 * identity's key under yesterday's salt, near midnight) is passed to the debounce check and cleared;
 * first_visit marks the visitor's first counted event of the target and kind that UTC day.
 *
 * A row log_event() or log_events() validated itself carries the token of its INSERT in vouched
 * (see migration 0017): it is stored as it is. Any other value is cleared and the row validated like
 * the rest. Like them, it refuses (55000) while the database waits for tally.after_restore(); and it
 * refuses (22023) a row whose txid is not its transaction's, which the rollup would count late or never.
 */
DECLARE
    v_reason tally.outcome;
    v_target record;
    v_claim record;
    v_xid bigint;
BEGIN
    IF NEW.vouched IS NOT NULL THEN
        IF NEW.vouched::text = current_setting('tally.voucher', true) THEN
            NEW.vouched := NULL;
            RETURN NEW;
        END IF;
        NEW.vouched := NULL;
    END IF;
    v_xid := pg_current_xact_id()::text::bigint;
    -- The rollup batches rows by txid, its default: a row given another one would be counted late,
    -- or never (as if rolled up already). Dumped rows are loaded with this trigger disabled.
    IF NEW.txid IS DISTINCT FROM v_xid THEN
        RAISE EXCEPTION USING
            ERRCODE = '22023',
            MESSAGE = 'tally.events.txid is set by the database',
            HINT = 'leave it to its default; to load dumped events, restore them with pg_restore --disable-triggers';
    END IF;
    PERFORM tally.refuse_restored(v_xid);
    -- An assignment, not SELECT ... FROM probe(): a simple expression skips the executor and the
    -- tuplestore a set-returning call in FROM costs.
    v_target := tally_host.probe(NEW.target_type, NEW.target_id, NEW.user_id);
    IF v_target.canonical_id IS NULL THEN
        v_reason := 'discarded_missing_target';
    ELSIF NOT v_target.visible THEN
        v_reason := 'discarded_not_visible';
    ELSE
        NEW.target_id := v_target.canonical_id;
    END IF;
    NEW.first_visit := NULL;  -- set here only, whatever an insert says
    IF v_reason IS NULL AND NEW.visitor IS NOT NULL THEN
        v_claim := tally.claim_visit(
            NEW.target_type, NEW.target_id, NEW.kind, NEW.visitor, NEW.created_at, NEW.previous_visitor
        );
        IF v_claim.debounced THEN
            v_reason := 'debounced';
        ELSIF v_claim.first_visit THEN
            NEW.first_visit := true;
        END IF;
    END IF;
    NEW.previous_visitor := NULL;  -- only an argument of the debounce check; never stored
    IF v_reason IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM tally.count_discard(NEW.created_at, NEW.target_type, NEW.kind, v_reason);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION tally.admit_event() IS
'Trigger on tally.events: drops rows for missing or invisible targets and debounced views, counting why.';

CREATE OR REPLACE TRIGGER admit_event
BEFORE INSERT ON tally.events
FOR EACH ROW EXECUTE FUNCTION tally.admit_event();
