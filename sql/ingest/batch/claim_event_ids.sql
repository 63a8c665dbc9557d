CREATE OR REPLACE FUNCTION tally.claim_event_ids(items tally.ingest_item[], state tally.ingest_state[])
RETURNS TABLE (event_id uuid)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
/*
 * Step 3 of log_events: claims the event_ids of the elements still going (at most one per event_id
 * by then) and returns those it claimed; one that a concurrent call claimed since step 1 is not
 * returned, and its element is a duplicate, as in log_event. Claimed in key order.
 */
#variable_conflict use_column
BEGIN
    RETURN QUERY
    INSERT INTO tally.event_ids AS i (event_id, seen_at)
    SELECT r.event_id, r.at
    FROM ROWS FROM (unnest(claim_event_ids.items), unnest(claim_event_ids.state)) AS r
    WHERE r.error IS NULL AND r.outcome IS NULL AND r.event_id IS NOT NULL
    ORDER BY r.event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING i.event_id;
END
$$;

COMMENT ON FUNCTION tally.claim_event_ids(tally.ingest_item[], tally.ingest_state[]) IS
'Step 3 of log_events: claims the event_ids of the elements still going; returns those it claimed.';
