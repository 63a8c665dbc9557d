CREATE OR REPLACE FUNCTION tally.log_events_in_order(events jsonb, items tally.ingest_item[])
RETURNS TABLE (ord integer, outcome tally.outcome, error text, message text)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * log_events for a batch whose elements carry 'at' (the clock override, for tests and demos): each
 * element is one log_event call under its own clock, so the batch is logged element by element.
 * An element log_events refused by shape keeps that error; a data exception of a call (22xxx) is
 * that element's error, as in log_events; anything else aborts the batch.
 */
#variable_conflict use_column
DECLARE
    v_element record;
    v_clock text := current_setting('tally.clock', true);
BEGIN
    FOR v_element IN
        SELECT i.ord, i.error, i.message, e.v
        FROM unnest(log_events_in_order.items) AS i
        INNER JOIN jsonb_array_elements(log_events_in_order.events) WITH ORDINALITY AS e (v, ord) ON e.ord = i.ord
        ORDER BY i.ord
    LOOP
        ord := v_element.ord;
        outcome := NULL;
        error := v_element.error;
        message := v_element.message;
        IF error IS NULL THEN
            BEGIN
                IF v_element.v ? 'at' THEN
                    PERFORM set_config('tally.clock', v_element.v ->> 'at', true);
                END IF;
                outcome := tally.log_event(
                    target_type => v_element.v ->> 'target_type',
                    target_id => v_element.v ->> 'target_id',
                    kind => v_element.v ->> 'kind',
                    user_id => v_element.v ->> 'user_id',
                    session_id => v_element.v ->> 'session_id',
                    ip => v_element.v ->> 'ip',
                    user_agent => v_element.v ->> 'user_agent',
                    referrer => v_element.v ->> 'referrer',
                    metadata => nullif(v_element.v -> 'metadata', 'null'::jsonb),
                    event_id => (v_element.v ->> 'event_id')::uuid
                );
                PERFORM set_config('tally.clock', coalesce(v_clock, ''), true);
            EXCEPTION WHEN data_exception THEN
                GET STACKED DIAGNOSTICS error = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION tally.log_events_in_order(jsonb, tally.ingest_item[]) IS
'log_events for batches that use the clock override''s per-element at: one log_event call per element.';
